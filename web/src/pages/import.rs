//! The CSV import: a supplier's file uploaded, checked whole — a dry run
//! first — with every problem listed by line and column, then imported.
//! The file is read by the CLI's own reader (`vigie_catalog::servers`) and
//! the tower checks its rows as for `vigie servers import`, so the page
//! lists the same errors in the same words. A dry run that passes carries
//! the file's bytes (base64) in its "Import" form: nothing is kept here
//! between the two posts, and what is imported is what was checked.

use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use maud::{html, Markup};
use vigie_catalog::servers::{digest, read_servers};
use vigie_catalog::{CatalogError, RowError};
use vigie_client::calls::catalog::{Import, ImportCheck};
use vigie_wire::tower::{ApiFault, ApiFaultKind};

use super::{layout, refused, respond, signed};
use crate::app::Shared;
use crate::auth::Signed;

/// The largest upload the import takes: the reader's own limit, and room
/// for the form's other fields.
pub const MAX_UPLOAD: usize = vigie_catalog::servers::MAX_FILE * 2 + 64 * 1024;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The upload form (a dry run, or an import straight away).
fn upload(csrf: &str) -> Markup {
    html! {
        form #upload method="post" action="/servers/import" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(csrf);
            label { "Supplier CSV " input #csv type="file" name="file" accept=".csv,text/csv" required; }
            button #dryrun type="submit" name="action" value="dry" { "Dry run" }
            " "
            button type="submit" name="action" value="import" { "Import" }
        }
        p.hint { "Columns: " code { (vigie_catalog::servers::REQUIRED.join(",")) } " (and "
            code { "host_key" } "). Every row is checked before anything is written; one error and nothing is imported." }
    }
}

pub async fn page(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    respond(
        StatusCode::OK,
        layout::page("Import servers", Some(&who), upload(&who.csrf)),
    )
}

/// What one post holds.
#[derive(Default)]
struct Posted {
    csrf: String,
    dry_run: bool,
    name: String,
    bytes: Vec<u8>,
}

async fn posted(mut m: Multipart) -> Result<Posted, String> {
    let mut p = Posted {
        dry_run: true,
        ..Posted::default()
    };
    let bad = |e: axum::extract::multipart::MultipartError| e.body_text();
    while let Some(field) = m.next_field().await.map_err(bad)? {
        match field.name().unwrap_or_default() {
            "csrf" => p.csrf = field.text().await.map_err(bad)?,
            "action" => p.dry_run = field.text().await.map_err(bad)? != "import",
            "name" => p.name = field.text().await.map_err(bad)?,
            "file" => {
                p.name = field.file_name().unwrap_or("upload.csv").to_owned();
                p.bytes = field.bytes().await.map_err(bad)?.to_vec();
            }
            "data" => {
                let text = field.text().await.map_err(bad)?;
                p.bytes = B64
                    .decode(text.trim())
                    .map_err(|_| "the checked file's data is damaged: upload it again")?;
            }
            _ => {}
        }
    }
    Ok(p)
}

pub async fn post(State(app): State<Shared>, headers: HeaderMap, m: Multipart) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let p = match posted(m).await {
        Ok(p) => p,
        Err(why) => return refused(&who, &ApiFault::new(ApiFaultKind::Invalid, why)),
    };
    if !app.csrf.check(&who.credential.id, &p.csrf) {
        return super::csrf_refused(&who);
    }
    let name = file_name(&p.name);
    let (status, body) = match check(&app, &who, &name, &p.bytes).await {
        Err(o) => (status_of(&o), o.markup(&name, &who.csrf)),
        Ok(rows) => match import(&app, &who, &name, &p.bytes, rows, p.dry_run).await {
            Ok(m) => (StatusCode::OK, m),
            Err(o) => (status_of(&o), o.markup(&name, &who.csrf)),
        },
    };
    respond(status, layout::page("Import servers", Some(&who), body))
}

/// The file's own name (a browser may send a path), kept printable.
fn file_name(given: &str) -> String {
    let base = given.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if base.is_empty() {
        "upload.csv".into()
    } else {
        base.chars().take(200).collect()
    }
}

