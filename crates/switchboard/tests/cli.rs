//! The operator CLI as a user runs it: provisioning against a bare database (no daemon), errors that name the bad
//! field, CSV import, `config`, and changes that a running daemon picks up without a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use switchboard_testkit::daemon::Daemon;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// The CLI on its own database in a temporary directory, with no daemon and no inherited configuration.
struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        Cli { dir: tempfile::tempdir().expect("tempdir") }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn db_url(&self) -> String {
        format!("sqlite://{}", self.path("x.db").display())
    }

    fn command(&self, env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path()).env_remove("RUST_LOG");
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHBOARD_")) {
            c.env_remove(k);
        }
        c.env("SWITCHBOARD_DATABASE_URL", self.db_url());
        c.envs(env.iter().copied());
        c
    }

    fn run_env(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        self.command(env).args(args).output().expect("run switchboard")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_env(&[], args)
    }

    fn ok(&self, args: &[&str]) -> String {
        check_ok(args, self.run(args))
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed invalid JSON ({e}):\n{out}"))
    }

    /// A customer `Acme` with a Direct Mode service `main`.
    fn with_service() -> Cli {
        let cli = Cli::new();
        cli.ok(&["customer", "add", "Acme"]);
        cli.ok(&["service", "add", "--customer", "Acme", "--name", "main", "--mode", "direct"]);
        cli
    }

    fn auth_ids(&self) -> Vec<String> {
        let list = self.json(&["device", "list", "--json"]);
        list.as_array().expect("array").iter().map(|d| d["auth_id"].as_str().expect("auth_id").to_owned()).collect()
    }
}

fn check_ok(args: &[&str], out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{args:?} failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// Asserts the command failed with `code` and returns its stderr.
fn fails(out: &Output, code: i32, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: stdout {}\nstderr {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// The password printed by `device add` / `reset-password` without `--password`.
fn printed_password(stdout: &str) -> String {
    let pw = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no password line in:\n{stdout}"))
        .trim()
        .to_owned();
    assert_eq!(pw.chars().count(), 20, "generated password {pw:?}");
    assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()), "{pw:?}");
    pw
}

/// Every file of the SQLite database (main file, WAL, shared memory), read as bytes.
fn db_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        if e.file_name().to_string_lossy().starts_with("x.db") {
            all.extend(std::fs::read(e.path()).expect("read db file"));
        }
    }
    assert!(all.len() > 4096, "no database found in {}", dir.display());
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn customers_services_and_devices_can_be_added_listed_shown_edited_and_removed() {
    let cli = Cli::with_service();
    assert!(cli.ok(&["customer", "list"]).lines().any(|l| l.ends_with("Acme")));
    let customers = cli.json(&["customer", "list", "--json"]);
    assert_eq!(customers.as_array().map(Vec::len), Some(1));
    assert_eq!(customers[0]["name"], "Acme");
    let services = cli.json(&["service", "list", "--customer", "Acme", "--json"]);
    assert_eq!((services[0]["name"].as_str(), services[0]["mode"].as_str()), (Some("main"), Some("direct")));
    assert!(cli.ok(&["service", "list"]).contains("direct"));

    let out = cli.ok(&[
        "device",
        "add",
        "--service",
        "main",
        "--name",
        "Front desk",
        "--auth-id",
        "acme-100",
        "--password",
        "correct-horse-1",
        "--caller-id",
        "+441632960001",
        "--call-types",
        "local,national,International",
    ]);
    assert!(out.contains("acme-100") && !out.contains("password:"), "a given password is not echoed: {out}");
    let list = cli.ok(&["device", "list"]);
    assert!(list.contains("acme-100") && list.contains("Front desk") && list.contains("+441632960001"), "{list}");
    let d = cli.json(&["device", "show", "acme-100", "--json"]);
    assert_eq!(d["name"], "Front desk");
    assert_eq!(d["caller_id"], "+441632960001");
    assert_eq!(d["call_types"], serde_json::json!(["local", "national", "international"]));
    assert_eq!(d["max_contacts"], 1);
    assert!(d.get("credentials").is_none(), "credentials leaked into JSON: {d}");
    let shown = cli.ok(&["device", "show", "acme-100"]);
    assert!(shown.contains("Front desk") && shown.contains("main") && shown.contains("registrations: 0"), "{shown}");

    cli.ok(&["device", "edit", "acme-100", "--name", "Back office", "--caller-id", "01632960002"]);
    let d = cli.json(&["device", "show", "acme-100", "--json"]);
    assert_eq!((d["name"].as_str(), d["caller_id"].as_str()), (Some("Back office"), Some("01632960002")));
    assert_eq!(d["call_types"], serde_json::json!(["local", "national", "international"]), "untouched");
    cli.ok(&["device", "edit", "acme-100", "--clear-caller-id"]);
    assert_eq!(cli.json(&["device", "show", "acme-100", "--json"])["caller_id"], Value::Null);
    cli.ok(&["device", "edit", "acme-100", "--call-types", "mobile"]);
    assert_eq!(cli.json(&["device", "show", "acme-100", "--json"])["call_types"], serde_json::json!(["mobile"]));

    let before = cli.json(&["device", "show", "acme-100", "--json"]);
    let out = cli.ok(&["device", "reset-password", "acme-100"]);
    let first = printed_password(&out);
    let second = printed_password(&cli.ok(&["device", "reset-password", "acme-100"]));
    assert_ne!(first, second);
    assert!(!cli.ok(&["device", "reset-password", "acme-100", "--password", "chosen-pass-9"]).contains("password:"));
    assert_eq!(cli.json(&["device", "show", "acme-100", "--json"])["name"], before["name"]);

    cli.ok(&["device", "remove", "acme-100"]);
    assert!(cli.auth_ids().is_empty());
    let stderr = fails(&cli.run(&["device", "show", "acme-100"]), 1, "show after remove");
    assert!(stderr.contains("acme-100"), "{stderr}");
}

