//! The management API against the real binary: tokens made with the CLI, the directory managed over HTTP, errors
//! that name their field, a device made by the API registering with the running daemon, and customers who reach
//! only their own records (every route, every method, over another customer's ids: 404, and nothing changes).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_testkit::daemon::Daemon;
use switchboard_testkit::http::{Http, Reply};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// A running daemon and an operator's API client.
fn world() -> (Daemon, Http) {
    let d = Daemon::start(BIN, "");
    let token = d.token("ops", None);
    let http = d.http(Some(&token));
    (d, http)
}

fn expect(r: &Reply, status: u16) -> Value {
    assert_eq!(r.status, status, "body: {}", r.text());
    if r.body.is_empty() { Value::Null } else { r.json() }
}

/// The error body's field, after checking the status and the shape.
fn refused(r: &Reply, status: u16) -> Option<String> {
    let body = expect(r, status);
    assert_eq!(body["status"], status, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body["field"].as_str().map(str::to_owned)
}

/// Customer `name` with a Direct Mode service `service`: (customer id, service id).
fn customer_with_service(http: &Http, name: &str, service: &str) -> (i64, i64) {
    let c = expect(&http.post("/api/v1/customers", &json!({"name": name})), 201);
    let s = expect(
        &http.post("/api/v1/services", &json!({"customer_id": c["id"], "name": service, "mode": "direct"})),
        201,
    );
    (c["id"].as_i64().unwrap(), s["id"].as_i64().unwrap())
}

#[test]
fn tokens_gate_the_api_and_a_revoked_one_stops_at_once() {
    let (d, http) = world();
    let anonymous = d.http(None);
    let r = anonymous.get("/api/v1/customers");
    assert_eq!(refused(&r, 401), None);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_eq!(refused(&d.http(Some("sbt_0000")).get("/api/v1/customers"), 401), None);
    let r = anonymous.raw(
        b"GET /api/v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Basic b3BzOnB3\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(refused(&r, 401), None);

    // Health and the document need no token.
    let health = expect(&anonymous.get("/healthz"), 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(expect(&anonymous.get("/api/v1/openapi.json"), 200)["openapi"], "3.1.0");

    expect(&http.get("/api/v1/customers"), 200);
    let listed: Value = serde_json::from_str(&d.cli_ok(&["token", "list", "--json"])).unwrap();
    assert!(listed[0]["last_used_at"].is_i64(), "a use is recorded: {listed}");
    assert!(!d.cli_ok(&["token", "list", "--json"]).contains("sbt_"), "the token itself is never listed");

    d.cli_ok(&["token", "revoke", "ops"]);
    assert_eq!(refused(&http.get("/api/v1/customers"), 401), None);
    let out = d.cli(&["token", "revoke", "ops"]);
    assert!(!out.status.success(), "revoking twice fails");
    let out = d.cli(&["token", "create", "--name", "x", "--customer", "Nobody"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--customer: no customer named \"Nobody\""));
}

#[test]
fn an_operator_manages_the_directory_and_errors_name_their_field() {
    let (_d, http) = world();
    let (_, service) = customer_with_service(&http, "Acme", "acme");

    // A device: the password is in the answer that made it, and nowhere else.
    let r = http.post(&format!("/api/v1/services/{service}/devices"), &json!({"name": "Desk", "auth_id": "acme-desk"}));
    let made = expect(&r, 201);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let password = made["password"].as_str().unwrap().to_owned();
    assert_eq!((password.len(), made["generated"].as_bool()), (20, Some(true)));
    let id = made["device"]["id"].as_i64().unwrap();
    assert_eq!(
        made["device"]["call_types"],
        json!(["local", "national", "mobile", "local-rate", "freephone", "on-net"])
    );
    let shown = http.get(&format!("/api/v1/devices/{id}"));
    let device = expect(&shown, 200);
    assert!(!shown.text().contains(&password) && device.get("password").is_none());
    assert_eq!(device["status"]["online"], false);
    assert!(!shown.text().contains("ha1"), "no credential is ever shown: {}", shown.text());

    // Changes: absent stays, null clears, unknown fields are refused.
    let path = format!("/api/v1/devices/{id}");
    let changed = expect(&http.patch(&path, &json!({"caller_id": "0298765432"})), 200);
    assert_eq!((changed["caller_id"].as_str(), changed["name"].as_str()), (Some("0298765432"), Some("Desk")));
    let cleared = expect(&http.patch(&path, &json!({"caller_id": null})), 200);
    assert_eq!(cleared["caller_id"], Value::Null);
    assert_eq!(refused(&http.patch(&path, &json!({"nmae": "x"})), 400).as_deref(), Some("nmae"));
    assert_eq!(refused(&http.patch(&path, &json!({"max_contacts": "two"})), 400).as_deref(), Some("max_contacts"));
    assert_eq!(refused(&http.patch(&path, &json!({"caller_id": "call me"})), 422).as_deref(), Some("caller_id"));
    assert_eq!(refused(&http.patch(&path, &json!({"max_contacts": 2})), 422).as_deref(), Some("max_contacts"));
    let devices = format!("/api/v1/services/{service}/devices");
    let dup = http.post(&devices, &json!({"name": "Other", "auth_id": "acme-desk"}));
    assert_eq!(refused(&dup, 409).as_deref(), Some("auth_id"));
    assert_eq!(refused(&http.post(&devices, &json!({"auth_id": "x1"})), 400).as_deref(), Some("name"));

    // Bodies that are not JSON, and ids that are not ids.
    let raw = format!(
        "POST {devices} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
        http.token.as_deref().unwrap()
    );
    assert_eq!(refused(&http.raw(raw.as_bytes()), 415), None);
    let raw = raw.replace("text/plain", "application/json").replace("\r\n\r\nhi", "\r\n\r\n{\"");
    assert_eq!(refused(&http.raw(raw.as_bytes()), 400), None);
    assert_eq!(refused(&http.get("/api/v1/devices/abc"), 400).as_deref(), Some("id"));
    assert_eq!(refused(&http.get("/api/v1/devices/99999"), 404), None);
    assert_eq!(refused(&http.get("/api/v1/nothing-here"), 404), None);

    // A password reset answers with the new one, once.
    let r = http.request("POST", &format!("/api/v1/devices/{id}/password"), Some(&json!({})));
    let reset = expect(&r, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_ne!(reset["password"].as_str().unwrap(), password);
    let short = http.post(&format!("/api/v1/devices/{id}/password"), &json!({"password": "short"}));
    assert_eq!(refused(&short, 422).as_deref(), Some("password"));

    // A number with a divert, its mailbox, and the checks between them.
    let numbers = format!("/api/v1/services/{service}/numbers");
    let n = expect(
        &http.post(
            &numbers,
            &json!({"number": "02 9876 5432", "device_id": id, "divert_when": "no_answer", "divert_to": "voicemail",
                    "no_answer_secs": 20, "voicemail_pin": "2468", "voicemail_email": "desk@example.com"}),
        ),
        201,
    );
    assert_eq!((n["number"].as_str(), n["divert_when"].as_str()), (Some("+61298765432"), Some("no_answer")));
    assert_eq!(
        n["voicemail"],
        json!({"pin_set": true, "email": "desk@example.com", "email_keep": true, "locked_until": null})
    );
    let npath = format!("/api/v1/numbers/{}", n["id"]);
    assert_eq!(refused(&http.patch(&npath, &json!({"divert_to": null})), 422).as_deref(), Some("divert_to"));
    let n = expect(
        &http.patch(&npath, &json!({"divert_when": "all", "divert_to": "0411222333", "voicemail_pin": null})),
        200,
    );
    assert_eq!((n["divert_to"].as_str(), n["voicemail"]["pin_set"].as_bool()), (Some("+61411222333"), Some(false)));
    assert_eq!(refused(&http.patch(&npath, &json!({"no_answer_secs": 3})), 422).as_deref(), Some("no_answer_secs"));
    let dup = http.post(&numbers, &json!({"number": "+61298765432"}));
    assert_eq!(refused(&dup, 409).as_deref(), Some("number"));

    // Deleting the device unpins the number; deleting the number removes it.
    assert_eq!(http.delete(&path).status, 204);
    assert_eq!(expect(&http.get(&npath), 200)["device_id"], Value::Null);
    assert_eq!(http.delete(&npath).status, 204);
    assert_eq!(refused(&http.get(&npath), 404), None);

    // Gateways.
    let g = expect(&http.post("/api/v1/gateways", &json!({"name": "carrier", "address": "192.0.2.10:5060"})), 201);
    assert_eq!((g["transport"].as_str(), g["priority"].as_i64()), (Some("udp"), Some(100)));
    let bad = http.post("/api/v1/gateways", &json!({"name": "x", "address": "nowhere"}));
    assert_eq!(refused(&bad, 422).as_deref(), Some("address"));
    assert_eq!(http.delete(&format!("/api/v1/gateways/{}", g["id"])).status, 204);
    assert_eq!(expect(&http.get("/api/v1/gateways"), 200), json!([]));

    // Portal logins: invited (an email is queued with a link), linked, unlinked, removed.
    let customer = expect(&http.get("/api/v1/customers"), 200)[0]["id"].clone();
    let login =
        expect(&http.post("/api/v1/logins", &json!({"email": "Ann@Acme.example", "customer_id": customer})), 201);
    assert_eq!((login["email"].as_str(), login["password_set"].as_bool()), (Some("ann@acme.example"), Some(false)));
    let dup = http.post("/api/v1/logins", &json!({"email": "ann@acme.example", "customer_id": customer}));
    assert_eq!(refused(&dup, 409).as_deref(), Some("email"));
    let nobody = http.post("/api/v1/logins", &json!({"email": "bob@acme.example", "customer_id": 999}));
    assert_eq!(refused(&nobody, 422).as_deref(), Some("customer_id"));
    let outbox = expect(&http.get("/api/v1/outbox"), 200);
    assert_eq!(
        (outbox[0]["recipient"].as_str(), outbox[0]["kind"].as_str()),
        (Some("ann@acme.example"), Some("login"))
    );
    let lpath = format!("/api/v1/logins/{}", login["id"]);
    assert_eq!(expect(&http.patch(&lpath, &json!({"customer_id": null})), 200)["customer_id"], Value::Null);
    assert_eq!(http.delete(&lpath).status, 204);
    assert_eq!(refused(&http.delete(&lpath), 404), None);
}

/// The API writes through the same database as the CLI: the running daemon picks the device up from the change
/// log, and a password reset takes effect the same way.
#[test]
fn a_device_made_by_the_api_registers_with_the_running_daemon() {
    let (d, http) = world();
    let (_, service) = customer_with_service(&http, "Live", "live");
    let made = expect(
        &http.post(
            &format!("/api/v1/services/{service}/devices"),
            &json!({"name": "Phone", "auth_id": "live-1", "password": "first-password-1"}),
        ),
        201,
    );
    let id = made["device"]["id"].as_i64().unwrap();
    assert_eq!(d.register_until("live-1", "first-password-1", |s| s == 200), 200, "log:\n{}", d.log());
    let status = switchboard_testkit::wait_until(Duration::from_secs(3), || {
        expect(&http.get(&format!("/api/v1/devices/{id}")), 200)["status"]["registrations"]
            .as_array()
            .is_some_and(|r| r.len() == 1)
    });
    assert!(status, "the API shows the registration");
    let device = expect(&http.get(&format!("/api/v1/devices/{id}")), 200);
    assert_eq!(device["status"]["online"], true, "{device}");
    assert_eq!(device["status"]["registrations"][0]["transport"], "udp");
    let listed = expect(&http.get(&format!("/api/v1/services/{service}/registrations")), 200);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(expect(&http.get("/api/v1/registrations"), 200).as_array().unwrap().len(), 1);
    assert_eq!(expect(&http.get("/api/v1/calls"), 200), json!([]));
    assert_eq!(expect(&http.get(&format!("/api/v1/services/{service}/cdrs?limit=5")), 200), json!([]));
    let r = http.get("/api/v1/cdrs?limit=0");
    assert_eq!(refused(&r, 400).as_deref(), Some("limit"));
    assert_eq!(refused(&http.get("/api/v1/cdrs?bogus=1"), 400), None);
    assert_eq!(expect(&http.get("/api/v1/outbox"), 200), json!([]));

    expect(&http.post(&format!("/api/v1/devices/{id}/password"), &json!({"password": "second-password-2"})), 200);
    assert_eq!(d.register_until("live-1", "second-password-2", |s| s == 200), 200);
    assert_ne!(d.register_status("live-1", "first-password-1"), 200, "the old password stopped working");
}

/// Every route a customer's token can name, over customer A's records, with customer B's token: 404 (or 403 for
/// operator-only routes), whatever the method; afterwards A's records are exactly as before.
#[test]
fn a_customer_reaches_only_its_own_records() {
    let (d, ops) = world();
    let (a_customer, a_service) = customer_with_service(&ops, "Alpha", "alpha");
    let (b_customer, b_service) = customer_with_service(&ops, "Beta", "beta");
    let device = expect(
        &ops.post(&format!("/api/v1/services/{a_service}/devices"), &json!({"name": "Desk", "auth_id": "alpha-1"})),
        201,
    )["device"]["id"]
        .as_i64()
        .unwrap();
    let number = expect(
        &ops.post(&format!("/api/v1/services/{a_service}/numbers"), &json!({"number": "+61299990001"})),
        201,
    )["id"]
        .as_i64()
        .unwrap();
    let gateway =
        expect(&ops.post("/api/v1/gateways", &json!({"name": "gw", "address": "192.0.2.1:5060"})), 201)["id"].clone();
    let a = d.http(Some(&d.token("alpha-portal", Some("Alpha"))));
    let b = d.http(Some(&d.token("beta-portal", Some("Beta"))));

    let snapshot = |http: &Http| -> Vec<Value> {
        [
            format!("/api/v1/customers/{a_customer}"),
            format!("/api/v1/services/{a_service}"),
            format!("/api/v1/services/{a_service}/devices"),
            format!("/api/v1/services/{a_service}/numbers"),
            format!("/api/v1/devices/{device}"),
            format!("/api/v1/numbers/{number}"),
        ]
        .iter()
        .map(|p| expect(&http.get(p), 200))
        .collect()
    };
    let before = snapshot(&ops);
    assert_eq!(snapshot(&a), before, "A sees its own records as the operator does");

    let body =
        json!({"name": "Hijack", "auth_id": "hijack-1", "number": "+61299990002", "password": "hijack-password-1"});
    let routes = [
        ("GET", format!("/api/v1/customers/{a_customer}")),
        ("GET", format!("/api/v1/services/{a_service}")),
        ("GET", format!("/api/v1/services/{a_service}/devices")),
        ("POST", format!("/api/v1/services/{a_service}/devices")),
        ("GET", format!("/api/v1/services/{a_service}/numbers")),
        ("POST", format!("/api/v1/services/{a_service}/numbers")),
        ("GET", format!("/api/v1/services/{a_service}/registrations")),
        ("GET", format!("/api/v1/services/{a_service}/calls")),
        ("GET", format!("/api/v1/services/{a_service}/cdrs")),
        ("GET", format!("/api/v1/numbers/{number}/voicemails")),
        ("GET", format!("/api/v1/devices/{device}")),
        ("PATCH", format!("/api/v1/devices/{device}")),
        ("DELETE", format!("/api/v1/devices/{device}")),
        ("POST", format!("/api/v1/devices/{device}/password")),
        ("GET", format!("/api/v1/numbers/{number}")),
        ("PATCH", format!("/api/v1/numbers/{number}")),
        ("DELETE", format!("/api/v1/numbers/{number}")),
    ];
    for (method, path) in &routes {
        let payload = match (*method, path.ends_with("/password"), path.contains("/numbers")) {
            ("GET" | "DELETE", ..) => None,
            (_, true, _) => Some(json!({"password": "hijack-password-1"})),
            ("PATCH", _, true) => Some(json!({"divert_when": "all", "divert_to": "+61400000000"})),
            ("PATCH", _, false) => Some(json!({"name": "Hijacked"})),
            (_, _, true) => Some(json!({"number": body["number"]})),
            _ => Some(json!({"name": body["name"], "auth_id": body["auth_id"]})),
        };
        let r = b.request(method, path, payload.as_ref());
        assert_eq!(r.status, 404, "{method} {path} with another customer's token: {}", r.text());
        assert_eq!(r.json()["status"], 404);
    }
    // A number of B's service cannot ring A's device.
    let r = b.post(
        &format!("/api/v1/services/{b_service}/numbers"),
        &json!({"number": "+61299990003", "device_id": device}),
    );
    assert_eq!(refused(&r, 422).as_deref(), Some("device_id"));
    // Operator-only routes.
    assert_eq!(refused(&b.post("/api/v1/customers", &json!({"name": "Gamma"})), 403), None);
    let svc = json!({"customer_id": b_customer, "name": "more", "mode": "trunk"});
    assert_eq!(refused(&b.post("/api/v1/services", &svc), 403), None);
    assert_eq!(refused(&b.get("/api/v1/gateways"), 403), None);
    assert_eq!(refused(&b.delete(&format!("/api/v1/gateways/{gateway}")), 403), None);
    for path in ["/api/v1/registrations", "/api/v1/calls", "/api/v1/cdrs", "/api/v1/outbox", "/api/v1/logins"] {
        assert_eq!(refused(&b.get(path), 403), None, "{path}");
    }
    // Lists show B only its own.
    let customers = expect(&b.get("/api/v1/customers"), 200);
    assert_eq!(customers.as_array().unwrap().len(), 1);
    assert_eq!(customers[0]["id"], b_customer);
    assert_eq!(expect(&b.get(&format!("/api/v1/services?customer_id={a_customer}")), 200), json!([]));
    let services = expect(&b.get("/api/v1/services"), 200);
    assert_eq!(services.as_array().unwrap().iter().map(|s| s["id"].as_i64().unwrap()).collect::<Vec<_>>(), [b_service]);

    assert_eq!(snapshot(&ops), before, "nothing of A's changed");
    assert_eq!(expect(&ops.get("/api/v1/gateways"), 200).as_array().unwrap().len(), 1);
    assert!(!d.cli_ok(&["device", "list", "--json"]).contains("hijack"), "no device was made for A by B");
}

/// The API fuzzed from its own OpenAPI document by schemathesis, as an operator and as a customer: no 5xx, every
/// status and body as documented, auth never ignored. (The checks that want the schema to say everything our
/// field rules say, `positive_data_acceptance` and `negative_data_rejection`, are left out: the rules are richer
/// than JSON Schema, and refusals name their field instead.)
#[test]
fn schemathesis_finds_nothing_as_operator_or_customer() {
    if !switchboard_testkit::require_tool("schemathesis", "./scripts/test installs it: pip install schemathesis") {
        return;
    }
    let (d, ops) = world();
    let (_, service) = customer_with_service(&ops, "Acme", "acme");
    let device = ops.post(&format!("/api/v1/services/{service}/devices"), &json!({"name": "Desk", "auth_id": "fz-1"}));
    let device = expect(&device, 201)["device"]["id"].clone();
    let number = json!({"number": "+61299990001", "device_id": device, "divert_when": "never"});
    expect(&ops.post(&format!("/api/v1/services/{service}/numbers"), &number), 201);
    customer_with_service(&ops, "Other", "other");
    let customer = d.token("acme-portal", Some("Acme"));
    let work = tempfile::tempdir().unwrap();
    for (who, token) in [("operator", ops.token.clone().unwrap()), ("customer", customer)] {
        let out = std::process::Command::new("schemathesis")
            .current_dir(work.path())
            .args(["run", &format!("http://{}/api/v1/openapi.json", d.api)])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .args(["--max-examples", "25", "--seed", "7", "--exclude-checks"])
            .arg("positive_data_acceptance,negative_data_rejection")
            .env("NO_COLOR", "1")
            .output()
            .expect("run schemathesis");
        let text = String::from_utf8_lossy(&out.stdout);
        let summary: String =
            text.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        eprintln!("schemathesis as {who}:\n{summary}");
        assert!(
            out.status.success(),
            "schemathesis as {who} found failures:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("passed"), "{text}");
    }
    let log = d.log();
    assert!(!log.contains("panicked"), "{log}");
}

/// `/metrics` needs no token and counts what happened: registrations by outcome, devices online, bindings and
/// the API's own requests by route pattern (never an id).
#[test]
fn metrics_count_registrations_and_api_requests() {
    use switchboard_testkit::http::metric;
    let (d, http) = world();
    let (_, service) = customer_with_service(&http, "Acme", "acme");
    let body = json!({"name": "Desk", "auth_id": "m-1", "password": "metric-password-1"});
    expect(&http.post(&format!("/api/v1/services/{service}/devices"), &body), 201);
    // Attempts before the daemon has read the new device fail too: count from after the first success.
    assert_eq!(d.register_until("m-1", "metric-password-1", |s| s == 200), 200);
    let page = || {
        let r = d.http(None).get("/metrics");
        assert_eq!(r.status, 200);
        assert!(r.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
        r.text()
    };
    let failed = |p: &str| metric(p, "switchboard_registrations_total{outcome=\"failed\"}").unwrap();
    let online = switchboard_testkit::wait_until(Duration::from_secs(3), || {
        metric(&page(), "switchboard_devices_online") == Some(1.0)
    });
    assert!(online, "{}", page());
    let before = page();
    assert_ne!(d.register_status("m-1", "wrong-password-1"), 200);
    let counted = switchboard_testkit::wait_until(Duration::from_secs(3), || failed(&page()) == failed(&before) + 1.0);
    let p = page();
    assert!(counted, "{p}");
    let auth = |p: &str| metric(p, "switchboard_auth_failures_total").unwrap();
    assert_eq!(auth(&p), auth(&before) + 1.0);
    assert!(metric(&p, "switchboard_registrations_total{outcome=\"ok\"}").unwrap() >= 1.0, "{p}");
    assert!(metric(&p, "switchboard_registrations_total{outcome=\"challenged\"}").unwrap() >= 2.0, "{p}");
    assert_eq!(metric(&p, "switchboard_bindings"), Some(1.0));
    assert_eq!(metric(&p, "switchboard_devices"), Some(1.0));
    let created =
        "switchboard_http_requests_total{route=\"/api/v1/services/{id}/devices\",method=\"POST\",status=\"201\"}";
    assert_eq!(metric(&p, created), Some(1.0), "{p}");
    assert_eq!(metric(&p, "switchboard_outbox_emails{status=\"queued\"}"), Some(0.0));
    assert_eq!(metric(&p, "switchboard_voicemail_messages{status=\"new\"}"), Some(0.0));
    assert!(p.contains("# TYPE switchboard_calls_total counter"));
}
