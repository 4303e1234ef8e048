//! Media anchoring decisions: which relay ports a call gets (the engine owns the pool, so SDP can be rewritten
//! at once, before the relay has bound anything), what the relay is told, and what its reports mean for calls.

use std::collections::HashMap;
use std::net::IpAddr;
use switchboard_sip_core::transport::Proto;

use switchboard_b2bua::{Anchor, MediaPlan, Plan};
use switchboard_media_core::ports::{PortPair, PortPool};
use switchboard_media_core::relay::{Command, Event, Remote};

use crate::calls::SipHop;
use crate::dispatch::{Engine, Output};

/// `[media]` in the engine's terms; absent when media is not anchored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSettings {
    /// The relay's port range (pairs: even RTP port, odd RTCP port).
    pub port_min: u16,
    pub port_max: u16,
    /// The address SDP names for the relay; `None`: our address as each side sees it (as in Via).
    pub advertise: Option<IpAddr>,
    /// Ports the daemon itself listens on: never handed to a call, even where the range covers them.
    pub reserved: Vec<u16>,
}

#[derive(Debug)]
pub(crate) struct Media {
    pool: PortPool,
    advertise: Option<IpAddr>,
    /// Each call's A and B port pairs, until the relay reports the session closed (its ports free).
    sessions: HashMap<u64, [PortPair; 2]>,
}

impl Media {
    pub(crate) fn new(s: &MediaSettings) -> Self {
        Media {
            pool: PortPool::new(s.port_min, s.port_max, &s.reserved),
            advertise: s.advertise,
            sessions: HashMap::new(),
        }
    }

    pub(crate) fn in_use(&self) -> usize {
        self.pool.in_use()
    }
}

impl Engine {
    /// Ports and SDP addresses for a new call whose caller is at `caller`, and the relay told to open them.
    /// `Ok(None)`: media is not anchored. `Err`: no ports left.
    pub(crate) fn open_media(
        &mut self,
        token: u64,
        caller: IpAddr,
        plan: &Plan<SipHop>,
    ) -> Result<Option<MediaPlan>, ()> {
        let Some(media) = self.media.as_mut() else { return Ok(None) };
        let Some(a) = media.pool.allocate() else { return Err(()) };
        let Some(b) = media.pool.allocate() else {
            media.pool.release(a);
            return Err(());
        };
        media.sessions.insert(token, [a, b]);
        let advertise = media.advertise;
        // Our address as the caller and as the first callee see it, unless one address is advertised.
        let (a_ip, b_ip) = match advertise {
            Some(ip) => (ip, ip),
            None => {
                let a_ip = self.net.sent_by(caller, Proto::Udp).ip();
                let first = plan.ring.first().or_else(|| plan.divert.as_ref().and_then(|d| d.targets.first()));
                (a_ip, first.map_or(a_ip, |t| self.net.sent_by(t.hop.peer.addr.ip(), Proto::Udp).ip()))
            }
        };
        let anchor = |pair: PortPair, ip: IpAddr| Anchor { address: ip, rtp_port: pair.rtp, rtcp_port: pair.rtcp() };
        let plan = MediaPlan { a: anchor(a, a_ip), b: anchor(b, b_ip) };
        let open =
            Command::Open { id: token, a_port: a.rtp, b_port: b.rtp, a: Remote::default(), b: Remote::default() };
        self.out.push(Output::Media(open));
        Ok(Some(plan))
    }

    /// The call `token` ended: the relay closes its session (the ports come back when it says so).
    pub(crate) fn close_media(&mut self, token: u64) {
        if self.media.as_ref().is_some_and(|m| m.sessions.contains_key(&token)) {
            self.out.push(Output::Media(Command::Close { id: token }));
        }
    }

    /// What the relay reports.
    pub fn on_media(&mut self, event: Event, now: u64) {
        match event {
            Event::Closed { id, stats } => {
                tracing::debug!(call = %format!("{id:016x}"), ?stats, "media session closed");
                if let Some(m) = self.media.as_mut()
                    && let Some(pairs) = m.sessions.remove(&id)
                {
                    for p in pairs {
                        m.pool.release(p);
                    }
                }
            }
            Event::BindFailed { id, port } => {
                tracing::warn!(port, "a relay port is held by another process; retired, and the call ended");
                if let Some(m) = self.media.as_mut()
                    && let Some(pairs) = m.sessions.remove(&id)
                {
                    for p in pairs {
                        if p.rtp == port || p.rtcp() == port {
                            m.pool.retire(p);
                        } else {
                            m.pool.release(p);
                        }
                    }
                }
                if let Some(e) = self.calls.entry_mut(id) {
                    e.call.terminate(now);
                }
                self.pump(id, now);
            }
            Event::Latched { id, side, from } => {
                tracing::debug!(call = %format!("{id:016x}"), ?side, %from, "media source learned");
            }
            Event::Silent { id } => {
                tracing::info!(call = %format!("{id:016x}"), "no media for the media timeout; call ended");
                if let Some(e) = self.calls.entry_mut(id) {
                    e.call.media_timeout(now);
                }
                self.pump(id, now);
            }
        }
        self.flush(now);
    }
}
