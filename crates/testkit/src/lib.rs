//! Test support for end-to-end tests: a small blocking SIP client ([`client::SipClient`]) that can answer
//! digest challenges with any algorithm, a runner for the real `switchboard` binary ([`daemon::Daemon`]) and a
//! SIPp runner ([`sipp`]) that fails loudly in CI when SIPp is missing, and an SMTP sink ([`smtp`]).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

pub mod call;
pub mod client;
pub mod daemon;
pub mod http;
pub mod sipp;
pub mod smtp;
pub mod tls;

/// The repository root. Read at run time from the package under test (cargo sets `CARGO_MANIFEST_DIR` for test
/// processes; every package sits at `crates/NAME`), so a build reused from a checkout elsewhere (a shared target
/// directory) still reads this checkout's files.
pub fn repo_root() -> std::path::PathBuf {
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    package.join("../..")
}

/// Where the RFC 4475 / RFC 5118 torture messages live.
pub fn torture_dir() -> std::path::PathBuf {
    repo_root().join("crates/sip-core/tests/torture")
}

/// Polls `check` every 100 ms until it holds (true) or `limit` passes (false): for state the daemon reaches a
/// little later (the write-behind, the change log, a call ending).
pub fn wait_until(limit: std::time::Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

/// A random hex token for tags, Call-IDs and branches.
pub fn token() -> String {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// True when the tests run in CI, where a missing external program is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Reports that an external program is missing: panics in CI, otherwise prints a loud skip line and returns
/// false so the test can return early.
pub fn require_program(name: &str, package: &str) -> bool {
    require_tool(name, &format!("apt-get install {package}"))
}

/// The Python that has Playwright and aiosmtpd (the browser tests): `SWITCHBOARD_E2E_PYTHON`, else the one on
/// PATH. None (after a loud skip line) when it has not; a panic in CI.
pub fn e2e_python() -> Option<String> {
    let python = std::env::var("SWITCHBOARD_E2E_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&python)
        .args(["-c", "import playwright, aiosmtpd"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let install = "./scripts/test installs them: pip install playwright aiosmtpd into ~/.cache/switchboard-e2e";
        if in_ci() {
            panic!("Python Playwright and aiosmtpd are required in CI ({install})");
        }
        eprintln!("SKIPPED: no Python with playwright and aiosmtpd ({install}); the browser tests do not run here");
        return None;
    }
    Some(python)
}

/// Whether `name` is on PATH; when it is not, a loud skip line saying how to get it (`install`), or a panic in CI.
/// `./scripts/test` installs every tool the tests use when it can.
pub fn require_tool(name: &str, install: &str) -> bool {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if in_ci() {
            panic!("{name} is required in CI but not installed ({install})");
        }
        eprintln!("SKIPPED: {name} not installed ({install}); this test does not run here");
    }
    found
}

/// Whether a frame of 8 kHz samples is mostly one tone at `hz`: its Goertzel power against the frame's whole
/// energy, and loud enough to be meant (tests that listen for a tone they left in a message).
pub fn is_tone(samples: &[i16], hz: f64) -> bool {
    let k = 2.0 * (2.0 * std::f64::consts::PI * hz / 8000.0).cos();
    let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
    for &x in samples {
        let x = f64::from(x);
        let s0 = x + k * s1 - s2;
        s2 = s1;
        s1 = s0;
        energy += x * x;
    }
    let power = s1 * s1 + s2 * s2 - k * s1 * s2;
    let n = samples.len() as f64;
    energy > n * 1e6 && power / (energy * n / 2.0) > 0.6
}