#[test]
fn a_generated_password_is_printed_once_and_stored_nowhere() {
    let cli = Cli::with_service();
    let out = cli.ok(&["device", "add", "--service", "main", "--name", "Phone", "--auth-id", "gen-1"]);
    let pw = printed_password(&out);
    assert_eq!(out.matches(&pw).count(), 1, "printed more than once:\n{out}");
    for args in [
        &["device", "show", "gen-1"][..],
        &["device", "show", "gen-1", "--json"],
        &["device", "list"],
        &["device", "list", "--json"],
        &["registrations", "--json"],
    ] {
        assert!(!cli.ok(args).contains(&pw), "{args:?} shows the password");
    }
    // A chosen password is not stored either: only digests are.
    cli.ok(&[
        "device",
        "add",
        "--service",
        "main",
        "--name",
        "Fax",
        "--auth-id",
        "gen-2",
        "--password",
        "Chosen-Secret-77",
    ]);
    let bytes = db_bytes(cli.dir.path());
    assert!(!contains(&bytes, pw.as_bytes()), "the generated password is in the database file");
    assert!(!contains(&bytes, b"Chosen-Secret-77"), "the chosen password is in the database file");
    assert!(contains(&bytes, b"gen-1") && contains(&bytes, b"gen-2"), "the search would have found plain text");
}

#[test]
fn every_provisioning_error_names_the_bad_field_and_exits_1() {
    let cli = Cli::with_service();
    cli.ok(&["device", "add", "--service", "main", "--name", "desk", "--auth-id", "d1", "--password", "long-enough-1"]);
    let add = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = vec![
            "device",
            "add",
            "--service",
            "main",
            "--name",
            "new",
            "--auth-id",
            "d2",
            "--password",
            "long-enough-2",
        ];
        for pair in extra.chunks(2) {
            match v.iter().position(|a| *a == pair[0]) {
                Some(i) => v[i + 1] = pair[1],
                None => v.extend_from_slice(pair),
            }
        }
        v
    };
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (vec!["service", "add", "--customer", "Acme", "--name", "s2", "--mode", "sideways"], &["--mode", "sideways"]),
        (vec!["service", "add", "--customer", "Nobody", "--name", "s2", "--mode", "trunk"], &["--customer", "Nobody"]),
        (vec!["service", "list", "--customer", "Nobody"], &["--customer", "Nobody"]),
        (add(&["--auth-id", "bad id"]), &["--auth-id", "bad id"]),
        (add(&["--auth-id", "d1"]), &["--auth-id", "d1", "already exists"]),
        (add(&["--service", "nope"]), &["--service", "nope"]),
        (vec!["device", "list", "--service", "nope"], &["--service", "nope"]),
        (add(&["--call-types", "local,galactic"]), &["--call-types", "galactic"]),
        (add(&["--call-types", "emergency"]), &["--call-types", "emergency"]),
        (add(&["--caller-id", "12ab"]), &["--caller-id", "12ab"]),
        (add(&["--password", "short"]), &["--password", "8 to 128"]),
        (add(&["--auth-id", "same-as-pw", "--password", "SAME-AS-PW"]), &["--password", "differ"]),
        (add(&["--max-contacts", "3"]), &["--max-contacts"]),
        (add(&["--name", "desk"]), &["--name", "already exists"]),
        (vec!["device", "edit", "d1"], &["nothing to change"]),
        (vec!["device", "edit", "d1", "--caller-id", "x"], &["--caller-id"]),
        (vec!["device", "edit", "d1", "--max-contacts", "0"], &["--max-contacts"]),
        (vec!["device", "edit", "d1", "--max-contacts", "2"], &["--max-contacts", "Direct Mode"]),
        (vec!["device", "edit", "ghost", "--name", "x"], &["ghost"]),
        (vec!["device", "reset-password", "d1", "--password", "tiny"], &["--password"]),
        (vec!["device", "remove", "ghost"], &["ghost"]),
    ];
    for (args, words) in &cases {
        let stderr = fails(&cli.run(args), 1, &format!("{args:?}"));
        for w in *words {
            assert!(stderr.contains(w), "{args:?}: error does not name {w:?}: {stderr}");
        }
    }
    assert_eq!(cli.auth_ids(), ["d1"], "a failed command changed the database");
    assert_eq!(cli.json(&["service", "list", "--json"]).as_array().map(Vec::len), Some(1));
    assert_eq!(cli.json(&["device", "show", "d1", "--json"])["name"], "desk");
}

#[test]
fn usage_errors_exit_2() {
    let cli = Cli::with_service();
    for args in [
        &["frobnicate"][..],
        &["device", "add", "--name", "x", "--auth-id", "y"],
        &["device", "list", "--bogus"],
        &["device", "edit", "d1", "--caller-id", "123", "--clear-caller-id"],
        &["device", "add", "--service", "main", "--name", "x", "--auth-id", "y", "--max-contacts", "many"],
        &[],
    ] {
        let stderr = fails(&cli.run(args), 2, &format!("{args:?}"));
        assert!(stderr.contains("Usage:") || stderr.contains("--help"), "{args:?}: not a usage error: {stderr}");
    }
}

