//! What operators rely on when they write change files: the documented
//! format is accepted with its defaults, and every mistake is reported with
//! the file, the line, the step and the field to fix.

use std::io::Write;

use vigie_wire::change::{Action, Command, Probe, Step};

use crate::{load_change, parse_change, ChangeError, MAX_CHANGE_FILE};

const FILE: &str = "changes/web.yml";

fn parse(yaml: &str) -> Vec<Step> {
    match parse_change(FILE, yaml) {
        Ok(spec) => spec.steps,
        Err(err) => panic!("{err}"),
    }
}

fn only_step(yaml: &str) -> Action {
    let mut steps = parse(&format!("title: t\nsteps:\n{yaml}"));
    assert_eq!(steps.len(), 1);
    steps.remove(0).action
}

/// Parses `yaml`, expecting an error whose message contains each of `needles`.
fn error(yaml: &str, needles: &[&str]) -> ChangeError {
    let err = match parse_change(FILE, yaml) {
        Ok(spec) => panic!("accepted {yaml:?} as {spec:?}"),
        Err(err) => err,
    };
    let message = err.to_string();
    assert!(message.starts_with(FILE), "{message}");
    for needle in needles {
        assert!(message.contains(needle), "no {needle:?} in: {message}");
    }
    err
}

/// An error in one step: names the step by index and name, the field, and
/// the line (`web.yml:<line>:`).
fn step_error(steps_yaml: &str, step: &str, field: &str, line: usize, why: &str) {
    let yaml = format!("title: t\nsteps:\n  - name: first\n    run: 'true'\n{steps_yaml}");
    let at = format!("{FILE}:{line}:");
    let field = format!("field '{field}'");
    error(&yaml, &[&at, step, &field, why]);
}

#[test]
fn the_documented_example_parses_with_its_defaults() {
    let spec = parse_change(
        FILE,
        r#"
title: Install the web config
steps:
  - name: say hello
    run: echo hello > /tmp/x
    undo: rm -f /tmp/x
    env: {GREETING: hi, PORT: 8080}
    cwd: /srv/app
    timeout: 30s
  - run: [systemctl, reload, nginx]
  - file: /etc/motd
    content: "hello\n"
    mode: "0644"
  - remove: /etc/old.conf
  - check:
      command: test -f /etc/motd
    retries: 3
    interval: 1s
    timeout: 5s
  - check:
      http: http://127.0.0.1:8080/health
      status: 200
"#,
    )
    .unwrap();
    assert_eq!(spec.title, "Install the web config");
    let steps: Vec<(&str, &Action)> = spec
        .steps
        .iter()
        .map(|s| (s.name.as_str(), &s.action))
        .collect();
    assert_eq!(
        steps[0],
        (
            "say hello",
            &Action::Run {
                command: Command::Shell("echo hello > /tmp/x".into()),
                undo: Some(Command::Shell("rm -f /tmp/x".into())),
                env: vec![
                    ("GREETING".into(), "hi".into()),
                    ("PORT".into(), "8080".into())
                ],
                cwd: Some("/srv/app".into()),
                timeout_ms: 30_000,
            }
        )
    );
    assert_eq!(
        steps[1],
        (
            "run: systemctl reload nginx",
            &Action::Run {
                command: Command::Argv(vec!["systemctl".into(), "reload".into(), "nginx".into()]),
                undo: None,
                env: vec![],
                cwd: None,
                timeout_ms: 300_000,
            }
        )
    );
    assert_eq!(
        steps[2],
        (
            "file /etc/motd",
            &Action::File {
                path: "/etc/motd".into(),
                content: b"hello\n".to_vec(),
                mode: Some(0o644),
            }
        )
    );
    assert_eq!(
        steps[3],
        (
            "remove /etc/old.conf",
            &Action::Remove {
                path: "/etc/old.conf".into()
            }
        )
    );
    assert_eq!(
        steps[4],
        (
            "check: test -f /etc/motd",
            &Action::Check {
                probe: Probe::Command(Command::Shell("test -f /etc/motd".into())),
                retries: 3,
                interval_ms: 1_000,
                timeout_ms: 5_000,
            }
        )
    );
    assert_eq!(
        steps[5],
        (
            "check http://127.0.0.1:8080/health",
            &Action::Check {
                probe: Probe::Http {
                    url: "http://127.0.0.1:8080/health".into(),
                    status: 200,
                },
                retries: 0,
                interval_ms: 1_000,
                timeout_ms: 5_000,
            }
        )
    );
}