/// Why an import did not go through.
enum Outcome {
    /// Every problem of the file, in line order (at most `MAX_ERRORS`),
    /// and how many there were.
    Rows { errors: Vec<RowError>, total: usize },
    /// The file as a whole, or the tower's refusal.
    Whole(ApiFault),
}

fn status_of(o: &Outcome) -> StatusCode {
    match o {
        Outcome::Rows { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Outcome::Whole(f) if f.kind == ApiFaultKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        Outcome::Whole(f) => crate::headers::status_of(f),
    }
}

impl Outcome {
    fn markup(&self, file: &str, csrf: &str) -> Markup {
        html! {
            @match self {
                Outcome::Rows { errors, total } => {
                    p.error #import-errors-count { (file) ": " (vigie_catalog::counted(*total, errors.len())) "; nothing imported" }
                    table #import-errors {
                        thead { tr { th { "Line" } th { "Column" } th { "Problem" } } }
                        tbody {
                            @for e in errors {
                                tr { td { (e.line) } td { (e.column.as_deref().unwrap_or("")) } td { (e.message) } }
                            }
                        }
                    }
                }
                Outcome::Whole(f) => {
                    p.error #import-errors-count { "Nothing imported:" }
                    pre.error #import-refused { (f.message) }
                }
            }
            h2 { "Try again" }
            (upload(csrf))
        }
    }
}

/// The file's rows, or every problem in it: the reader's, and the tower's
/// checks of the rows that are right (names in use, scope, …), as the CLI
/// lists them.
async fn check(
    app: &Shared,
    who: &Signed,
    name: &str,
    bytes: &[u8],
) -> Result<Vec<vigie_wire::catalog::ImportRow>, Outcome> {
    let parsed = match read_servers(name, bytes, |_| {}) {
        Ok(p) => p,
        Err(e) => {
            return Err(Outcome::Whole(ApiFault::new(
                ApiFaultKind::Invalid,
                e.to_string(),
            )))
        }
    };
    if parsed.errors.is_empty() {
        return Ok(parsed.rows);
    }
    let mut errors = parsed.errors;
    let mut hidden = 0;
    if !parsed.rows.is_empty() {
        let call = ImportCheck { rows: parsed.rows };
        match app.referee.ask(&who.operator, call).await {
            Ok(c) => {
                hidden = (c.total as usize).saturating_sub(c.problems.len());
                errors.extend(c.problems.into_iter().map(|p| RowError {
                    line: p.line,
                    column: p.column,
                    message: p.message,
                }));
            }
            Err(f) if f.kind == ApiFaultKind::Forbidden => return Err(Outcome::Whole(f)),
            Err(_) => {}
        }
    }
    match CatalogError::rows(name, errors) {
        CatalogError::Rows { errors, total, .. } => Err(Outcome::Rows {
            errors,
            total: total + hidden,
        }),
        other => Err(Outcome::Whole(ApiFault::new(
            ApiFaultKind::Invalid,
            other.to_string(),
        ))),
    }
}

async fn import(
    app: &Shared,
    who: &Signed,
    name: &str,
    bytes: &[u8],
    rows: Vec<vigie_wire::catalog::ImportRow>,
    dry_run: bool,
) -> Result<Markup, Outcome> {
    let call = Import {
        file: name.to_owned(),
        digest: digest(bytes),
        rows,
        dry_run,
    };
    let done = app
        .referee
        .ask(&who.operator, call)
        .await
        .map_err(Outcome::Whole)?;
    Ok(match done.session {
        Some(s) => html! {
            p #import-done { "Session " (s.id) ": " (done.servers) " server(s) imported from " (s.file) "." }
            p { a href="/servers" { "The catalog" } }
        },
        None => html! {
            p #import-done { "Dry run: " (done.servers) " server(s) would be imported from " (name) ", nothing written." }
            form method="post" action="/servers/import" enctype="multipart/form-data" {
                input type="hidden" name="csrf" value=(who.csrf);
                input type="hidden" name="action" value="import";
                input type="hidden" name="name" value=(name);
                input type="hidden" name="data" value=(B64.encode(bytes));
                button #import type="submit" { "Import these " (done.servers) " server(s)" }
            }
        },
    })
}
