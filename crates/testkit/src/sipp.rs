//! Runs SIPp scenarios from `tests/sipp/` against a daemon.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's SIPp scenario directory.
pub fn scenario(name: &str) -> PathBuf {
    crate::repo_root().join("tests/sipp").join(name)
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

/// `sipp` running `scenario_file` from `workdir`, bound to `local_ip`, tracing messages and errors, giving up after
/// `timeout` (SIPp's own global timeout).
fn command(workdir: &Path, scenario_file: &str, local_ip: &str, timeout: &str) -> Command {
    let mut c = Command::new("sipp");
    c.current_dir(workdir).arg("-sf").arg(scenario(scenario_file));
    c.args(["-i", local_ip, "-nostdin", "-trace_msg", "-trace_err", "-timeout", timeout]);
    c
}

/// A SIPp process running in the background (a UAS playing a device or a carrier gateway, or a UAC).
#[derive(Debug)]
pub struct Sipp {
    /// Taken by [`Sipp::wait`]; a SIPp still held when the test panics is killed on drop.
    child: Option<std::process::Child>,
    workdir: PathBuf,
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `sipp` with `scenario_file` from `workdir`, bound to `local_ip`, with `args` (add `-p PORT` for a UAS
/// and the remote address for a UAC). Messages are traced; read them with [`Sipp::wait`]. Returns None (after a
/// loud skip line) when SIPp is missing outside CI; panics when it is missing in CI.
pub fn spawn(workdir: &Path, scenario_file: &str, local_ip: &str, args: &[&str]) -> Option<Sipp> {
    if !crate::require_program("sipp", "sip-tester") {
        return None;
    }
    let child = command(workdir, scenario_file, local_ip, "60s")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start sipp");
    Some(Sipp { child: Some(child), workdir: workdir.to_owned() })
}

impl Sipp {
    /// Waits up to `limit` for SIPp to finish (killing it after that), then collects its output and logs.
    pub fn wait(mut self, limit: std::time::Duration) -> Run {
        let mut child = self.child.take().expect("a running SIPp");
        let deadline = std::time::Instant::now() + limit;
        let mut killed = false;
        while child.try_wait().ok().flatten().is_none() {
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                killed = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let pid = child.id();
        let out = child.wait_with_output().expect("sipp output");
        let (messages, errors) = take_logs(&self.workdir, Some(pid));
        let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if killed {
            stderr.push_str("\n(killed: did not finish in time)");
        }
        Run {
            success: !killed && out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
            messages,
            errors,
        }
    }

    /// Stops SIPp now and collects what it logged.
    pub fn stop(mut self) -> Run {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
        }
        self.wait(std::time::Duration::from_secs(5))
    }
}

/// Reads (and removes) the message and error logs in `workdir`, of process `pid` only if given.
fn take_logs(workdir: &Path, pid: Option<u32>) -> (String, String) {
    let mut messages = String::new();
    let mut errors = String::new();
    let mine = |name: &str| pid.is_none_or(|p| name.contains(&format!("_{p}_")));
    if let Ok(entries) = std::fs::read_dir(workdir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with("_messages.log") && mine(&name) {
                messages.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                let _ = std::fs::remove_file(e.path());
            } else if name.ends_with("_errors.log") && mine(&name) {
                errors.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    (messages, errors)
}

/// Runs `sipp` with `scenario` from `workdir` (CSV paths relative to it) against `server`, with extra args.
/// Returns None (after a loud skip line) when SIPp is missing outside CI; panics when it is missing in CI.
pub fn run(workdir: &Path, scenario_file: &str, server: SocketAddr, args: &[&str]) -> Option<Run> {
    if !crate::require_program("sipp", "sip-tester") {
        return None;
    }
    let out = command(workdir, scenario_file, "127.0.0.1", "30s")
        .args(args)
        .arg(server.to_string())
        .output()
        .expect("run sipp");
    let (messages, errors) = take_logs(workdir, None);
    Some(Run {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        messages,
        errors,
    })
}
