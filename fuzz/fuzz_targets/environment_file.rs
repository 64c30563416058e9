//! `environment.yml` as the deployer reads it (from an application's
//! repository): an error or a valid environment, never a panic, a hang or
//! an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = vigie_deployer::parse_environment("environment.yml", text);
});
