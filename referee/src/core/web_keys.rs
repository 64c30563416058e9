//! Where the web console's credentials are stored, and the id a secret
//! names: shared by `web_auth.rs` (the calls) and `fetch.rs` (what they
//! read first, `web_reads`).

/// The console's URL, as the web daemon announced it.
pub const URL_KEY: &[u8] = b"web/url";
/// Every credential, by id.
pub const PREFIX: &[u8] = b"web/cred/";

pub fn cred_key(id: &str) -> Vec<u8> {
    format!("web/cred/{id}").into_bytes()
}

/// The id a secret names (`<id>.<…>`), if it is one.
pub fn id_of(secret: &str) -> Option<&str> {
    let id = secret.split_once('.').map_or("", |(id, _)| id);
    let ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(id)
}