#[test]
fn defaults_for_checks_and_derived_names() {
    let steps = parse(
        "title: t\nsteps:\n  - check: {http: http://localhost/}\n  - check: {command: [curl, -f, x]}\n  - run: echo hi\n",
    );
    assert_eq!(steps[0].name, "check http://localhost/");
    assert_eq!(
        steps[0].action,
        Action::Check {
            probe: Probe::Http {
                url: "http://localhost/".into(),
                status: 200
            },
            retries: 0,
            interval_ms: 1_000,
            timeout_ms: 5_000,
        }
    );
    assert_eq!(steps[1].name, "check: curl -f x");
    assert_eq!(steps[2].name, "run: echo hi");
}

#[test]
fn modes_are_octal_digits_whether_quoted_or_not() {
    for mode in ["644", "0644", "\"0644\"", "\"0o644\"", "'644'"] {
        let action = only_step(&format!("  - file: a\n    content: x\n    mode: {mode}\n"));
        assert!(
            matches!(
                action,
                Action::File {
                    mode: Some(0o644),
                    ..
                }
            ),
            "{mode}: {action:?}"
        );
    }
    let action = only_step("  - file: a\n    content: x\n    mode: 7777\n");
    assert!(matches!(
        action,
        Action::File {
            mode: Some(0o7777),
            ..
        }
    ));
}

#[test]
fn file_content_may_be_empty_or_span_lines() {
    let action = only_step("  - file: etc/empty\n    content: \"\"\n");
    assert!(matches!(action, Action::File { ref content, mode: None, .. } if content.is_empty()));
    let action = only_step("  - file: etc/two\n    content: |\n      one\n      two\n");
    assert!(matches!(action, Action::File { ref content, .. } if content == b"one\ntwo\n"));
}

#[test]
fn argv_words_and_env_values_keep_the_text_as_written() {
    let action = only_step("  - run: [sleep, 5, 1.50, true]\n    env: {MODE: 0644}\n");
    let Action::Run { command, env, .. } = action else {
        panic!("{action:?}")
    };
    assert_eq!(
        command,
        Command::Argv(vec![
            "sleep".into(),
            "5".into(),
            "1.50".into(),
            "true".into()
        ])
    );
    assert_eq!(env, vec![("MODE".into(), "0644".into())]);
}

#[test]
fn a_bare_true_is_the_shell_command() {
    let action = only_step("  - run: true\n    undo: false\n");
    assert!(matches!(
        action,
        Action::Run { command: Command::Shell(ref c), undo: Some(Command::Shell(ref u)), .. }
            if c == "true" && u == "false"
    ));
}

#[test]
fn long_or_multi_line_commands_get_a_short_derived_name() {
    let steps = parse("title: t\nsteps:\n  - run: |\n      set -e\n      make install\n");
    assert_eq!(steps[0].name, "run: set -e…");
}

#[test]
fn yaml_syntax_errors_give_file_line_and_column() {
    let err = error(
        "title: t\nsteps:\n  - run: [a, b\n",
        &["invalid YAML", &format!("{FILE}:4:")],
    );
    assert!(matches!(err, ChangeError::Syntax { at: Some(_), .. }));
    error(
        "title: t\n  steps: x\n",
        &[&format!("{FILE}:2:"), "invalid YAML"],
    );
    error(
        "title: a\ntitle: b\nsteps: []\n",
        &[&format!("{FILE}:1:"), "duplicate"],
    );
}

#[test]
fn files_of_the_wrong_shape_are_refused() {
    error("", &["empty"]);
    error("# only a comment\n", &["empty"]);
    error("- run: x\n", &["`title` and `steps`"]);
    error("title: a\n---\ntitle: b\n", &["more than one document"]);
}

#[test]
fn title_errors_name_the_field_and_line() {
    error("steps:\n  - run: x\n", &["field 'title'", "required"]);
    error(
        "title: '  '\nsteps:\n  - run: x\n",
        &[&format!("{FILE}:1:"), "field 'title'", "empty"],
    );
    error(
        "title: [a]\nsteps:\n  - run: x\n",
        &[&format!("{FILE}:1:"), "field 'title'"],
    );
}

#[test]
fn steps_errors_name_the_field_and_line() {
    error("title: t\n", &["field 'steps'", "required"]);
    error(
        "title: t\nsteps: []\n",
        &[&format!("{FILE}:2:"), "field 'steps'", "at least one step"],
    );
    error(
        "title: t\nsteps: run\n",
        &[&format!("{FILE}:2:"), "field 'steps'"],
    );
    error(
        "title: t\nsteps:\n  - run x\n",
        &[&format!("{FILE}:3:"), "step 1", "a step"],
    );
}

