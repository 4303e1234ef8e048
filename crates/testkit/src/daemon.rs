//! Runs the real `switchboard` binary in a temporary directory with its own SQLite database and a free port.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::client::SipClient;

pub struct Daemon {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// `None`: SQLite in the temporary directory.
    database_url: Option<String>,
    pub sip: SocketAddr,
    /// The management API's address (its own free port, so parallel tests never meet).
    pub api: SocketAddr,
    /// Where SIP over TLS listens when the configuration sets a certificate (its own free port too).
    pub tls: SocketAddr,
    /// Where SIP over secure WebSocket listens, likewise.
    pub wss: SocketAddr,
    child: Option<Child>,
    starts: u32,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon").field("sip", &self.sip).finish_non_exhaustive()
    }
}

/// A port free on 127.0.0.1 for both UDP and TCP at the moment of asking.
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port for UDP and TCP");
}

/// A block of 100 relay ports for one test daemon: one after the other within this test process, from a place
/// that depends on the process id, so test binaries run one after another rarely meet either.
pub fn relay_port_block() -> (u16, u16) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let slot = (std::process::id().wrapping_mul(7).wrapping_add(n) % 200) as u16;
    let min = 10_000 + slot * 100;
    (min, min + 99)
}

impl Daemon {
    /// Writes `config_toml` (which must not set sip.listen or database.url) and starts the daemon.
    pub fn start(bin: &str, config_toml: &str) -> Daemon {
        let mut d = Daemon::new(bin, config_toml);
        d.launch();
        d
    }

    /// Prepares the directory and configuration without starting the daemon, so the CLI can provision first.
    ///
    /// Unless the configuration has a `[media]` table, each daemon gets its own block of 100 relay ports (below
    /// the kernel's ephemeral range): daemons of tests running in parallel would otherwise all start at the
    /// shipped 10000 and take each other's ports.
    pub fn new(bin: &str, config_toml: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = config_toml.to_owned();
        if !config.contains("[media]") {
            let (min, max) = relay_port_block();
            config.push_str(&format!("\n[media]\nport_min = {min}\nport_max = {max}\n"));
        }
        std::fs::write(dir.path().join("switchboard.toml"), config).expect("write config");
        let sip = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let api = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let tls = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let wss = SocketAddr::from(([127, 0, 0, 1], free_port()));
        Daemon { bin: bin.into(), dir, sip, api, tls, wss, child: None, starts: 0, database_url: None }
    }

    /// Provisions customer `Acme` with the Direct Mode service `acme` and one device per `(auth_id, password,
    /// extra device add flags)`, each named after its Auth ID.
    pub fn provision_direct(&self, devices: &[(&str, &str, &[&str])]) {
        self.cli_ok(&["customer", "add", "Acme"]);
        self.cli_ok(&["service", "add", "--customer", "Acme", "--name", "acme", "--mode", "direct"]);
        for (auth, pw, extra) in devices {
            let mut args = vec!["device", "add", "--service", "acme", "--name", auth, "--auth-id", auth];
            args.extend_from_slice(&["--password", pw]);
            args.extend_from_slice(extra);
            self.cli_ok(&args);
        }
    }

    /// A started daemon with `config_toml`, provisioned by [`Daemon::provision_direct`] with `(auth_id, password)`
    /// devices and no other flags.
    pub fn start_direct(bin: &str, config_toml: &str, devices: &[(&str, &str)]) -> Daemon {
        let mut d = Daemon::new(bin, config_toml);
        let devices: Vec<(&str, &str, &[&str])> = devices.iter().map(|&(a, p)| (a, p, &[][..])).collect();
        d.provision_direct(&devices);
        d.launch();
        d
    }

