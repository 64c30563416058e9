//! The CLI's `--json`: the contract itself is `vigie_json`, shared with
//! the web console's HTTP API; here is only how a command prints it.

pub use vigie_json::*;

/// What a command that changed something says: its message as a line, or
/// as a `DoneJson` object.
pub fn done(
    format: crate::cmd::out::Format,
    command: &'static str,
    message: String,
) -> anyhow::Result<std::process::ExitCode> {
    match format {
        crate::cmd::out::Format::Json => crate::cmd::out::json(&DoneJson {
            ok: true,
            command,
            message,
        })?,
        crate::cmd::out::Format::Text => crate::cmd::out::line(&message)?,
    }
    Ok(std::process::ExitCode::SUCCESS)
}
