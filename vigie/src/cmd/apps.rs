//! `vigie apps`: the application catalog — add a version from a YAML file,
//! list applications, show one with every version.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use vigie_client::calls::catalog;
use vigie_wire::catalog::AppSpec;

use super::conn::Conn;
use super::escape;
use super::json_catalog::AppJson;
use super::out::{self, Format, Table};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    pub(super) conn: Conn,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Add an application version (name, version, repository, services).
    Add {
        /// The application's YAML file (examples/app.yml).
        file: PathBuf,
    },
    /// The tenant's applications, every version, a page at a time.
    List {
        #[command(flatten)]
        page: super::page::PageArgs,
    },
    /// One application, every version, with its services and environments.
    Show {
        /// The application's name.
        name: String,
    },
    /// Remove one version (refused while an environment runs it, naming it).
    Remove {
        /// The application's name.
        name: String,
        /// The version to remove.
        version: String,
    },
}

/// The application file, or the exit code of a bad one (said on stderr).
fn read_spec(file: &std::path::Path) -> Result<AppSpec, ExitCode> {
    let name = file.display().to_string();
    std::fs::read_to_string(file)
        .map_err(|e| vigie_catalog::CatalogError::Io {
            file: name.clone(),
            source: e,
        })
        .and_then(|text| vigie_catalog::apps::parse_app(&name, &text))
        .map_err(|e| {
            out::warn(&format!("vigie apps add: {e}"));
            ExitCode::from(crate::runtime::EXIT_CONFIG)
        })
}

pub fn run(a: Args, format: Format) -> anyhow::Result<ExitCode> {
    let json = format == Format::Json;
    let (v, info, detail) = match a.action {
        Action::Add { file } => {
            let spec = match read_spec(&file) {
                Ok(spec) => spec,
                Err(code) => return Ok(code),
            };
            (a.conn.client()?.ask(catalog::AppAdd { spec })?, None, false)
        }
        Action::List { page } => {
            let mut tower = a.conn.client()?;
            let (v, info) = super::page::call(&mut tower, catalog::Apps, page.ask())?;
            (v, Some(info), false)
        }
        Action::Show { name } => (a.conn.client()?.ask(catalog::App { name })?, None, true),
        Action::Remove { name, version } => (
            a.conn.client()?.ask(catalog::AppRemove { name, version })?,
            None,
            false,
        ),
    };
    let footer = |format| match &info {
        Some(i) => super::page::footer(i, format, "applications"),
        None => Ok(()),
    };
    if json {
        for app in &v {
            out::json(&AppJson::from(app))?;
        }
        footer(format)?;
        return Ok(ExitCode::SUCCESS);
    }
    if !detail {
        let mut t = Table::new(&["APP", "VERSION", "REPOSITORY"]);
        for app in v {
            t.row(vec![app.spec.name, app.spec.version, app.spec.repository]);
        }
        if !t.is_empty() {
            t.print()?;
        }
        footer(format)?;
        return Ok(ExitCode::SUCCESS);
    }
    for app in v {
        let s = &app.spec;
        out::line(&format!(
            "{} {}  {}",
            escape::field(&s.name),
            escape::field(&s.version),
            escape::field(&s.repository)
        ))?;
        let mut t = Table::new(&["  SERVICE", "RUNTIME", "PORT"]);
        for svc in &s.services {
            t.row(vec![
                format!("  {}", svc.name),
                svc.runtime.clone().unwrap_or_else(|| "-".to_owned()),
                svc.port.map_or("-".to_owned(), |p| p.to_string()),
            ]);
        }
        t.print()?;
        if !s.environments.is_empty() {
            let envs: Vec<&str> = s.environments.keys().map(String::as_str).collect();
            out::line(&format!(
                "  environments: {}",
                escape::field(&envs.join(", "))
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