#[test]
fn a_config_file_with_an_unknown_key_is_refused_naming_the_key() {
    let cli = Cli::new();
    for (text, key) in
        [("[sip]\nlisten_port = 5070\n", "listen_port"), ("[registrer]\nmin_expires = 60\n", "registrer")]
    {
        std::fs::write(cli.path("bad.toml"), text).expect("write");
        for args in [&["config"][..], &["customer", "list"]] {
            let out = cli.run_env(&[("SWITCHBOARD_CONFIG", "bad.toml")], args);
            let stderr = fails(&out, 1, &format!("{text:?} {args:?}"));
            assert!(stderr.contains(key), "{args:?}: error does not name {key}: {stderr}");
        }
    }
}

#[test]
fn a_bad_environment_override_names_the_variable() {
    let cli = Cli::new();
    let out = cli.run_env(&[("SWITCHBOARD_SIP_LISTEN", "nonsense")], &["customer", "list"]);
    let stderr = fails(&out, 1, "SWITCHBOARD_SIP_LISTEN=nonsense");
    assert!(stderr.contains("SWITCHBOARD_SIP_LISTEN") && stderr.contains("nonsense"), "{stderr}");
    let out = cli.run_env(&[("SWITCHBOARD_LOG_FORMAT", "xml")], &["config"]);
    assert!(fails(&out, 1, "SWITCHBOARD_LOG_FORMAT=xml").contains("log.format"));
}

#[test]
fn config_prints_toml_that_parses_and_reflects_file_and_environment() {
    let cli = Cli::new();
    std::fs::write(cli.path("sb.toml"), "[sip]\ndomain = \"file.example\"\n[registrar]\nmin_expires = 120\n").unwrap();
    let env = [("SWITCHBOARD_CONFIG", "sb.toml"), ("SWITCHBOARD_SIP_DOMAIN", "env.example")];
    let out = check_ok(&["config"], cli.run_env(&env, &["config"]));
    let printed: switchboard_server::Config = toml::from_str(&out).unwrap_or_else(|e| panic!("{e}:\n{out}"));
    let mut want = switchboard_server::Config::default();
    want.sip.domain = "env.example".into();
    want.registrar.min_expires = 120;
    want.database.url = cli.db_url();
    assert_eq!(printed, want, "the environment beats the file, which beats the defaults:\n{out}");
}

fn write_csv(cli: &Cli, text: &str) -> String {
    let path = cli.path("devices.csv");
    std::fs::write(&path, text).expect("write csv");
    path.display().to_string()
}

#[test]
fn device_import_creates_every_row() {
    let cli = Cli::with_service();
    let csv = write_csv(
        &cli,
        "name,auth_id,password\nDesk 1,imp-1,password-one-1\n\n# spare\nDesk 2, imp-2 ,password-two-2\nDesk 3,imp-3,pw-three-333\n",
    );
    let out = cli.ok(&["device", "import", "--service", "main", &csv]);
    assert!(out.contains("imported 3 devices"), "{out}");
    assert_eq!(cli.auth_ids(), ["imp-1", "imp-2", "imp-3"]);
    // Without a header row too.
    let csv = write_csv(&cli, "Desk 4,imp-4,password-four-4\n");
    assert!(cli.ok(&["device", "import", "--service", "main", &csv]).contains("imported 1 devices"));
    assert_eq!(cli.json(&["device", "show", "imp-2", "--json"])["name"], "Desk 2");
}

#[test]
fn device_import_with_a_bad_row_creates_nothing_and_names_the_line() {
    let cli = Cli::with_service();
    let cases = [
        ("name,auth_id,password\nA,imp-a,password-aaaa\nB,imp-b,short\n", &["line 3", "password"][..]),
        ("A,imp-a,password-aaaa\nB,imp b,password-bbbb\n", &["line 2", "auth_id"]),
        ("A,imp-a,password-aaaa\nB,imp-b\n", &["line 2", "3 columns"]),
        ("A,imp-a,password-aaaa\nB,imp-b,password-bbbb\nC,imp-a,password-cccc\n", &["line 3", "imp-a", "twice"]),
    ];
    for (text, words) in cases {
        let csv = write_csv(&cli, text);
        let stderr = fails(&cli.run(&["device", "import", "--service", "main", &csv]), 1, text);
        for w in words {
            assert!(stderr.contains(w), "{text:?}: error does not name {w:?}: {stderr}");
        }
        assert!(cli.auth_ids().is_empty(), "{text:?}: a failed import created devices");
    }
}

#[test]
fn device_import_of_an_auth_id_that_already_exists_creates_nothing_and_names_the_line() {
    let cli = Cli::with_service();
    cli.ok(&[
        "device",
        "add",
        "--service",
        "main",
        "--name",
        "old",
        "--auth-id",
        "taken",
        "--password",
        "old-password",
    ]);
    let csv = write_csv(&cli, "name,auth_id,password\nA,imp-a,password-aaaa\nB,taken,password-bbbb\n");
    let stderr = fails(&cli.run(&["device", "import", "--service", "main", &csv]), 1, "duplicate auth id");
    assert_eq!(cli.auth_ids(), ["taken"], "the import was not all-or-nothing");
    assert!(stderr.contains("taken") && stderr.contains("already exists"), "{stderr}");
    assert!(stderr.contains("line 3"), "the error does not name the line of the duplicate: {stderr}");
}