    /// Starts the daemon (prepared with [`Daemon::new`]) and waits until it answers.
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "already running");
        self.spawn();
    }

    /// Like [`Daemon::new`], on the given database (e.g. a PostgreSQL database from [`PgDatabase`]).
    pub fn with_database(bin: &str, config_toml: &str, url: &str) -> Daemon {
        let mut d = Daemon::new(bin, config_toml);
        d.database_url = Some(url.to_owned());
        d
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.current_dir(self.dir.path())
            .env("SWITCHBOARD_CONFIG", self.dir.path().join("switchboard.toml"))
            .env(
                "SWITCHBOARD_DATABASE_URL",
                self.database_url
                    .clone()
                    .unwrap_or_else(|| format!("sqlite://{}", self.dir.path().join("sb.db").display())),
            )
            .env("SWITCHBOARD_SIP_LISTEN", self.sip.to_string())
            .env("SWITCHBOARD_API_LISTEN", self.api.to_string())
            .env("SWITCHBOARD_TLS_LISTEN", self.tls.to_string())
            .env("SWITCHBOARD_TLS_WSS_LISTEN", self.wss.to_string())
            .env_remove("RUST_LOG");
        c
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = std::fs::File::create(self.dir.path().join(format!("daemon-{}.log", self.starts))).expect("log");
        let child = self
            .command()
            .arg("run")
            .env("SWITCHBOARD_LOG_LEVEL", "debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start switchboard");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Polls with OPTIONS until the daemon answers.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("switchboard exited at start with {status}; log:\n{}", self.log());
            }
            let mut c = SipClient::udp(self.sip);
            let opts = format!(
                "OPTIONS sip:{s} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK{b}\r\nFrom: <sip:probe@test>;tag=1\r\n\
                 To: <sip:{s}>\r\nCall-ID: {b}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                s = self.sip,
                l = c.local(),
                b = crate::token()
            );
            c.send_raw(opts.as_bytes());
            if c.recv_response(Duration::from_millis(200)).is_some() {
                return;
            }
        }
        panic!("switchboard did not answer OPTIONS within 20 s; log:\n{}", self.log());
    }

    /// The daemon's log so far (all runs).
    pub fn log(&self) -> String {
        (1..=self.starts)
            .map(|i| std::fs::read_to_string(self.dir.path().join(format!("daemon-{i}.log"))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    /// Runs a CLI command against the same database and configuration.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run switchboard cli")
    }

    /// Runs a CLI command that must succeed; returns its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "switchboard {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A client of the daemon's API with `token` (or none).
    pub fn http(&self, token: Option<&str>) -> crate::http::Http {
        crate::http::Http::new(self.api, token)
    }

    /// A new API token made with the CLI (`--customer NAME` when given).
    pub fn token(&self, name: &str, customer: Option<&str>) -> String {
        let mut args = vec!["token", "create", "--name", name];
        if let Some(c) = customer {
            args.extend_from_slice(&["--customer", c]);
        }
        self.cli_ok(&args).trim().to_owned()
    }

    /// One REGISTER with SHA-256 digest from a fresh UDP client; the final status.
    pub fn register_status(&self, auth_id: &str, password: &str) -> u16 {
        let mut c = SipClient::udp(self.sip);
        let req = c.register(auth_id, &[&format!("Contact: <{}>", c.contact(auth_id))]);
        c.request_with_auth(req, auth_id, password, Some("SHA-256")).status().expect("a response")
    }

    /// Registers until the status satisfies `done` or 5 s pass (a change reaches the daemon through the change
    /// log); the last status. The pause between attempts keeps the failures well below the per-Auth-ID lockout
    /// (auth.max_failures = 10).
    pub fn register_until(&self, auth_id: &str, password: &str, done: impl Fn(u16) -> bool) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let status = self.register_status(auth_id, password);
            if done(status) || Instant::now() > deadline {
                return status;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// `registrations --json`, parsed.
    pub fn registrations(&self) -> Vec<serde_json::Value> {
        let out = self.cli_ok(&["registrations", "--json"]);
        serde_json::from_str(&out).expect("registrations --json is JSON")
    }

    /// Stops with SIGTERM (a clean shutdown) and waits for the exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    assert!(status.success(), "switchboard exited with {status} on SIGTERM; log:\n{}", self.log());
                    return;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("switchboard did not stop within 15 s of SIGTERM; log:\n{}", self.log());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Kills the daemon with SIGKILL (no shutdown at all) and waits for it to be gone; [`Daemon::launch`]
    /// starts it again.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The running daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the daemon is running").id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A fresh PostgreSQL database on the local server (`postgres://postgres@127.0.0.1:5432`, trust auth), dropped
/// when this value is. Created with `psql`.
#[derive(Debug)]
pub struct PgDatabase {
    name: String,
    pub url: String,
}

impl PgDatabase {
    /// None (after a loud skip line) when PostgreSQL is unreachable outside CI; panics in CI.
    pub fn create() -> Option<PgDatabase> {
        if !crate::require_program("psql", "postgresql-client") {
            return None;
        }
        let name = format!("sb_e2e_{}", crate::token());
        let ok = psql(&format!("CREATE DATABASE {name}"));
        if !ok {
            if crate::in_ci() {
                panic!("PostgreSQL is required in CI but 127.0.0.1:5432 did not accept CREATE DATABASE");
            }
            eprintln!("SKIPPED: PostgreSQL unreachable on 127.0.0.1:5432; this test does not run here");
            return None;
        }
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        Some(PgDatabase { name, url })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

fn psql(sql: &str) -> bool {
    Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-d", "test", "-q", "-c", sql])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
