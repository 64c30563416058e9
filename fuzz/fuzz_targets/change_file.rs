//! Change files (YAML) as `vigie submit` and the referee's checks read
//! them, and host selectors: an error or a valid spec, never a panic, a
//! hang or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = vigie_changes::parse_change("fuzz.yml", text) {
        // A valid change is one the tower can send and store.
        vigie_wire::encode(&spec).expect("a valid change encodes");
    }
    let _ = vigie_changes::Selector::parse(text);
});
