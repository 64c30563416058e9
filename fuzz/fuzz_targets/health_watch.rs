//! What the agent's health watch reads in a deployed instance's
//! directories, where the app itself can write: the `health_watch` file
//! and a replica's `env` (its address). A watch or nothing, an address or
//! nothing: never a panic; a watch that parses renders back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_wire::observe::HealthWatch;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(w) = HealthWatch::parse(text) {
        assert_eq!(HealthWatch::parse(&w.render()), Some(w));
    }
    let _ = vigie_plug::heal::address(text);
});