#[test]
fn unknown_keys_are_errors_everywhere() {
    error(
        "title: t\nsteps:\n  - run: x\nowner: me\n",
        &["field 'owner'", "unknown field"],
    );
    step_error(
        "  - run: x\n    retry: 3\n",
        "step 2",
        "retry",
        6,
        "unknown field",
    );
    step_error(
        "  - check: {command: x, timeout: 5s}\n",
        "step 2",
        "check.timeout",
        5,
        "unknown field",
    );
}

#[test]
fn a_step_needs_exactly_one_action() {
    let yaml = "title: t\nsteps:\n  - run: x\n  - name: idle\n";
    let err = error(
        yaml,
        &[
            &format!("{FILE}:4:"),
            "step 2 (\"idle\")",
            "needs one action",
        ],
    );
    assert!(matches!(err, ChangeError::Invalid(ref e) if e.field.is_none() && e.step.is_some()));
    step_error(
        "  - run: x\n    file: y\n",
        "step 2",
        "file",
        5,
        "exactly one action",
    );
    step_error(
        "  - remove: y\n    check: {http: http://a}\n",
        "step 2",
        "check",
        5,
        "already has `remove`",
    );
}

#[test]
fn keys_that_belong_to_another_action_are_refused() {
    for (yaml, field, why) in [
        (
            "  - file: a\n    content: x\n    undo: rm a\n",
            "undo",
            "`run` step",
        ),
        ("  - remove: a\n    env: {A: b}\n", "env", "`run` step"),
        (
            "  - check: {command: x}\n    cwd: /srv\n",
            "cwd",
            "`run` step",
        ),
        (
            "  - file: a\n    content: x\n    timeout: 5s\n",
            "timeout",
            "`run` or `check`",
        ),
        (
            "  - remove: a\n    timeout: 5s\n",
            "timeout",
            "`run` or `check`",
        ),
        ("  - run: x\n    content: y\n", "content", "`file` step"),
        ("  - remove: a\n    mode: 644\n", "mode", "`file` step"),
        ("  - run: x\n    retries: 3\n", "retries", "`check` step"),
        (
            "  - file: a\n    content: x\n    interval: 1s\n",
            "interval",
            "`check` step",
        ),
    ] {
        step_error(yaml, "step 2", field, 5, why);
    }
}

#[test]
fn a_file_step_needs_content() {
    step_error(
        "  - name: motd\n    file: /etc/motd\n",
        "step 2 (\"motd\")",
        "content",
        5,
        "needs `content`",
    );
    step_error(
        "  - file: /etc/motd\n    content:\n",
        "step 2",
        "content",
        5,
        "needs `content`",
    );
}

#[test]
fn bad_modes_name_the_value() {
    for (mode, shown) in [
        ("\"0999\"", "\"0999\""),
        ("10000", "\"10000\""),
        ("rwx", "\"rwx\""),
        ("-1", "\"-1\""),
        ("+7", "\"+7\""),
    ] {
        let yaml =
            format!("  - name: write config\n    file: a\n    content: x\n    mode: {mode}\n");
        step_error(
            &yaml,
            "step 2 (\"write config\")",
            "mode",
            8,
            &format!("{shown} is not an octal mode (0-7777)"),
        );
    }
}

#[test]
fn bad_durations_name_the_field() {
    for (field, value, why) in [
        ("timeout", "fast", "invalid duration \"fast\""),
        ("timeout", "30", "invalid duration \"30\""),
        ("timeout", "0s", "longer than zero"),
        ("timeout", "25h", "longer than 24h"),
        ("interval", "1.5s", "invalid duration"),
    ] {
        let action = if field == "interval" {
            "check: {command: x}"
        } else {
            "run: x"
        };
        let yaml = format!("  - {action}\n    {field}: {value}\n");
        step_error(&yaml, "step 2", field, 6, why);
    }
    step_error(
        "  - check: {command: x}\n    timeout: 1d\n",
        "step 2",
        "timeout",
        6,
        "invalid duration",
    );
}

#[test]
fn bad_paths_are_refused_for_file_remove_and_cwd() {
    for (yaml, field, line, why) in [
        ("  - file: ''\n    content: x\n", "file", 5, "empty"),
        (
            "  - file: /etc/../root/.ssh/keys\n    content: x\n",
            "file",
            5,
            "'..'",
        ),
        ("  - remove: ..\n", "remove", 5, "'..'"),
        ("  - remove: \"a\\0b\"\n", "remove", 5, "NUL"),
        ("  - run: x\n    cwd: srv/../../etc\n", "cwd", 6, "'..'"),
    ] {
        step_error(yaml, "step 2", field, line, why);
    }
    // A name merely containing dots is fine.
    only_step("  - remove: var/log/app..old\n");
}

