//! Conformance: a writer inside the host root swapping a directory for a
//! symlink while steps run never gets the tower's writes outside it.

#![allow(clippy::unwrap_used)] // a test suite

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use rustix::fs::{renameat_with, RenameFlags, CWD};

use super::host::Host;
use super::{snapshot_tree, Maker};
use crate::Action;

/// How many write-then-undo and remove-then-undo rounds race the swapper.
const ROUNDS: usize = 150;
/// An undo refused by the race is tried again, as the plug would after a
/// restart; by then the swapper has had many chances to put the directory
/// back.
const UNDO_TRIES: usize = 10_000;

/// What a round saw: steps done, steps refused, refusals that did not say
/// why, and steps that reached outside the root or missed the directory.
#[derive(Default)]
struct Tally {
    done: usize,
    refused: usize,
    unclear: Vec<String>,
    escapes: usize,
    misplaced: usize,
    stuck: Vec<String>,
}

impl Tally {
    /// A refusal must name the directory and say a symlink was refused.
    fn refusal(&mut self, message: String) {
        self.refused += 1;
        if !(message.contains("/d") && message.contains("symlink")) {
            self.unclear.push(message);
        }
    }
}

/// Prepare then apply; `Err` with the message when either refused.
fn attempt(host: &mut Host, step: &Action, stash: &Path) -> Result<String, String> {
    host.driver
        .prepare(step, stash)
        .map_err(|e| e.to_string())?;
    let result = host.driver.apply(step, stash);
    if result.ok {
        Ok(result.summary)
    } else {
        Err(result.summary)
    }
}

fn undo_until_done(host: &mut Host, step: &Action, stash: &Path, tally: &mut Tally) {
    let mut last = String::new();
    for _ in 0..UNDO_TRIES {
        let result = host.driver.undo(step, stash);
        if result.ok {
            return;
        }
        last.clone_from(&result.summary);
        tally.refusal(result.summary);
    }
    tally.stuck.push(format!("{step:?}: {last}"));
}

/// Puts the outside back as it was, so each escape is counted once.
fn reset_outside(outside: &Path, before: &BTreeMap<PathBuf, String>, tally: &mut Tally) {
    if snapshot_tree(outside) == *before {
        return;
    }
    tally.escapes += 1;
    fs::remove_dir_all(outside).unwrap();
    fs::create_dir(outside).unwrap();
    fs::write(outside.join("secret"), b"do not touch\n").unwrap();
    fs::write(outside.join("victim"), b"outside\n").unwrap();
}

/// A writer inside the host root swaps a directory for a symlink to the
/// outside, and back, as fast as it can (an atomic exchange, so the name
/// always exists), while the driver writes files under that directory,
/// removes one, and undoes both. Nothing may ever land outside the root
/// or be taken from there: each step either works on the real directory
/// or is refused naming the symlink. A check-then-open-by-name driver
/// fails this; one whose every component is opened relative to the root
/// without following symlinks passes.
pub fn swapped_directory_never_leads_outside(make: Maker<'_>) {
    let mut host = Host::new(make);
    host.put("/d/victim", b"inside\n", 0o644);
    fs::write(host.outside.join("victim"), b"outside\n").unwrap();
    symlink(&host.outside, host.path("/swap")).unwrap();
    let root_before = host.snapshot();
    let outside_before = snapshot_tree(&host.outside);
    // The real directory whatever name it has at the moment.
    let real = File::open(host.path("/d")).unwrap();
    let real_dir = PathBuf::from(format!("/proc/self/fd/{}", real.as_raw_fd()));

    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let (d, swap) = (host.path("/d"), host.path("/swap"));
    let swapper = {
        let (stop, swaps, d, swap) = (Arc::clone(&stop), Arc::clone(&swaps), d.clone(), swap);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                renameat_with(CWD, &d, CWD, &swap, RenameFlags::EXCHANGE).unwrap();
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let mut tally = Tally::default();
    for round in 0..ROUNDS {
        let name = format!("f{round}");
        let write = Action::File {
            path: format!("/d/{name}"),
            content: b"written\n".to_vec(),
            mode: None,
        };
        let stash = host.new_stash();
        match attempt(&mut host, &write, &stash) {
            Ok(_) => {
                tally.done += 1;
                if fs::read(real_dir.join(&name)).ok().as_deref() != Some(b"written\n") {
                    tally.misplaced += 1;
                }
            }
            Err(message) => tally.refusal(message),
        }
        reset_outside(&host.outside, &outside_before, &mut tally);
        undo_until_done(&mut host, &write, &stash, &mut tally);
        reset_outside(&host.outside, &outside_before, &mut tally);

        let remove = Action::Remove {
            path: "/d/victim".into(),
        };
        let stash = host.new_stash();
        match attempt(&mut host, &remove, &stash) {
            Ok(summary) if summary.contains("absent") => tally.misplaced += 1,
            Ok(_) => {
                tally.done += 1;
                if real_dir.join("victim").exists() {
                    tally.misplaced += 1;
                }
            }
            Err(message) => tally.refusal(message),
        }
        reset_outside(&host.outside, &outside_before, &mut tally);
        undo_until_done(&mut host, &remove, &stash, &mut tally);
        reset_outside(&host.outside, &outside_before, &mut tally);
    }

    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    if !fs::symlink_metadata(&d).unwrap().is_dir() {
        renameat_with(CWD, &d, CWD, host.path("/swap"), RenameFlags::EXCHANGE).unwrap();
    }
    let swaps = swaps.load(Ordering::Relaxed);
    let steps = 2 * ROUNDS;
    let Tally {
        done,
        refused,
        unclear,
        escapes,
        misplaced,
        stuck,
    } = tally;
    let counts = format!(
        "{steps} steps: {done} done, {refused} refusals, {escapes} escapes, \
         {misplaced} misplaced, {} undos never done, {swaps} swaps",
        stuck.len()
    );
    eprintln!("race: {counts}");
    assert_eq!(escapes, 0, "steps reached outside the root: {counts}");
    assert_eq!(misplaced, 0, "steps missed the real directory: {counts}");
    assert!(stuck.is_empty(), "undos never done: {stuck:?}");
    assert!(
        unclear.is_empty(),
        "refusals that do not name the symlink: {unclear:?}"
    );
    assert!(refused > 0, "the swapper never won a race: {counts}");
    assert_eq!(host.snapshot(), root_before, "the root after every undo");
}
