//! A supplier's CSV of servers, read whole. Every row is checked before
//! anything is accepted and **every** problem is reported with its line and
//! column (NetBox stops at the first one; its users asked for all at once,
//! netbox#3311, #13778). Unknown and missing headers are refused, and so
//! are duplicate names and addresses inside the file.
//!
//! Records are read as bytes with the `csv` crate (quoting, embedded
//! newlines, a BOM) and each field is decoded and checked on its own,
//! which is what lets one bad field not hide the next one — a serde
//! deserialisation of the whole row stops at its first bad field.

use std::collections::HashMap;
use std::net::IpAddr;

use sha2::{Digest, Sha256};
use vigie_wire::catalog::{ImportRow, ServerSpec};
use vigie_wire::tower::Labels;

use crate::error::{CatalogError, RowError};

/// The columns every file has, in the order `examples/servers.csv` uses.
pub const REQUIRED: [&str; 9] = [
    "name", "address", "ssh_port", "ssh_user", "provider", "cpu", "ram_gb", "disk_gb", "labels",
];
/// Columns a file may have.
pub const OPTIONAL: [&str; 1] = ["host_key"];
/// Most rows one import takes: the referee stores an import in one batch.
pub const MAX_ROWS: usize = 20_000;
/// Largest import file.
pub const MAX_FILE: usize = 8 << 20;
pub use crate::error::MAX_ERRORS;

