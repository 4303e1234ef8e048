//! The voicemail driver: one task owns the SIP socket and the [`Uas`]; each call is a task with its own RTP
//! socket that plays prompts every 20 ms, reads the caller's audio and keys, and records.
//!
//! Messages: the row is stored (status `recording`) before the first sample, the WAV file grows with a valid
//! header, and the row becomes `new` with its duration once the file is synced. At start, [`start`] recovers what
//! this node was recording when it last stopped.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use switchboard_media_core::deposit::{Deposit, DepositConfig, Outcome, Tick};
use switchboard_media_core::endpoint::Media;
use switchboard_media_core::player::{Clip, FRAME};
use switchboard_media_core::retrieval::RetrievalConfig;
use switchboard_media_core::wav;
use switchboard_sip_core::transaction::TimerConfig;
use switchboard_storage::{NewVoicemail, Store, StoreError, VoicemailStatus};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::prompts::Prompts;
use crate::recorder::{self, Recorder};
use crate::session::{Input, Session};
use crate::uas::{self, Event, Gone, Invite, Uas};

#[derive(Debug, Clone)]
pub struct Config {
    /// Where messages are kept (`<dir>/<number digits>/<time>-<id>.wav`).
    pub dir: PathBuf,
    pub deposit: DepositConfig,
    pub retrieval: RetrievalConfig,
    /// Wrong PINs in a row (across calls) that lock a mailbox, and for how long.
    pub pin_lock_after: i64,
    pub pin_lock_ms: i64,
    /// The address the SIP and RTP sockets bind (ports are the system's choice).
    pub bind: IpAddr,
    /// The address our SDP names (where RTP reaches us).
    pub advertise: IpAddr,
    /// The daemon's SIP address, the only one allowed to call.
    pub trusted: SocketAddr,
    pub node: String,
    pub t1_ms: u64,
    pub server_header: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot bind the voicemail SIP socket: {0}")]
    Bind(std::io::Error),
    #[error("cannot recover unfinished messages: {0}")]
    Recover(StoreError),
}

/// The Request-URI user of a call to listen to messages.
const RETRIEVAL_CODE: &str = "777";

/// A mailbox's counts, for the message-waiting lamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxCounts {
    /// E.164.
    pub number: String,
    pub new: u32,
    pub saved: u32,
    /// As found at start (nobody need be told at once), rather than a change.
    pub initial: bool,
}

/// What the call tasks ask of the SIP task.
#[derive(Debug)]
pub(crate) enum Control {
    Accept { id: u64, rtp: SocketAddr, reply: oneshot::Sender<Option<Media>> },
    Reject { id: u64, code: u16, reason: &'static str },
    Hangup { id: u64 },
}

/// What the SIP task tells a call task.
#[derive(Debug)]
pub(crate) enum Signal {
    Media(Media),
    Key(char),
    Gone(Gone),
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) cfg: Config,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) prompts: Prompts,
    pub(crate) control: mpsc::UnboundedSender<Control>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) counts: mpsc::UnboundedSender<MailboxCounts>,
    /// Wakes the email sender after something was queued (`None`: this node sends no email).
    pub(crate) mail: Option<switchboard_notify::Waker>,
}

impl Shared {
    pub(crate) fn reject(&self, id: u64, code: u16, reason: &'static str) {
        let _ = self.control.send(Control::Reject { id, code, reason });
    }

    pub(crate) fn hang_up(&self, id: u64) {
        let _ = self.control.send(Control::Hangup { id });
    }

    /// Queues the message for its mailbox's email address, if it has one.
    async fn email_message(&self, number: &switchboard_storage::Number, m: &switchboard_storage::Voicemail, ms: u64) {
        let mailbox = match self.store.mailbox(number.id).await {
            Ok(Some(mb)) => mb,
            Ok(None) => return,
            Err(e) => return tracing::error!(error = %e, "voicemail: cannot read the mailbox's email settings"),
        };
        let Some(to) = mailbox.email else { return };
        let when = switchboard_model::date::local_minute(m.received_at, self.cfg.retrieval.utc_offset_mins);
        let from = match &m.caller_name {
            Some(name) => format!("{name} <{}>", m.caller),
            None => m.caller.clone(),
        };
        let length = format!("{}:{:02}", ms / 60_000, ms / 1000 % 60);
        let digits = mailbox_dir(&number.number);
        let body = format!(
            "You have a new voicemail message for {}.\r\n\r\nFrom: {from}\r\nReceived: {when}\r\n\
             Length: {length}\r\n\r\nThe message is attached as a WAV file. Dial 777 from your phone to listen, \
             save or delete it.\r\n",
            number.number
        );
        let new = switchboard_storage::NewEmail {
            kind: "voicemail".into(),
            recipient: to,
            subject: format!("Voicemail from {from} for {} ({length})", number.number),
            body,
            attachment: Some(m.file.clone()),
            attachment_name: Some(format!("voicemail-{digits}-{}.wav", when.replace([' ', ':'], "-"))),
            voicemail_id: (!mailbox.email_keep).then_some(m.id),
            node: Some(self.cfg.node.clone()),
            dedupe: Some(format!("voicemail:{}", m.id)),
        };
        match self.store.enqueue_email(&new).await {
            Ok(_) => {
                if let Some(w) = &self.mail {
                    w.wake();
                }
            }
            Err(e) => tracing::error!(error = %e, "voicemail: cannot queue the email"),
        }
    }

