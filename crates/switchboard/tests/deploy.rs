//! The deployment files stay true: the systemd unit passes `systemd-analyze verify` and keeps its hardening
//! (exposure score), the two-region sample configurations load and validate, and the compose file's environment
//! reaches the configuration it means to set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use std::path::PathBuf;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `switchboard config` with `vars` set (and nothing inherited that could change it); the effective TOML.
fn effective(vars: &[(&str, &str)]) -> String {
    let mut c = Command::new(BIN);
    c.arg("config").env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in vars {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{vars:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_systemd_unit_verifies_and_stays_hardened() {
    if !switchboard_testkit::require_program("systemd-analyze", "systemd") {
        return;
    }
    let unit = std::fs::read_to_string(root().join("deploy/switchboard.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/switchboard run"));
    // Verified against this build's binary, which exists here.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchboard.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/switchboard", BIN)).unwrap();
    let verify = Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");
    let security = Command::new("systemd-analyze").args(["security", "--offline=true"]).arg(&path).output().unwrap();
    let text = String::from_utf8_lossy(&security.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for switchboard.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score: {text}"));
    eprintln!("systemd-analyze security: exposure {score} (0 safest, 10 exposed)");
    assert!(score <= 2.0, "the unit lost its hardening: exposure {score}\n{text}");
}

#[test]
fn the_two_region_samples_load_and_differ_only_where_they_should() {
    let mut nodes = Vec::new();
    for region in ["sydney", "melbourne"] {
        let file = root().join(format!("deploy/two-regions/{region}.toml"));
        let toml = effective(&[("SWITCHBOARD_CONFIG", file.to_str().unwrap())]);
        assert!(toml.contains(&format!("region = \"{region}\"")), "{toml}");
        assert!(toml.contains("postgres://"), "both share one PostgreSQL");
        nodes.push(toml);
    }
    let differing: Vec<(&str, &str)> =
        nodes[0].lines().zip(nodes[1].lines()).filter(|(a, b)| a != b).collect::<Vec<_>>();
    for (a, _) in &differing {
        let key = a.split(" =").next().unwrap_or_default();
        assert!(["name", "region", "advertise", "address"].contains(&key), "{a}");
    }
    assert_eq!(differing.len(), 4, "{differing:?}");
    assert!(nodes[0].contains("secret = \"replace-with"), "relaying is on: {}", nodes[0]);
}

#[test]
fn the_compose_files_environment_sets_what_it_means_to() {
    let compose = std::fs::read_to_string(root().join("docker/compose.yml")).unwrap();
    // Each node's environment block, as KEY: VALUE lines.
    for node in ["node-syd:", "node-mel:"] {
        let block = compose.split(node).nth(1).unwrap().split("depends_on").next().unwrap();
        let vars: Vec<(String, String)> = block
            .lines()
            .filter_map(|l| l.trim().split_once(": "))
            .filter(|(k, _)| k.starts_with("SWITCHBOARD_"))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert!(vars.len() >= 6, "{node}: {vars:?}");
        let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let toml = effective(&refs);
        for (key, value) in &vars {
            assert!(
                toml.contains(&format!("\"{value}\"")),
                "{node} {key}={value} did not reach the configuration:\n{toml}"
            );
        }
    }
}
