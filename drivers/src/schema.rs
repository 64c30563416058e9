//! The options each driver declares, so that a setup file is validated
//! (type, required, default) before anything starts.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    /// A filesystem path (relative paths are relative to the setup file).
    Path,
    String,
    Integer,
    Bool,
}

impl OptionKind {
    pub fn word(self) -> &'static str {
        match self {
            OptionKind::Path => "a path",
            OptionKind::String => "a string",
            OptionKind::Integer => "an integer",
            OptionKind::Bool => "true or false",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    pub name: &'static str,
    pub kind: OptionKind,
    pub required: bool,
    /// The value used when the option is absent (never with `required`).
    pub default: Option<&'static str>,
    pub help: &'static str,
}

const LOCAL: &[OptionSpec] = &[
    OptionSpec {
        name: "root",
        kind: OptionKind::Path,
        required: true,
        default: None,
        help: "the directory that is the host's root; it must exist",
    },
    // No default here: the plug's depends on its state dir's disk.
    OptionSpec {
        name: "logs_budget_mib",
        kind: OptionKind::Integer,
        required: false,
        default: None,
        help: "MiB the host's log store may hold (default 64, at most a quarter of the state dir's disk)",
    },
    OptionSpec {
        name: "logs_reserve_mib",
        kind: OptionKind::Integer,
        required: false,
        default: None,
        help: "MiB of free space logs never take, kept for the journal (default 16, at most a quarter of the disk)",
    },
];

const NOOP: &[OptionSpec] = &[];

/// Every driver a setup file may name.
pub const DRIVERS: &[&str] = &["local", "noop"];

/// The options of a driver, or `None` for an unknown driver.
pub fn options_of(driver: &str) -> Option<&'static [OptionSpec]> {
    match driver {
        "local" => Some(LOCAL),
        "noop" => Some(NOOP),
        _ => None,
    }
}
