//! The web console and HTTP API, `vigie web`: pages for operators and
//! JSON for scripts over HTTP, on loopback by default, over TLS anywhere
//! else.
//!
//! **No decision here.** Every page and API call is made to the referee
//! as the signed-in operator: the caller is built by the majordomo's own
//! `authorize` from the operator's current record (as the referee returns
//! it when it checks the session or token), and the referee answers
//! within that tenant and scope exactly as for the CLI. Sessions, login
//! tickets and API tokens are the referee's (stored hashed, audited);
//! this daemon holds none of them, only a CSRF key.

pub mod api;
pub mod app;
pub mod auth;
pub mod csrf;
mod error;
pub mod headers;
pub mod openapi;
pub mod pages;
pub mod referee;
pub mod server;
pub mod tls;

pub use error::WebError;
pub use server::{router, serve, WebConfig};
pub use tls::TlsFiles;
