//! SIGKILL of the referee and of plugs at random moments during a
//! 500-change workload over 20 hosts: afterwards every change is final,
//! none is lost, and no step ran twice (each step leaves a line in the
//! host's `trace` file; we count them).

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use vigie_tests::{Launcher, Setup};
use vigie_wire::tower::{ApiCall, ChangeState};

const HOSTS: usize = 20;
const ROUNDS: usize = 25;
const KILLS: usize = 12;

fn change(k: usize) -> String {
    format!(
        "title: round {k}\nsteps:\n  - run: echo {k}-s1 >> trace\n    undo: echo {k}-u1 >> trace\n  - run: echo {k}-s2 >> trace; sleep 0.01\n    undo: echo {k}-u2 >> trace\n"
    )
}

#[test]
fn sigkills_during_a_500_change_workload_lose_nothing_and_run_no_step_twice() -> anyhow::Result<()>
{
    let hosts: Vec<String> = (1..=HOSTS).map(|i| format!("chaos-{i}")).collect();
    // Every kill is a "fast crash": let the launcher restart without end.
    let mut setup = Setup::new("chaos").supervise("max_fast_crashes", "1000");
    for h in &hosts {
        setup = setup.host(h, &[]);
    }
    let tower = Launcher::start(setup)?;
    let mut ids = Vec::new();
    {
        let mut api = tower.api()?;
        for k in 0..ROUNDS {
            let spec = vigie_changes::parse_change("chaos.yml", &change(k))?;
            let views = api.changes(ApiCall::Submit {
                spec,
                target: "chaos-*".into(),
            })?;
            assert_eq!(views.len(), HOSTS);
            ids.extend(views.into_iter().map(|v| (v.id, v.host, k)));
        }
    }
    assert_eq!(ids.len(), 500);

    let mut rng = rand::thread_rng();
    // Random moments: after a random number of steps succeeded in all. About
    // 1,000 steps succeed in this workload, whatever the kills cost, so
    // marks up to 900 are always reached.
    let mut marks: Vec<usize> = (0..KILLS).map(|_| rng.gen_range(30..900)).collect();
    marks.sort_unstable();
    let mut killed = Vec::new();
    for mark in marks {
        tower
            .events()
            .wait_n("step_succeeded", mark, Duration::from_secs(120), |e| {
                e.name == "step_succeeded"
            })?;
        // SIGKILL; the launcher restarts the child and the test waits
        // until it is ready again.
        let victim = if rng.gen_bool(0.3) {
            "referee".to_owned()
        } else {
            format!("plug:{}", hosts[rng.gen_range(0..HOSTS)])
        };
        tower.kill_child(&victim)?;
        killed.push(victim);
    }

    let all: Vec<String> = ids.iter().map(|(id, _, _)| id.clone()).collect();
    let done = tower.wait_final(&all, Duration::from_secs(180))?;
    assert_eq!(done.len(), 500, "every change accounted for");
    let mut states = BTreeMap::new();
    for v in &done {
        *states.entry(v.state.word()).or_insert(0) += 1;
        assert!(
            matches!(
                v.state,
                ChangeState::Succeeded
                    | ChangeState::RolledBack {
                        interrupted: true,
                        ..
                    }
            ),
            "{} on {} ended {:?}",
            v.id,
            v.host,
            v.state
        );
    }
    eprintln!("kills: {killed:?}; outcomes: {states:?}");

    for h in &hosts {
        let trace = std::fs::read_to_string(tower.root(h).join("trace"))?;
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for line in trace.lines() {
            *count.entry(line).or_default() += 1;
        }
        for (line, n) in &count {
            if line.contains("-s") {
                assert_eq!(*n, 1, "{h}: step {line} ran {n} times");
            }
        }
        for v in done.iter().filter(|v| v.host == *h) {
            let k = v.title.trim_start_matches("round ");
            let ran = |s: &str| count.contains_key(format!("{k}-{s}").as_str());
            match v.state {
                ChangeState::Succeeded => {
                    assert!(
                        ran("s1") && ran("s2") && !ran("u1") && !ran("u2"),
                        "{h}: round {k} succeeded: {count:?}"
                    );
                }
                _ => {
                    // Rolled back: whatever ran was undone.
                    assert!(
                        !ran("s1") || ran("u1"),
                        "{h}: round {k}: step 1 ran and was not undone"
                    );
                    assert!(
                        !ran("s2") || ran("u2"),
                        "{h}: round {k}: step 2 ran and was not undone"
                    );
                }
            }
        }
        // FIFO: rounds started on each host in submission order.
        let firsts: Vec<usize> = trace
            .lines()
            .filter(|l| l.ends_with("-s1"))
            .filter_map(|l| l.split('-').next()?.parse().ok())
            .collect();
        assert!(
            firsts.windows(2).all(|w| w[0] < w[1]),
            "{h}: out of order {firsts:?}"
        );
    }
    Ok(())
}
