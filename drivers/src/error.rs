//! The drivers' error type (`DriverError`).

use std::path::PathBuf;

/// Why a driver refused a step before touching the host, or could not
/// prepare it. Every variant names the path it is about.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("path {path} escapes the host root: `..` is not allowed")]
    PathEscapes { path: String },
    #[error("path {path}: {component} is a symlink; symlinks are not followed")]
    Symlink { path: String, component: String },
    #[error("path {path} names the host root itself")]
    IsRoot { path: String },
    #[error("path {path} is not a regular file")]
    NotAFile { path: String },
    #[error("bad host root {path}: {reason}")]
    BadRoot { path: PathBuf, reason: String },
    #[error("stash {path} is unusable: {reason}")]
    BadStash { path: PathBuf, reason: String },
    #[error("bad step: {0}")]
    BadStep(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DriverError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