// ---------------------------------------------------------------------------------------------------------------
// Changes reach a running daemon through the change log (database.poll_ms, default 1 s), without a restart.
// ---------------------------------------------------------------------------------------------------------------

fn live_daemon() -> Daemon {
    let d = Daemon::start(BIN, "");
    d.cli_ok(&["customer", "add", "Live"]);
    d.cli_ok(&["service", "add", "--customer", "Live", "--name", "live", "--mode", "direct"]);
    d
}

fn registered(d: &Daemon, auth_id: &str) -> bool {
    d.registrations().iter().any(|r| r["auth_id"] == auth_id)
}

/// Waits up to 3 s for the stored registrations to show `auth_id` bound (or not): bindings are written behind.
fn stored_as(d: &Daemon, auth_id: &str, bound: bool) -> bool {
    switchboard_testkit::wait_until(Duration::from_secs(3), || registered(d, auth_id) == bound)
}

#[test]
fn a_device_added_while_the_daemon_runs_can_register_within_seconds() {
    let d = live_daemon();
    assert_ne!(d.register_status("late-1", "late-password-1"), 200, "an unknown device registered");
    d.cli_ok(&[
        "device",
        "add",
        "--service",
        "live",
        "--name",
        "late",
        "--auth-id",
        "late-1",
        "--password",
        "late-password-1",
    ]);
    let started = Instant::now();
    assert_eq!(d.register_until("late-1", "late-password-1", |s| s == 200), 200, "log:\n{}", d.log());
    eprintln!("registered {:?} after the CLI added the device", started.elapsed());
    assert!(stored_as(&d, "late-1", true));
}

#[test]
fn a_device_removed_while_the_daemon_runs_can_no_longer_register() {
    let d = live_daemon();
    d.cli_ok(&[
        "device",
        "add",
        "--service",
        "live",
        "--name",
        "gone",
        "--auth-id",
        "gone-1",
        "--password",
        "gone-password",
    ]);
    assert_eq!(d.register_until("gone-1", "gone-password", |s| s == 200), 200, "log:\n{}", d.log());
    assert!(stored_as(&d, "gone-1", true));
    d.cli_ok(&["device", "remove", "gone-1"]);
    let status = d.register_until("gone-1", "gone-password", |s| s != 200);
    assert!(matches!(status, 401 | 403), "a removed device got {status}; log:\n{}", d.log());
    assert!(stored_as(&d, "gone-1", false), "the removed device's registration is still listed");
}

#[test]
fn reset_password_while_the_daemon_runs_swaps_the_working_password() {
    let d = live_daemon();
    d.cli_ok(&[
        "device",
        "add",
        "--service",
        "live",
        "--name",
        "rp",
        "--auth-id",
        "rp-1",
        "--password",
        "first-password",
    ]);
    assert_eq!(d.register_until("rp-1", "first-password", |s| s == 200), 200, "log:\n{}", d.log());
    let new = printed_password(&d.cli_ok(&["device", "reset-password", "rp-1"]));
    assert_eq!(d.register_until("rp-1", &new, |s| s == 200), 200, "the new password never worked; log:\n{}", d.log());
    assert_eq!(d.register_status("rp-1", "first-password"), 401, "the old password still works");
    assert_eq!(d.register_status("rp-1", &new), 200);
}

// ---------------------------------------------------------------------------------------------------------------
// Numbers and gateways
// ---------------------------------------------------------------------------------------------------------------

impl Cli {
    /// [`Cli::with_service`] plus devices `desk` in `main` and `other` in a second service `branch`.
    fn with_devices() -> Cli {
        let cli = Cli::with_service();
        cli.ok(&["service", "add", "--customer", "Acme", "--name", "branch", "--mode", "direct"]);
        for (service, name, auth_id) in [("main", "desk", "acme-1"), ("branch", "other", "acme-2")] {
            cli.ok(&[
                "device",
                "add",
                "--service",
                service,
                "--name",
                name,
                "--auth-id",
                auth_id,
                "--password",
                "long-enough-1",
            ]);
        }
        cli
    }

    fn numbers(&self) -> Vec<String> {
        let list = self.json(&["number", "list", "--json"]);
        list.as_array().expect("array").iter().map(|n| n["number"].as_str().expect("number").to_owned()).collect()
    }

    fn gateways(&self) -> Vec<String> {
        let list = self.json(&["gateway", "list", "--json"]);
        list.as_array().expect("array").iter().map(|g| g["name"].as_str().expect("name").to_owned()).collect()
    }
}

