//! The example change files shipped in `examples/changes/` stay valid, and
//! keep the shape their comments promise.

use std::path::PathBuf;

use vigie_wire::change::{Action, ChangeSpec, Command};

use crate::load_change;

fn example(name: &str) -> ChangeSpec {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/changes")
        .join(name);
    load_change(&path).unwrap_or_else(|err| panic!("{err}"))
}

fn kinds(spec: &ChangeSpec) -> Vec<&'static str> {
    spec.steps.iter().map(|step| step.action.kind()).collect()
}

#[test]
fn hello_writes_a_file_runs_a_command_and_checks() {
    let spec = example("hello.yml");
    assert_eq!(kinds(&spec), ["file", "run", "check"]);
}

#[test]
fn fails_breaks_at_step_3_after_two_undoable_steps() {
    let spec = example("fails.yml");
    assert_eq!(kinds(&spec), ["file", "run", "run", "check"]);
    assert!(matches!(
        &spec.steps[1].action,
        Action::Run { undo: Some(_), .. }
    ));
    let Action::Run {
        command: Command::Shell(line),
        ..
    } = &spec.steps[2].action
    else {
        panic!("{:?}", spec.steps[2]);
    };
    assert!(line.contains("exit 3"), "{line}");
}