/// SHA-256 of a file's bytes, hex: the import session keeps it.
pub fn digest(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// A file read whole: the rows that passed every check of the file, and
/// every problem found (all of them: the caller decides how many to show).
#[derive(Debug, Default)]
pub struct Parsed {
    pub rows: Vec<ImportRow>,
    pub errors: Vec<RowError>,
}

/// Refuses bytes that cannot be a CSV of servers at all, saying why.
fn not_a_servers_file(file: &str, bytes: &[u8]) -> Result<(), String> {
    if bytes.len() > MAX_FILE {
        return Err(format!(
            "{} bytes: at most {MAX_FILE} per import (split the file)",
            bytes.len()
        ));
    }
    if looks_utf16(bytes) {
        return Err(format!(
            "the file looks UTF-16 (a spreadsheet's \"Unicode text\"): convert it with \
             `iconv -f UTF-16 -t UTF-8 {file} > servers-utf8.csv`"
        ));
    }
    Ok(())
}

/// Refuses a header line that says the file is empty or separated by
/// semicolons (a spreadsheet's locale), with the hint to fix it.
fn not_a_servers_header(headers: &csv::ByteRecord) -> Result<(), String> {
    if headers.is_empty() {
        return Err(format!(
            "the file is empty: the first line must be the header ({})",
            REQUIRED.join(",")
        ));
    }
    if headers.len() == 1 && headers[0].contains(&b';') {
        return Err(format!(
            "the file looks semicolon-separated (its header is one column: {:?}): \
             columns are separated by commas — save it again as CSV with ',' as the \
             field delimiter ({})",
            String::from_utf8_lossy(&headers[0]),
            REQUIRED.join(",")
        ));
    }
    Ok(())
}

/// The names and addresses a file has listed so far: one machine, one row.
#[derive(Default)]
struct Seen {
    names: HashMap<String, u64>,
    addresses: HashMap<IpAddr, u64>,
}

impl Seen {
    /// Records `server` at `line`, an error for each of its name and
    /// address an earlier line already holds.
    fn once(&mut self, server: &ServerSpec, line: u64, errors: &mut Vec<RowError>) {
        if let Some(first) = self.names.insert(server.name.clone(), line) {
            errors.push(RowError {
                line,
                column: Some("name".into()),
                message: format!("{:?} is already on line {first}", server.name),
            });
        }
        if let Some(first) = self.addresses.insert(server.address, line) {
            errors.push(RowError {
                line,
                column: Some("address".into()),
                message: format!("{} is already on line {first}", server.address),
            });
        }
    }
}

/// Reads a supplier's CSV. `progress` is called with the number of rows
/// read so far, every 1,000 rows. Refused whole ([`CatalogError::File`])
/// when it cannot be a CSV of servers at all: too big, empty, UTF-16,
/// semicolon-separated, more than [`MAX_ROWS`] rows.
pub fn read_servers(
    file: &str,
    bytes: &[u8],
    mut progress: impl FnMut(usize),
) -> Result<Parsed, CatalogError> {
    let whole = |message: String| CatalogError::File {
        file: file.to_owned(),
        message,
    };
    not_a_servers_file(file, bytes).map_err(whole)?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(bytes);
    let headers = rdr
        .byte_headers()
        .map_err(|e| whole(format!("the header line cannot be read: {e}")))?
        .clone();
    not_a_servers_header(&headers).map_err(whole)?;
    let columns = match read_headers(&headers) {
        Ok(c) => c,
        Err(errors) => {
            return Ok(Parsed {
                rows: Vec::new(),
                errors,
            })
        }
    };
    let mut p = Parsed::default();
    let mut seen = Seen::default();
    let mut record = csv::ByteRecord::new();
    loop {
        let line = rdr.position().line();
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                p.errors.push(RowError {
                    line,
                    column: None,
                    message: format!("unreadable CSV: {e}"),
                });
                break;
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        if p.rows.len() + p.errors.len() >= MAX_ROWS {
            return Err(whole(format!(
                "more than {MAX_ROWS} rows (an import's limit): split the file into several imports"
            )));
        }
        if record.len() != headers.len() {
            p.errors.push(RowError {
                line,
                column: None,
                message: format!(
                    "{} field(s), the header has {} (a quote left open, or a missing or extra comma?)",
                    record.len(),
                    headers.len()
                ),
            });
            continue;
        }
        let before = p.errors.len();
        if let Some(server) = read_row(&columns, &record, line, &mut p.errors) {
            seen.once(&server, line, &mut p.errors);
            if p.errors.len() == before {
                p.rows.push(ImportRow { line, server });
            }
        }
        let read = p.rows.len() + p.errors.len();
        if read % 1_000 == 0 {
            progress(read);
        }
    }
    if p.rows.is_empty() && p.errors.is_empty() {
        return Err(whole("no rows after the header: nothing to import".into()));
    }
    Ok(p)
}

/// Reads a supplier's CSV: its rows when every check passed, else every
/// problem (at most [`MAX_ERRORS`] listed, the count of all of them said).
pub fn parse_servers(
    file: &str,
    bytes: &[u8],
    progress: impl FnMut(usize),
) -> Result<Vec<ImportRow>, CatalogError> {
    let p = read_servers(file, bytes, progress)?;
    if p.errors.is_empty() {
        return Ok(p.rows);
    }
    Err(CatalogError::rows(file, p.errors))
}

/// UTF-16 with a byte-order mark, or without one (ASCII text with a NUL
/// every other byte).
fn looks_utf16(b: &[u8]) -> bool {
    if b.starts_with(&[0xFF, 0xFE]) || b.starts_with(&[0xFE, 0xFF]) {
        return true;
    }
    let head = &b[..b.len().min(64)];
    head.len() >= 4
        && (head.iter().step_by(2).all(|&c| c == 0) || head[1..].iter().step_by(2).all(|&c| c == 0))
}

/// Where each known column is. Unknown, missing and repeated headers are
/// all reported.
fn read_headers(headers: &csv::ByteRecord) -> Result<HashMap<&'static str, usize>, Vec<RowError>> {
    let mut errors = Vec::new();
    let mut at = HashMap::new();
    for (i, raw) in headers.iter().enumerate() {
        let name = String::from_utf8_lossy(raw).trim().to_owned();
        let known = REQUIRED.iter().chain(OPTIONAL.iter()).find(|c| **c == name);
        match known {
            Some(c) => {
                if at.insert(*c, i).is_some() {
                    errors.push(RowError {
                        line: 1,
                        column: Some(name.clone()),
                        message: "this header appears twice".into(),
                    });
                }
            }
            None => {
                let lower = name.to_lowercase();
                let near = REQUIRED
                    .iter()
                    .chain(OPTIONAL.iter())
                    .find(|c| **c == lower);
                let message = match near {
                    Some(c) => format!("header `{name}` differs from `{c}` only in case"),
                    None => format!(
                        "unknown header (known: {}, optional: {})",
                        REQUIRED.join(","),
                        OPTIONAL.join(",")
                    ),
                };
                errors.push(RowError {
                    line: 1,
                    column: Some(name.clone()),
                    message,
                })
            }
        }
    }
    for c in REQUIRED {
        if !at.contains_key(c) {
            errors.push(RowError {
                line: 1,
                column: Some(c.into()),
                message: "missing header".into(),
            });
        }
    }
    if errors.is_empty() {
        Ok(at)
    } else {
        Err(errors)
    }
}