#[test]
fn numbers_can_be_added_listed_shown_edited_and_removed() {
    let cli = Cli::with_devices();
    let out = cli.ok(&[
        "number",
        "add",
        "--service",
        "main",
        "--number",
        "02 9876 5432",
        "--device",
        "desk",
        "--divert-when",
        "no-answer",
        "--divert-to",
        "voicemail",
        "--no-answer-secs",
        "20",
        "--offline-alert",
        "noc@example.net",
    ]);
    assert!(out.contains("+61298765432"), "the number is stored in E.164: {out}");
    cli.ok(&["number", "add", "--service", "branch", "--number", "+61755550000", "--divert-when", "never"]);

    let n = cli.json(&["number", "show", "+61298765432", "--json"]);
    assert_eq!(
        (n["number"].as_str(), n["service"].as_str(), n["device"].as_str()),
        (Some("+61298765432"), Some("main"), Some("desk"))
    );
    assert_eq!((n["divert_when"].as_str(), n["divert_to"].as_str()), (Some("no_answer"), Some("voicemail")));
    assert_eq!((n["no_answer_secs"].as_i64(), n["offline_alert"].as_str()), (Some(20), Some("noc@example.net")));
    // Any spelling finds it.
    assert_eq!(cli.json(&["number", "show", "0298765432", "--json"])["number"], "+61298765432");
    let shown = cli.ok(&["number", "show", "61298765432"]);
    assert!(shown.contains("desk") && shown.contains("no-answer") && shown.contains("voicemail"), "{shown}");

    let b = cli.json(&["number", "show", "+61755550000", "--json"]);
    assert_eq!(
        (b["device"].clone(), b["divert_to"].clone(), b["no_answer_secs"].as_i64()),
        (Value::Null, Value::Null, Some(60))
    );
    assert_eq!(cli.numbers(), ["+61298765432", "+61755550000"]);
    let only = cli.json(&["number", "list", "--service", "branch", "--json"]);
    assert_eq!(only.as_array().map(Vec::len), Some(1));
    let list = cli.ok(&["number", "list"]);
    assert!(list.contains("+61298765432") && list.contains("branch") && list.contains("20s"), "{list}");

    cli.ok(&[
        "number",
        "edit",
        "+61298765432",
        "--divert-when",
        "all",
        "--divert-to",
        "0412 345 678",
        "--clear-device",
    ]);
    let n = cli.json(&["number", "show", "+61298765432", "--json"]);
    assert_eq!((n["divert_when"].as_str(), n["divert_to"].as_str()), (Some("all"), Some("+61412345678")));
    assert_eq!((n["device"].clone(), n["no_answer_secs"].as_i64()), (Value::Null, Some(20)), "untouched");
    cli.ok(&["number", "edit", "+61298765432", "--divert-when", "never", "--clear-divert-to", "--clear-offline-alert"]);
    let n = cli.json(&["number", "show", "+61298765432", "--json"]);
    assert_eq!((n["divert_when"].as_str(), n["divert_to"].clone()), (Some("never"), Value::Null));
    assert_eq!(n["offline_alert"], Value::Null);
    cli.ok(&["number", "edit", "+61298765432", "--device", "desk", "--no-answer-secs", "300"]);
    let n = cli.json(&["number", "show", "+61298765432", "--json"]);
    assert_eq!((n["device"].as_str(), n["no_answer_secs"].as_i64()), (Some("desk"), Some(300)));

    // Removing the device unpins the number; the number stays.
    cli.ok(&["device", "remove", "acme-1"]);
    assert_eq!(cli.json(&["number", "show", "+61298765432", "--json"])["device"], Value::Null);

    cli.ok(&["number", "remove", "02 9876 5432"]);
    assert_eq!(cli.numbers(), ["+61755550000"]);
    let stderr = fails(&cli.run(&["number", "show", "+61298765432"]), 1, "show after remove");
    assert!(stderr.contains("+61298765432"), "{stderr}");
}

#[test]
fn gateways_can_be_added_listed_and_removed() {
    let cli = Cli::new();
    cli.ok(&["gateway", "add", "--name", "backup", "--address", "gw2.carrier.example:5060", "--priority", "20"]);
    let out = cli.ok(&[
        "gateway",
        "add",
        "--name",
        "primary",
        "--address",
        "203.0.113.9:5080",
        "--transport",
        "tcp",
        "--priority",
        "10",
    ]);
    assert!(out.contains("primary"), "{out}");
    cli.ok(&["gateway", "add", "--name", "v6", "--address", "[2001:db8::1]:5060", "--disabled"]);
    // Tried in priority order.
    assert_eq!(cli.gateways(), ["primary", "backup", "v6"]);
    let list = cli.json(&["gateway", "list", "--json"]);
    assert_eq!((list[0]["address"].as_str(), list[0]["transport"].as_str()), (Some("203.0.113.9:5080"), Some("tcp")));
    assert_eq!((list[1]["transport"].as_str(), list[1]["enabled"].as_bool()), (Some("udp"), Some(true)));
    assert_eq!((list[2]["priority"].as_i64(), list[2]["enabled"].as_bool()), (Some(100), Some(false)));
    let text = cli.ok(&["gateway", "list"]);
    assert!(text.contains("gw2.carrier.example:5060") && text.contains("tcp"), "{text}");

    cli.ok(&["gateway", "remove", "backup"]);
    assert_eq!(cli.gateways(), ["primary", "v6"]);
    let stderr = fails(&cli.run(&["gateway", "remove", "backup"]), 1, "remove twice");
    assert!(stderr.contains("backup"), "{stderr}");
}

