//! The media relay: every anchored call's RTP and RTCP pass through here.
//!
//! Forwarding 100,000 packets a second must never delay signalling, so the relay runs on its own OS thread with
//! its own single-threaded runtime; the SIP side talks to it only through a bounded command queue it never waits
//! on, and hears back through events. Each session (one call) is one task owning its four sockets (RTP and RTCP
//! for each side) and its latching state, so a packet is received, checked and sent without a lock or an
//! allocation.
//!
//! What to forward where is decided by `switchboard_media_core::latch`; which ports a call gets, by the engine
//! (it owns the port pool, so it can rewrite SDP at once). Here the ports are bound, and a port that cannot be
//! bound is reported (`Event::BindFailed`) for the engine to end the call and retire the port.

mod session;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use switchboard_media_core::latch::LatchConfig;
use tokio::sync::mpsc;

pub use switchboard_media_core::relay::{Command, Event, Remote, SessionStats, Side};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// The address the relay's sockets bind to (and that SDP announces, unless configured otherwise).
    pub bind: IpAddr,
    pub latch: LatchConfig,
    /// No RTP for this long (and nobody on hold): [`Event::Silent`]. 0: never.
    pub timeout_ms: u64,
}

/// Relay-wide counters (metrics later).
#[derive(Debug, Default)]
pub struct Counters {
    pub sessions: AtomicUsize,
    pub forwarded: AtomicU64,
    pub dropped: AtomicU64,
}

/// The SIP side's handle: sends commands without waiting.
#[derive(Debug, Clone)]
pub struct Relay {
    commands: mpsc::Sender<Command>,
    counters: Arc<Counters>,
}

/// Commands queued at most; past this the relay is overwhelmed and a new call should be refused.
const COMMAND_QUEUE: usize = 4096;

impl Relay {
    /// Starts the relay thread. It stops when every [`Relay`] handle is dropped (open sessions are closed).
    pub fn start(
        config: RelayConfig,
        events: mpsc::UnboundedSender<Event>,
    ) -> std::io::Result<(Relay, std::thread::JoinHandle<()>)> {
        let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
        let counters = Arc::new(Counters::default());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let shared = counters.clone();
        let thread = std::thread::Builder::new()
            .name("media-relay".into())
            .spawn(move || runtime.block_on(dispatch(config, rx, events, shared)))?;
        Ok((Relay { commands, counters }, thread))
    }

    /// Queues a command. `false`: the queue is full (the relay cannot keep up) or the relay has stopped.
    pub fn send(&self, command: Command) -> bool {
        self.commands.try_send(command).is_ok()
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }
}

async fn dispatch(
    config: RelayConfig,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::UnboundedSender<Event>,
    counters: Arc<Counters>,
) {
    let mut sessions: HashMap<u64, mpsc::UnboundedSender<session::Control>> = HashMap::new();
    while let Some(command) = commands.recv().await {
        match command {
            Command::Open { id, a_port, b_port, a, b } => {
                if sessions.contains_key(&id) {
                    tracing::warn!(session = id, "media session opened twice; ignored");
                    continue;
                }
                match session::Session::bind(id, config, [a_port, b_port], [a, b]) {
                    Ok(s) => {
                        let (tx, rx) = mpsc::unbounded_channel();
                        sessions.insert(id, tx);
                        counters.sessions.fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(s.run(rx, events.clone(), counters.clone()));
                    }
                    Err(port) => {
                        let _ = events.send(Event::BindFailed { id, port });
                    }
                }
            }
            Command::Remote { id, side, remote } => {
                if let Some(s) = sessions.get(&id) {
                    let _ = s.send(session::Control::Remote(side, remote));
                }
            }
            Command::Close { id } => {
                // Dropping the session's control channel ends its task, which closes its sockets.
                sessions.remove(&id);
            }
        }
    }
}