    /// Counts a mailbox again and tells the lamp.
    pub(crate) async fn mailbox_changed(&self, number_id: i64, number: &str) {
        match self.store.list_voicemails(number_id).await {
            Ok(list) => {
                let count = |s| u32::try_from(list.iter().filter(|m| m.status == s).count()).unwrap_or(u32::MAX);
                let counts = MailboxCounts {
                    number: number.to_owned(),
                    new: count(VoicemailStatus::New),
                    saved: count(VoicemailStatus::Saved),
                    initial: false,
                };
                let _ = self.counts.send(counts);
            }
            Err(e) => tracing::error!(error = %e, "voicemail: cannot count a mailbox for the lamp"),
        }
    }
}

/// Answers call `id` with a fresh RTP socket. `None`: refused (the caller is told) or gone.
pub(crate) async fn answer(shared: &Shared, id: u64) -> Option<Session> {
    let sock = match UdpSocket::bind(SocketAddr::new(shared.cfg.bind, 0)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "voicemail: cannot bind an RTP socket");
            shared.reject(id, 503, "Service Unavailable");
            return None;
        }
    };
    let Ok(local) = sock.local_addr() else {
        shared.reject(id, 503, "Service Unavailable");
        return None;
    };
    let (reply, answered) = oneshot::channel();
    let rtp = SocketAddr::new(shared.cfg.advertise, local.port());
    shared.control.send(Control::Accept { id, rtp, reply }).ok()?;
    let media = answered.await.ok()??;
    Some(Session::new(sock, media))
}

/// Recovers this node's unfinished messages, binds the SIP socket and starts serving. Returns the SIP address
/// the call machine sends diverted calls to.
/// What the voicemail is connected to besides the store.
#[derive(Debug)]
pub struct Links {
    /// Mailbox counts for the message-waiting lamp.
    pub counts: mpsc::UnboundedSender<MailboxCounts>,
    /// Wakes the email sender (`None`: this node sends no email).
    pub mail: Option<switchboard_notify::Waker>,
    /// Emails sent that carried a message its mailbox keeps no copy of: the message is deleted.
    pub emailed: mpsc::UnboundedReceiver<switchboard_notify::Sent>,
}