#[test]
fn every_number_and_gateway_error_names_its_flag_and_exits_1() {
    let cli = Cli::with_devices();
    cli.ok(&["number", "add", "--service", "main", "--number", "0298765432", "--divert-when", "never"]);
    cli.ok(&["gateway", "add", "--name", "primary", "--address", "gw.carrier.example:5060"]);
    let add = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = vec!["number", "add", "--service", "main", "--number", "0298765433", "--divert-when", "never"];
        for pair in extra.chunks(2) {
            match v.iter().position(|a| *a == pair[0]) {
                Some(i) => v[i + 1] = pair[1],
                None => v.extend_from_slice(pair),
            }
        }
        v
    };
    let gw = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = vec!["gateway", "add", "--name", "backup", "--address", "gw2.carrier.example:5060"];
        for pair in extra.chunks(2) {
            match v.iter().position(|a| *a == pair[0]) {
                Some(i) => v[i + 1] = pair[1],
                None => v.extend_from_slice(pair),
            }
        }
        v
    };
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (add(&["--number", "+61 2 9876 5432"]), &["--number", "+61298765432", "already exists"]),
        (add(&["--number", "12ab"]), &["--number", "12ab"]),
        (add(&["--number", "000"]), &["--number", "000"]),
        (add(&["--service", "nope"]), &["--service", "nope"]),
        (add(&["--device", "ghost"]), &["--device", "ghost"]),
        (add(&["--device", "other"]), &["--device", "other", "main"]),
        (add(&["--divert-when", "sometimes"]), &["--divert-when", "sometimes"]),
        (add(&["--divert-when", "no-answer"]), &["--divert-to", "required"]),
        (add(&["--divert-when", "all", "--divert-to", "home"]), &["--divert-to", "home"]),
        (add(&["--divert-when", "all", "--divert-to", "0298765433"]), &["--divert-to", "loop"]),
        (add(&["--no-answer-secs", "4"]), &["--no-answer-secs", "5", "300"]),
        (add(&["--no-answer-secs", "301"]), &["--no-answer-secs"]),
        (add(&["--offline-alert", "noc-at-example"]), &["--offline-alert", "noc-at-example"]),
        (vec!["number", "list", "--service", "nope"], &["--service", "nope"]),
        (vec!["number", "show", "0298765499"], &["+61298765499"]),
        (vec!["number", "show", "not-a-number"], &["not-a-number"]),
        (vec!["number", "edit", "0298765432"], &["nothing to change"]),
        (vec!["number", "edit", "0298765432", "--divert-when", "offline"], &["--divert-to"]),
        (vec!["number", "edit", "0298765432", "--device", "other"], &["--device", "other"]),
        (vec!["number", "edit", "0298765432", "--no-answer-secs", "0"], &["--no-answer-secs"]),
        (vec!["number", "edit", "0298765432", "--no-answer-secs", "-5"], &["--no-answer-secs", "-5"]),
        (vec!["number", "edit", "0298765432", "--offline-alert", "x@y"], &["--offline-alert"]),
        (vec!["number", "edit", "0298765499", "--divert-when", "never"], &["+61298765499"]),
        (vec!["number", "remove", "0298765499"], &["+61298765499"]),
        (gw(&["--name", "primary"]), &["--name", "primary", "already exists"]),
        (gw(&["--address", "gw2.carrier.example"]), &["--address", "gw2.carrier.example"]),
        (gw(&["--address", "gw2:99999"]), &["--address", "gw2:99999"]),
        (gw(&["--transport", "tls"]), &["--transport", "tls"]),
        (gw(&["--priority", "-1"]), &["--priority"]),
        (gw(&["--name", " "]), &["--name"]),
        (vec!["gateway", "remove", "ghost"], &["ghost"]),
    ];
    for (args, words) in &cases {
        let stderr = fails(&cli.run(args), 1, &format!("{args:?}"));
        for w in *words {
            assert!(stderr.contains(w), "{args:?}: error does not name {w:?}: {stderr}");
        }
    }
    assert_eq!(cli.numbers(), ["+61298765432"], "a failed command changed the numbers");
    let n = cli.json(&["number", "show", "0298765432", "--json"]);
    assert_eq!((n["divert_when"].as_str(), n["device"].clone()), (Some("never"), Value::Null));
    assert_eq!(cli.gateways(), ["primary"], "a failed command changed the gateways");
}

// ---------------------------------------------------------------------------------------------------------------
// trusted addresses, calls in progress, call detail records

/// Runs `f` on the CLI's database through the store, for records only the daemon writes (calls, CDRs).
fn with_store<T>(cli: &Cli, f: impl AsyncFnOnce(&dyn switchboard_storage::Store) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let store = switchboard_storage::open(&cli.db_url()).await.expect("open the database");
        f(store.as_ref()).await
    })
}

