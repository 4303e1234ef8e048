//! Media load generator for `bench/media.sh`: many G.711 calls at once, 20 ms packets both ways, with loss and
//! one-way latency measured per packet.
//!
//! ```text
//! rtp-load direct --calls N [--secs S] [--sockets K]
//! rtp-load switch --calls N --sip ADDR --number NUMBER --user AUTH_ID --password PW [--pid PID] [--secs S] [--sockets K]
//! ```
//!
//! `direct` is the baseline: each call's two ends send straight to each other. `switch` places the calls through
//! the daemon: a carrier on 127.0.0.2 calls NUMBER, the device AUTH_ID (registered here from 127.0.0.1) answers,
//! and each end sends to the relay port it was given. Both runs use the same sockets, pacing and measurement, so
//! their difference is what the relay adds. Each call's ends share K sockets per side (their SDP names them), so
//! the generator's own cost does not grow with the number of sockets.
//!
//! Every packet carries its send time (nanoseconds since the run began) in its first 8 payload bytes and its
//! stream in its SSRC. Prints one JSON object: packets sent and received, loss, latency percentiles, the
//! generator's own CPU and, with `--pid`, the daemon's CPU over the same window.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a bench tool: failing loudly is its job

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use switchboard_testkit::call::{Placed, hang_up, place, rtp};
use switchboard_testkit::client::SipClient;

const PERIOD: Duration = Duration::from_millis(20);
/// Latency histogram: 1 µs bins up to 200 ms; later arrivals share the last bin.
const BINS: usize = 200_000;
const WAIT: Duration = Duration::from_secs(10);

struct Args {
    mode: String,
    calls: usize,
    secs: u64,
    sockets: usize,
    sip: Option<SocketAddr>,
    number: String,
    user: String,
    password: String,
    pid: Option<u32>,
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_default();
    if mode != "direct" && mode != "switch" {
        eprintln!(
            "usage: rtp-load direct|switch --calls N [--secs S] [--sockets K] [--sip ADDR --number NUMBER --user ID --password PW --pid PID]"
        );
        std::process::exit(2);
    }
    let mut a = Args {
        mode,
        calls: 100,
        secs: 10,
        sockets: 4,
        sip: None,
        number: String::new(),
        user: String::new(),
        password: String::new(),
        pid: None,
    };
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let bad = |what: &str| -> ! { panic!("{flag}: {what}: {value}") };
        match flag.as_str() {
            "--calls" => a.calls = value.parse().unwrap_or_else(|_| bad("a count")),
            "--secs" => a.secs = value.parse().unwrap_or_else(|_| bad("seconds")),
            "--sockets" => a.sockets = value.parse().unwrap_or_else(|_| bad("a count")),
            "--sip" => a.sip = Some(value.parse().unwrap_or_else(|_| bad("an address"))),
            "--number" => a.number = value,
            "--user" => a.user = value,
            "--password" => a.password = value,
            "--pid" => a.pid = Some(value.parse().unwrap_or_else(|_| bad("a process id"))),
            _ => bad("unknown option"),
        }
    }
    assert!(a.calls > 0 && a.sockets > 0 && a.secs > 0, "--calls, --sockets and --secs must be above 0");
    a
}

/// One direction of one call: sent from `socket` to `dest`.
#[derive(Clone, Copy)]
struct Stream {
    socket: usize,
    dest: SocketAddr,
}

/// A media socket with a receive buffer deep enough that the generator itself drops nothing.
fn media_socket(ip: &str) -> UdpSocket {
    let s = UdpSocket::bind(format!("{ip}:0")).expect("bind a media socket");
    let s2 = socket2::SockRef::from(&s);
    let _ = s2.set_recv_buffer_size(4 << 20);
    let _ = s2.set_send_buffer_size(4 << 20);
    s.set_read_timeout(Some(Duration::from_millis(100))).expect("read timeout");
    s
}

/// CPU time of a process in clock ticks (user + system), from /proc.
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th overall.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

/// The calls placed through the daemon, and the phone that answered them.
struct Calls {
    placed: Vec<Placed>,
    phone: SipClient,
}

