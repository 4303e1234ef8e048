//! Registration load over streams for `bench/tls.sh`: TCP and TLS, each over connections kept open or a new
//! connection per registration, with the same client code, so their difference is what TLS costs.
//!
//! ```text
//! reg-load --transport tcp|tls --connect ADDR --users FILE [--reuse] [--workers W] [--secs S] [--pid PID]
//!          [--ca CERT --name SERVER_NAME]
//! ```
//!
//! Closed loop: W workers each register one device after another (REGISTER, 401, REGISTER with SHA-256 digest,
//! 200), devices taken in turn from FILE (`auth_id,password` lines; a `name,auth_id,password` CSV works too, its
//! first column skipped). With `--reuse` a worker keeps its connection; without, each registration opens its own
//! (and, over TLS, does a full handshake). Prints one JSON object: registrations done and failed, the rate, latency
//! percentiles and, with `--pid`, the daemon's CPU per registration over the same window.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a bench tool: failing loudly is its job

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use switchboard_testkit::client::SipClient;

#[derive(Clone)]
struct Args {
    transport: String,
    connect: SocketAddr,
    users: Vec<(String, String)>,
    reuse: bool,
    workers: usize,
    secs: u64,
    pid: Option<u32>,
    ca: Option<PathBuf>,
    name: String,
}

fn args() -> Args {
    let mut a = Args {
        transport: "tcp".into(),
        connect: "127.0.0.1:5060".parse().unwrap(),
        users: Vec::new(),
        reuse: false,
        workers: 8,
        secs: 10,
        pid: None,
        ca: None,
        name: "localhost".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--transport" => a.transport = value(),
            "--connect" => a.connect = value().parse().expect("--connect ADDR"),
            "--users" => {
                let text = std::fs::read_to_string(value()).expect("--users FILE");
                a.users = text
                    .lines()
                    .filter(|l| !l.starts_with("name,") && !l.trim().is_empty())
                    .map(|l| {
                        let cols: Vec<&str> = l.split(',').collect();
                        let n = cols.len();
                        (cols[n - 2].to_owned(), cols[n - 1].to_owned())
                    })
                    .collect();
            }
            "--reuse" => a.reuse = true,
            "--workers" => a.workers = value().parse().expect("--workers N"),
            "--secs" => a.secs = value().parse().expect("--secs S"),
            "--pid" => a.pid = Some(value().parse().expect("--pid PID")),
            "--ca" => a.ca = Some(value().into()),
            "--name" => a.name = value(),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(!a.users.is_empty(), "--users FILE with at least one auth_id,password line");
    a
}

fn connect(a: &Args) -> SipClient {
    match a.transport.as_str() {
        "tls" => SipClient::tls(a.connect, a.ca.as_deref().expect("--ca for tls"), &a.name),
        _ => SipClient::tcp(a.connect),
    }
}

/// CPU ticks (user + system, 1/100 s) the process has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(") ").map(|(_, s)| s).unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

fn main() {
    let a = args();
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let cpu0 = a.pid.map(cpu_ticks);
    let began = Instant::now();
    let workers: Vec<_> = (0..a.workers)
        .map(|_| {
            let (a, next, stop, failed) = (a.clone(), next.clone(), stop.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut client = a.reuse.then(|| connect(&a));
                while !stop.load(Ordering::Relaxed) {
                    let (user, password) = &a.users[next.fetch_add(1, Ordering::Relaxed) % a.users.len()];
                    let t0 = Instant::now();
                    let mut fresh = None;
                    let c = match client.as_mut() {
                        Some(c) => c,
                        None => fresh.insert(connect(&a)),
                    };
                    let contact = format!("Contact: <{}>", c.contact(user));
                    let reg = c.register(user, &[&contact, "Expires: 3600"]);
                    let ok = c.request_with_auth(reg, user, password, Some("SHA-256"));
                    if ok.status() == Some(200) {
                        latencies.push(t0.elapsed());
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        if a.reuse {
                            client = Some(connect(&a));
                        }
                    }
                }
                latencies
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(a.secs));
    stop.store(true, Ordering::Relaxed);
    let elapsed = began.elapsed().as_secs_f64();
    let cpu1 = a.pid.map(cpu_ticks);
    let mut all: Vec<Duration> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    all.sort();
    let pct = |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied();
    let us = |d: Option<Duration>| d.map_or(0, |d| d.as_micros());
    let done = all.len();
    let cpu_us = match (cpu0, cpu1) {
        (Some(c0), Some(c1)) => ((c1 - c0) * 10_000) as f64 / done.max(1) as f64,
        _ => 0.0,
    };
    println!(
        "{{\"transport\":\"{}\",\"reuse\":{},\"workers\":{},\"secs\":{elapsed:.2},\"registered\":{done},\"failed\":{},\
         \"rate\":{:.0},\"p50_us\":{},\"p99_us\":{},\"daemon_cpu_us_per_registration\":{cpu_us:.0}}}",
        a.transport,
        a.reuse,
        a.workers,
        failed.load(Ordering::Relaxed),
        done as f64 / elapsed,
        us(pct(0.5)),
        us(pct(0.99)),
    );
}
