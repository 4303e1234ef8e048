//! The relay on loopback sockets, no SIP: NAT latching, a stranger mid-call, RTCP, silence and freed ports.
//! Every address is on 127.0.0.0/8.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use switchboard_media_core::latch::LatchConfig;
use switchboard_media_core::rtp::{self, Header};
use switchboard_media_io::{Command, Event, Relay, RelayConfig, Remote, Side};
use tokio::sync::mpsc;

fn phone(ip: &str) -> UdpSocket {
    let s = UdpSocket::bind(format!("{ip}:0")).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    s
}

/// An even free port whose neighbour is free too, on 127.0.0.1.
fn free_pair() -> u16 {
    for _ in 0..100 {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = s.local_addr().unwrap().port() & !1;
        drop(s);
        if p > 1024 && UdpSocket::bind(("127.0.0.1", p)).is_ok() && UdpSocket::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no free port pair");
}

fn packet(seq: u16, ssrc: u32) -> Vec<u8> {
    rtp::build(&Header { payload_type: 0, marker: false, seq, timestamp: u32::from(seq) * 160, ssrc }, &[0xFF; 160])
}

fn recv_rtp(s: &UdpSocket) -> Option<(Header, SocketAddr)> {
    let mut buf = [0u8; 2048];
    let (n, from) = s.recv_from(&mut buf).ok()?;
    Some((rtp::read(&buf[..n]).ok()?.0, from))
}

struct Rig {
    relay: Relay,
    events: mpsc::UnboundedReceiver<Event>,
    a_port: u16,
    b_port: u16,
    thread: std::thread::JoinHandle<()>,
}

fn start(timeout_ms: u64) -> Rig {
    let (tx, events) = mpsc::unbounded_channel();
    let config = RelayConfig { bind: "127.0.0.1".parse().unwrap(), latch: LatchConfig::default(), timeout_ms };
    let (relay, thread) = Relay::start(config, tx).unwrap();
    let a_port = free_pair();
    let mut b_port = free_pair();
    while b_port == a_port {
        b_port = free_pair();
    }
    Rig { relay, events, a_port, b_port, thread }
}

fn remote(addr: SocketAddr) -> Remote {
    Remote { rtp: Some(addr), rtcp: None, hold: false }
}

impl Rig {
    fn a(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.a_port))
    }
    fn b(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.b_port))
    }

    /// Waits until `n` sessions have their sockets bound.
    fn wait_open(&self, n: usize) {
        let end = std::time::Instant::now() + Duration::from_secs(5);
        while self.relay.counters().sessions.load(std::sync::atomic::Ordering::Relaxed) < n {
            assert!(std::time::Instant::now() < end, "session not opened");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn next_event(&mut self, within: Duration) -> Option<Event> {
        let end = std::time::Instant::now() + within;
        loop {
            if let Ok(e) = self.events.try_recv() {
                return Some(e);
            }
            if std::time::Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The NAT case: the caller's SDP names 127.0.0.9 (nobody listens there) but it sends from 127.0.0.1.
/// After probation its audio reaches the callee, and the callee's audio reaches it at its real address. A
/// stranger spraying the caller's relay port mid-call takes nothing.
#[test]
fn a_phone_behind_nat_gets_audio_both_ways_and_a_stranger_takes_nothing() {
    let mut rig = start(0);
    let caller = phone("127.0.0.1");
    let callee = phone("127.0.0.1");
    let stranger = phone("127.0.0.66");
    let announced: SocketAddr = "127.0.0.9:40000".parse().unwrap();
    assert!(rig.relay.send(Command::Open {
        id: 1,
        a_port: rig.a_port,
        b_port: rig.b_port,
        a: remote(announced),
        b: remote(callee.local_addr().unwrap()),
    }));
    rig.wait_open(1);
    // Caller to the relay's A port: the first three are on probation, then it is learned and forwarded.
    for seq in 0..10u16 {
        caller.send_to(&packet(seq, 1), rig.a()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut got = Vec::new();
    while let Some((h, from)) = recv_rtp(&callee) {
        assert_eq!(from, rig.b(), "the callee hears the relay's B port");
        got.push(h.seq);
    }
    assert_eq!(got, (3..10).collect::<Vec<u16>>(), "probation drops the first three");
    assert_eq!(
        rig.next_event(Duration::from_secs(1)),
        Some(Event::Latched { id: 1, side: Side::A, from: caller.local_addr().unwrap() })
    );
    // The callee (its SDP address is where it sends from) is taken at once, and reaches the caller's real address.
    callee.send_to(&packet(100, 2), rig.b()).unwrap();
    let (h, from) = recv_rtp(&caller).expect("audio back to the caller behind NAT");
    assert_eq!((h.seq, from), (100, rig.a()));
    assert_eq!(
        rig.next_event(Duration::from_secs(1)),
        Some(Event::Latched { id: 1, side: Side::B, from: callee.local_addr().unwrap() })
    );
    // A stranger sprays the caller's relay port: nothing of it reaches the callee, and the caller keeps its audio.
    for seq in 0..50u16 {
        stranger.send_to(&packet(seq, 66), rig.a()).unwrap();
    }
    callee.send_to(&packet(101, 2), rig.b()).unwrap();
    let (h, _) = recv_rtp(&caller).expect("the caller still hears the callee");
    assert_eq!(h.seq, 101);
    while let Some((h, _)) = recv_rtp(&callee) {
        assert_ne!(h.ssrc, 66, "a stranger's packet was forwarded");
    }
    // RTCP from the caller's address reaches the callee's RTCP port (RTP port + 1).
    let callee_rtcp =
        UdpSocket::bind(SocketAddr::new(callee.local_addr().unwrap().ip(), callee.local_addr().unwrap().port() + 1));
    if let Ok(callee_rtcp) = callee_rtcp {
        callee_rtcp.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let rr = [0x81u8, 201, 0, 1, 0, 0, 0, 1];
        let caller_rtcp = phone("127.0.0.1");
        caller_rtcp.send_to(&rr, SocketAddr::from(([127, 0, 0, 1], rig.a_port + 1))).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = callee_rtcp.recv_from(&mut buf).expect("RTCP forwarded");
        assert_eq!((&buf[..n], from.port()), (&rr[..], rig.b_port + 1));
    }
    assert!(rig.relay.send(Command::Close { id: 1 }));
    match rig.next_event(Duration::from_secs(1)) {
        Some(Event::Closed { id: 1, stats }) => {
            assert!(stats.forwarded[0] >= 7, "{stats:?}");
            assert!(stats.dropped >= 53, "{stats:?}");
        }
        other => panic!("{other:?}"),
    }
    drop(rig.relay);
    rig.thread.join().unwrap();
}

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// Closing a session frees its four ports at once; 1,000 sessions opened and closed leave nothing bound, and
/// the process holds as many open sockets after as before.
#[test]
fn closed_sessions_free_their_ports() {
    let mut rig = start(0);
    let (a, b) = (rig.a_port, rig.b_port);
    let fds_before = open_fds();
    for id in 0..1000u64 {
        assert!(rig.relay.send(Command::Open { id, a_port: a, b_port: b, a: Remote::default(), b: Remote::default() }));
        assert!(rig.relay.send(Command::Close { id }));
        match rig.next_event(Duration::from_secs(2)) {
            Some(Event::Closed { id: closed, .. }) => assert_eq!(closed, id),
            other => panic!("session {id}: {other:?}"),
        }
    }
    assert_eq!(rig.relay.counters().sessions.load(std::sync::atomic::Ordering::Relaxed), 0);
    // Other tests of this binary run in parallel and open sockets of their own: allow for a few.
    let fds_after = open_fds();
    assert!(fds_after <= fds_before + 8, "{fds_before} descriptors before 1,000 sessions, {fds_after} after");
    for p in [a, a + 1, b, b + 1] {
        assert!(UdpSocket::bind(("127.0.0.1", p)).is_ok(), "port {p} still bound");
    }
    // A port someone else holds is reported, not fatal.
    let _holder = UdpSocket::bind(("127.0.0.1", a)).unwrap();
    assert!(rig.relay.send(Command::Open {
        id: 5000,
        a_port: a,
        b_port: b,
        a: Remote::default(),
        b: Remote::default()
    }));
    assert_eq!(rig.next_event(Duration::from_secs(1)), Some(Event::BindFailed { id: 5000, port: a }));
}

/// No RTP for the timeout: one Silent event. On hold, silence is expected and not reported.
#[test]
fn silence_is_reported_once_except_on_hold() {
    let mut rig = start(1500);
    let on_hold = Remote { rtp: Some("127.0.0.9:4000".parse().unwrap()), rtcp: None, hold: true };
    let (a, b) = (rig.a_port, rig.b_port);
    assert!(rig.relay.send(Command::Open { id: 7, a_port: a, b_port: b, a: on_hold, b: Remote::default() }));
    assert_eq!(rig.next_event(Duration::from_millis(3500)), None, "on hold: no media timeout");
    assert!(rig.relay.send(Command::Remote { id: 7, side: Side::A, remote: Remote { hold: false, ..on_hold } }));
    assert_eq!(rig.next_event(Duration::from_millis(3500)), Some(Event::Silent { id: 7 }));
    assert_eq!(rig.next_event(Duration::from_millis(2500)), None, "reported once");
}