#[test]
fn bad_commands_are_refused() {
    for (yaml, field, why) in [
        ("  - run: []\n", "run", "argv list is empty"),
        ("  - run: ['', x]\n", "run", "argv[0]"),
        ("  - run: '  '\n", "run", "shell line is empty"),
        ("  - run: [a, [b]]\n", "run[1]", "expected a string"),
        ("  - run: {a: b}\n", "run", "a shell line or an argv list"),
        ("  - run: x\n    undo: []\n", "undo", "argv list is empty"),
        ("  - run: \"a\\0\"\n", "run", "NUL"),
        (
            "  - check: {command: []}\n",
            "check.command",
            "argv list is empty",
        ),
    ] {
        step_error(yaml, "step 2", field, yaml.lines().count() + 4, why);
    }
}

#[test]
fn bad_env_is_refused() {
    step_error(
        "  - run: x\n    env: {A=B: c}\n",
        "step 2",
        "env.A=B",
        6,
        "not a variable name",
    );
    step_error(
        "  - run: x\n    env: {A: [c]}\n",
        "step 2",
        "env.A",
        6,
        "expected a string",
    );
    step_error(
        "  - run: x\n    env: [A]\n",
        "step 2",
        "env",
        6,
        "invalid type",
    );
}

#[test]
fn bad_checks_are_refused() {
    for (yaml, field, why) in [
        (
            "  - check: {http: https://example.com/}\n",
            "check.http",
            "http:// URL",
        ),
        (
            "  - check: {http: 'http://'}\n",
            "check.http",
            "http:// URL",
        ),
        (
            "  - check: {http: 'http://a/b c'}\n",
            "check.http",
            "spaces",
        ),
        (
            "  - check: {http: http://a/, status: 99}\n",
            "check.status",
            "HTTP status (100-599)",
        ),
        (
            "  - check: {http: http://a/, status: ok}\n",
            "check.status",
            "HTTP status",
        ),
        (
            "  - check: {command: x, status: 200}\n",
            "check.status",
            "only allowed with `http`",
        ),
        (
            "  - check: {command: x, http: http://a/}\n",
            "check.http",
            "exactly one of",
        ),
        ("  - check: test -f x\n", "check", "a check"),
        (
            "  - check: {command: x}\n    retries: -1\n",
            "retries",
            "invalid",
        ),
    ] {
        step_error(yaml, "step 2", field, yaml.lines().count() + 4, why);
    }
    let err = error(
        "title: t\nsteps:\n  - check: {}\n",
        &[
            &format!("{FILE}:3:"),
            "step 1",
            "field 'check'",
            "needs `command` or `http`",
        ],
    );
    assert!(
        matches!(err, ChangeError::Invalid(ref e) if e.step.as_ref().is_some_and(|s| s.index == 1))
    );
}

#[test]
fn an_empty_step_name_is_refused() {
    step_error("  - name: ' '\n    run: x\n", "step 2", "name", 5, "empty");
}

#[test]
fn load_change_reads_a_file_and_names_it_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.yml");
    std::fs::write(&path, "title: t\nsteps:\n  - remove: a\n").unwrap();
    assert_eq!(load_change(&path).unwrap().steps.len(), 1);

    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "title: t\nsteps:\n  - remove: ../a\n").unwrap();
    let message = load_change(&bad).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("{}:3:", bad.display())),
        "{message}"
    );
    assert!(
        message.contains("step 1") && message.contains("field 'remove'"),
        "{message}"
    );

    let missing = dir.path().join("missing.yml");
    let err = load_change(&missing).unwrap_err();
    assert!(matches!(err, ChangeError::Read { .. }));
    assert!(err.to_string().contains("missing.yml"), "{err}");

    let binary = dir.path().join("binary.yml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
    let err = load_change(&binary).unwrap_err();
    assert!(err.to_string().contains("binary.yml"), "{err}");
}

#[test]
fn change_files_larger_than_a_change_request_are_refused_unread() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"title: t\n").unwrap();
    file.as_file().set_len(MAX_CHANGE_FILE as u64 + 1).unwrap();
    let err = load_change(file.path()).unwrap_err();
    assert!(matches!(err, ChangeError::TooLarge { .. }), "{err}");
    let name = file.path().display().to_string();
    assert!(err.to_string().contains(&name), "{err}");

    let text = format!("title: t\n#{}\n", "x".repeat(MAX_CHANGE_FILE));
    assert!(matches!(
        parse_change(FILE, &text),
        Err(ChangeError::TooLarge { .. })
    ));
}
