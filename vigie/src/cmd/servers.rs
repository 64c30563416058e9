//! `vigie servers`: the server catalog — import a supplier's CSV as one
//! session (checked whole here, checked again by the referee, stored all or
//! nothing), list sessions and servers, show one server; ask the tower to
//! provision servers into hosts, and print the tenant's SSH key for them.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use vigie_client::calls::catalog;
use vigie_wire::catalog::{ServerRecord, ServerState, SessionRecord};

use super::conn::Conn;
use super::json_catalog::{ServerJson, SessionJson};
use super::out::{self, Format, Table};
use super::page::PageArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    pub(super) conn: Conn,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Import a supplier's CSV (header: name,address,ssh_port,ssh_user,
    /// provider,cpu,ram_gb,disk_gb,labels[,host_key]) as one session: every
    /// row or none. At most 20,000 rows and 8 MiB per import (split a
    /// bigger file); every error is counted, the first 1,000 listed, the
    /// tower's (names already in the catalog) with the file's; exit 64.
    Import {
        /// The CSV file (UTF-8, comma-separated, a header row first; at
        /// most 20,000 rows).
        file: PathBuf,
        /// Check everything (here and in the tower), write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The import sessions of the tenant, a page at a time (`sessions
    /// undo ID` removes one's servers).
    Sessions {
        #[command(subcommand)]
        action: Option<super::servers_life::SessionAction>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// The servers of the catalog, by name, a page at a time.
    List {
        #[command(flatten)]
        page: PageArgs,
        /// Only the servers this session added.
        #[arg(long)]
        session: Option<u64>,
        /// Only the servers a selector matches (web-*, role=web, …).
        #[arg(long)]
        target: Option<String>,
    },
    /// One server, all its fields.
    Show {
        /// The server's name, as in the CSV.
        name: String,
    },
    /// Make servers hosts: the tower's provisioner connects over SSH
    /// (host key pinned), installs and enrols the agent, and queues the
    /// init change first. Follow it with `servers list`; a failed server
    /// can be provisioned again.
    Provision {
        /// Servers by name.
        names: Vec<String>,
        /// Servers a selector matches (web-*, role=web, …).
        #[arg(long)]
        target: Option<String>,
        /// A change file queued as each new host's first change (the same
        /// for every server; examples/init.yml). A retry without it keeps
        /// the one given before.
        #[arg(long, value_name = "FILE")]
        init: Option<PathBuf>,
        /// An IP pool each server gets an address from (if it holds none
        /// of it yet), as part of the request; the new host is labelled
        /// `address=` with it. Needs ips.admin.
        #[arg(long, value_name = "NAME")]
        pool: Option<String>,
    },
    /// Set the SSH host key a server must offer (the supplier's was
    /// wrong, the server was reinstalled): audited with the key it
    /// replaces; refused for a host or a server being provisioned.
    Pin {
        /// The server's name.
        name: String,
        /// `ssh-ed25519 AAAA…` (quoted) or a `SHA256:…` fingerprint.
        #[arg(allow_hyphen_values = true)]
        host_key: String,
    },
    /// Change fields of a server's catalog row (checked as an import row
    /// is; audited). While it is a host or being provisioned, its address,
    /// ssh_port, ssh_user, host_key and labels are kept (a host's labels:
    /// `vigie hosts label`); provider, cpu, ram_gb, disk_gb at any time.
    Edit {
        /// The server's name (never edited: it is the host id).
        name: String,
        /// FIELD=VALUE, as the CSV spells it (labels=k=v;k=v; host_key=
        /// empty removes the pin); repeat.
        #[arg(long = "set", value_name = "FIELD=VALUE", required = true)]
        set: Vec<String>,
    },
    /// Remove servers from the catalog, all or none (audited): refused
    /// while one is a host (`vigie hosts remove` first) or being
    /// provisioned, or holds addresses unless --force.
    Remove {
        /// The servers' names.
        #[arg(required = true)]
        names: Vec<String>,
        /// Release the addresses the servers hold.
        #[arg(long)]
        force: bool,
    },
    /// Print servers as the CSV `servers import` takes (its headers, one
    /// row per server; every server, page by page).
    Export {
        /// Only the servers a selector matches (web-*, role=web, …).
        #[arg(long)]
        target: Option<String>,
    },
    /// Print your tenant's SSH public key for provisioning, asked of
    /// the tower (made at the tenant's first use; its secret half never
    /// leaves the tower): your servers' SSH user must accept it (give it
    /// to your supplier). Each tenant has its own.
    SshKey {
        /// Read the tower's own tenant's key from this data dir instead,
        /// on the tower's machine (`data_dir` of its setup file).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// A record's time, for humans.
fn when(ms: u64) -> String {
    super::json::rfc3339(ms)
}

fn state(s: &ServerState) -> String {
    match s {
        // The reason may quote what a server's ssh said.
        ServerState::Failed { reason } => format!("failed ({})", super::escape::field(reason)),
        other => other.word().to_owned(),
    }
}

fn labels(s: &ServerRecord) -> String {
    let v: Vec<String> = s
        .spec
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    v.join(";")
}

pub fn run(a: Args, format: Format) -> anyhow::Result<ExitCode> {
    let json = format == Format::Json;
    match a.action {
        Action::Import { file, dry_run } => import(&a.conn, &file, dry_run, json),
        Action::Provision {
            names,
            target,
            init,
            pool,
        } => provision(&a.conn, (names, target), init, pool, json),
        Action::Pin { name, host_key } => {
            let pinned = a.conn.client()?.ask(catalog::Pin { name, host_key })?;
            print_pinned(&pinned, json)
        }
        Action::SshKey { data_dir: None } => {
            out::line(&a.conn.client()?.ask(catalog::SshKey)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Action::SshKey {
            data_dir: Some(data_dir),
        } => local_ssh_key(&data_dir),
        Action::Edit { name, set } => super::servers_life::edit(&a.conn, name, &set, json),
        Action::Remove { names, force } => super::servers_life::remove(&a.conn, names, force, json),
        Action::Export { target } => super::servers_life::export(&a.conn, target),
        Action::Sessions {
            action: Some(action),
            ..
        } => super::servers_life::session(&a.conn, action, json),
        Action::Sessions { action: None, page } => {
            let (v, info) =
                super::page::call(&mut a.conn.client()?, catalog::Sessions, page.ask())?;
            print_sessions(v, json)?;
            super::page::footer(&info, format, "import sessions")?;
            Ok(ExitCode::SUCCESS)
        }
        Action::List {
            page,
            session,
            target,
        } => {
            let call = catalog::Servers { session, target };
            let (v, info) = super::page::call(&mut a.conn.client()?, call, page.ask())?;
            print_servers(&v, json)?;
            super::page::footer(&info, format, "servers")?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Show { name } => {
            for s in a.conn.client()?.ask(catalog::Server { name })? {
                if json {
                    out::json(&ServerJson::from(&s))?;
                } else {
                    print_server(&s);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_pinned(pinned: &[ServerRecord], json: bool) -> anyhow::Result<ExitCode> {
    for s in pinned {
        if json {
            out::json(&ServerJson::from(s))?;
        } else {
            out::line(&format!(
                "{}: host key pinned: {}",
                super::escape::field(&s.spec.name),
                super::escape::field(s.spec.host_key.as_deref().unwrap_or(""))
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The tower tenant's SSH key, read on the tower's machine.
fn local_ssh_key(data_dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    match vigie_provisioner::sshkey::public(data_dir) {
        Ok(k) => {
            println!("{k}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!(
                "vigie servers ssh-key: {e} (the tower makes it at its first start: \
                 is {} its data dir?)",
                data_dir.display()
            );
            Ok(ExitCode::from(crate::runtime::EXIT_CONFIG))
        }
    }
}

fn print_sessions(v: Vec<SessionRecord>, json: bool) -> anyhow::Result<()> {
    if json {
        for s in &v {
            out::json(&SessionJson::from(s))?;
        }
        return Ok(());
    }
    let mut t = Table::new(&["SESSION", "AT", "SERVERS", "BY", "FILE", "SHA256"]);
    for s in v {
        t.row(vec![
            s.id.to_string(),
            when(s.at_ms),
            s.rows.to_string(),
            s.operator,
            s.file,
            s.digest[..s.digest.len().min(12)].to_owned(),
        ]);
    }
    if !t.is_empty() {
        t.print()?;
    }
    Ok(())
}

fn print_servers(v: &[ServerRecord], json: bool) -> anyhow::Result<()> {
    if json {
        for s in v {
            out::json(&ServerJson::from(s))?;
        }
        return Ok(());
    }
    let mut t = Table::new(&["NAME", "ADDRESS", "STATE", "SESSION", "LABELS"]);
    for s in v {
        t.row(vec![
            s.spec.name.clone(),
            s.spec.address.to_string(),
            state(&s.state),
            s.session.to_string(),
            labels(s),
        ]);
    }
    if !t.is_empty() {
        t.print()?;
    }
    Ok(())
}

/// One server, a field a line.
fn print_server(s: &ServerRecord) {
    let p = &s.spec;
    out::say!("name:      {}", super::escape::field(&p.name));
    out::say!("state:     {}", state(&s.state));
    out::say!(
        "address:   {} port {} user {}",
        p.address,
        p.ssh_port,
        super::escape::field(&p.ssh_user)
    );
    out::say!("provider:  {}", super::escape::field(&p.provider));
    out::say!(
        "size:      {} cpu, {} GB RAM, {} GB disk",
        p.cpu,
        p.ram_gb,
        p.disk_gb
    );
    out::say!("labels:    {}", super::escape::field(&labels(s)));
    out::say!(
        "host key:  {}",
        super::escape::field(p.host_key.as_deref().unwrap_or("(not pinned yet)"))
    );
    out::say!("session:   {} ({})", s.session, when(s.added_ms));
}

fn import(
    conn: &Conn,
    file: &std::path::Path,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let name = file.display().to_string();
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            out::esay!("vigie servers import: cannot read {name}: {e}");
            return Ok(ExitCode::from(crate::runtime::EXIT_CONFIG));
        }
    };
    let tty = std::io::stderr().is_terminal();
    let progress = |n: usize| {
        if tty {
            eprint!("\rchecking {name}: {n} rows");
            let _ = std::io::stderr().flush();
        }
    };
    let parsed = vigie_catalog::servers::read_servers(&name, &bytes, progress);
    if tty {
        eprint!("\r\x1b[K");
    }
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => return refused(&e.to_string()),
    };
    if !parsed.errors.is_empty() {
        return refused_with_tower(conn, &name, parsed);
    }
    let rows = parsed.rows;
    if tty {
        eprint!("sending {} rows to the tower…", rows.len());
    }
    let digest = vigie_catalog::servers::digest(&bytes);
    let file_name = file
        .file_name()
        .map_or(name.clone(), |f| f.to_string_lossy().into_owned());
    let call = catalog::Import {
        file: file_name,
        digest,
        rows,
        dry_run,
    };
    let mut tower = conn.client()?;
    let answer = tower.ask_raw(call);
    if tty {
        eprint!("\r\x1b[K");
    }
    let answer = match answer {
        Ok(a) => a,
        // The tower's problems with the rows: the same words, format and
        // exit code as the file's own.
        Err(vigie_client::ClientError::Refused(f))
            if f.kind == vigie_wire::tower::ApiFaultKind::Invalid =>
        {
            return refused(&f.message)
        }
        Err(e) => return Err(tower.explain(e)),
    };
    let catalog::Imported { session, servers } = answer;
    match session {
        Some(s) if json => out::json(&SessionJson::from(&s))?,
        Some(s) => out::say!(
            "session {}: {servers} server(s) imported from {}",
            s.id,
            super::escape::field(&s.file)
        ),
        None if json => out::json(&serde_json::json!({ "dry_run": true, "servers": servers }))?,
        None => println!("dry run: {servers} server(s) would be imported, nothing written"),
    }
    Ok(ExitCode::SUCCESS)
}

/// An import refused, for a reason in the file or in the tower.
fn refused(why: &str) -> anyhow::Result<ExitCode> {
    out::esay!("vigie servers import: {why}\nnothing imported");
    Ok(ExitCode::from(crate::runtime::EXIT_CONFIG))
}

/// A file with errors: its rows that are right are checked by the tower
/// too (names already in the catalog, addresses, scope), so every problem
/// is in one list, in line order, counted.
fn refused_with_tower(
    conn: &Conn,
    name: &str,
    parsed: vigie_catalog::servers::Parsed,
) -> anyhow::Result<ExitCode> {
    let mut errors = parsed.errors;
    let mut hidden = 0;
    let mut note = None;
    if !parsed.rows.is_empty() {
        let call = catalog::ImportCheck { rows: parsed.rows };
        match conn.client().and_then(|mut t| t.ask(call)) {
            Ok(catalog::ImportChecked { problems, total }) => {
                hidden = (total as usize).saturating_sub(problems.len());
                errors.extend(problems.into_iter().map(|p| vigie_catalog::RowError {
                    line: p.line,
                    column: p.column,
                    message: p.message,
                }));
            }
            Err(e) => note = Some(format!("(the tower did not check the other rows: {e})")),
        }
    }
    let mut e = vigie_catalog::CatalogError::rows(name, errors);
    if let vigie_catalog::CatalogError::Rows { total, .. } = &mut e {
        *total += hidden;
    }
    let why = match note {
        Some(n) => format!("{e}\n{n}"),
        None => e.to_string(),
    };
    refused(&why)
}

fn provision(
    conn: &Conn,
    (names, target): (Vec<String>, Option<String>),
    init: Option<PathBuf>,
    pool: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if names.is_empty() && target.is_none() {
        eprintln!("vigie servers provision: name servers or give --target");
        return Ok(ExitCode::from(crate::runtime::EXIT_CONFIG));
    }
    let init = match init.as_deref().map(vigie_changes::load_change).transpose() {
        Ok(i) => i,
        Err(e) => {
            out::esay!("vigie servers provision: {e}");
            return Ok(ExitCode::from(crate::runtime::EXIT_CONFIG));
        }
    };
    let call = catalog::Provision {
        names,
        target,
        init,
        pool,
    };
    super::servers_life::provisioned(conn.client()?.ask(call)?, json)
}
