//! SSH host keys as the provisioner reads them: `ssh-keyscan`'s output
//! (from the server being provisioned) and the catalog's pin (first line).
//! A key read prints as a line that reads back as itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_provisioner::hostkey::{decide, parse_keyscan, HostKey, Pin};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pin, scan) = text.split_once('\n').unwrap_or((text, ""));
    let seen = parse_keyscan(scan);
    for key in &seen {
        assert_eq!(HostKey::parse(&key.line()).as_ref(), Some(key));
        assert!(key.fingerprint().starts_with("SHA256:"));
    }
    let _ = Pin::parse(pin);
    let _ = decide(Some(pin), &seen);
    let _ = decide(None, &seen);
});
