//! The customer portal over HTTP against the real binary, with a real SMTP sink taking its emails: register, the
//! emailed one-time link, sign-in and its throttle, sessions, the security headers and CSRF refusal, and the
//! SIP Devices screens (a device added here registers with the password the page showed once).
//! (The same flows in a real browser are in tests/browser/.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use std::time::{Duration, Instant};

use switchboard_testkit::client::SipClient;
use switchboard_testkit::daemon::Daemon;
use switchboard_testkit::http::{Http, Reply};
use switchboard_testkit::smtp::SmtpSink;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const PUBLIC: &str = "https://portal.example.test";
const COOKIE: &str = "__Host-sb_session";

fn world() -> (Daemon, SmtpSink, Http) {
    let sink = SmtpSink::start();
    let config = format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\nfrom = \"Portal <portal@carrier.test>\"\n\
         [api]\npublic_url = \"{PUBLIC}/\"\n",
        sink.addr.port()
    );
    let mut d = Daemon::new(BIN, &config);
    d.cli_ok(&["customer", "add", "Acme"]);
    d.cli_ok(&["service", "add", "--customer", "Acme", "--name", "acme", "--mode", "direct"]);
    d.launch();
    let http = d.http(None);
    (d, sink, http)
}

/// The link in the newest email to `to` whose subject is `subject`, waiting for the outbox (it polls every 5 s).
fn emailed_link(sink: &SmtpSink, to: &str, subject: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mails = sink.mails();
        if let Some(m) = mails
            .iter()
            .rev()
            .find(|m| m.to.iter().any(|t| t.contains(to)) && m.header("Subject").is_some_and(|s| s.contains(subject)))
        {
            let body = m.data.split_once("\r\n\r\n").unwrap().1.replace("=\r\n", "").replace("=3D", "=");
            let start = body.find(&format!("{PUBLIC}/portal/password/")).unwrap_or_else(|| panic!("no link: {body}"));
            return body[start..].chars().take_while(|c| !c.is_whitespace()).collect();
        }
        assert!(Instant::now() < deadline, "no email {subject:?} to {to}; got {mails:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The path of an emailed link on this daemon.
fn path_of(link: &str) -> String {
    link.strip_prefix(PUBLIC).unwrap().to_owned()
}

fn cookie_header(session: &str) -> String {
    format!("{COOKIE}={session}")
}

/// Signs in; the session id from the answer's cookie.
fn sign_in(http: &Http, email: &str, password: &str) -> String {
    let r = http.form("/portal/login", &[("email", email), ("password", password)], &[]);
    assert_eq!(r.status, 303, "{}", r.text());
    r.cookie(COOKIE).expect("a session cookie").0
}

fn page(http: &Http, path: &str, session: &str) -> Reply {
    http.get_with(path, &[("Cookie", &cookie_header(session))])
}

fn post(http: &Http, path: &str, session: &str, fields: &[(&str, &str)]) -> Reply {
    http.form(path, fields, &[("Cookie", &cookie_header(session))])
}

/// Invites `email` to customer Acme with the CLI and sets its password from the link.
fn invited(d: &Daemon, http: &Http, email: &str, password: &str) {
    let out = d.cli_ok(&["login", "invite", "--email", email, "--customer", "Acme", "--print-link"]);
    let link = out.lines().last().unwrap().trim().to_owned();
    assert!(link.starts_with(&format!("{PUBLIC}/portal/password/")), "{out}");
    let r = http.form(&path_of(&link), &[("password", password), ("again", password)], &[]);
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn a_customer_registers_sets_a_password_from_the_emailed_link_and_signs_in() {
    let (d, sink, http) = world();
    // Register answers the same, byte for byte, for a new address, the same address again, and one with a login.
    d.cli_ok(&["login", "invite", "--email", "known@example.com", "--customer", "Acme"]);
    let first = http.form("/portal/register", &[("email", "Ann@Example.com")], &[("Host", "evil.example")]);
    let again = http.form("/portal/register", &[("email", "ann@example.com")], &[]);
    let known = http.form("/portal/register", &[("email", "known@example.com")], &[]);
    assert_eq!((first.status, again.status, known.status), (200, 200, 200));
    assert_eq!(first.text(), again.text());
    assert_eq!(first.text(), known.text());
    assert!(first.text().contains("If this address can be used"));
    let recover_unknown = http.form("/portal/recover", &[("email", "nobody@example.com")], &[]);
    let recover_known = http.form("/portal/recover", &[("email", "known@example.com")], &[]);
    assert_eq!(recover_unknown.text(), recover_known.text());
    assert_eq!(refused_email(&http), 200, "a malformed address is said so, with the form again");

    // The link comes from api.public_url, whatever Host the request named.
    let link = emailed_link(&sink, "ann@example.com", "Choose your portal password");
    assert!(!link.contains("evil"), "{link}");
    let known_mail = emailed_link(&sink, "known@example.com", "You already have a portal login");
    assert!(known_mail.starts_with(PUBLIC));
    assert!(sink.mails().iter().all(|m| !m.to.iter().any(|t| t.contains("nobody"))), "no mail to an unknown address");

    // The password form: refusals keep the link alive; a good password spends it.
    let path = path_of(&link);
    assert_eq!(http.get(&path).status, 200);
    let short = http.form(&path, &[("password", "short"), ("again", "short")], &[]);
    assert_eq!(short.status, 422);
    let differ = http.form(&path, &[("password", "a-long-password-1"), ("again", "a-long-password-2")], &[]);
    assert_eq!(differ.status, 422);
    let set = http.form(&path, &[("password", "ann-password-1"), ("again", "ann-password-1")], &[]);
    assert_eq!(set.status, 200, "{}", set.text());
    assert!(set.text().contains("Your password is set"));
    assert!(set.cookie(COOKIE).is_none(), "no automatic sign-in from a link");
    assert_eq!(http.get(&path).status, 404, "a link works once");
    // What the database keeps: an argon2id hash, and only the SHA-256 of each link's token.
    let token = path.rsplit('/').next().unwrap();
    let stored = sql(&d, "SELECT password_hash FROM logins WHERE email = 'ann@example.com'");
    assert!(stored.starts_with("$argon2id$") && !stored.contains("ann-password-1"), "{stored}");
    let hashes = sql(&d, "SELECT token_hash FROM login_tokens");
    assert!(!hashes.contains(token), "the token itself is never stored");
    assert!(!hashes.is_empty() && hashes.lines().all(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())));
    let replay = http.form(&path, &[("password", "other-password-1"), ("again", "other-password-1")], &[]);
    assert_eq!(replay.status, 404);
    assert_eq!(http.get(&format!("/portal/password/{}", "0".repeat(64))).status, 404);

    // Signed in but not linked: the waiting page. Linked by the operator: the services.
    let session = sign_in(&http, "ANN@example.com", "ann-password-1");
    let home = page(&http, "/portal/", &session);
    assert_eq!((home.status, home.header("location")), (303, Some("/portal/waiting")));
    assert!(page(&http, "/portal/waiting", &session).text().contains("has not linked your login"));
    d.cli_ok(&["login", "link", "--email", "ann@example.com", "--customer", "Acme"]);
    let home = page(&http, "/portal/", &session);
    assert_eq!(home.status, 200);
    assert!(home.text().contains("acme") && home.text().contains("Direct Mode"), "{}", home.text());
    let listed = d.cli_ok(&["login", "list"]);
    assert!(listed.contains("ann@example.com") && listed.contains("Acme"), "{listed}");

    // Signing out ends the session on the server, not only in the browser.
    let out = post(&http, "/portal/logout", &session, &[]);
    assert_eq!(out.status, 303);
    assert_eq!(out.cookie(COOKIE).map(|c| c.0), Some(String::new()));
    assert_eq!(page(&http, "/portal/", &session).header("location"), Some("/portal/login"));
}

fn refused_email(http: &Http) -> u16 {
    let r = http.form("/portal/register", &[("email", "not an address")], &[]);
    assert!(r.text().contains("That is not an email address"), "{}", r.text());
    r.status
}

#[test]
fn failed_sign_ins_are_throttled_per_address_and_never_lock_the_owner_out_elsewhere() {
    let (d, _sink, http) = world();
    invited(&d, &http, "owner@example.com", "owner-password-1");
    let wrong = http.form("/portal/login", &[("email", "owner@example.com"), ("password", "nope-nope-1")], &[]);
    let unknown = http.form("/portal/login", &[("email", "ghost@example.com"), ("password", "nope-nope-1")], &[]);
    assert_eq!((wrong.status, unknown.status), (401, 401));
    let error = |r: &Reply| r.text().split("id=\"error\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert_eq!(error(&wrong), error(&unknown), "the same words for an unknown address");
    for _ in 0..4 {
        let r = http.form("/portal/login", &[("email", "owner@example.com"), ("password", "nope-nope-1")], &[]);
        assert_eq!(r.status, 401);
    }
    // Five failures from 127.0.0.1: the right password waits there...
    let blocked = http.form("/portal/login", &[("email", "owner@example.com"), ("password", "owner-password-1")], &[]);
    assert_eq!(blocked.status, 429, "{}", blocked.text());
    assert!(blocked.cookie(COOKIE).is_none());
    // ...but works from the owner's own address, and SIP is untouched.
    let elsewhere = http.from_ip("127.0.0.2");
    sign_in(&elsewhere, "owner@example.com", "owner-password-1");
    let mut c = SipClient::udp(d.sip);
    let opts = format!(
        "OPTIONS sip:{s} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bKthr\r\nFrom: <sip:x@test>;tag=1\r\n\
         To: <sip:{s}>\r\nCall-ID: thr\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        s = d.sip,
        l = c.local()
    );
    c.send_raw(opts.as_bytes());
    assert_eq!(c.recv_response(Duration::from_secs(2)).and_then(|m| m.status()), Some(200));
}

#[test]
fn cross_site_posts_are_refused_and_every_page_carries_the_security_headers() {
    let (d, _sink, http) = world();
    invited(&d, &http, "sam@example.com", "sam-password-1");
    let fields = [("email", "sam@example.com"), ("password", "sam-password-1")];
    // A form on another site posting here: refused before anything happens.
    let cross =
        http.form("/portal/login", &fields, &[("Origin", "http://evil.example"), ("Sec-Fetch-Site", "cross-site")]);
    assert_eq!(cross.status, 403, "{}", cross.text());
    assert!(cross.cookie(COOKIE).is_none());
    let origin = format!("http://{}", d.api);
    let same = http.form("/portal/login", &fields, &[("Origin", &origin), ("Sec-Fetch-Site", "same-origin")]);
    assert_eq!(same.status, 303);

    // The session id is new at sign-in, whatever the browser held (no fixation), and the cookie is locked down.
    let planted = "ab".repeat(32);
    let r = http.form("/portal/login", &fields, &[("Cookie", &cookie_header(&planted))]);
    let (id, attrs) = r.cookie(COOKIE).unwrap();
    assert_ne!(id, planted);
    assert_eq!(id.len(), 64);
    for attr in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(attrs.contains(attr), "{attrs}");
    }
    assert_eq!(page(&http, "/portal/", &planted).header("location"), Some("/portal/login"));

    // Nothing changes on GET: the state-changing routes take POST only.
    for path in ["/portal/logout", "/portal/devices/1/delete", "/portal/devices/1/password"] {
        assert_eq!(page(&http, path, &id).status, 405, "{path}");
    }
    for path in ["/portal/login", "/portal/", "/portal/register", "/portal/nothing"] {
        let r = page(&http, path, &id);
        let csp = r.header("content-security-policy").unwrap_or_else(|| panic!("{path}: no CSP"));
        assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{csp}");
        assert!(!csp.contains("script-src") || csp.contains("script-src 'none'"), "{csp}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert!(!r.text().contains("<script"), "{path}: no script at all");
    }
}

#[test]
fn devices_are_added_edited_reset_and_deleted_and_the_password_shows_once() {
    let (d, _sink, http) = world();
    invited(&d, &http, "ops@acme.example", "acme-password-1");
    d.cli_ok(&["customer", "add", "Other"]);
    d.cli_ok(&["service", "add", "--customer", "Other", "--name", "other", "--mode", "direct"]);
    d.cli_ok(&["device", "add", "--service", "other", "--name", "theirs", "--auth-id", "other-1"]);
    let session = sign_in(&http, "ops@acme.example", "acme-password-1");
    let service =
        serde_json::from_str::<serde_json::Value>(&d.cli_ok(&["service", "list", "--json"])).unwrap()[0]["id"].clone();
    let devices = format!("/portal/services/{service}/devices");

    // Setup: the region with its SIP server.
    let setup = page(&http, &format!("/portal/services/{service}/setup"), &session);
    assert!(setup.text().contains("default"), "{}", setup.text());
    let saved = post(
        &http,
        &format!("/portal/services/{service}/setup"),
        &session,
        &[("region", "default"), ("mode", "direct")],
    );
    assert_eq!(saved.status, 303);
    let bad = post(&http, &format!("/portal/services/{service}/setup"), &session, &[("region", "mars")]);
    assert_eq!(bad.status, 422);

    // A device whose name would be markup is shown as text.
    let xss = "<script>alert(1)</script>";
    let added = post(
        &http,
        &devices,
        &session,
        &[
            ("name", xss),
            ("auth_id", "acme-101"),
            ("caller_id", "0298765432"),
            ("call_types", "local"),
            ("call_types", "mobile"),
        ],
    );
    assert_eq!(added.status, 200, "{}", added.text());
    assert_eq!(added.header("cache-control"), Some("no-store"));
    let text = added.text();
    assert!(text.contains("only time this password is shown"));
    let password = text.split("id=\"device-password\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert_eq!(password.len(), 20);
    assert!(!text.contains(xss) && text.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "escaped: {text}");

    let list = page(&http, &devices, &session).text();
    assert!(list.contains("acme-101") && list.contains("local, mobile") && list.contains("never registered"));
    assert!(!list.contains(&password), "the table never shows the password");
    assert!(!list.contains(xss));
    let id = list.split("/portal/devices/").nth(1).unwrap().split('"').next().unwrap().to_owned();

    // The device registers with the password the page showed, and the table then shows it online.
    let registered = d.register_until("acme-101", &password, |s| s == 200);
    assert_eq!(registered, 200, "the portal's device never registered");
    assert!(switchboard_testkit::wait_until(Duration::from_secs(3), || page(&http, &devices, &session)
        .text()
        .contains(">online<")));

    // Refusals keep what was typed and say what is wrong.
    let dup = post(&http, &devices, &session, &[("name", "Second"), ("auth_id", "acme-101")]);
    assert_eq!(dup.status, 409);
    assert!(dup.text().contains("Another device already uses this auth id") && dup.text().contains("value=\"Second\""));
    let bad = post(&http, &devices, &session, &[("name", "Third"), ("auth_id", "bad id")]);
    assert_eq!(bad.status, 422);
    assert!(bad.text().contains("Auth ID:"), "{}", bad.text());

    // Edit, reset, delete.
    let edited = post(
        &http,
        &format!("/portal/devices/{id}"),
        &session,
        &[("name", "Front desk"), ("caller_id", ""), ("call_types", "national")],
    );
    assert_eq!(edited.status, 303, "{}", edited.text());
    let shown =
        serde_json::from_str::<serde_json::Value>(&d.cli_ok(&["device", "show", "acme-101", "--json"])).unwrap();
    assert_eq!((shown["name"].as_str(), shown["caller_id"].as_str()), (Some("Front desk"), None));
    assert_eq!(shown["call_types"], serde_json::json!(["national"]));
    let reset = post(&http, &format!("/portal/devices/{id}/password"), &session, &[]);
    let new_password =
        reset.text().split("id=\"device-password\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert_ne!(new_password, password);

    // Another customer's device is not found, whatever the method, and stays as it was.
    let theirs = serde_json::from_str::<serde_json::Value>(&d.cli_ok(&["device", "show", "other-1", "--json"]))
        .unwrap()["id"]
        .clone();
    assert_eq!(page(&http, &format!("/portal/devices/{theirs}"), &session).status, 404);
    for action in ["", "/password", "/delete"] {
        let r = post(&http, &format!("/portal/devices/{theirs}{action}"), &session, &[("name", "mine")]);
        assert_eq!(r.status, 404, "{action}");
    }
    let other_service =
        serde_json::from_str::<serde_json::Value>(&d.cli_ok(&["service", "list", "--json"])).unwrap()[1]["id"].clone();
    assert_eq!(page(&http, &format!("/portal/services/{other_service}/devices"), &session).status, 404);
    assert_eq!(
        post(
            &http,
            &format!("/portal/services/{other_service}/devices"),
            &session,
            &[("name", "x"), ("auth_id", "sneaky-1")]
        )
        .status,
        404
    );
    assert!(d.cli_ok(&["device", "show", "other-1"]).contains("theirs"));

    let deleted = post(&http, &format!("/portal/devices/{id}/delete"), &session, &[]);
    assert_eq!(deleted.status, 303);
    assert!(!d.cli_ok(&["device", "list"]).contains("acme-101"));
}

#[test]
fn numbers_are_configured_with_clear_refusals_and_another_customers_stay_out_of_reach() {
    let (d, _sink, http) = world();
    invited(&d, &http, "ops@acme.example", "acme-password-1");
    d.cli_ok(&["device", "add", "--service", "acme", "--name", "desk", "--auth-id", "acme-201"]);
    d.cli_ok(&["number", "add", "--service", "acme", "--number", "+61299990001", "--divert-when", "never"]);
    d.cli_ok(&["customer", "add", "Other"]);
    d.cli_ok(&["service", "add", "--customer", "Other", "--name", "other", "--mode", "direct"]);
    d.cli_ok(&["device", "add", "--service", "other", "--name", "theirs", "--auth-id", "other-201"]);
    d.cli_ok(&["number", "add", "--service", "other", "--number", "+61299990002", "--divert-when", "never"]);
    let session = sign_in(&http, "ops@acme.example", "acme-password-1");
    let numbers: serde_json::Value = serde_json::from_str(&d.cli_ok(&["number", "list", "--json"])).unwrap();
    let id_of = |n: &str| numbers.as_array().unwrap().iter().find(|v| v["number"] == n).unwrap()["id"].clone();
    let (mine, theirs) = (id_of("+61299990001"), id_of("+61299990002"));
    let devices: serde_json::Value = serde_json::from_str(&d.cli_ok(&["device", "list", "--json"])).unwrap();
    let their_device =
        devices.as_array().unwrap().iter().find(|v| v["auth_id"] == "other-201").unwrap()["id"].to_string();
    let path = format!("/portal/numbers/{mine}");

    let refused = |fields: &[(&str, &str)], words: &str| {
        let r = post(&http, &path, &session, fields);
        assert_eq!(r.status, 422, "{fields:?}: {}", r.text());
        assert!(r.text().contains(words), "{fields:?}: {}", r.text());
    };
    refused(&[("divert_when", "all"), ("divert_to", "number"), ("divert_number", "")], "Divert to:");
    refused(&[("divert_when", "no_answer"), ("no_answer_secs", "2")], "Ring time:");
    refused(&[("divert_when", "never"), ("voicemail_pin", "12")], "Voicemail PIN:");
    refused(&[("divert_when", "never"), ("offline_alert", "not-an-address")], "Offline alert email:");
    refused(&[("divert_when", "never"), ("device", &their_device)], "Choose one of this service");
    refused(&[("divert_when", "sometimes")], "Divert when:");

    let saved = post(
        &http,
        &path,
        &session,
        &[
            ("divert_when", "no_answer"),
            ("no_answer_secs", "25"),
            ("divert_to", "number"),
            ("divert_number", "0412 345 678"),
            ("voicemail_pin", "2468"),
            ("voicemail_email", "vm@acme.example"),
        ],
    );
    assert_eq!(saved.status, 303, "{}", saved.text());
    let shown = d.cli_ok(&["number", "show", "+61299990001"]);
    for words in
        ["no-answer", "+61412345678", "25s", "voicemail PIN:  set", "vm@acme.example (messages deleted once sent)"]
    {
        assert!(shown.contains(words), "{words}: {shown}");
    }
    let table = page(&http, &format!("/portal/services/{}/numbers", numbers[0]["service_id"]), &session).text();
    assert!(
        table.contains("No answer after 25 s: +61412345678") && table.contains("PIN set; emailed to vm@acme.example")
    );

    for (method, p) in [
        ("GET", format!("/portal/numbers/{theirs}")),
        ("POST", format!("/portal/numbers/{theirs}")),
        ("GET", format!("/portal/numbers/{theirs}/voicemail")),
    ] {
        let r = if method == "GET" {
            page(&http, &p, &session)
        } else {
            post(&http, &p, &session, &[("divert_when", "all")])
        };
        assert_eq!(r.status, 404, "{method} {p}");
    }
    assert!(d.cli_ok(&["number", "show", "+61299990002"]).contains("divert when:    never"));
    for p in ["/portal/voicemails/1/audio", "/portal/voicemails/1/keep", "/portal/voicemails/1/delete"] {
        let r = if p.ends_with("audio") { page(&http, p, &session) } else { post(&http, p, &session, &[]) };
        assert_eq!(r.status, 404, "{p}");
    }
}

/// Nobody can flood an inbox through "having trouble signing in": three link emails an hour per address; more
/// asks get the same page and no email.
#[test]
fn link_emails_are_limited_so_nobody_floods_an_inbox() {
    let (d, sink, http) = world();
    d.cli_ok(&["login", "invite", "--email", "target@example.com", "--customer", "Acme"]);
    let pages: Vec<String> =
        (0..5).map(|_| http.form("/portal/recover", &[("email", "target@example.com")], &[]).text()).collect();
    assert!(pages.iter().all(|p| *p == pages[0]), "the same page every time");
    let resets = || {
        sink.mails()
            .iter()
            .filter(|m| m.header("Subject").is_some_and(|s| s.contains("Reset your portal password")))
            .count()
    };
    assert!(switchboard_testkit::wait_until(Duration::from_secs(15), || resets() == 3), "{}", resets());
    // The outbox is polled every 5 s: a fourth would have come by now.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(resets(), 3);
    let outbox = d.cli_ok(&["outbox"]);
    assert_eq!(outbox.matches("target@example.com").count(), 4, "one invitation and three resets: {outbox}");
}

/// The session and link timers for real, with short values: an idle session ends, and so does an unused link.
#[test]
fn an_idle_session_and_an_unused_link_expire_on_time() {
    let mut d = Daemon::new(BIN, "[api]\nsession_idle_secs = 2\nlink_secs = 2\n");
    d.cli_ok(&["customer", "add", "Acme"]);
    d.launch();
    let http = d.http(None);
    let link = |email: &str| {
        let out = d.cli_ok(&["login", "invite", "--email", email, "--customer", "Acme", "--print-link"]);
        let url = out.lines().last().unwrap().trim().to_owned();
        url.split_once("/portal/").map(|(_, p)| format!("/portal/{p}")).unwrap()
    };
    let first = link("early@example.com");
    let set = http.form(&first, &[("password", "early-password-1"), ("again", "early-password-1")], &[]);
    assert_eq!(set.status, 200);
    let session = sign_in(&http, "early@example.com", "early-password-1");
    // Used within the idle limit, the session lives on past it.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1200));
        assert_eq!(page(&http, "/portal/", &session).status, 200, "used, so not idle");
    }
    let unused = link("late@example.com");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(page(&http, "/portal/", &session).header("location"), Some("/portal/login"), "idle past 2 s");
    assert_eq!(http.get(&unused).status, 404, "the link is 2.5 s old");
}

/// One query against the daemon's SQLite database (Python's sqlite3: no extra tool), the rows one per line.
fn sql(d: &Daemon, query: &str) -> String {
    let script = "import sqlite3, sys\nfor row in sqlite3.connect(sys.argv[1]).execute(sys.argv[2]):\n    print('|'.join(map(str, row)))";
    let out = std::process::Command::new("python3")
        .args(["-c", script, d.dir().join("sb.db").to_str().unwrap(), query])
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
