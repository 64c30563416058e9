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
    #[arg(value_name = "SHELL")]
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
    std::io::Write::write_all(&mut std::io::stdout().lock(), &buf)?;
    Ok(ExitCode::SUCCESS)
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
