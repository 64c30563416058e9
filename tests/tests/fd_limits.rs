//! The majordomo raises its descriptor limit to the hard limit at start and
//! says, in one `fd_limit` event, how many agents that lets it hold (one
//! descriptor each, some kept for its own sockets and files).

use std::time::Duration;

use nix::sys::resource::{getrlimit, Resource};
use vigie_tests::{Launcher, Setup};

#[test]
fn the_majordomo_raises_its_descriptor_limit_and_says_how_many_agents_it_holds(
) -> anyhow::Result<()> {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let t = Launcher::start(Setup::new("fds"))?;
    let e = t.events().wait_n(
        "fd_limit of the majordomo",
        1,
        Duration::from_secs(30),
        |e| e.name == "fd_limit" && e.str("daemon") == Some("majordomo"),
    )?;
    assert_eq!(e.u64("soft"), Some(hard), "{e:?}");
    assert_eq!(e.u64("hard"), Some(hard));
    // 256 kept for its own sockets and files (`fdlimit::RESERVED`).
    assert_eq!(e.u64("agents_max"), Some(hard - 256));
    Ok(())
}
