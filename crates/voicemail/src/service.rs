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
use switchboard_media_core::dtmf::Detector;
use switchboard_media_core::endpoint::Media;
use switchboard_media_core::player::{Clip, FRAME};
use switchboard_media_core::rtp;
use switchboard_media_core::wav;
use switchboard_sip_core::transaction::TimerConfig;
use switchboard_storage::{NewVoicemail, Store, StoreError};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::prompts::Prompts;
use crate::recorder::{self, Recorder};
use crate::uas::{self, Event, Gone, Invite, Uas};

#[derive(Debug, Clone)]
pub struct Config {
    /// Where messages are kept (`<dir>/<number digits>/<time>-<id>.wav`).
    pub dir: PathBuf,
    pub deposit: DepositConfig,
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

/// What the call tasks ask of the SIP task.
#[derive(Debug)]
enum Control {
    Accept { id: u64, rtp: SocketAddr, reply: oneshot::Sender<Option<Media>> },
    Reject { id: u64, code: u16, reason: &'static str },
    Hangup { id: u64 },
}

/// What the SIP task tells a call task.
#[derive(Debug)]
enum Signal {
    Media(Media),
    Key(char),
    Gone(Gone),
}

#[derive(Debug)]
struct Shared {
    cfg: Config,
    store: Arc<dyn Store>,
    prompts: Prompts,
    control: mpsc::UnboundedSender<Control>,
    shutdown: CancellationToken,
}

/// Recovers this node's unfinished messages, binds the SIP socket and starts serving. Returns the SIP address
/// the call machine sends diverted calls to.
pub async fn start(
    cfg: Config,
    store: Arc<dyn Store>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> Result<SocketAddr, StartError> {
    recover_unfinished(&cfg, &*store).await.map_err(StartError::Recover)?;
    let sock = UdpSocket::bind(SocketAddr::new(cfg.bind, 0)).await.map_err(StartError::Bind)?;
    let local = sock.local_addr().map_err(StartError::Bind)?;
    let uas_cfg = uas::Config {
        local,
        trusted: cfg.trusted,
        timers: TimerConfig { t1: cfg.t1_ms, t2: 4_000.max(cfg.t1_ms), t4: 5_000 },
        server_header: cfg.server_header.clone(),
    };
    let (control, control_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared { cfg, store, prompts: Prompts::embedded(), control, shutdown: shutdown.clone() });
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

/// One call: a message left in the mailbox of the number dialled.
async fn call(inv: Invite, shared: Arc<Shared>, signals: mpsc::UnboundedReceiver<Signal>) {
    let id = inv.id;
    let reject = |code, reason| {
        let _ = shared.control.send(Control::Reject { id, code, reason });
    };
    let number = match shared.store.number_by_e164(&inv.user).await {
        Ok(Some(n)) => n,
        Ok(None) => {
            tracing::info!(user = %inv.user, "voicemail: no such mailbox");
            return reject(404, "Not Found");
        }
        Err(e) => {
            tracing::error!(error = %e, "voicemail: store unavailable");
            return reject(500, "Server Internal Error");
        }
    };
    let sock = match UdpSocket::bind(SocketAddr::new(shared.cfg.bind, 0)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "voicemail: cannot bind an RTP socket");
            return reject(503, "Service Unavailable");
        }
    };
    let Ok(local) = sock.local_addr() else { return reject(503, "Service Unavailable") };
    let (reply, answered) = oneshot::channel();
    let rtp_addr = SocketAddr::new(shared.cfg.advertise, local.port());
    if shared.control.send(Control::Accept { id, rtp: rtp_addr, reply }).is_err() {
        return;
    }
    let Ok(Some(media)) = answered.await else { return };

    let digits: String = number.number.chars().filter(char::is_ascii_digit).collect();
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
            let _ = shared.control.send(Control::Hangup { id });
            return;
        }
    };
    let rec = match Recorder::create(&path) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, path = %path.display(), "voicemail: cannot create the message file");
            let _ = shared.store.delete_voicemail(row.id).await;
            let _ = shared.control.send(Control::Hangup { id });
            return;
        }
    };
    let deposit = Deposit::new(shared.cfg.deposit, greeting, shared.prompts.beep());
    let (outcome, hang_up) = record(&sock, media, deposit, rec, signals, &shared.shutdown).await;
    let (outcome, rec) = outcome;
    if hang_up {
        let _ = shared.control.send(Control::Hangup { id });
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
            Ok(()) => tracing::info!(number = %number.number, caller = %inv.caller, ms, end, "voicemail message left"),
            Err(e) => tracing::error!(error = %e, id = row.id, "voicemail: message kept but its row not updated"),
        },
        None => {
            tracing::info!(number = %number.number, caller = %inv.caller, end, "voicemail: nothing to keep");
            let _ = shared.store.delete_voicemail(row.id).await;
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
    sock: &UdpSocket,
    mut media: Media,
    mut deposit: Deposit,
    mut rec: Recorder,
    mut signals: mpsc::UnboundedReceiver<Signal>,
    shutdown: &CancellationToken,
) -> ((Outcome, Recorder), bool) {
    let mut out = RtpOut::new();
    let mut detector = Detector::new();
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut buf = [0u8; 2048];
    let mut samples = Vec::with_capacity(FRAME);
    let mut last_source: Option<SocketAddr> = None;
    let mut write_failed = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let mut frame = [0i16; FRAME];
                let tick = deposit.tick(&mut frame);
                let to = media.remote.or(last_source);
                if let (Some(to), false) = (to, media.hold) {
                    let audio = if tick == Tick::Audio { Some(&frame) } else { None };
                    let _ = sock.send_to(&out.packet(media.law, audio), to).await;
                }
                if let Tick::Finished(o) = tick {
                    return ((o, rec), true);
                }
            }
            r = sock.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { continue };
                let Ok((h, payload)) = rtp::read(buf.get(..n).unwrap_or_default()) else { continue };
                last_source = Some(from);
                if Some(h.payload_type) == media.telephone_event {
                    if let Some(key) = detector.on_packet(h.marker, h.timestamp, payload)
                        && let Some(o) = deposit.on_key(key)
                    {
                        return ((o, rec), true);
                    }
                } else if h.payload_type == media.law.payload_type() {
                    samples.clear();
                    samples.extend(payload.iter().map(|&c| media.law.decode(c)));
                    if deposit.on_audio(&samples) && !write_failed && let Err(e) = rec.write(&samples) {
                        tracing::error!(error = %e, "voicemail: writing the message failed; keeping what was written");
                        write_failed = true;
                    }
                }
            }
            s = signals.recv() => match s {
                Some(Signal::Media(m)) => media = m,
                Some(Signal::Key(key)) => {
                    if let Some(o) = deposit.on_key(key) {
                        return ((o, rec), true);
                    }
                }
                Some(Signal::Gone(gone)) => {
                    tracing::debug!(?gone, "voicemail: the caller has gone");
                    return ((deposit.on_hangup(), rec), false);
                }
                None => return ((deposit.on_hangup(), rec), false),
            },
            () = shutdown.cancelled() => return ((deposit.on_hangup(), rec), true),
        }
    }
}

