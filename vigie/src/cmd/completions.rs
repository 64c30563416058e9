//! `vigie completions SHELL` and `vigie man --out DIR`: the shell
//! completion scripts and man pages, made from the command line's own
//! definition (`clap_complete`, `clap_mangen`), so they never lag behind.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

use super::Cli;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell: bash, zsh, fish, elvish or powershell.
    // `value_enum`: the shells are the argument's possible values, so a
    // shell's completion offers them (fish offered file names).
    #[arg(value_name = "SHELL", value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The directory to write the pages into (made if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn completions(a: Args) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "vigie", &mut buf);
    if a.shell == clap_complete::Shell::Fish {
        buf.extend(fish_positionals(&cmd).into_bytes());
    }
    std::io::Write::write_all(&mut std::io::stdout().lock(), &buf)?;
    Ok(ExitCode::SUCCESS)
}

/// clap_complete's fish script completes named options only: a
/// positional argument with a fixed set of values (`completions SHELL`)
/// would complete file names. One line per such argument of a top-level
/// subcommand offers its values instead.
fn fish_positionals(cmd: &clap::Command) -> String {
    let mut out = String::new();
    for sub in cmd.get_subcommands() {
        for arg in sub.get_positionals() {
            let values: Vec<String> = arg
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_owned())
                .collect();
            if values.is_empty() {
                continue;
            }
            out.push_str(&format!(
                "complete -c vigie -n \"__fish_vigie_using_subcommand {}\" -f -a \"{}\"\n",
                sub.get_name(),
                values.join(" ")
            ));
        }
    }
    out
}

/// One page for `vigie` and one per subcommand, nested ones included
/// (`vigie-hosts-add.1`), as `man vigie-hosts-add` finds them.
pub fn man(a: ManArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&a.out).with_context(|| format!("{}", a.out.display()))?;
    let mut cmd = Cli::command();
    cmd.build();
    let mut written = 0usize;
    write_pages(&cmd, "vigie", &a.out, &mut written)?;
    eprintln!("vigie man: wrote {written} pages in {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}

fn write_pages(
    cmd: &clap::Command,
    name: &str,
    dir: &std::path::Path,
    written: &mut usize,
) -> anyhow::Result<()> {
    let page = cmd.clone().name(name.to_owned());
    let mut buf = Vec::new();
    clap_mangen::Man::new(page).render(&mut buf)?;
    let file = dir.join(format!("{name}.1"));
    std::fs::write(&file, buf).with_context(|| format!("{}", file.display()))?;
    // Every command runs under umask 077; a man page is for every user.
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    *written += 1;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
