//! TLS for a console bound beyond loopback (rustls, ring): the operator's
//! own certificate and key, or else a self-signed certificate made at the
//! first start into `DATA/keys/web.crt` (key `web.key`, mode 0600) and
//! kept, so the fingerprint an operator pinned stays. Handshakes run on
//! their own tasks: a slow or silent client holds up no other.

use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::error::WebError;

/// How long a client has to finish its handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Where the certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFiles {
    /// The operator's own (PEM): the certificate chain and its key.
    Own { cert: PathBuf, key: PathBuf },
    /// Made at the first start into this directory (`DATA/keys`).
    Made { keys: PathBuf },
}

/// The generated certificate's file in `keys`.
pub fn made_cert(keys: &Path) -> PathBuf {
    keys.join("web.crt")
}

fn made_key(keys: &Path) -> PathBuf {
    keys.join("web.key")
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> WebError + '_ {
    move |e| WebError::Tls(format!("{}: {e}", path.display()))
}

/// Writes `bytes` to a new file of `mode` (never over an existing one).
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WebError> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Makes the self-signed certificate for `addr` (and `localhost`), unless
/// one is there.
fn make(keys: &Path, addr: SocketAddr) -> Result<(), WebError> {
    let (cert, key) = (made_cert(keys), made_key(keys));
    if cert.exists() && key.exists() {
        return Ok(());
    }
    let mut names = vec![addr.ip().to_string(), "localhost".to_owned()];
    if addr.ip().is_unspecified() {
        names.push("127.0.0.1".to_owned());
    }
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|e| WebError::Tls(format!("making a certificate: {e}")))?;
    std::fs::create_dir_all(keys).map_err(io(keys))?;
    write_new(&key, made.key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_new(&cert, made.cert.pem().as_bytes(), 0o644)?;
    tracing::info!(event = "web_certificate_made", cert = %cert.display());
    Ok(())
}

/// SHA-256 of a certificate, as `openssl x509 -fingerprint -sha256` says
/// it (for pinning).
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The server's TLS settings, the certificate made first if need be.
pub fn server_config(
    files: &TlsFiles,
    addr: SocketAddr,
) -> Result<Arc<rustls::ServerConfig>, WebError> {
    let (cert, key) = match files {
        TlsFiles::Own { cert, key } => (cert.clone(), key.clone()),
        TlsFiles::Made { keys } => {
            make(keys, addr)?;
            (made_cert(keys), made_key(keys))
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .and_then(|i| i.collect::<Result<_, _>>())
        .map_err(|e| WebError::Tls(format!("{}: {e}", cert.display())))?;
    let first = chain
        .first()
        .ok_or_else(|| WebError::Tls(format!("{}: no certificate in it", cert.display())))?;
    tracing::info!(event = "web_certificate", cert = %cert.display(), sha256 = %fingerprint(first));
    let key = PrivateKeyDer::from_pem_file(&key)
        .map_err(|e| WebError::Tls(format!("{}: {e}", key.display())))?;
    // ring, not aws-lc-rs: no large C build; the cost is no post-quantum
    // key exchange, which rustls now flags (ARCHITECTURE.md, known limits).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| WebError::Tls(format!("the certificate and its key: {e}")))?;
    Ok(Arc::new(config))
}

/// A listener whose connections are TLS, handshaken off the accept loop.
pub struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(event = "web_accept_failed", error = %e);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(event = "tls_refused", peer = %peer, error = %e);
                        }
                        Err(_) => {
                            tracing::debug!(event = "tls_refused", peer = %peer, error = "handshake timeout")
                        }
                    }
                });
            }
        });
        Ok(Self { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept loop never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_made_certificate_is_kept_and_its_key_is_the_owner_s_only() {
        let dir = tempfile::tempdir().unwrap();
        let addr: SocketAddr = "192.0.2.10:7443".parse().unwrap();
        let files = TlsFiles::Made {
            keys: dir.path().join("keys"),
        };
        server_config(&files, addr).unwrap();
        let keys = dir.path().join("keys");
        let mode = std::fs::metadata(made_key(&keys))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let first = std::fs::read(made_cert(&keys)).unwrap();
        server_config(&files, addr).unwrap();
        assert_eq!(
            std::fs::read(made_cert(&keys)).unwrap(),
            first,
            "made again"
        );
    }

    #[test]
    fn a_broken_key_file_is_said() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, "not a certificate").unwrap();
        std::fs::write(&key, "nor a key").unwrap();
        let e = server_config(
            &TlsFiles::Own { cert, key },
            "10.0.0.1:443".parse().unwrap(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("c.pem"), "{e}");
    }
}