pub async fn start(
    cfg: Config,
    store: Arc<dyn Store>,
    links: Links,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> Result<SocketAddr, StartError> {
    let Links { counts, mail, emailed } = links;
    recover_unfinished(&cfg, &*store).await.map_err(StartError::Recover)?;
    for (number, new, saved) in store.voicemail_counts().await.map_err(StartError::Recover)? {
        let n = |v: i64| u32::try_from(v).unwrap_or(0);
        let _ = counts.send(MailboxCounts { number, new: n(new), saved: n(saved), initial: true });
    }
    let sock = UdpSocket::bind(SocketAddr::new(cfg.bind, 0)).await.map_err(StartError::Bind)?;
    let local = sock.local_addr().map_err(StartError::Bind)?;
    let uas_cfg = uas::Config {
        local,
        trusted: cfg.trusted,
        timers: TimerConfig { t1: cfg.t1_ms, t2: 4_000.max(cfg.t1_ms), t4: 5_000 },
        server_header: cfg.server_header.clone(),
    };
    let (control, control_rx) = mpsc::unbounded_channel();
    let prompts = Prompts::embedded();
    let shared = Arc::new(Shared { cfg, store, prompts, control, shutdown: shutdown.clone(), counts, mail });
    tracker.spawn(delete_emailed(shared.clone(), emailed));
    let uas = Uas::new(uas_cfg, random_u64());
    tracker.spawn(run(sock, uas, shared, control_rx, tracker.clone()));
    tracing::info!(%local, "voicemail listening");
    Ok(local)
}

/// Messages this node was recording when it stopped: each file's header is made exact and the message kept if
/// long enough; a missing or unreadable file drops the row.
async fn recover_unfinished(cfg: &Config, store: &dyn Store) -> Result<(), StoreError> {
    for m in store.unfinished_voicemails(&cfg.node).await? {
        let path = cfg.dir.join(&m.file);
        let recovered = tokio::task::spawn_blocking(move || recorder::recover(&path)).await;
        match recovered {
            Ok(Ok(ms)) if ms >= cfg.deposit.min_ms => {
                store.finish_voicemail(m.id, i64::try_from(ms).unwrap_or(i64::MAX)).await?;
                tracing::warn!(id = m.id, file = %m.file, ms, "recovered a message cut short by a stop");
            }
            other => {
                tracing::warn!(id = m.id, file = %m.file, outcome = ?other, "dropped an unfinished message too short to keep");
                let _ = std::fs::remove_file(cfg.dir.join(&m.file));
                match store.delete_voicemail(m.id).await {
                    Ok(()) | Err(StoreError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(())
}

async fn run(
    sock: UdpSocket,
    mut uas: Uas,
    shared: Arc<Shared>,
    mut control: mpsc::UnboundedReceiver<Control>,
    tracker: TaskTracker,
) {
    let epoch = Instant::now();
    let now = || u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut calls: HashMap<u64, mpsc::UnboundedSender<Signal>> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    let mut stopping = false;
    loop {
        let wake = uas.poll_timeout().map_or(epoch + Duration::from_secs(3600), |t| epoch + Duration::from_millis(t));
        tokio::select! {
            () = shared.shutdown.cancelled(), if !stopping => {
                // Calls finish their messages and hang up; new calls are refused from here on.
                stopping = true;
            }
            r = sock.recv_from(&mut buf) => match r {
                Ok((n, from)) => uas.on_datagram(buf.get(..n).unwrap_or_default(), from, now()),
                Err(e) => tracing::debug!(error = %e, "voicemail SIP socket"),
            },
            Some(c) = control.recv() => match c {
                Control::Accept { id, rtp, reply } => {
                    let _ = reply.send(uas.accept(id, rtp, now()).ok());
                }
                Control::Reject { id, code, reason } => uas.reject(id, code, reason, now()),
                Control::Hangup { id } => {
                    calls.remove(&id);
                    uas.hangup(id, now());
                }
            },
            () = tokio::time::sleep_until(wake) => uas.on_timeout(now()),
        }
        while let Some(ev) = uas.poll_event() {
            match ev {
                Event::Invite(inv) if stopping => uas.reject(inv.id, 503, "Service Unavailable", now()),
                Event::Invite(inv) => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    calls.insert(inv.id, tx);
                    tracker.spawn(call(inv, shared.clone(), rx));
                }
                Event::Media { id, media } => send(&calls, id, Signal::Media(media)),
                Event::Key { id, key } => send(&calls, id, Signal::Key(key)),
                Event::Ended { id, gone } => {
                    send(&calls, id, Signal::Gone(gone));
                    calls.remove(&id);
                }
            }
        }
        while let Some(d) = uas.poll_output() {
            if let Err(e) = sock.send_to(&d.bytes, d.to).await {
                tracing::debug!(error = %e, to = %d.to, "voicemail SIP send");
            }
        }
        if stopping && uas.calls() == 0 && calls.is_empty() {
            break;
        }
    }
}

fn send(calls: &HashMap<u64, mpsc::UnboundedSender<Signal>>, id: u64, s: Signal) {
    if let Some(tx) = calls.get(&id) {
        let _ = tx.send(s);
    }
}

/// One call: `777` (listening), or a message left in the mailbox of the number dialled.
async fn call(inv: Invite, shared: Arc<Shared>, signals: mpsc::UnboundedReceiver<Signal>) {
    if inv.user == RETRIEVAL_CODE {
        return crate::listen::listen(inv, shared, signals).await;
    }
    let id = inv.id;
    let number = match shared.store.number_by_e164(&inv.user).await {
        Ok(Some(n)) => n,
        Ok(None) => {
            tracing::info!(user = %inv.user, "voicemail: no such mailbox");
            return shared.reject(id, 404, "Not Found");
        }
        Err(e) => {
            tracing::error!(error = %e, "voicemail: store unavailable");
            return shared.reject(id, 500, "Server Internal Error");
        }
    };
    let Some(session) = answer(&shared, id).await else { return };
    let digits = mailbox_dir(&number.number);
    let received_at = unix_ms();
    let file = format!("{digits}/{received_at}-{:08x}.wav", random_u64() as u32);
    let path = shared.cfg.dir.join(&file);
    let new = NewVoicemail {
        number_id: number.id,
        caller: inv.caller.clone(),
        caller_name: inv.caller_name.clone(),
        received_at,
        file: file.clone(),
        node: shared.cfg.node.clone(),
    };
    let greeting = own_greeting(&shared.cfg.dir.join(&digits)).await;
    let greeting = greeting.unwrap_or_else(|| shared.prompts.default_greeting(&number.number));
    let row = match shared.store.create_voicemail(&new).await {
        Ok(row) => row,
        Err(e) => {
            tracing::error!(error = %e, "voicemail: cannot store the message row; hanging up");
            shared.hang_up(id);
            return;
        }
    };
    let rec = match Recorder::create(&path) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, path = %path.display(), "voicemail: cannot create the message file");
            let _ = shared.store.delete_voicemail(row.id).await;
            shared.hang_up(id);
            return;
        }
    };
    let deposit = Deposit::new(shared.cfg.deposit, greeting, shared.prompts.beep());
    let (outcome, rec, hang_up) = record(session, deposit, rec, signals, &shared.shutdown).await;
    if hang_up {
        shared.hang_up(id);
    }
    let kept = match outcome {
        Outcome::Keep { samples, .. } => match rec.finish(samples) {
            Ok(ms) => Some(ms),
            Err(e) => {
                tracing::error!(error = %e, file, "voicemail: cannot finish the message file");
                None
            }
        },
        Outcome::Discard { .. } => {
            let _ = rec.discard();
            None
        }
    };
    let end = outcome.end().as_str();
    match kept {
        Some(ms) => match shared.store.finish_voicemail(row.id, i64::try_from(ms).unwrap_or(i64::MAX)).await {
            Ok(()) => {
                tracing::info!(number = %number.number, caller = %inv.caller, ms, end, "voicemail message left");
                shared.email_message(&number, &row, ms).await;
                shared.mailbox_changed(number.id, &number.number).await;
            }
            Err(e) => tracing::error!(error = %e, id = row.id, "voicemail: message kept but its row not updated"),
        },
        None => {
            tracing::info!(number = %number.number, caller = %inv.caller, end, "voicemail: nothing to keep");
            let _ = shared.store.delete_voicemail(row.id).await;
        }
    }
}

/// Deletes messages once emailed when their mailbox keeps no copy, and tells the lamp.
async fn delete_emailed(shared: Arc<Shared>, mut emailed: mpsc::UnboundedReceiver<switchboard_notify::Sent>) {
    while let Some(sent) = emailed.recv().await {
        let Some(id) = sent.voicemail_id else { continue };
        let Ok(Some(m)) = shared.store.voicemail(id).await else { continue };
        if let Err(e) = shared.store.delete_voicemail(id).await {
            tracing::error!(error = %e, id, "voicemail: cannot delete an emailed message");
            continue;
        }
        let _ = tokio::fs::remove_file(shared.cfg.dir.join(&m.file)).await;
        tracing::info!(id, "voicemail: message emailed and deleted (the mailbox keeps no copy)");
        if let Ok(Some(n)) = shared.store.number(m.number_id).await {
            shared.mailbox_changed(n.id, &n.number).await;
        }
    }
}

/// The customer's own greeting, if they recorded one (`<dir>/<digits>/greeting.wav`).
async fn own_greeting(dir: &Path) -> Option<Vec<Clip>> {
    let bytes = tokio::fs::read(dir.join("greeting.wav")).await.ok()?;
    let samples = wav::read_samples(&bytes)?;
    Some(vec![Clip::from(samples)])
}

/// Plays and records until the machine finishes or the caller goes. Returns the outcome with the recorder, and
/// whether we must hang up (the caller has not).
async fn record(
    mut session: Session,
    mut deposit: Deposit,
    mut rec: Recorder,
    mut signals: mpsc::UnboundedReceiver<Signal>,
    shutdown: &CancellationToken,
) -> (Outcome, Recorder, bool) {
    let mut write_failed = false;
    loop {
        match session.next(&mut signals, shutdown).await {
            Input::Tick => {
                let mut frame = [0i16; FRAME];
                let tick = deposit.tick(&mut frame);
                session.send(if tick == Tick::Audio { Some(&frame) } else { None }).await;
                if let Tick::Finished(o) = tick {
                    return (o, rec, true);
                }
            }
            Input::Key(key) => {
                if let Some(o) = deposit.on_key(key) {
                    return (o, rec, true);
                }
            }
            Input::Audio => {
                if deposit.on_audio(session.samples())
                    && !write_failed
                    && let Err(e) = rec.write(session.samples())
                {
                    tracing::error!(error = %e, "voicemail: writing the message failed; keeping what was written");
                    write_failed = true;
                }
            }
            Input::Gone => return (deposit.on_hangup(), rec, false),
            Input::Shutdown => return (deposit.on_hangup(), rec, true),
        }
    }
}

pub(crate) fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // Tags and SSRCs must differ between calls, not be secret; the clock will do if the OS cannot help.
    if getrandom::fill(&mut b).is_err() {
        return u64::try_from(unix_ms()).unwrap_or(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    u64::from_le_bytes(b)
}

/// The folder under `voicemail.dir` of a number's messages and greeting: its digits.
pub(crate) fn mailbox_dir(number: &str) -> String {
    number.chars().filter(char::is_ascii_digit).collect()
}

pub(crate) use switchboard_model::date::now_ms as unix_ms;
