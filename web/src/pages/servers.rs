//! The server catalog: every server the operator may read.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;
use vigie_json::catalog::ServerJson;
use vigie_wire::catalog::{CatalogAnswer, CatalogCall};
use vigie_wire::tower::{ApiAnswer, ApiCall};

use super::{layout, refused, respond, signed, unexpected};
use crate::app::Shared;

/// The list call of every server in scope.
pub fn call() -> ApiCall {
    ApiCall::Catalog(CatalogCall::Servers {
        session: None,
        target: None,
    })
}

pub async fn page(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let servers: Vec<ServerJson> = match app.referee.as_operator(&who.operator, call(), None).await
    {
        Ok(ApiAnswer::Catalog(CatalogAnswer::Servers(v))) => {
            v.iter().map(ServerJson::from).collect()
        }
        Ok(_) => return unexpected(&who),
        Err(f) => return refused(&who, &f),
    };
    let body = html! {
        p { (servers.len()) " servers · " a #import-link href="/servers/import" { "Import a supplier's CSV" } }
        table #servers {
            thead { tr { th { "Name" } th { "State" } th { "Address" } th { "Provider" } th { "CPU" } th { "RAM (GB)" } th { "Labels" } } }
            tbody {
                @for s in &servers {
                    tr {
                        td { (s.name) }
                        td { (s.state) @if let Some(r) = &s.reason { ": " (r) } }
                        td { (s.address) ":" (s.ssh_port) }
                        td { (s.provider) }
                        td { (s.cpu) }
                        td { (s.ram_gb) }
                        td { (layout::labels(&s.labels)) }
                    }
                }
            }
        }
    };
    respond(StatusCode::OK, layout::page("Servers", Some(&who), body))
}
