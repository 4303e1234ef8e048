//! Runs SIPp scenarios from `tests/sipp/` against a daemon.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's SIPp scenario directory.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sipp").join(name)
}

/// Result of one SIPp run.
#[derive(Debug)]
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    /// Contents of the `-trace_msg` log, if any.
    pub messages: String,
    /// Contents of the error log, if any.
    pub errors: String,
}

/// Runs `sipp` with `scenario` from `workdir` (CSV paths relative to it) against `server`, with extra args.
/// Returns None (after a loud skip line) when SIPp is missing outside CI; panics when it is missing in CI.
pub fn run(workdir: &Path, scenario_file: &str, server: SocketAddr, args: &[&str]) -> Option<Run> {
    if !crate::require_program("sipp", "sip-tester") {
        return None;
    }
    let out = Command::new("sipp")
        .current_dir(workdir)
        .arg("-sf")
        .arg(scenario(scenario_file))
        .args(["-i", "127.0.0.1", "-nostdin", "-trace_msg", "-trace_err", "-timeout", "30s"])
        .args(args)
        .arg(server.to_string())
        .output()
        .expect("run sipp");
    let mut messages = String::new();
    let mut errors = String::new();
    if let Ok(entries) = std::fs::read_dir(workdir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with("_messages.log") {
                messages.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                let _ = std::fs::remove_file(e.path());
            } else if name.ends_with("_errors.log") {
                errors.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Some(Run {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        messages,
        errors,
    })
}
