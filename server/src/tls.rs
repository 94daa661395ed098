//! HTTPS on the listeners (`--tls-cert` / `--tls-key`), so a deployment
//! off loopback needs no TLS-terminating proxy in front.
//!
//! Why rustls with its ring provider: it is the TLS stack already in the
//! build (reqwest and sqlx use it that way), so serving TLS adds no second
//! stack and no rebuild. Why a listener of our own rather than another
//! server crate: the HTTP stays where it is for plain connections
//! ([`crate::http::connection`]: graceful shutdown, connect info, hyper's
//! HTTP/1.1, waiting requests in a small footprint) and only gets a
//! different [`Listener`](axum::serve::Listener) — one that runs each TLS handshake
//! in its own task with a time limit, so a client that connects and says
//! nothing cannot hold up the next one.
//!
//! Everything that can be wrong with the files is found at start, before
//! anything listens, as a typed [`TlsError`]: unreadable files, no
//! certificate, no key, a key file group or other can read (like the KEK
//! and the operator token), and a key that does not belong to the
//! certificate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::TlsFiles;

/// A client must finish its TLS handshake within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const ACCEPTED_QUEUE: usize = 64;

/// Why the TLS files cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS certificate file {path}: {source}")]
    ReadCertificate {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS key file {path}: {source}")]
    ReadKey {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS certificate file {path} holds no PEM CERTIFICATE block{detail}")]
    NoCertificate { path: PathBuf, detail: String },
    #[error(
        "TLS key file {path} holds no PEM private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY){detail}"
    )]
    NoKey { path: PathBuf, detail: String },
    #[error("TLS key file {path} is readable by group/other (mode {mode:o}); chmod 600 it")]
    InsecureKeyFile { path: PathBuf, mode: u32 },
    #[error(
        "TLS key in {key} does not belong to the certificate in {cert} (their public keys differ)"
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("TLS key in {key} cannot be used with the certificate in {cert}: {message}")]
    Unusable {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
}

fn detail(e: impl std::fmt::Display) -> String {
    format!(" ({e})")
}

/// Reads the key file, refusing one group or other can read (mode bits 077).
fn read_private(path: &Path) -> Result<Vec<u8>, TlsError> {
    let err = |source| TlsError::ReadKey {
        path: path.to_owned(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(err)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(TlsError::InsecureKeyFile {
                path: path.to_owned(),
                mode,
            });
        }
    }
    std::fs::read(path).map_err(err)
}

/// Loads and checks the certificate chain and key: the rustls server
/// configuration both listeners serve (HTTP/1.1 over ALPN).
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cert_pem = std::fs::read(&files.cert).map_err(|source| TlsError::ReadCertificate {
        path: files.cert.clone(),
        source,
    })?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::NoCertificate {
            path: files.cert.clone(),
            detail: detail(e),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
            detail: String::new(),
        });
    }
    let key_pem = zeroize::Zeroizing::new(read_private(&files.key)?);
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
        path: files.key.clone(),
        detail: match e {
            rustls::pki_types::pem::Error::NoItemsFound => String::new(),
            other => detail(other),
        },
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let unusable = |message: String| TlsError::Unusable {
        cert: files.cert.clone(),
        key: files.key.clone(),
        message,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| unusable(e.to_string()))?
        .with_no_client_auth()
        // Checks the key against the leaf's public key (rustls `keys_match`).
        .with_single_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                TlsError::KeyMismatch {
                    cert: files.cert.clone(),
                    key: files.key.clone(),
                }
            }
            other => unusable(other.to_string()),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TCP listener whose connections arrive TLS-handshaken.
pub struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp`; each handshake runs in its own task
    /// (bounded by [`HANDSHAKE_TIMEOUT`]). Accepting stops when the
    /// listener is dropped (e.g. at graceful shutdown).
    pub fn new(
        tcp: TcpListener,
        config: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, accepted) = mpsc::channel(ACCEPTED_QUEUE);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    _ = tx.closed() => return,
                    r = tcp.accept() => match r {
                        Ok(c) => c,
                        Err(e) => {
                            // Like axum's own accept loop: e.g. out of file descriptors.
                            tracing::warn!(error = %e, "accepting a connection failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                // (see run.rs: SSE events are small writes that must leave at once)
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY not set");
                }
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { accepted, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(c) => c,
            // The accept task only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
