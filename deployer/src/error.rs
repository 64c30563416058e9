//! The one error type of the crate. A message about an environment file
//! says where to look: `file:line:col: field 'services.web.replicas': …`.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{file}: cannot read the environment file: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{file}: the environment file is {len} bytes, more than the {max} accepted")]
    TooLarge {
        file: String,
        len: usize,
        max: usize,
    },

    /// Not YAML, or a rule of the environment format broken.
    #[error("{}: {}{message}", Place(file, *at), Field(field.as_deref()))]
    Invalid {
        file: String,
        at: Option<Location>,
        field: Option<String>,
        message: String,
    },

    /// Another environment already holds a name this one would take.
    #[error("{name} is already owned by environment {owner}: the auto-* names of two environments never overlap")]
    Collision { name: String, owner: String },

    #[error("host {host}: the port range {range} has no {wanted} free ports left ({used} in use)")]
    PortsExhausted {
        host: String,
        range: String,
        wanted: usize,
        used: usize,
    },

    #[error("host {host}: label address={value:?} is not an IPv4 address")]
    Address { host: String, value: String },

    /// Two hosts of the environment at one address (local hosts of one
    /// machine) would listen on the same port: ports an earlier deploy
    /// placed there, which this one keeps.
    #[error(
        "hosts {first} and {second} share the address {address} and would both listen on port {port} \
         (placed there by an earlier deploy, before their ports were kept apart): give each host its own \
         `address` label, or undeploy {environment} (`vigie deployments undeploy {environment}`) and deploy it again"
    )]
    SharedAddress {
        first: String,
        second: String,
        address: std::net::Ipv4Addr,
        port: u16,
        environment: String,
    },

    #[error("no host matches the environment's selector {selector:?}")]
    NoHosts { selector: String },

    #[error(
        "secret {name} of {environment} is not set: `vigie secrets set {environment} {name}` first"
    )]
    SecretNotSet { environment: String, name: String },

    #[error("the deployer's inventory record is unreadable: {0}")]
    Inventory(String),
}

/// A position in the YAML text, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

struct Place<'a>(&'a str, Option<Location>);

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)?;
        if let Some(at) = self.1 {
            write!(f, ":{}:{}", at.line, at.column)?;
        }
        Ok(())
    }
}

struct Field<'a>(Option<&'a str>);

impl fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(field) = self.0 {
            write!(f, "field '{field}': ")?;
        }
        Ok(())
    }
}
