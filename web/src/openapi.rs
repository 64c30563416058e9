//! The API's OpenAPI 3.0 document, served at `/api/openapi.json`: built
//! by hand from the `vigie_json` objects (a test checks every path the
//! router serves is documented; schemathesis checks answers against it).

use serde_json::{json, Value};

fn s() -> Value {
    json!({"type": "string"})
}
fn ns() -> Value {
    json!({"type": "string", "nullable": true})
}
fn int() -> Value {
    json!({"type": "integer", "minimum": 0})
}
fn nint() -> Value {
    json!({"type": "integer", "nullable": true})
}
fn b() -> Value {
    json!({"type": "boolean"})
}
fn map() -> Value {
    json!({"type": "object", "additionalProperties": {"type": "string"}})
}
fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}
fn nullable_ref(name: &str) -> Value {
    json!({"nullable": true, "allOf": [reference(name)]})
}
fn object(fields: &[(&str, Value)]) -> Value {
    let props: serde_json::Map<String, Value> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let required: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
    json!({"type": "object", "properties": props, "required": required})
}
fn array_of(name: &str) -> Value {
    json!({"type": "array", "items": reference(name)})
}

fn schemas() -> Value {
    json!({
        "Error": object(&[("error", object(&[("kind", s()), ("message", s())]))]),
        "Host": object(&[("id", s()), ("tenant", s()), ("online", b()), ("queued", int()),
            ("running", ns()), ("labels", map()), ("reported", map()), ("refusing", ns()),
            ("held", b()), ("plug_down", ns())]),
        "Result": object(&[("ok", b()), ("summary", s()), ("exit_code", nint()),
            ("stdout_tail", s()), ("stderr_tail", s()), ("before_digest", ns()),
            ("after_digest", ns()), ("duration_ms", int())]),
        "Step": object(&[("step", int()), ("name", s()), ("kind", s()), ("status", s()),
            ("result", nullable_ref("Result")), ("undo", nullable_ref("Result"))]),
        "Waiting": object(&[("reason", s()), ("ahead", nint()), ("message", s())]),
        "Change": object(&[("id", s()), ("host", s()), ("seq", int()), ("tenant", s()),
            ("operator", s()), ("title", s()), ("state", s()), ("step", nint()),
            ("interrupted", b()), ("stopped", b()), ("final", b()),
            ("steps", array_of("Step")), ("submitted", s()), ("updated", s()),
            ("waiting", nullable_ref("Waiting"))]),
        "AuditRecord": object(&[("seq", int()), ("tenant_seq", int()), ("at", s()),
            ("tenant", s()), ("operator", s()), ("host", s()), ("change", s()),
            ("step", nint()), ("action", s()), ("summary", s()), ("exit_code", nint()),
            ("before_digest", ns()), ("after_digest", ns()), ("output_tail", s()),
            ("prev_hash", s()), ("hash", s())]),
        "Server": object(&[("name", s()), ("state", s()), ("reason", ns()), ("address", s()),
            ("ssh_port", int()), ("ssh_user", s()), ("provider", s()), ("cpu", int()),
            ("ram_gb", int()), ("disk_gb", int()), ("labels", map()), ("host_key", ns()),
            ("session", int()), ("added", s())]),
        "Submit": object(&[("target", s()), ("change", s())]),
        "Pool": object(&[("name", s()), ("cidr", s()), ("gateway", ns()),
            ("reserved", json!({"type": "array", "items": s()})), ("usable", int()),
            ("allocated", int())]),
        "Allocation": object(&[("pool", s()), ("address", s()), ("owner", s()),
            ("operator", s()), ("at", s())]),
    })
}

fn answer(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// The answers every authenticated call may give besides its own.
fn refusals(mut ok: serde_json::Map<String, Value>, codes: &[&str]) -> Value {
    let err = reference("Error");
    for code in codes {
        let what = match *code {
            "400" => "the request is invalid",
            "401" => "no valid API token",
            "403" => "the token's operator may not do this",
            "404" => "not found (or another tenant's)",
            "409" => "a conflict with the tower's state",
            _ => "the tower is unavailable",
        };
        ok.insert((*code).to_owned(), answer(what, err.clone()));
    }
    Value::Object(ok)
}

fn op(summary: &str, ok: Value, codes: &[&str]) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("200".into(), ok);
    json!({"summary": summary, "responses": refusals(m, codes)})
}

/// The whole document.
pub fn document() -> Value {
    let common = ["401", "403", "503"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = common.to_vec();
        v.extend_from_slice(extra);
        v
    };
    let id_param =
        json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
    let mut change_get = op(
        "One change and its steps (`vigie status ID --json`)",
        answer("the change", reference("Change")),
        &with(&["404"]),
    );
    change_get["parameters"] = id_param;
    let mut submit = op(
        "Submits a change to the hosts a selector matches (`vigie submit`)",
        answer("one change per host", array_of("Change")),
        &with(&["400", "404", "409"]),
    );
    // For clients (and schemathesis's stateful phase): a submitted
    // change's id leads to its status.
    submit["responses"]["200"]["links"] = json!({"status": {"operationId": "change",
        "parameters": {"id": "$response.body#/0/id"}}});
    change_get["operationId"] = json!("change");
    submit["requestBody"] =
        json!({"required": true, "content": {"application/json": {"schema": reference("Submit")}}});
    submit["parameters"] = json!([{"name": "Idempotency-Key", "in": "header", "required": false,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}}]);
    let mut audit = op(
        "Audit records, newest first (`vigie audit --json`)",
        answer("records", array_of("AuditRecord")),
        &with(&["400"]),
    );
    audit["parameters"] = json!([
        {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
        {"name": "before", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0}}
    ]);
    let mut allocations = op(
        "The addresses of a pool handed out, and to whom (`vigie ips list POOL --json`)",
        answer("allocations", array_of("Allocation")),
        &with(&["404"]),
    );
    allocations["parameters"] =
        json!([{"name": "pool", "in": "path", "required": true, "schema": {"type": "string"}}]);
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Vigie tower API", "version": env!("CARGO_PKG_VERSION"),
            "description": "The CLI's verbs and `--json` objects over HTTP, with the operator's own grants. Authenticate with an API token from `vigie tokens create`."},
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}
        },
        "security": [{"token": []}],
        "paths": {
            "/api/hosts": {"get": op("Hosts in the operator's scope (`vigie hosts --json`)",
                answer("hosts", array_of("Host")), &common)},
            "/api/changes": {"post": submit},
            "/api/changes/{id}": {"get": change_get},
            "/api/audit": {"get": audit},
            "/api/servers": {"get": op("The server catalog in scope (`vigie servers list --json`)",
                answer("servers", array_of("Server")), &common)},
            "/api/pools": {"get": op("IP pools (`vigie ips pools --json`)",
                answer("pools", array_of("Pool")), &common)},
            "/api/pools/{pool}/allocations": {"get": allocations},
        }
    })
}
