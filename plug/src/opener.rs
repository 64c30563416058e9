//! Where a host's secrets are opened (issue 19): a `SecretFile` step
//! carries each value sealed by the tower for this agent's X25519 key;
//! the plug opens them with its secret key and hands the driver a plain
//! `File` (mode 0600) holding them — in memory only: the journal keeps the
//! sealed step as it came. The step's result never says what the file
//! holds (no digests: a hash of a short value can be guessed).

use std::borrow::Cow;
use std::fmt::Write;
use std::path::Path;

use vigie_wire::change::{Action, StepResult};

/// This host's key for opening sealed values.
pub struct Opener {
    secret: [u8; 32],
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Opener([redacted])")
    }
}

impl Opener {
    pub fn new(secret: [u8; 32]) -> Self {
        Self { secret }
    }

    /// A secret key file as `vigie keys gen` writes it (Z85 text).
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let secret: [u8; 32] = zmq::z85_decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("{}: not a Z85 secret key", path.display()))?;
        Ok(Self { secret })
    }
}

/// Single quotes for `sh`: what the replica's supervisor sources.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The action the driver applies for `action`: a `SecretFile` opened.
pub(crate) fn for_apply<'a>(
    opener: Option<&Opener>,
    action: &'a Action,
) -> Result<Cow<'a, Action>, String> {
    let Action::SecretFile {
        path,
        content,
        secrets,
        ..
    } = action
    else {
        return Ok(Cow::Borrowed(action));
    };
    let opener = opener.ok_or("this plug has no key to open secrets with")?;
    let mut text = String::from_utf8_lossy(content).into_owned();
    for var in secrets {
        let value = vigie_wire::secrets::open(&opener.secret, &var.sealed)
            .map_err(|e| format!("secret {} (version {}): {e}", var.name, var.version))?;
        let value = std::str::from_utf8(value.expose())
            .map_err(|_| format!("secret {} is not UTF-8", var.name))?;
        let _ = writeln!(text, "{}={}", var.var, sh_quote(value));
    }
    Ok(Cow::Owned(Action::File {
        path: path.clone(),
        content: text.into_bytes(),
        mode: Some(0o600),
    }))
}

/// The action the driver undoes: a `SecretFile`'s undo is its file's
/// (the previous content or absence, from the stash): nothing to open.
pub(crate) fn for_undo(action: &Action) -> Cow<'_, Action> {
    match action {
        Action::SecretFile { path, .. } => Cow::Owned(Action::File {
            path: path.clone(),
            content: Vec::new(),
            mode: Some(0o600),
        }),
        other => Cow::Borrowed(other),
    }
}

/// A result as reported: a `SecretFile`'s says nothing of the content.
pub(crate) fn redact(action: &Action, mut result: StepResult) -> StepResult {
    if let Action::SecretFile { secrets, .. } = action {
        result.before_digest = None;
        result.after_digest = None;
        if result.ok {
            result.summary = format!("wrote the env file with {} secret(s)", secrets.len());
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_wire::secrets::{seal, SealedVar, Secret};

    fn sealed_step(public: &[u8; 32], value: &str) -> Action {
        Action::SecretFile {
            path: "/srv/x/env".into(),
            environment: "shop/prod".into(),
            content: b"PORT='1'\n".to_vec(),
            secrets: vec![SealedVar {
                var: "DB_PASSWORD".into(),
                name: "db_password".into(),
                version: 3,
                sealed: seal(public, &Secret::new(value.as_bytes().to_vec())).expect("sealed"),
            }],
        }
    }

    #[test]
    fn the_plug_opens_its_own_secrets_into_a_private_file() {
        let key = crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng);
        let step = sealed_step(&key.public_key().to_bytes(), "it's s3cret");
        let opener = Opener::new(key.to_bytes());
        let opened = for_apply(Some(&opener), &step).expect("opens");
        let Action::File { content, mode, .. } = opened.as_ref() else {
            panic!("a file: {opened:?}");
        };
        assert_eq!(*mode, Some(0o600));
        assert_eq!(
            String::from_utf8_lossy(content),
            "PORT='1'\nDB_PASSWORD='it'\\''s s3cret'\n"
        );
        // The step as journaled and shown does not hold the value.
        assert!(!format!("{step:?}").contains("s3cret"));
    }

    #[test]
    fn another_hosts_key_or_none_opens_nothing() {
        let key = crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng);
        let other = crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng);
        let step = sealed_step(&key.public_key().to_bytes(), "s3cret");
        let err = for_apply(Some(&Opener::new(other.to_bytes())), &step).expect_err("refused");
        assert!(
            err.contains("db_password") && !err.contains("s3cret"),
            "{err}"
        );
        assert!(for_apply(None, &step).is_err());
        let mut result = StepResult::ok("wrote 30 bytes");
        result.after_digest = Some("abc".into());
        let shown = redact(&step, result);
        assert_eq!(shown.after_digest, None);
        assert!(!shown.summary.contains("30"));
    }
}
