//! Email. Everything the daemon sends is queued in the store's outbox first ([`Store::enqueue_email`]); this
//! crate's sender claims due emails for its node, sends them over SMTP and settles each: sent, retried later
//! with back-off, or given up after the last attempt (the reason kept for `switchboard outbox`). Nothing queued
//! is lost to a restart, several nodes never send the same email, and a slow or failing SMTP server never
//! holds up a call: the sender is a task of its own.
//!
//! An email may carry an attachment (a voicemail message), read from the voicemail folder of the node that
//! recorded it: only that node sends it. An email that also names a voicemail message asks for that message to
//! be deleted once sent (a mailbox set to keep no copy): the sender reports it on its `sent` channel, and the
//! voicemail deletes it.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use switchboard_model::date::now_ms as unix_ms;
use switchboard_storage::{Email, Store};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain SMTP (a relay on the same host or network).
    None,
    /// STARTTLS required (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

impl TlsMode {
    pub fn parse(s: &str) -> Option<TlsMode> {
        match s {
            "none" => Some(TlsMode::None),
            "starttls" => Some(TlsMode::StartTls),
            "tls" => Some(TlsMode::Tls),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// Empty: no authentication.
    pub username: String,
    pub password: String,
    /// The sender, `Name <address>` or an address.
    pub from: String,
    /// One SMTP conversation at most this long.
    pub timeout: Duration,
    /// This node: it sends emails for any node, and those whose attachment it holds.
    pub node: String,
    /// Where attachments (voicemail messages) are read from.
    pub dir: PathBuf,
    /// The first retry waits this long; each next one twice as long, up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// Attempts before an email is given up.
    pub max_attempts: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("smtp.from: {0}")]
    From(String),
    #[error("smtp: {0}")]
    Transport(String),
}

/// Wakes the sender when something was queued (it also looks every few seconds on its own).
#[derive(Debug, Clone, Default)]
pub struct Waker(Arc<Notify>);

impl Waker {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// An email that went out, for whoever must act on it (delete the voicemail message it carried).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub id: i64,
    pub voicemail_id: Option<i64>,
}

/// How long a claim lasts: a node that dies mid-send frees its emails after this.
const LEASE_MS: i64 = 120_000;
/// How many emails one round takes.
const BATCH: i64 = 16;
/// How often the sender looks without being woken.
const POLL: Duration = Duration::from_secs(5);

/// Starts the sender. Returns the waker, and `Sent` reports for emails that asked for something after sending.
pub fn start(
    cfg: Config,
    store: Arc<dyn Store>,
    sent: mpsc::UnboundedSender<Sent>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> Result<Waker, ConfigError> {
    let from: Mailbox = cfg.from.parse().map_err(|e| ConfigError::From(format!("{:?}: {e}", cfg.from)))?;
    let transport = transport(&cfg)?;
    let waker = Waker::default();
    let sender = Sender { cfg, store, from, transport, sent };
    tracker.spawn(sender.run(waker.clone(), shutdown));
    Ok(waker)
}

fn transport(cfg: &Config) -> Result<AsyncSmtpTransport<Tokio1Executor>, ConfigError> {
    let tls = match cfg.tls {
        TlsMode::None => Tls::None,
        TlsMode::StartTls | TlsMode::Tls => {
            let params = TlsParameters::new(cfg.host.clone()).map_err(|e| ConfigError::Transport(e.to_string()))?;
            if cfg.tls == TlsMode::Tls { Tls::Wrapper(params) } else { Tls::Required(params) }
        }
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.clone())
        .port(cfg.port)
        .tls(tls)
        .timeout(Some(cfg.timeout));
    if !cfg.username.is_empty() {
        b = b.credentials(Credentials::new(cfg.username.clone(), cfg.password.clone()));
    }
    Ok(b.build())
}

/// When attempt `attempts` (1 = the first) failing is next tried, or `None` to give up.
pub fn retry_delay(attempts: i64, cfg: &Config) -> Option<Duration> {
    if attempts >= cfg.max_attempts {
        return None;
    }
    let doubling = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    Some(cfg.retry_min.saturating_mul(2u32.saturating_pow(doubling)).min(cfg.retry_max))
}

/// Why one email could not go.
#[derive(Debug)]
enum Failure {
    /// Worth trying again (connection refused, 4xx).
    Transient(String),
    /// Never going to work (a malformed address, 5xx, a missing attachment).
    Permanent(String),
}

struct Sender {
    cfg: Config,
    store: Arc<dyn Store>,
    from: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    sent: mpsc::UnboundedSender<Sent>,
}

impl Sender {
    async fn run(self, waker: Waker, shutdown: CancellationToken) {
        tracing::info!(host = %self.cfg.host, port = self.cfg.port, "email sender started");
        loop {
            let more = self.round().await;
            if !more {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = waker.0.notified() => {}
                    () = tokio::time::sleep(POLL) => {}
                }
            } else if shutdown.is_cancelled() {
                return;
            }
        }
    }

    /// Claims and sends one batch. `true`: the batch was full (there may be more due).
    async fn round(&self) -> bool {
        let now = unix_ms();
        let batch = match self.store.claim_emails(&self.cfg.node, now, LEASE_MS, BATCH).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "email: cannot read the outbox");
                return false;
            }
        };
        let full = batch.len() as i64 >= BATCH;
        for email in batch {
            self.settle(&email, self.send(&email).await).await;
        }
        full
    }

    async fn send(&self, email: &Email) -> Result<(), Failure> {
        let to: Mailbox = email
            .recipient
            .parse()
            .map_err(|e| Failure::Permanent(format!("bad recipient {:?}: {e}", email.recipient)))?;
        let builder = Message::builder().from(self.from.clone()).to(to).subject(email.subject.clone());
        let message = match &email.attachment {
            None => builder.singlepart(SinglePart::plain(email.body.clone())),
            Some(file) => {
                let path = self.cfg.dir.join(file);
                let bytes = tokio::fs::read(&path)
                    .await
                    .map_err(|e| Failure::Permanent(format!("attachment {}: {e}", path.display())))?;
                let name = email.attachment_name.clone().unwrap_or_else(|| "voicemail.wav".to_owned());
                let wav = ContentType::parse("audio/wav").map_err(|e| Failure::Permanent(e.to_string()))?;
                builder.multipart(
                    MultiPart::mixed()
                        .singlepart(SinglePart::plain(email.body.clone()))
                        .singlepart(Attachment::new(name).body(bytes, wav)),
                )
            }
        }
        .map_err(|e| Failure::Permanent(format!("cannot build the email: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(Failure::Permanent(e.to_string())),
            Err(e) => Err(Failure::Transient(e.to_string())),
        }
    }

    async fn settle(&self, email: &Email, outcome: Result<(), Failure>) {
        let attempts = email.attempts + 1;
        let (result, what) = match outcome {
            Ok(()) => {
                tracing::info!(id = email.id, kind = %email.kind, to = %email.recipient, "email sent");
                if email.voicemail_id.is_some() {
                    let _ = self.sent.send(Sent { id: email.id, voicemail_id: email.voicemail_id });
                }
                (self.store.email_sent(email.id, unix_ms()).await, "sent")
            }
            Err(Failure::Transient(reason)) => match retry_delay(attempts, &self.cfg) {
                Some(wait) => {
                    let at = unix_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
                    tracing::warn!(id = email.id, attempts, retry_in_secs = wait.as_secs(), %reason, "email failed; will retry");
                    (self.store.email_failed(email.id, &reason, Some(at)).await, "retry")
                }
                None => {
                    tracing::error!(id = email.id, attempts, %reason, "email failed; giving up");
                    (self.store.email_failed(email.id, &reason, None).await, "failed")
                }
            },
            Err(Failure::Permanent(reason)) => {
                tracing::error!(id = email.id, attempts, %reason, "email refused; giving up");
                (self.store.email_failed(email.id, &reason, None).await, "failed")
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, id = email.id, what, "email: cannot record the outcome");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config {
            host: "127.0.0.1".into(),
            port: 25,
            tls: TlsMode::None,
            username: String::new(),
            password: String::new(),
            from: "Voicemail <voicemail@example.net>".into(),
            timeout: Duration::from_secs(30),
            node: "n1".into(),
            dir: PathBuf::from("."),
            retry_min: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            max_attempts: 10,
        }
    }

    #[test]
    fn retries_double_up_to_the_cap_then_stop() {
        let c = cfg();
        let waits: Vec<Option<u64>> = (1..=11).map(|a| retry_delay(a, &c).map(|d| d.as_secs())).collect();
        assert_eq!(
            waits,
            [
                Some(60),
                Some(120),
                Some(240),
                Some(480),
                Some(960),
                Some(1920),
                Some(3600),
                Some(3600),
                Some(3600),
                None,
                None
            ]
        );
    }

    #[test]
    fn tls_modes_parse() {
        assert_eq!(TlsMode::parse("starttls"), Some(TlsMode::StartTls));
        assert_eq!(TlsMode::parse("tls"), Some(TlsMode::Tls));
        assert_eq!(TlsMode::parse("none"), Some(TlsMode::None));
        assert_eq!(TlsMode::parse("ssl"), None);
    }
}