#[test]
fn a_trusted_address_can_be_added_shown_changed_and_cleared() {
    let cli = Cli::with_service();
    cli.ok(&["service", "add", "--customer", "Acme", "--name", "pbx", "--mode", "trunk"]);
    let add = |name: &str, auth_id: &str, extra: &[&str]| -> Output {
        let mut args = vec!["device", "add", "--service", "pbx", "--name", name, "--auth-id", auth_id];
        args.extend_from_slice(&["--password", "long-enough-1"]);
        args.extend_from_slice(extra);
        cli.run(&args)
    };
    let trusted = |auth_id: &str| cli.json(&["device", "show", auth_id, "--json"])["trusted_address"].clone();

    check_ok(&["device", "add"], add("Trunk", "pbx-1", &["--trusted-address", "192.0.2.10"]));
    assert_eq!(trusted("pbx-1"), "192.0.2.10:5060", "the default port is stored");
    let shown = cli.ok(&["device", "show", "pbx-1"]);
    assert!(shown.contains("192.0.2.10:5060"), "{shown}");
    let list = cli.ok(&["device", "list"]);
    assert!(list.contains("TRUSTED ADDRESS") && list.contains("192.0.2.10:5060"), "{list}");
    let listed = cli.json(&["device", "list", "--json"]);
    assert_eq!(listed[0]["trusted_address"], "192.0.2.10:5060");
    check_ok(&["device", "add"], add("Phone", "pbx-2", &[]));
    assert_eq!(trusted("pbx-2"), Value::Null);
    assert!(cli.ok(&["device", "show", "pbx-2"]).lines().any(|l| l.starts_with("trusted from:") && l.ends_with('-')));

    cli.ok(&["device", "edit", "pbx-1", "--trusted-address", "[2001:DB8::10]:5070"]);
    assert_eq!(trusted("pbx-1"), "[2001:db8::10]:5070");
    cli.ok(&["device", "edit", "pbx-1", "--trusted-address", "2001:db8::11"]);
    assert_eq!(trusted("pbx-1"), "[2001:db8::11]:5060");
    cli.ok(&["device", "edit", "pbx-1", "--name", "Trunk A"]);
    assert_eq!(trusted("pbx-1"), "[2001:db8::11]:5060", "untouched by other edits");
    cli.ok(&["device", "edit", "pbx-1", "--clear-trusted-address"]);
    assert_eq!(trusted("pbx-1"), Value::Null);
    cli.ok(&["device", "edit", "pbx-2", "--trusted-address", "192.0.2.20:5062"]);
    cli.ok(&["device", "edit", "pbx-2", "--no-trusted-address"]);
    assert_eq!(trusted("pbx-2"), Value::Null);

    // Bad values name the flag and change nothing.
    cli.ok(&["device", "edit", "pbx-1", "--trusted-address", "192.0.2.10"]);
    let cases: Vec<(Output, &[&str])> = vec![
        (add("New", "pbx-3", &["--trusted-address", "pbx.example.net"]), &["--trusted-address", "pbx.example.net"][..]),
        (add("New", "pbx-3", &["--trusted-address", "192.0.2.30:0"]), &["--trusted-address", "192.0.2.30:0"]),
        (add("New", "pbx-3", &["--trusted-address", "192.0.2.30:70000"]), &["--trusted-address"]),
        (add("New", "pbx-3", &["--trusted-address", "0.0.0.0"]), &["--trusted-address"]),
        (add("New", "pbx-3", &["--trusted-address", "192.0.2.10:5060"]), &["--trusted-address", "already exists"]),
        (cli.run(&["device", "edit", "pbx-2", "--trusted-address", "10.0.0"]), &["--trusted-address", "10.0.0"]),
        (cli.run(&["device", "edit", "pbx-2", "--trusted-address", "192.0.2.10"]), &["--trusted-address", "already"]),
    ];
    for (out, words) in &cases {
        let stderr = fails(out, 1, "a bad trusted address");
        for w in *words {
            assert!(stderr.contains(w), "error does not name {w:?}: {stderr}");
        }
    }
    let both = cli.run(&["device", "edit", "pbx-1", "--trusted-address", "192.0.2.40", "--clear-trusted-address"]);
    assert!(fails(&both, 2, "both set and clear").contains("Usage:"));
    assert_eq!(cli.auth_ids(), ["pbx-1", "pbx-2"]);
    assert_eq!((trusted("pbx-1"), trusted("pbx-2")), (Value::from("192.0.2.10:5060"), Value::Null));
}

#[test]
fn calls_and_cdrs_of_a_fresh_database_are_empty_lists() {
    let cli = Cli::new();
    assert_eq!(cli.ok(&["calls", "--json"]).trim(), "[]");
    assert_eq!(cli.ok(&["cdr", "--json"]).trim(), "[]");
    assert!(cli.ok(&["calls"]).starts_with("CALL ID"));
    assert!(cli.ok(&["cdr"]).starts_with("STARTED"));
    let cases: Vec<(&[&str], &[&str])> = vec![
        (&["cdr", "--service", "nosuch"], &["--service", "nosuch"]),
        (&["cdr", "--json", "--service", "nosuch"], &["--service", "nosuch"]),
        (&["cdr", "--limit", "0"], &["--limit", "0"]),
        (&["cdr", "--limit", "10001"], &["--limit", "10001"]),
    ];
    for (args, words) in &cases {
        let stderr = fails(&cli.run(args), 1, &format!("{args:?}"));
        for w in *words {
            assert!(stderr.contains(w), "{args:?}: error does not name {w:?}: {stderr}");
        }
    }
}