/// Registers the phone and places the calls, one after another. Call i's ends use socket i % K of each side.
fn place_calls(a: &Args, a_socks: &[UdpSocket], b_socks: &[UdpSocket]) -> (Calls, Vec<Stream>) {
    let sip = a.sip.expect("switch mode needs --sip");
    let mut phone = SipClient::udp(sip);
    let reg = phone.register(&a.user, &[&format!("Contact: <{}>", phone.contact(&a.user)), "Expires: 3600"]);
    let ok = phone.request_with_auth(reg, &a.user, &a.password, Some("MD5"));
    assert_eq!(ok.status(), Some(200), "registering {}: {ok:?}", a.user);
    let mut placed = Vec::with_capacity(a.calls);
    let mut streams = Vec::with_capacity(a.calls * 2);
    for i in 0..a.calls {
        let k = i % a.sockets;
        let media = (a_socks[k].local_addr().unwrap(), b_socks[k].local_addr().unwrap());
        let call = place(sip, &a.number, &format!("load{i}x{}", std::process::id()), &mut phone, &a.user, media, WAIT);
        streams.push(Stream { socket: k, dest: call.relay_a }); // A to B: the carrier talks
        streams.push(Stream { socket: a.sockets + k, dest: call.relay_b }); // B to A: the phone talks
        placed.push(call);
    }
    (Calls { placed, phone }, streams)
}

/// Hangs every call up, one at a time (a burst of BYEs over UDP without retransmission would lose some to full
/// socket buffers). Returns how many ended cleanly.
fn hang_up_all(calls: &mut Calls) -> usize {
    let Calls { placed, phone } = calls;
    placed.iter_mut().map(|p| hang_up(p, phone)).filter(|ended| *ended).count()
}

struct Received {
    per_stream: Vec<u64>,
    /// The lowest sequence number heard per stream (u64::MAX: none): loss at a stream's start shows here.
    first_seq: Vec<u64>,
    latency: Vec<u64>,
}

fn receive(socket: Arc<UdpSocket>, streams: usize, epoch: Instant, stop: Arc<AtomicBool>) -> Received {
    let mut got = Received { per_stream: vec![0; streams], first_seq: vec![u64::MAX; streams], latency: vec![0; BINS] };
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let Ok(n) = socket.recv(&mut buf) else { continue };
        let now = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if n < 20 {
            continue;
        }
        let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
        let sent = u64::from_be_bytes(buf[12..20].try_into().unwrap());
        if let Some(c) = got.per_stream.get_mut(ssrc) {
            *c += 1;
            let seq = u64::from(u16::from_be_bytes([buf[2], buf[3]]));
            got.first_seq[ssrc] = got.first_seq[ssrc].min(seq);
        }
        let us = usize::try_from(now.saturating_sub(sent) / 1000).unwrap_or(BINS - 1).min(BINS - 1);
        got.latency[us] += 1;
    }
    got
}

/// Sends every stream's packet once per 20 ms, the streams' send times spread evenly over the period. Returns
/// the packets sent per stream.
fn send(socks: &[Arc<UdpSocket>], streams: &[Stream], epoch: Instant, secs: u64) -> (Vec<u64>, u64) {
    let n = streams.len();
    let rounds = secs * 1000 / 20;
    let mut sent = vec![0u64; n];
    let mut failed = 0u64;
    let mut payload = [0xFFu8; 160];
    let start = Instant::now();
    for round in 0..rounds {
        for (id, s) in streams.iter().enumerate() {
            let offset = PERIOD * u32::try_from(round).unwrap() + PERIOD.mul_f64(id as f64 / n as f64);
            let due = start + offset;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            let t = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
            payload[..8].copy_from_slice(&t.to_be_bytes());
            let packet = rtp(u16::try_from(round % 65_536).unwrap(), u32::try_from(id).unwrap(), &payload);
            if socks[s.socket].send_to(&packet, s.dest).is_ok() {
                sent[id] += 1;
            } else {
                failed += 1;
            }
        }
    }
    (sent, failed)
}

fn percentile(hist: &[u64], total: u64, p: f64) -> usize {
    let target = ((total as f64) * p).ceil() as u64;
    let mut seen = 0;
    for (us, c) in hist.iter().enumerate() {
        seen += c;
        if seen >= target.max(1) {
            return us;
        }
    }
    hist.len()
}