/// One row's fields, each checked; `None` when any is wrong (all of them
/// are in `errors`).
fn read_row(
    columns: &HashMap<&'static str, usize>,
    record: &csv::ByteRecord,
    line: u64,
    errors: &mut Vec<RowError>,
) -> Option<ServerSpec> {
    let before = errors.len();
    let mut field = |name: &'static str| -> Option<String> {
        let raw = record.get(*columns.get(name)?)?;
        match std::str::from_utf8(raw) {
            Ok(s) => Some(s.trim().to_owned()),
            Err(e) => {
                errors.push(RowError {
                    line,
                    column: Some(name.into()),
                    message: format!(
                        "not UTF-8 (invalid byte at offset {} of the field)",
                        e.valid_up_to()
                    ),
                });
                None
            }
        }
    };
    let texts: Vec<(&'static str, Option<String>)> = REQUIRED
        .iter()
        .chain(OPTIONAL.iter())
        .map(|c| (*c, field(c)))
        .collect();
    let get = |name: &str| -> Option<&str> {
        texts
            .iter()
            .find(|(c, _)| *c == name)
            .and_then(|(_, v)| v.as_deref())
    };
    let mut bad = |name: &str, message: String| {
        errors.push(RowError {
            line,
            column: Some(name.into()),
            message,
        })
    };
    let mut check = |name: &str, f: &dyn Fn(&str) -> Result<(), String>| {
        if let Some(v) = get(name) {
            if let Err(m) = f(v) {
                bad(name, m);
            }
        }
    };
    check("name", &|v| check_name(v));
    check("address", &|v| parse_address(v).map(|_| ()));
    check("ssh_port", &|v| parse_port(v).map(|_| ()));
    check("ssh_user", &|v| check_user(v));
    check("provider", &|v| check_text(v, 64));
    for c in ["cpu", "ram_gb", "disk_gb"] {
        check(c, &|v| parse_count(v).map(|_| ()));
    }
    check("labels", &|v| parse_labels(v).map(|_| ()));
    check("host_key", &|v| check_host_key(v));
    if errors.len() != before {
        return None;
    }
    let host_key = get("host_key").filter(|k| !k.is_empty()).map(str::to_owned);
    Some(ServerSpec {
        name: get("name")?.to_owned(),
        address: parse_address(get("address")?).ok()?,
        ssh_port: parse_port(get("ssh_port")?).ok()?,
        ssh_user: get("ssh_user")?.to_owned(),
        provider: get("provider")?.to_owned(),
        cpu: parse_count(get("cpu")?).ok()?,
        ram_gb: parse_count(get("ram_gb")?).ok()?,
        disk_gb: parse_count(get("disk_gb")?).ok()?,
        labels: parse_labels(get("labels")?).ok()?,
        host_key,
    })
}

/// The checks of one server, the referee's second look at what the CLI
/// sends: `(column, message)` for each problem.
pub fn check_server(s: &ServerSpec) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut push = |c: &'static str, r: Result<(), String>| {
        if let Err(m) = r {
            out.push((c, m));
        }
    };
    push("name", check_name(&s.name));
    push(
        "ssh_port",
        (s.ssh_port != 0).then_some(()).ok_or("port 0".into()),
    );
    push("ssh_user", check_user(&s.ssh_user));
    push("provider", check_text(&s.provider, 64));
    let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    push("labels", parse_labels(&labels.join(";")).map(|_| ()));
    if let Some(k) = &s.host_key {
        push("host_key", check_host_key(k));
    }
    out
}

fn check_name(v: &str) -> Result<(), String> {
    // A server becomes a host of the same name.
    vigie_changes::validate_host_id(v).map_err(|e| match e {
        vigie_changes::ChangeError::HostId { reason, .. } => format!("{v:?}: {reason}"),
        other => other.to_string(),
    })
}

/// A server's address as the tower compares and dials it: one spelling
/// per machine. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is the
/// IPv4 address it maps (the kernel dials that very machine), so it is
/// never a second server, nor a way past a check of the IPv4 one.
pub fn normal_address(a: IpAddr) -> IpAddr {
    a.to_canonical()
}