#[test]
fn calls_lists_the_calls_in_progress_oldest_first() {
    use switchboard_storage::{ActiveCall, ActiveCallOp, CdrDirection};
    let cli = Cli::new();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let call = |call_id: &str, started_at: i64, state: &str| ActiveCall {
        call_id: call_id.to_owned(),
        node: "node-a".to_owned(),
        direction: CdrDirection::Inbound,
        service_id: None,
        device_id: None,
        caller: "+61298765432".to_owned(),
        callee: "+61755550000".to_owned(),
        state: state.to_owned(),
        started_at,
        answered_at: (state == "answered").then_some(started_at + 1_000),
    };
    with_store(&cli, async |s| {
        let ops = [
            ActiveCallOp::Upsert(call("c-new", now - 5_000, "ringing")),
            ActiveCallOp::Upsert(ActiveCall {
                direction: CdrDirection::Outbound,
                ..call("c-old", now - 3_725_000, "answered")
            }),
        ];
        s.apply_active_calls(&ops).await.expect("apply");
    });
    let list = cli.json(&["calls", "--json"]);
    let ids: Vec<_> = list.as_array().expect("array").iter().map(|c| c["call_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["c-old", "c-new"]);
    assert_eq!((list[0]["direction"].as_str(), list[0]["state"].as_str()), (Some("outbound"), Some("answered")));
    assert_eq!(list[1]["answered_at"], Value::Null);
    let text = cli.ok(&["calls"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    // 1 h 2 min 5 s so far (the table rounds down, and a second may pass before the command runs).
    assert!(lines[1].starts_with("c-old") && lines[1].contains("outbound") && lines[1].contains("1:02:0"), "{text}");
    assert!(lines[2].contains("+61755550000") && lines[2].contains("ringing") && lines[2].contains("0:00:0"), "{text}");
}

#[test]
fn cdr_lists_records_newest_first_by_service_and_limit() {
    use switchboard_storage::{CdrDirection, CdrDisposition, DivertReason, NewCdr};
    let cli = Cli::with_service();
    cli.ok(&["service", "add", "--customer", "Acme", "--name", "branch", "--mode", "direct"]);
    let main = cli.json(&["service", "list", "--json"])[0]["id"].as_i64().unwrap();
    let branch = cli.json(&["service", "list", "--json"])[1]["id"].as_i64().unwrap();
    let cdr = |call_id: &str, service_id: i64, started_at: i64| NewCdr {
        call_id: call_id.to_owned(),
        direction: CdrDirection::Outbound,
        service_id: Some(service_id),
        device_id: None,
        caller: "+61298765432".to_owned(),
        callee: "0412345678".to_owned(),
        call_type: Some("mobile".to_owned()),
        started_at,
        answered_at: Some(started_at + 2_000),
        ended_at: Some(started_at + 2_000 + 95_000),
        disposition: CdrDisposition::Answered,
        sip_status: Some(200),
        divert_reason: None,
        diverted_to: None,
        gateway: Some("primary".to_owned()),
        node: "node-a".to_owned(),
        end_reason: Some("callee_hangup".to_owned()),
    };
    // 2025-01-01 00:00:00 UTC and onwards.
    let t0 = 1_735_689_600_000;
    with_store(&cli, async |s| {
        let diverted = NewCdr {
            direction: CdrDirection::Inbound,
            answered_at: None,
            disposition: CdrDisposition::NoAnswer,
            sip_status: Some(480),
            divert_reason: Some(DivertReason::NoAnswer),
            diverted_to: Some("voicemail".to_owned()),
            ..cdr("c-2", branch, t0 + 60_000)
        };
        s.insert_cdrs(&[cdr("c-1", main, t0), diverted, cdr("c-3", main, t0 + 120_000)]).await.expect("insert");
    });

    let ids = |args: &[&str]| -> Vec<String> {
        let list = cli.json(args);
        list.as_array().expect("array").iter().map(|c| c["call_id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(&["cdr", "--json"]), ["c-3", "c-2", "c-1"]);
    assert_eq!(ids(&["cdr", "--json", "--service", "main"]), ["c-3", "c-1"]);
    assert_eq!(ids(&["cdr", "--json", "--service", "branch"]), ["c-2"]);
    assert_eq!(ids(&["cdr", "--json", "--limit", "2"]), ["c-3", "c-2"]);
    let full = cli.json(&["cdr", "--json", "--service", "branch"]);
    assert_eq!((full[0]["divert_reason"].as_str(), full[0]["sip_status"].as_u64()), (Some("no_answer"), Some(480)));
    assert_eq!(full[0]["end_reason"].as_str(), Some("callee_hangup"));

    let text = cli.ok(&["cdr"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    for (line, words) in [
        (
            lines[1],
            &["2025-01-01 00:02:00", "outbound", "0412345678", "mobile", "answered", "200", "0:01:35", "callee_hangup"]
                [..],
        ),
        (lines[2], &["2025-01-01 00:01:00", "inbound", "no_answer", "480", "voicemail"]),
        (lines[3], &["2025-01-01 00:00:00", "+61298765432"]),
    ] {
        for w in words {
            assert!(line.contains(w), "{w:?} missing from {line:?}:\n{text}");
        }
    }
    assert!(!lines[2].contains("0:01:35"), "an unanswered call has no talk time: {text}");
}

/// Every node announces itself (region, SIP address, heartbeat) and `nodes` shows it up with the bindings it
/// holds; stopped, it shows stale after three missed heartbeats.
#[test]
fn a_node_announces_itself_and_shows_stale_once_stopped() {
    let config = "[node]\nname = \"syd1\"\nregion = \"sydney\"\nadvertise = \"syd.sip.example\"\nheartbeat_secs = 1\n";
    let mut d = Daemon::new(BIN, config);
    d.cli_ok(&["customer", "add", "Live"]);
    d.cli_ok(&["service", "add", "--customer", "Live", "--name", "live", "--mode", "direct"]);
    let device =
        ["device", "add", "--service", "live", "--name", "desk", "--auth-id", "n-1", "--password", "node-password-1"];
    d.cli_ok(&device);
    d.launch();
    assert_eq!(d.register_status("n-1", "node-password-1"), 200);
    let nodes = |d: &Daemon| -> Value { serde_json::from_str(&d.cli_ok(&["nodes", "--json"])).unwrap() };
    let bound = switchboard_testkit::wait_until(Duration::from_secs(3), || nodes(&d)[0]["bindings"] == 1);
    let n = nodes(&d);
    assert!(bound, "{n}");
    assert_eq!((n[0]["name"].as_str(), n[0]["region"].as_str()), (Some("syd1"), Some("sydney")));
    assert_eq!((n[0]["sip_address"].as_str(), n[0]["up"].as_bool()), (Some("syd.sip.example"), Some(true)));
    let table = d.cli_ok(&["nodes"]);
    assert!(table.contains("syd1") && table.contains(" up "), "{table}");
    d.stop();
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(nodes(&d)[0]["up"], false, "three heartbeats missed");
    assert!(d.cli_ok(&["nodes"]).contains("stale"));
}
