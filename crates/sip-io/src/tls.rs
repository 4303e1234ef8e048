//! SIP over TLS (RFC 3261 §26.2, RFC 5630): a listener of its own (5061 by default) whose connections, once the
//! handshake is done, are flows like TCP's: the same framing, limits, idle timeout and connection table.
//!
//! Handshakes are bounded in time (`handshake_timeout`) and in number (`max_handshakes` at once; past that a new
//! connection is closed at once), so a peer that connects and says nothing, or plain text on the TLS port, costs
//! one small task for a few seconds and never holds up anyone else. The certificate and key come from PEM files
//! and can be read again while running ([`Transport::reload_tls`]): connections made after that get the new
//! certificate, those already up keep theirs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::{Proto, Transport};

/// The TLS listener's settings.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub listen: SocketAddr,
    /// PEM: the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// A handshake not done in this long is dropped.
    pub handshake_timeout: Duration,
    /// Handshakes in progress at once; a connection past this is closed at once.
    pub max_handshakes: usize,
    /// SIP over secure WebSocket (RFC 7118) listens here too, with the same certificate and bounds.
    pub wss_listen: Option<SocketAddr>,
}

/// Reads the certificate chain and key and makes the server configuration (TLS 1.2 and 1.3, no client
/// certificates). Errors name the file and what is wrong with it.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the certificate {} is not valid PEM: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("the certificate file {} holds no CERTIFICATE block", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read a private key from {}: {e}", key.display()))?;
    // ring, not aws-lc-rs: no C toolchain build for one more crypto library (the email client uses ring too).
    // rustls marks it deprecated for lacking post-quantum key exchange; SIP phones offer none either.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = key_exchange_groups();
    let provider = Arc::new(provider);
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not make a usable pair: {e}"))?;
    Ok(Arc::new(config))
}

/// Key exchange groups, most preferred first: X25519, then P-256, then P-384. The provider's own order puts
/// P-384 first, whose arithmetic in ring is generic code: measured, it cost 70 % of the daemon's CPU in a new
/// connection's handshake (bench/README.md). Phones offer X25519 or P-256.
pub fn key_exchange_groups() -> Vec<&'static dyn rustls::crypto::SupportedKxGroup> {
    use rustls::crypto::ring::kx_group;
    vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1]
}

type TlsStream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// A connection once its handshakes are done.
enum Stream {
    Tls(Box<TlsStream>),
    Ws(Box<crate::ws::WsStream>),
}

/// The listener's state, shared with its tasks.
#[derive(Debug)]
pub(crate) struct TlsState {
    pub(crate) local: SocketAddr,
    pub(crate) wss: Option<SocketAddr>,
    settings: TlsSettings,
    config: RwLock<Arc<ServerConfig>>,
    handshakes: Arc<Semaphore>,
    pub(crate) failed: AtomicU64,
    pub(crate) refused: AtomicU64,
}

impl TlsState {
    pub(crate) fn new(local: SocketAddr, wss: Option<SocketAddr>, settings: TlsSettings) -> Result<TlsState, String> {
        let config = server_config(&settings.cert, &settings.key)?;
        Ok(TlsState {
            local,
            wss,
            handshakes: Arc::new(Semaphore::new(settings.max_handshakes.max(1))),
            settings,
            config: RwLock::new(config),
            failed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    fn current(&self) -> Arc<ServerConfig> {
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the certificate and key files again; on error the one in use stays.
    pub(crate) fn reload(&self) -> Result<(), String> {
        let fresh = server_config(&self.settings.cert, &self.settings.key)?;
        match self.config.write() {
            Ok(mut c) => *c = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }
}

/// Accepts TLS connections on `listener`; for `Proto::Wss`, the WebSocket upgrade follows the TLS handshake
/// within the same time bound and handshake slot.
pub(crate) async fn accept_loop(t: Arc<Transport>, listener: TcpListener, proto: Proto) {
    let Some(tls) = t.tls.as_ref() else { return };
    while let Some((stream, addr)) = crate::tcp::accept(&t, &listener, proto.as_str()).await {
        if t.flows.len() >= t.config.max_connections {
            tracing::warn!(%addr, "connection limit reached; refusing");
            tls.refused.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let Ok(permit) = tls.handshakes.clone().try_acquire_owned() else {
            tracing::warn!(%addr, "too many TLS handshakes in progress; refusing");
            tls.refused.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
        let timeout = tls.settings.handshake_timeout;
        let t2 = t.clone();
        t.tracker.spawn(async move {
            let limits = t2.config.limits;
            let handshake = async {
                let tls = acceptor.accept(stream).await.map_err(|e| e.to_string())?;
                match proto {
                    Proto::Wss => crate::ws::upgrade(tls, limits).await.map(|ws| Stream::Ws(Box::new(ws))),
                    _ => Ok(Stream::Tls(Box::new(tls))),
                }
            };
            let done = tokio::select! {
                _ = t2.shutdown.cancelled() => return,
                r = tokio::time::timeout(timeout, handshake) => r,
            };
            drop(permit);
            let stream = match done {
                Ok(Ok(s)) => s,
                failed => {
                    if let Some(tls) = t2.tls.as_ref() {
                        tls.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    let why = failed.map_or_else(|_| "timed out".to_owned(), |r| r.err().unwrap_or_default());
                    return tracing::debug!(%addr, error = %why, proto = proto.as_str(), "handshake failed");
                }
            };
            let (id, rx) = crate::tcp::register_flow(&t2, addr);
            match stream {
                Stream::Tls(s) => crate::tcp::run_flow(t2, *s, addr, id, rx, Proto::Tls).await,
                Stream::Ws(ws) => crate::ws::run_flow(t2, *ws, addr, id, rx).await,
            }
        });
    }
}
