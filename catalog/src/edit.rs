//! `servers edit`: `field=value` assignments read into a typed
//! [`ServerEdit`], each value checked as the same column of an import row
//! is (every problem listed at once), applied to a server's row, and the
//! rule of which fields a host keeps.
//!
//! A host's fields that say how the tower reached and trusted the machine
//! (`address`, `ssh_port`, `ssh_user`, `host_key`) and its `labels` (the
//! host was registered with them: `vigie hosts label` changes a host's)
//! are refused while the server is a host or being provisioned: the
//! catalog would otherwise describe another machine than the one the
//! agent runs on. `provider`, `cpu`, `ram_gb` and `disk_gb` are inventory
//! facts, editable at any time. `name` is never edited: it is the host
//! id (remove the server and import it again under its new name).

use vigie_wire::catalog::{ServerEdit, ServerSpec, ServerState};

use crate::servers::{
    check_host_key, check_text, check_user, parse_address, parse_count, parse_labels, parse_port,
};

/// The fields `servers edit` sets, in the import's column order.
pub const FIELDS: [&str; 9] = [
    "address", "ssh_port", "ssh_user", "provider", "cpu", "ram_gb", "disk_gb", "labels", "host_key",
];

/// Fields refused while the server is a host or being provisioned.
pub const HOST_FIXED: [&str; 5] = ["address", "ssh_port", "ssh_user", "labels", "host_key"];

/// Reads `field=value` assignments; every problem is listed.
pub fn parse_edit(sets: &[String]) -> Result<ServerEdit, Vec<String>> {
    let mut e = ServerEdit::default();
    let mut errors = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for set in sets {
        let Some((field, value)) = set.split_once('=') else {
            errors.push(format!("{set:?}: expected field=value"));
            continue;
        };
        let (field, value) = (field.trim(), value.trim());
        if seen.contains(&field) {
            errors.push(format!("{field}: given twice"));
            continue;
        }
        seen.push(field);
        if let Err(m) = set_field(&mut e, field, value) {
            errors.push(format!("{field}: {m}"));
        }
    }
    if sets.is_empty() {
        errors.push(format!(
            "nothing to set (--set FIELD=VALUE; fields: {})",
            FIELDS.join(", ")
        ));
    }
    if errors.is_empty() {
        Ok(e)
    } else {
        Err(errors)
    }
}

fn set_field(e: &mut ServerEdit, field: &str, v: &str) -> Result<(), String> {
    let text = |max| check_text(v, max).map(|()| v.to_owned());
    match field {
        "address" => e.address = Some(parse_address(v)?),
        "ssh_port" => e.ssh_port = Some(parse_port(v)?),
        "ssh_user" => e.ssh_user = Some(check_user(v).map(|()| v.to_owned())?),
        "provider" => e.provider = Some(text(64)?),
        "cpu" => e.cpu = Some(parse_count(v)?),
        "ram_gb" => e.ram_gb = Some(parse_count(v)?),
        "disk_gb" => e.disk_gb = Some(parse_count(v)?),
        "labels" => e.labels = Some(parse_labels(v)?),
        "host_key" => {
            check_host_key(v)?;
            e.host_key = Some((!v.is_empty()).then(|| v.to_owned()));
        }
        "name" => {
            return Err(
                "a server's name is its host id and is not edited: remove the \
                        server and import it again under the new name"
                    .into(),
            )
        }
        _ => return Err(format!("unknown field (fields: {})", FIELDS.join(", "))),
    }
    Ok(())
}

/// `spec` with `edit` applied.
pub fn apply(spec: &ServerSpec, edit: &ServerEdit) -> ServerSpec {
    let mut s = spec.clone();
    if let Some(a) = edit.address {
        s.address = crate::servers::normal_address(a);
    }
    if let Some(p) = edit.ssh_port {
        s.ssh_port = p;
    }
    if let Some(u) = &edit.ssh_user {
        s.ssh_user = u.clone();
    }
    if let Some(p) = &edit.provider {
        s.provider = p.clone();
    }
    s.cpu = edit.cpu.unwrap_or(s.cpu);
    s.ram_gb = edit.ram_gb.unwrap_or(s.ram_gb);
    s.disk_gb = edit.disk_gb.unwrap_or(s.disk_gb);
    if let Some(l) = &edit.labels {
        s.labels = l.clone();
    }
    if let Some(k) = &edit.host_key {
        s.host_key = k.clone();
    }
    s
}

/// One field as the CSV spells it.
pub fn field_text(s: &ServerSpec, field: &str) -> String {
    match field {
        "name" => s.name.clone(),
        "address" => s.address.to_string(),
        "ssh_port" => s.ssh_port.to_string(),
        "ssh_user" => s.ssh_user.clone(),
        "provider" => s.provider.clone(),
        "cpu" => s.cpu.to_string(),
        "ram_gb" => s.ram_gb.to_string(),
        "disk_gb" => s.disk_gb.to_string(),
        "labels" => crate::export::labels_text(&s.labels),
        "host_key" => s.host_key.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// The fields that differ: `(field, old, new)`.
pub fn changes(old: &ServerSpec, new: &ServerSpec) -> Vec<(&'static str, String, String)> {
    FIELDS
        .iter()
        .map(|f| (*f, field_text(old, f), field_text(new, f)))
        .filter(|(_, a, b)| a != b)
        .collect()
}

/// Which of `changed` a server in `state` keeps: refused while it is a
/// host or being provisioned (see the module's doc).
pub fn blocked<'a>(state: &ServerState, changed: &[&'a str]) -> Vec<&'a str> {
    match state {
        ServerState::Host | ServerState::Provisioning => changed
            .iter()
            .copied()
            .filter(|f| HOST_FIXED.contains(f))
            .collect(),
        ServerState::New | ServerState::Failed { .. } => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ServerSpec {
        crate::servers::parse_servers(
            "s.csv",
            b"name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels\n\
              web-1,10.0.0.1,22,debian,ovh,4,8,80,role=web\n",
            |_| {},
        )
        .unwrap()
        .remove(0)
        .server
    }

    fn sets(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_bad_assignment_is_listed_at_once() {
        let errs = parse_edit(&sets(&[
            "address=10.0.0.300",
            "cpu=four",
            "name=web-9",
            "colour=red",
            "cpu=2",
            "labels",
        ]))
        .unwrap_err();
        assert_eq!(errs.len(), 6, "{errs:#?}");
        assert!(errs[2].contains("not edited"), "{}", errs[2]);
        assert!(errs[4].contains("given twice"), "{}", errs[4]);
        assert!(parse_edit(&[]).is_err());
    }

    #[test]
    fn an_edit_applies_what_it_names_and_says_what_changed() {
        let e = parse_edit(&sets(&[
            "ram_gb=16",
            "labels=role=db;env=prod",
            "host_key=",
        ]))
        .unwrap();
        let old = spec();
        let new = apply(&old, &e);
        assert_eq!(new.ram_gb, 16);
        assert_eq!(new.cpu, 4);
        let c = changes(&old, &new);
        let fields: Vec<&str> = c.iter().map(|(f, _, _)| *f).collect();
        assert_eq!(fields, ["ram_gb", "labels"]);
        assert_eq!(c[1].2, "env=prod;role=db");
        assert_eq!(blocked(&ServerState::Host, &fields), ["labels"]);
        assert!(blocked(&ServerState::New, &fields).is_empty());
        assert!(blocked(&ServerState::Host, &["provider", "cpu"]).is_empty());
    }
}
