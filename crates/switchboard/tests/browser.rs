//! The customer portal in a real browser: runs `tests/browser/portal.py` (Python Playwright driving Debian's
//! Chromium, with an aiosmtpd sink for the emails and SIPp as the carrier leaving a voicemail) against this
//! build's binary. Screenshots of every screen go to
//! `artifacts/portal/` in the repository (kept as test artifacts, not committed).
//!
//! Needs `/usr/bin/chromium` (Debian `chromium`) and a Python with `playwright` and `aiosmtpd`
//! (`./scripts/test` installs all three). Missing: a loud skip, or a failure under `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use std::path::PathBuf;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

#[test]
fn the_portal_works_in_chromium() {
    if !switchboard_testkit::require_program("chromium", "chromium chromium-driver")
        || !switchboard_testkit::require_program("sipp", "sip-tester")
    {
        return;
    }
    let Some(python) = switchboard_testkit::e2e_python() else { return };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let shots = root.join("artifacts/portal");
    let out = Command::new(python)
        .arg(root.join("tests/browser/portal.py"))
        .env("SWITCHBOARD_BIN", BIN)
        .env("SCREENSHOTS", &shots)
        .output()
        .expect("run the browser test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(out.status.success(), "the browser test failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("all portal browser steps passed"));
    let pngs = std::fs::read_dir(&shots)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "png"));
    assert!(pngs.count() >= 18, "a screenshot of each screen in {}", shots.display());
}