/// An address as a supplier may spell it: any case (IPv6 hex), one
/// trailing dot (a fully qualified spelling), read into its
/// [`normal_address`].
pub fn parse_address(v: &str) -> Result<IpAddr, String> {
    let text = v.trim();
    let text = text.strip_suffix('.').unwrap_or(text);
    text.parse()
        .map(normal_address)
        .map_err(|_| format!("{v:?} is not an IP address (IPv4 or IPv6)"))
}

pub(crate) fn parse_port(v: &str) -> Result<u16, String> {
    match v.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("{v:?} is not a port (1 to 65535)")),
    }
}

pub(crate) fn parse_count(v: &str) -> Result<u32, String> {
    v.parse::<u32>()
        .map_err(|_| format!("{v:?} is not a whole number"))
}

pub(crate) fn check_user(v: &str) -> Result<(), String> {
    // Debian's rule for user names (adduser's NAME_REGEX, without '$').
    let ok = !v.is_empty()
        && v.len() <= 32
        && v.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    ok.then_some(())
        .ok_or_else(|| format!("{v:?} is not a user name (a-z, 0-9, '_', '-'; 1 to 32)"))
}

pub(crate) fn check_text(v: &str, max: usize) -> Result<(), String> {
    if v.is_empty() {
        return Err("empty".into());
    }
    if v.chars().count() > max {
        return Err(format!("longer than {max} characters"));
    }
    if v.chars().any(char::is_control) {
        return Err("holds a control character".into());
    }
    Ok(())
}

/// `k=v;k=v` (empty: no labels). Keys and values are what selectors
/// match: letters, digits, '.', '_' and '-'.
pub fn parse_labels(v: &str) -> Result<Labels, String> {
    let mut labels = Labels::new();
    for part in v.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, val)) = part.split_once('=') else {
            return Err(format!("{part:?} is not k=v (labels are k=v;k=v)"));
        };
        let (k, val) = (k.trim(), val.trim());
        let word = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        };
        if !word(k) || !word(val) {
            return Err(format!(
                "{part:?}: keys and values are 1 to 64 of a-z A-Z 0-9 . _ -"
            ));
        }
        if labels.insert(k.to_owned(), val.to_owned()).is_some() {
            return Err(format!("label {k:?} given twice"));
        }
    }
    Ok(labels)
}

/// An OpenSSH public key line (`ssh-ed25519 AAAA…`) or fingerprint
/// (`SHA256:…`), empty for none. The key's blob is decoded: its own
/// type must be the one the line names, and an ed25519 key must be whole
/// (`ssh-ed25519 AAAA` is refused, not pinned to fail every connection).
pub(crate) fn check_host_key(v: &str) -> Result<(), String> {
    use base64::Engine;
    if v.is_empty() {
        return Ok(());
    }
    if let Some(fp) = v.strip_prefix("SHA256:") {
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD.decode(fp);
        if raw.is_ok_and(|r| r.len() == 32) {
            return Ok(());
        }
        return Err(format!(
            "{v:?}: a SHA256: fingerprint is 43 base64 characters (ssh-keygen -lf KEY)"
        ));
    }
    let mut parts = v.split_whitespace();
    let (Some(kind), Some(blob)) = (parts.next(), parts.next()) else {
        return Err(
            "expected an OpenSSH host public key (ssh-ed25519 AAAA…) or a SHA256:… fingerprint"
                .into(),
        );
    };
    let kinds = [
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
    ];
    if !kinds.contains(&kind) {
        return Err(format!(
            "{kind:?} is not a host key type (known: {})",
            kinds.join(", ")
        ));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|e| format!("the {kind} key is not valid base64: {e}"))?;
    let (inner, rest) = ssh_string(&raw).ok_or_else(|| format!("the {kind} key is cut short"))?;
    if inner != kind.as_bytes() {
        return Err(format!(
            "the key says {kind} but its blob holds a {:?} key",
            String::from_utf8_lossy(inner)
        ));
    }
    let whole = match kind {
        "ssh-ed25519" => ssh_string(rest).is_some_and(|(k, end)| k.len() == 32 && end.is_empty()),
        _ => ssh_string(rest).is_some_and(|(k, _)| !k.is_empty()),
    };
    if !whole {
        return Err(format!(
            "the {kind} key is cut short or has extra bytes (copy the whole line of ssh-keyscan)"
        ));
    }
    Ok(())
}