fn main() {
    let a = parse_args();
    let a_socks: Vec<UdpSocket> = (0..a.sockets).map(|_| media_socket("127.0.0.2")).collect();
    let b_socks: Vec<UdpSocket> = (0..a.sockets).map(|_| media_socket("127.0.0.1")).collect();
    let setup = Instant::now();
    let (mut placed, streams) = if a.mode == "switch" {
        let (p, s) = place_calls(&a, &a_socks, &b_socks);
        (Some(p), s)
    } else {
        let mut s = Vec::with_capacity(a.calls * 2);
        for i in 0..a.calls {
            let k = i % a.sockets;
            s.push(Stream { socket: k, dest: b_socks[k].local_addr().unwrap() });
            s.push(Stream { socket: a.sockets + k, dest: a_socks[k].local_addr().unwrap() });
        }
        (None, s)
    };
    let setup_ms = setup.elapsed().as_millis();
    let socks: Vec<Arc<UdpSocket>> = a_socks.into_iter().chain(b_socks).map(Arc::new).collect();
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let receivers: Vec<_> = socks
        .iter()
        .map(|s| {
            let (s, stop, n) = (s.clone(), stop.clone(), streams.len());
            std::thread::spawn(move || receive(s, n, epoch, stop))
        })
        .collect();
    let me = std::process::id().to_string();
    let daemon = a.pid.map(|p| p.to_string());
    let (self0, daemon0, t0) = (cpu_ticks(&me), daemon.as_deref().map(cpu_ticks), Instant::now());
    let (sent, send_failed) = send(&socks, &streams, epoch, a.secs);
    let (self1, daemon1, window) = (cpu_ticks(&me), daemon.as_deref().map(cpu_ticks), t0.elapsed().as_secs_f64());
    // Packets still in flight arrive; then the receivers stop.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let mut per_stream = vec![0u64; streams.len()];
    let mut latency = vec![0u64; BINS];
    let mut late_start = 0u64;
    for r in receivers {
        let got = r.join().unwrap();
        late_start += got.first_seq.iter().filter(|&&f| f != u64::MAX).sum::<u64>();
        per_stream.iter_mut().zip(&got.per_stream).for_each(|(t, g)| *t += g);
        latency.iter_mut().zip(&got.latency).for_each(|(t, g)| *t += g);
    }
    let ended = placed.as_mut().map(hang_up_all);
    let total_sent: u64 = sent.iter().sum();
    let total_got: u64 = per_stream.iter().sum();
    let silent_streams = per_stream.iter().filter(|&&c| c == 0).count();
    let ticks = |d: u64| d as f64 / 100.0;
    let self_cpu = ticks(self1 - self0) / window * 100.0;
    let daemon_cpu = daemon0.zip(daemon1).map(|(d0, d1)| ticks(d1 - d0) / window * 100.0);
    let daemon_us = daemon0.zip(daemon1).map(|(d0, d1)| ticks(d1 - d0) * 1e6 / total_got.max(1) as f64);
    let out = serde_json::json!({
        "mode": a.mode,
        "calls": a.calls,
        "streams": streams.len(),
        "setup_ms": setup_ms,
        "secs": window,
        "sent": total_sent,
        "send_errors": send_failed,
        "received": total_got,
        "lost": total_sent.saturating_sub(total_got),
        "loss_pct": 100.0 * total_sent.saturating_sub(total_got) as f64 / total_sent.max(1) as f64,
        "silent_streams": silent_streams,
        // Stream 2i is call i's carrier talking, 2i + 1 its phone.
        "silent_stream_ids": per_stream.iter().enumerate().filter(|(_, c)| **c == 0).map(|(i, _)| i).take(20).collect::<Vec<_>>(),
        "lost_at_stream_start": late_start,
        "packets_per_sec_each_way": total_got as f64 / window / 2.0,
        "p50_us": percentile(&latency, total_got, 0.50),
        "p99_us": percentile(&latency, total_got, 0.99),
        "p999_us": percentile(&latency, total_got, 0.999),
        "generator_cpu_pct": self_cpu,
        "daemon_cpu_pct": daemon_cpu,
        "daemon_us_per_packet": daemon_us,
        "hung_up": ended,
    });
    println!("{out}");
}
