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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not make a usable pair: {e}"))?;
    Ok(Arc::new(config))
}

/// The listener's state, shared with its tasks.
#[derive(Debug)]
pub(crate) struct TlsState {
    pub(crate) local: SocketAddr,
    settings: TlsSettings,
    config: RwLock<Arc<ServerConfig>>,
    handshakes: Arc<Semaphore>,
    pub(crate) failed: AtomicU64,
    pub(crate) refused: AtomicU64,
}

impl TlsState {
    pub(crate) fn new(local: SocketAddr, settings: TlsSettings) -> Result<TlsState, String> {
        let config = server_config(&settings.cert, &settings.key)?;
        Ok(TlsState {
            local,
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

pub(crate) async fn accept_loop(t: Arc<Transport>, listener: TcpListener) {
    let Some(tls) = t.tls.as_ref() else { return };
    loop {
        let (stream, addr) = tokio::select! {
            _ = t.shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "tls accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
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
            let handshake = tokio::select! {
                _ = t2.shutdown.cancelled() => return,
                r = tokio::time::timeout(timeout, acceptor.accept(stream)) => r,
            };
            drop(permit);
            let stream = match handshake {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    if let Some(tls) = t2.tls.as_ref() {
                        tls.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    return tracing::debug!(%addr, error = %e, "tls handshake failed");
                }
                Err(_) => {
                    if let Some(tls) = t2.tls.as_ref() {
                        tls.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    return tracing::debug!(%addr, "tls handshake timed out");
                }
            };
            let (id, rx) = crate::tcp::register_flow(&t2, addr);
            crate::tcp::run_flow(t2, stream, addr, id, rx, Proto::Tls).await;
        });
    }
}