/// One SSH wire string (a big-endian u32 length, then the bytes), and what
/// follows it.
fn ssh_string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) as usize;
    let end = 4usize.checked_add(len)?;
    Some((b.get(4..end)?, b.get(end..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels\n";

    fn parse(text: &[u8]) -> Result<Vec<ImportRow>, CatalogError> {
        parse_servers("s.csv", text, |_| {})
    }

    fn errors(text: &[u8]) -> Vec<RowError> {
        match parse(text) {
            Err(CatalogError::Rows { errors, .. }) => errors,
            other => panic!("expected row errors, got {other:?}"),
        }
    }

    #[test]
    fn a_good_file_gives_typed_rows_with_their_lines() {
        let text = format!(
            "{HEAD}web-1,10.0.0.1,22,debian,ovh,4,8,80,role=web;env=prod\n\"db-1\",2001:db8::1,2222,admin,hetzner,8,32,500,\n"
        );
        let rows = parse(text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 2);
        assert_eq!(
            rows[0].server.labels.get("env").map(String::as_str),
            Some("prod")
        );
        assert_eq!(rows[1].line, 3);
        assert_eq!(rows[1].server.ssh_port, 2222);
        assert!(rows[1].server.labels.is_empty());
    }

    #[test]
    fn every_error_is_reported_with_line_and_column() {
        let text = format!(
            "{HEAD}web-1,10.0.0.1,22,debian,ovh,4,8,80,\nweb-2,10.0.0.300,0,Root,ovh,four,8,80,role\nweb-1,10.0.0.3,22,debian,ovh,4,8,80,\n"
        );
        let errs = errors(text.as_bytes());
        let got: Vec<(u64, Option<&str>)> =
            errs.iter().map(|e| (e.line, e.column.as_deref())).collect();
        assert_eq!(
            got,
            vec![
                (3, Some("address")),
                (3, Some("ssh_port")),
                (3, Some("ssh_user")),
                (3, Some("cpu")),
                (3, Some("labels")),
                (4, Some("name")),
            ],
            "{errs:#?}"
        );
        assert!(errs[5].message.contains("already on line 2"), "{}", errs[5]);
    }

    #[test]
    fn unknown_missing_and_repeated_headers_are_refused() {
        let errs =
            errors(b"name,address,ssh_port,ssh_user,provider,cpu,ram,disk_gb,labels,name\nx\n");
        let got: Vec<(&str, &str)> = errs
            .iter()
            .map(|e| (e.column.as_deref().unwrap_or(""), e.message.as_str()))
            .map(|(c, m)| (c, m.split(' ').next().unwrap_or("")))
            .collect();
        assert_eq!(
            got,
            vec![("ram", "unknown"), ("name", "this"), ("ram_gb", "missing")]
        );
    }

    #[test]
    fn bad_utf8_and_wrong_column_counts_name_their_line() {
        let mut text = HEAD.as_bytes().to_vec();
        text.extend_from_slice(b"web-1,10.0.0.1,22,debian,ov\xffh,4,8,80,\n");
        text.extend_from_slice(b"web-2,10.0.0.2,22,debian\n");
        text.extend_from_slice(b"web-3,\"10.0.0.3,22,debian,ovh,4,8,80,\n");
        let errs = errors(&text);
        assert_eq!(errs[0].line, 2);
        assert_eq!(errs[0].column.as_deref(), Some("provider"));
        assert!(errs[0].message.contains("UTF-8"), "{}", errs[0]);
        assert_eq!((errs[1].line, errs[1].column.as_deref()), (3, None));
        assert!(errs[1].message.contains("4 field(s)"), "{}", errs[1]);
        // The open quote swallows the rest of the file into one field.
        assert_eq!((errs[2].line, errs[2].column.as_deref()), (4, None));
        assert_eq!(errs.len(), 3);
    }

    #[test]
    fn an_empty_file_or_a_header_alone_is_refused() {
        assert!(matches!(parse(b""), Err(CatalogError::File { .. })));
        assert!(matches!(
            parse(HEAD.as_bytes()),
            Err(CatalogError::File { .. })
        ));
    }

    #[test]
    fn host_keys_are_optional_and_checked() {
        let head = "name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels,host_key\n";
        let ok = format!("{head}a,10.0.0.1,22,debian,x,1,1,1,,ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKbOZWTxC1Jv1TOGb0EtvCql8xFA2bKc/05y4R2CBTP+\nb,10.0.0.2,22,debian,x,1,1,1,,\n");
        let rows = parse(ok.as_bytes()).unwrap();
        assert!(rows[0].server.host_key.is_some());
        assert!(rows[1].server.host_key.is_none());
        let bad = format!("{head}a,10.0.0.1,22,debian,x,1,1,1,,yes\n");
        assert_eq!(
            errors(bad.as_bytes())[0].column.as_deref(),
            Some("host_key")
        );
    }

    #[test]
    fn a_cut_or_mislabelled_host_key_is_refused() {
        let good =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKbOZWTxC1Jv1TOGb0EtvCql8xFA2bKc/05y4R2CBTP+";
        assert_eq!(check_host_key(good), Ok(()));
        let ecdsa = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBODuFFex6AVTEKeItdbclVfHKfph23Kfrr8zqsnJai0SN2rHxliIFi0bB92zzQBJx9+0rITI75/GgwRD7ov7Nbw=";
        assert_eq!(check_host_key(ecdsa), Ok(()));
        for bad in [
            "ssh-ed25519 AAAA",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA",
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIKbOZWTxC1Jv1TOGb0EtvCql8xFA2bKc/05y4R2CBTP+",
            "ssh-ed25519 !!!!",
            "SHA256:abc",
        ] {
            assert!(check_host_key(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn utf16_semicolons_and_header_case_get_a_hint() {
        let mut utf16 = vec![0xFF, 0xFE];
        for u in HEAD.encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        let e = parse(&utf16).unwrap_err().to_string();
        assert!(e.contains("UTF-16") && e.contains("iconv"), "{e}");
        let semi = HEAD.replace(',', ";") + "a;10.0.0.1;22;debian;x;1;1;1;\n";
        let e = parse(semi.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("looks semicolon-separated"), "{e}");
        let cased = HEAD.replace("name,", "Name,") + "a,10.0.0.1,22,debian,x,1,1,1,\n";
        let e = parse(cased.as_bytes()).unwrap_err().to_string();
        assert!(
            e.contains("header `Name` differs from `name` only in case"),
            "{e}"
        );
    }

    #[test]
    fn the_count_of_errors_is_true_when_not_all_are_listed() {
        let mut text = HEAD.to_owned();
        for i in 0..4_800u32 {
            text.push_str(&format!("s-{i},10.0.0.300,22,debian,ovh,4,8,80,\n"));
        }
        let e = parse(text.as_bytes()).unwrap_err();
        let CatalogError::Rows { errors, total, .. } = &e else {
            panic!("{e:?}");
        };
        assert_eq!((errors.len(), *total), (MAX_ERRORS, 4_800));
        let first = e.to_string();
        let first = first.lines().next().unwrap_or("");
        assert_eq!(first, "s.csv: 4,800 errors, the first 1,000 shown:");
    }

    #[test]
    fn one_machine_has_one_spelling_and_a_file_may_not_list_it_twice() {
        for (text, want) in [
            ("::ffff:127.0.0.2", "127.0.0.2"),
            ("::FFFF:7f00:2", "127.0.0.2"),
            ("127.0.0.2.", "127.0.0.2"),
            ("2001:DB8::1", "2001:db8::1"),
        ] {
            assert_eq!(parse_address(text).unwrap().to_string(), want, "{text}");
        }
        let text = format!(
            "{HEAD}a,127.0.0.2,22,debian,x,1,1,1,\nb,::ffff:127.0.0.2,22,debian,x,1,1,1,\n"
        );
        let errs = errors(text.as_bytes());
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].column.as_deref(), Some("address"));
        assert!(errs[0].message.contains("already on line 2"), "{}", errs[0]);
    }

    #[test]
    fn the_shipped_example_imports() {
        let text = include_bytes!("../../examples/servers.csv");
        let rows = parse_servers("servers.csv", text, |_| {}).unwrap();
        assert_eq!(rows.len(), 3);
    }

    #[test]
    fn ten_thousand_rows_parse_quickly() {
        let mut text = HEAD.to_owned();
        for i in 0..10_000u32 {
            text.push_str(&format!(
                "s-{i},10.{}.{}.{},22,debian,ovh,4,8,80,role=web\n",
                i >> 16,
                (i >> 8) & 255,
                i & 255
            ));
        }
        let mut calls = 0;
        let t = std::time::Instant::now();
        let rows = parse_servers("big.csv", text.as_bytes(), |_| calls += 1).unwrap();
        assert_eq!(rows.len(), 10_000);
        assert_eq!(calls, 10);
        assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
    }
}
