//! One call's media: four sockets (RTP and RTCP per side), the latching state of each side, and the silence
//! watch. Packets from one side go out of the other side's socket, so each phone sees the relay as the one
//! address it talks to.

use std::net::{IpAddr, SocketAddr, UdpSocket as StdSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use switchboard_media_core::latch::{Latch, Verdict};
use switchboard_media_core::rtp;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::{Counters, Event, RelayConfig, Remote, SessionStats as Stats, Side};

pub(crate) enum Control {
    Remote(Side, Remote),
}

enum Got {
    Packet(usize, std::io::Result<(usize, SocketAddr)>),
    Control(Option<Control>),
    Tick,
}

struct Leg {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    latch: Latch,
    remote: Remote,
    /// Where this side's RTCP comes from (learned from its packets, once its RTP source is known).
    rtcp_source: Option<SocketAddr>,
}

impl Leg {
    /// Where this side's RTCP goes: where it sends RTCP from, else its SDP's RTCP address, else the RTP
    /// destination's port + 1.
    fn rtcp_destination(&self) -> Option<SocketAddr> {
        self.rtcp_source
            .or(self.remote.rtcp)
            .or_else(|| self.latch.destination().map(|d| SocketAddr::new(d.ip(), d.port().saturating_add(1))))
    }
}

pub(crate) struct Session {
    id: u64,
    config: RelayConfig,
    legs: [Leg; 2],
    stats: Stats,
    start: Instant,
    last_rtp: Instant,
    silent_reported: bool,
}

fn bind_pair(ip: IpAddr, port: u16) -> Result<(UdpSocket, UdpSocket), u16> {
    let one = |p: u16| -> Result<UdpSocket, u16> {
        let s = StdSocket::bind(SocketAddr::new(ip, p)).map_err(|_| p)?;
        s.set_nonblocking(true).map_err(|_| p)?;
        UdpSocket::from_std(s).map_err(|_| p)
    };
    Ok((one(port)?, one(port.checked_add(1).ok_or(port)?)?))
}

impl Session {
    /// Binds both sides' ports. `Err(port)`: the port that could not be bound.
    pub(crate) fn bind(id: u64, config: RelayConfig, ports: [u16; 2], remotes: [Remote; 2]) -> Result<Session, u16> {
        let [a_port, b_port] = ports;
        let [a_remote, b_remote] = remotes;
        let (a_rtp, a_rtcp) = bind_pair(config.bind, a_port)?;
        let (b_rtp, b_rtcp) = bind_pair(config.bind, b_port)?;
        let leg = |rtp, rtcp, remote: Remote| Leg {
            rtp,
            rtcp,
            latch: Latch::new(config.latch, remote.rtp),
            remote,
            rtcp_source: None,
        };
        let now = Instant::now();
        Ok(Session {
            id,
            config,
            legs: [leg(a_rtp, a_rtcp, a_remote), leg(b_rtp, b_rtcp, b_remote)],
            stats: Stats::default(),
            start: now,
            last_rtp: now,
            silent_reported: false,
        })
    }

    /// Milliseconds since the session began, at `at` (the latching clock).
    fn ms_at(&self, at: Instant) -> u64 {
        u64::try_from(at.duration_since(self.start).as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) async fn run(
        mut self,
        mut control: mpsc::UnboundedReceiver<Control>,
        events: mpsc::UnboundedSender<Event>,
        counters: Arc<Counters>,
    ) {
        let mut bufs = [[0u8; 2048]; 4];
        let mut tick = tokio::time::interval(Duration::from_millis(1000));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let [a, b] = &self.legs;
            let [buf_a_rtp, buf_a_rtcp, buf_b_rtp, buf_b_rtcp] = &mut bufs;
            // Which socket a packet came in on: its buffer's index (A RTP, A RTCP, B RTP, B RTCP).
            let got = tokio::select! {
                r = a.rtp.recv_from(buf_a_rtp) => Got::Packet(0, r),
                r = a.rtcp.recv_from(buf_a_rtcp) => Got::Packet(1, r),
                r = b.rtp.recv_from(buf_b_rtp) => Got::Packet(2, r),
                r = b.rtcp.recv_from(buf_b_rtcp) => Got::Packet(3, r),
                c = control.recv() => Got::Control(c),
                _ = tick.tick() => Got::Tick,
            };
            match got {
                Got::Packet(index, Ok((len, from))) => {
                    let (side, is_rtcp_port) = match index {
                        0 => (Side::A, false),
                        1 => (Side::A, true),
                        2 => (Side::B, false),
                        _ => (Side::B, true),
                    };
                    let packet = bufs.get(index).and_then(|b| b.get(..len)).unwrap_or_default();
                    if self.forward(side, is_rtcp_port, packet, from, &events) {
                        counters.forwarded.fetch_add(1, Ordering::Relaxed);
                    } else {
                        counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // ICMP port unreachable from an earlier send shows up here on Linux: nothing to do.
                Got::Packet(_, Err(_)) => {}
                Got::Control(Some(Control::Remote(side, remote))) => self.renegotiated(side, remote),
                Got::Control(None) => break,
                Got::Tick => self.check_silence(&events),
            }
        }
        let (id, stats) = (self.id, self.stats);
        // The sockets close before the session is reported closed, so its ports are free when the event arrives.
        drop(self);
        counters.sessions.fetch_sub(1, Ordering::Relaxed);
        let _ = events.send(Event::Closed { id, stats });
    }

    fn leg_index(side: Side) -> usize {
        match side {
            Side::A => 0,
            Side::B => 1,
        }
    }

    fn renegotiated(&mut self, side: Side, remote: Remote) {
        if let Some(leg) = self.legs.get_mut(Self::leg_index(side)) {
            leg.latch.renegotiated(remote.rtp);
            if remote.rtp != leg.remote.rtp {
                leg.rtcp_source = None;
            }
            leg.remote = remote;
        }
        // Media may legitimately stop while on hold; count silence from the change.
        self.last_rtp = Instant::now();
        self.silent_reported = false;
    }

    fn check_silence(&mut self, events: &mpsc::UnboundedSender<Event>) {
        let timeout = self.config.timeout_ms;
        let on_hold = self.legs.iter().any(|l| l.remote.hold);
        if timeout == 0 || on_hold || self.silent_reported {
            return;
        }
        if self.last_rtp.elapsed() >= Duration::from_millis(timeout) {
            self.silent_reported = true;
            let _ = events.send(Event::Silent { id: self.id });
        }
    }

    /// Takes a packet that arrived from `from` on `side`'s RTP or RTCP socket and sends it on from the other
    /// side's socket. `false`: dropped.
    fn forward(
        &mut self,
        side: Side,
        rtcp_port: bool,
        packet: &[u8],
        from: SocketAddr,
        events: &mpsc::UnboundedSender<Event>,
    ) -> bool {
        // One clock read per packet serves latching and the silence watch.
        let at = Instant::now();
        let now = self.ms_at(at);
        let (i, o) = (Self::leg_index(side), Self::leg_index(side.other()));
        let muxed_rtcp = !rtcp_port && rtp::is_rtcp(packet);
        let sent = if rtcp_port || muxed_rtcp {
            // RTCP is taken only from the address the side's RTP is latched to (any port: NATs map RTCP apart).
            let Some(leg) = self.legs.get_mut(i) else { return false };
            let expected_ip = leg.latch.learned().or(leg.remote.rtp).map(|a| a.ip());
            if expected_ip != Some(from.ip()) {
                self.stats.dropped += 1;
                return false;
            }
            if rtcp_port {
                leg.rtcp_source = Some(from);
            }
            let Some(out) = self.legs.get(o) else { return false };
            let (socket, dest) =
                if muxed_rtcp { (&out.rtp, out.latch.destination()) } else { (&out.rtcp, out.rtcp_destination()) };
            dest.is_some_and(|d| socket.try_send_to(packet, d).is_ok())
        } else {
            let Ok((header, _)) = rtp::read(packet) else {
                self.stats.dropped += 1;
                return false;
            };
            let Some(leg) = self.legs.get_mut(i) else { return false };
            match leg.latch.on_packet(from, header.seq, now) {
                Verdict::Drop => {
                    self.stats.dropped += 1;
                    return false;
                }
                Verdict::Learned => {
                    let _ = events.send(Event::Latched { id: self.id, side, from });
                }
                Verdict::Forward => {}
            }
            self.last_rtp = at;
            self.silent_reported = false;
            let Some(out) = self.legs.get(o) else { return false };
            out.latch.destination().is_some_and(|d| out.rtp.try_send_to(packet, d).is_ok())
        };
        if sent {
            if let Some(n) = self.stats.forwarded.get_mut(i) {
                *n += 1;
            }
        } else {
            self.stats.dropped += 1;
        }
        sent
    }
}
