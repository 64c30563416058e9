//! IP pools: each pool's range, how much of it is handed out, and one
//! pool's allocations (who holds which address).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;
use vigie_client::calls::catalog::{Allocations, Pools};

use super::{layout, refused, respond, signed};
use crate::app::Shared;

pub async fn list(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let pools = match app.referee.ask(&who.operator, Pools).await {
        Ok(p) => p,
        Err(f) => return refused(&who, &f),
    };
    let body = html! {
        p { (pools.len()) " pools" }
        table #pools {
            thead { tr { th { "Pool" } th { "Range" } th { "Gateway" } th { "Reserved" } th { "Used" } } }
            tbody {
                @for p in &pools {
                    tr {
                        td { a href={ "/pools/" (p.spec.name) } { (p.spec.name) } }
                        td { (p.spec.cidr) }
                        td { @if let Some(g) = p.spec.gateway { (g) } }
                        td { @for r in &p.spec.reserved { (r) " " } }
                        td { (super::charts::bar(p.allocated, p.usable)) " " (p.allocated) " / " (p.usable) }
                    }
                }
            }
        }
    };
    respond(StatusCode::OK, layout::page("IP pools", Some(&who), body))
}

pub async fn one(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let call = Allocations { pool: name.clone() };
    let allocations = match app.referee.ask(&who.operator, call).await {
        Ok(a) => a,
        Err(f) => return refused(&who, &f),
    };
    let body = html! {
        p { (allocations.len()) " addresses handed out" }
        table #allocations {
            thead { tr { th { "Address" } th { "Owner" } th { "By" } th { "At" } } }
            tbody {
                @for a in &allocations {
                    tr {
                        td { (a.address) }
                        td { (a.owner.to_string()) }
                        td { (a.operator) }
                        td { (super::when(a.at_ms)) }
                    }
                }
            }
        }
    };
    respond(
        StatusCode::OK,
        layout::page(&format!("Pool {name}"), Some(&who), body),
    )
}
