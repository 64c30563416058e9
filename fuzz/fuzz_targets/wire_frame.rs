//! Frames as the tower's daemons decode them from the network: the
//! majordomo's `FrontIn` (agents and operators) and `Published` (the
//! referee's PUB), the referee's `ApiRequest` (ROUTER) and `PlugEvent`
//! (PULL). Any input is an error or a message; a message decoded is
//! encoded again and decodes to itself (the referee stores what it was
//! sent re-encoded).
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use serde::{de::DeserializeOwned, Serialize};
use vigie_wire::front::FrontIn;
use vigie_wire::tower::{ApiRequest, PlugEvent, Published};

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(frame: &[u8]) {
    let Ok(msg) = vigie_wire::decode::<T>(frame) else {
        return;
    };
    let again = vigie_wire::encode(&msg).expect("a decoded message encodes");
    let back = vigie_wire::decode::<T>(&again).expect("an encoded message decodes");
    assert_eq!(back, msg);
}

fuzz_target!(|frame: &[u8]| {
    round_trip::<FrontIn>(frame);
    round_trip::<Published>(frame);
    round_trip::<ApiRequest>(frame);
    round_trip::<PlugEvent>(frame);
});