/// The RTP stream we send: one SSRC, sequence and timestamp running on, the marker on the first packet.
#[derive(Debug)]
struct RtpOut {
    header: rtp::Header,
    payload: Vec<u8>,
}

impl RtpOut {
    fn new() -> RtpOut {
        let r = random_u64();
        let header = rtp::Header {
            payload_type: 0,
            marker: true,
            seq: r as u16,
            timestamp: (r >> 16) as u32,
            ssrc: (r >> 32) as u32,
        };
        RtpOut { header, payload: Vec::with_capacity(FRAME) }
    }

    /// The next packet: `audio`, or silence.
    fn packet(&mut self, law: switchboard_media_core::g711::Law, audio: Option<&[i16; FRAME]>) -> Vec<u8> {
        self.payload.clear();
        match audio {
            Some(frame) => self.payload.extend(frame.iter().map(|&s| law.encode(s))),
            None => self.payload.resize(FRAME, law.silence()),
        }
        self.header.payload_type = law.payload_type();
        let p = rtp::build(&self.header, &self.payload);
        self.header.marker = false;
        self.header.seq = self.header.seq.wrapping_add(1);
        self.header.timestamp = self.header.timestamp.wrapping_add(FRAME as u32);
        p
    }
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // Tags and SSRCs must differ between calls, not be secret; the clock will do if the OS cannot help.
    if getrandom::fill(&mut b).is_err() {
        return u64::try_from(unix_ms()).unwrap_or(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    u64::from_le_bytes(b)
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
