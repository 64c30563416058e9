//! The client's side of the front door, shared by agents and operators: a
//! CURVE DEALER towards the majordomo, and a monitor that tells why a
//! handshake failed (libzmq alone retries silently forever). A tower group
//! (active/standby) is given as its front doors, comma-separated: the
//! DEALER connects to all of them and sends only through one whose
//! handshake completed — the active tower's, since a standby runs no
//! majordomo — so agents and operators move to whichever tower is active.

use crate::error::MajordomoError;
use crate::keys::KeyPair;

/// What the monitor says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    Up,
    /// The tower's ZAP handler refused our key: unknown, pending or revoked.
    KeyRefused,
    /// The handshake itself failed: almost always a wrong tower key.
    TowerKeyWrong,
    Other,
}

impl Handshake {
    pub fn explain(self, who: &str) -> String {
        match self {
            Handshake::KeyRefused => {
                format!("the tower does not accept this {who}'s key (unknown, pending or revoked)")
            }
            Handshake::TowerKeyWrong => {
                "the CURVE handshake failed: is --tower-key the tower's public key?".into()
            }
            Handshake::Up | Handshake::Other => String::new(),
        }
    }
}

/// A DEALER with our key pair, expecting `tower_key`, and its monitor;
/// not connected yet (connect after the monitor is in place).
pub fn curve_dealer(
    ctx: &zmq::Context,
    tower_key: &[u8; 32],
    keys: &KeyPair,
) -> Result<(zmq::Socket, zmq::Socket), MajordomoError> {
    let d = ctx.socket(zmq::DEALER)?;
    d.set_curve_serverkey(tower_key)?;
    d.set_curve_publickey(&keys.public)?;
    d.set_curve_secretkey(&keys.secret)?;
    d.set_maxmsgsize(vigie_wire::limits::MAX_FRAME as i64)?;
    d.set_heartbeat_ivl(1_000)?;
    d.set_heartbeat_timeout(5_000)?;
    let first = crate::backoff::reconnect_first(rand::random::<f64>());
    d.set_reconnect_ivl(first.as_millis() as i32)?;
    d.set_reconnect_ivl_max(crate::backoff::RECONNECT_MAX.as_millis() as i32)?;
    d.set_sndhwm(10_000)?;
    d.set_linger(500)?;
    let events = zmq::SocketEvent::HANDSHAKE_SUCCEEDED as i32
        | zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as i32
        | zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL as i32
        | zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL as i32;
    d.monitor("inproc://door-monitor", events)?;
    let mon = ctx.socket(zmq::PAIR)?;
    mon.connect("inproc://door-monitor")?;
    Ok((d, mon))
}

pub fn read_monitor(mon: &zmq::Socket) -> Option<Handshake> {
    let parts = mon.recv_multipart(zmq::DONTWAIT).ok()?;
    let head = parts.first()?;
    let event = u16::from_le_bytes([*head.first()?, *head.get(1)?]);
    Some(match zmq::SocketEvent::from_raw(event) {
        zmq::SocketEvent::HANDSHAKE_SUCCEEDED => Handshake::Up,
        zmq::SocketEvent::HANDSHAKE_FAILED_AUTH => Handshake::KeyRefused,
        zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL
        | zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL => Handshake::TowerKeyWrong,
        _ => Handshake::Other,
    })
}

/// The front doors of `tower`: one endpoint, or a group's, comma-separated.
pub fn front_doors(tower: &str) -> Vec<&str> {
    tower
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect()
}

/// Connects `dealer` to every front door of `tower`; with more than one,
/// messages wait for a door whose handshake completed (`ZMQ_IMMEDIATE`)
/// rather than queue towards a tower that is not there.
pub fn connect_doors(dealer: &zmq::Socket, tower: &str) -> Result<(), zmq::Error> {
    let doors = front_doors(tower);
    if doors.len() > 1 {
        dealer.set_immediate(true)?;
    }
    for door in doors {
        dealer.connect(door)?;
    }
    Ok(())
}

/// Stops libzmq's reconnecting to every front door of `tower`.
pub fn disconnect_doors(dealer: &zmq::Socket, tower: &str) {
    for door in front_doors(tower) {
        let _ = dealer.disconnect(door);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_its_front_doors_comma_separated() {
        assert_eq!(front_doors("tcp://a:7110"), ["tcp://a:7110"]);
        assert_eq!(
            front_doors("tcp://a:7110, tcp://b:7110,"),
            ["tcp://a:7110", "tcp://b:7110"]
        );
    }
}
