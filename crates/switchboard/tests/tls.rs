//! SIP over TLS end to end: the real binary with a certificate the test makes (openssl), our own rustls client,
//! baresip (`;transport=tls`), SIPp's registration scenario, and hostile connections on the TLS port.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use switchboard_sip_core::HeaderName;
use switchboard_testkit::call::{Carrier, hang_up, header, place};
use switchboard_testkit::client::SipClient;
use switchboard_testkit::daemon::{Daemon, free_port};
use switchboard_testkit::tls::{s_client, self_signed};
use switchboard_testkit::wait_until;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const WAIT: Duration = Duration::from_secs(5);
const NUMBER: &str = "+61299990001";
const NAME: &str = "sip.test";

/// A daemon with TLS on (`extra` follows the `[tls]` table's cert and key), device 2001 owning NUMBER and a
/// carrier gateway at 127.0.0.2. Returns the daemon, the certificate's directory and the certificate.
fn world(extra_tls: &str) -> Option<(Daemon, tempfile::TempDir, PathBuf)> {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(certs.path(), "sip", NAME)?;
    let config = format!(
        "[auth]\nalgorithms = [\"MD5\", \"SHA-256\"]\n[calls]\ngateway_check_secs = 3600\n\
         [tls]\ncert = \"{}\"\nkey = \"{}\"\n{extra_tls}",
        cert.display(),
        key.display()
    );
    let mut d = Daemon::new(BIN, &config);
    d.provision_direct(&[("2001", "pass-2001", &[])]);
    d.cli_ok(&["number", "add", "--service", "acme", "--number", NUMBER, "--device", "2001", "--divert-when", "never"]);
    d.cli_ok(&["gateway", "add", "--name", "gw1", "--address", &format!("127.0.0.2:{}", free_port())]);
    d.launch();
    Some((d, certs, cert))
}

fn register(phone: &mut SipClient) {
    let reg = phone.register("2001", &[&format!("Contact: <{}>", phone.contact("2001"))]);
    let ok = phone.request_with_auth(reg, "2001", "pass-2001", Some("SHA-256"));
    assert_eq!(ok.status(), Some(200), "{ok:?}");
}

/// A phone registered over TLS is called over its own TLS connection (Via TLS, a `sips:` Contact of ours on the
/// TLS port), and only over it: once the connection is gone, the call is not sent anywhere else.
#[test]
fn a_phone_registered_over_tls_is_called_over_its_own_connection() {
    let Some((d, _certs, cert)) = world("") else { return };
    let mut phone = SipClient::tls(d.tls, &cert, NAME);
    register(&mut phone);
    let bound = wait_until(WAIT, || d.registrations().iter().any(|r| r["transport"] == "tls"));
    assert!(bound, "{:?}", d.registrations());

    let media = ("127.0.0.2:40000".parse().unwrap(), "127.0.0.1:40002".parse().unwrap());
    let mut placed = place(d.sip, NUMBER, "tls1", &mut phone, "2001", media, WAIT);
    let via = header(&placed.ring, HeaderName::Via);
    assert!(via.starts_with(&format!("SIP/2.0/TLS {}", d.tls)), "{via}");
    let contact = header(&placed.ring, HeaderName::Contact);
    assert!(contact.contains(&format!("sips:{}", d.tls)), "{contact}");
    let _ = phone.recv_request(Duration::from_millis(300)); // the ACK
    assert!(hang_up(&mut placed, &mut phone), "the hang-up went through");

    // The phone's connection closes: the next call finds no way to it and fails, with nothing sent in clear.
    drop(phone);
    std::thread::sleep(Duration::from_millis(300));
    let last = Carrier::invite(d.sip, NUMBER, "tls2", "127.0.0.2:9".parse().unwrap()).final_response(WAIT);
    assert_eq!(last.status(), Some(480), "{last:?}");
}

/// Plain text on the TLS port, connections that never start a handshake, more handshakes at once than allowed,
/// and a wrong server name: each is dropped or served alone, the listener keeps taking phones, and UDP is
/// never held up.
#[test]
fn bad_tls_never_wedges_the_listener() {
    let Some((d, _certs, cert)) = world("handshake_timeout_ms = 500\nmax_handshakes = 3\n") else { return };
    // Plain SIP on the TLS port: the handshake fails and the connection is closed.
    let mut plain = TcpStream::connect(d.tls).unwrap();
    plain.write_all(b"REGISTER sip:sip.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9\r\n\r\n").unwrap();
    plain.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 512];
    let answered = plain.read(&mut buf).unwrap_or(0);
    // rustls answers with a TLS alert at most; never SIP.
    assert!(!String::from_utf8_lossy(&buf[..answered]).contains("SIP/2.0"), "answered in clear");
    assert_eq!(plain.read(&mut buf).unwrap_or(0), 0, "closed");

    // Three silent connections take every handshake slot; a fourth is closed at once, while they are still open.
    let silent: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(d.tls).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut fourth = TcpStream::connect(d.tls).unwrap();
    fourth.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(fourth.read(&mut buf).unwrap_or(0), 0, "refused");
    for s in &silent {
        s.set_nonblocking(true).unwrap();
        let mut one = [0u8; 1];
        let still_open = matches!(s.peek(&mut one), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        assert!(still_open, "a silent connection was closed before the fourth");
    }
    // UDP meanwhile: unaffected.
    assert_eq!(d.register_status("2001", "pass-2001"), 200);
    // Past the handshake timeout the silent ones are gone, and a phone gets through.
    for mut s in silent {
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        assert_eq!(s.read(&mut buf).unwrap_or(0), 0, "closed after the handshake timeout");
    }
    let mut phone = SipClient::tls(d.tls, &cert, NAME);
    register(&mut phone);

    // A wrong server name gets the one certificate we have; the handshake completes and nothing breaks.
    let said = s_client(d.tls, "wrong.example");
    assert!(said.contains(&format!("CN = {NAME}")) || said.contains(&format!("CN={NAME}")), "{said}");
    let mut phone = SipClient::tls(d.tls, &cert, NAME);
    register(&mut phone);

    // Counted (the metrics are up to a second old).
    let http = d.http(None);
    let counted = |name: &str, at_least: f64| {
        switchboard_testkit::http::metric(&http.get("/metrics").text(), name).is_some_and(|v| v >= at_least)
    };
    let seen = wait_until(WAIT, || {
        counted("switchboard_tls_handshakes_failed_total", 4.0)
            && counted("switchboard_tls_connections_refused_total", 1.0)
    });
    assert!(seen, "{}", http.get("/metrics").text());
}

/// SIGHUP reads the certificate again: new connections get the new one. A broken file leaves the one in use.
#[test]
fn sighup_reloads_the_certificate() {
    let Some((d, certs, cert)) = world("") else { return };
    assert!(s_client(d.tls, NAME).contains(NAME));
    let (new_cert, new_key) = self_signed(certs.path(), "next", "sip-renewed.test").unwrap();
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, cert.with_extension("key")).unwrap();
    hup(&d);
    let renewed = wait_until(WAIT, || s_client(d.tls, NAME).contains("sip-renewed.test"));
    assert!(renewed, "{}", s_client(d.tls, NAME));
    let mut phone = SipClient::tls(d.tls, &new_cert, "sip-renewed.test");
    register(&mut phone);

    std::fs::write(&cert, "not a certificate\n").unwrap();
    hup(&d);
    let kept = wait_until(WAIT, || d.log().contains("TLS certificate not reloaded"));
    assert!(kept, "{}", d.log());
    assert!(s_client(d.tls, NAME).contains("sip-renewed.test"), "the working certificate stays");
}

fn hup(d: &Daemon) {
    let ok = Command::new("kill").args(["-HUP", &d.pid().to_string()]).status().unwrap().success();
    assert!(ok);
}

/// A certificate file that is not one stops the start, naming the file.
#[test]
fn a_bad_certificate_file_is_named_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.crt");
    std::fs::write(&bogus, "hello\n").unwrap();
    let config = format!("[tls]\ncert = \"{}\"\nkey = \"{}\"\n", bogus.display(), bogus.display());
    std::fs::write(dir.path().join("switchboard.toml"), config).unwrap();
    let out = run_briefly(dir.path());
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("bogus.crt") && said.contains("tls"), "{said}");
}

fn run_briefly(dir: &Path) -> std::process::Output {
    Command::new("timeout")
        .arg("20")
        .arg(BIN)
        .arg("run")
        .current_dir(dir)
        .env("SWITCHBOARD_CONFIG", dir.join("switchboard.toml"))
        .env("SWITCHBOARD_DATABASE_URL", format!("sqlite://{}", dir.join("sb.db").display()))
        .env("SWITCHBOARD_SIP_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("SWITCHBOARD_TLS_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("SWITCHBOARD_API_LISTEN", format!("127.0.0.1:{}", free_port()))
        .output()
        .unwrap()
}

/// `--require-tls`: with the right password, UDP and TCP get 403 "TLS Required" and bind nothing; TLS registers.
/// Lifted again with `--allow-any-transport`.
#[test]
fn a_tls_only_device_is_refused_over_udp_and_tcp() {
    let Some((d, _certs, cert)) = world("") else { return };
    assert_eq!(d.register_status("2001", "pass-2001"), 200);
    d.cli_ok(&["device", "edit", "2001", "--require-tls"]);
    assert!(d.cli_ok(&["device", "show", "2001"]).contains("TLS only"));
    // The daemon reads the change log every second.
    assert_eq!(d.register_until("2001", "pass-2001", |s| s == 403), 403);
    let mut tcp = SipClient::tcp(d.sip);
    let reg = tcp.register("2001", &[&format!("Contact: <{};transport=tcp>", tcp.contact("2001"))]);
    let refused = tcp.request_with_auth(reg, "2001", "pass-2001", Some("SHA-256"));
    assert_eq!(refused.status(), Some(403));
    assert!(String::from_utf8_lossy(&refused.to_bytes()).starts_with("SIP/2.0 403 TLS Required"));
    // The binding made over UDP before the change is gone too.
    assert!(wait_until(WAIT, || d.registrations().is_empty()), "{:?}", d.registrations());
    let mut phone = SipClient::tls(d.tls, &cert, NAME);
    register(&mut phone);
    d.cli_ok(&["device", "edit", "2001", "--allow-any-transport"]);
    let back = d.register_until("2001", "pass-2001", |s| s == 200);
    assert_eq!(back, 200);
    // The same for a whole service.
    d.cli_ok(&["service", "edit", "acme", "--require-tls"]);
    assert!(d.cli_ok(&["service", "list"]).contains("TLS only"));
    assert_eq!(d.register_until("2001", "pass-2001", |s| s == 403), 403);
    register(&mut phone);
    d.cli_ok(&["service", "edit", "acme", "--allow-any-transport"]);
    assert_eq!(d.register_until("2001", "pass-2001", |s| s == 200), 200);
}

/// SIP over secure WebSocket (RFC 7118): the upgrade must ask for `sip` (echoed; otherwise 400); a phone registers
/// over it, is called over its own WebSocket (Via WSS on the WebSocket port), and a message that does not parse
/// is answered 400 without closing the connection.
#[test]
fn a_websocket_phone_registers_and_is_called_over_its_connection() {
    let Some((d, _certs, cert)) = world("") else { return };
    assert_eq!(SipClient::wss(d.wss, &cert, NAME, None).err(), Some(400), "no sip subprotocol");
    assert_eq!(SipClient::wss(d.wss, &cert, NAME, Some("chat")).err(), Some(400));
    let mut phone = SipClient::wss(d.wss, &cert, NAME, Some("sip")).expect("upgraded");
    phone.send_raw(b"REGISTER sip:sip.test SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bKbad\r\nCSeq: x\r\n\r\n");
    let bad = phone.recv_response(WAIT).expect("an answer to the broken message");
    assert_eq!(bad.status(), Some(400), "{bad:?}");
    register(&mut phone);
    let bound = wait_until(WAIT, || d.registrations().iter().any(|r| r["transport"] == "wss"));
    assert!(bound, "{:?}", d.registrations());

    let media = ("127.0.0.2:40010".parse().unwrap(), "127.0.0.1:40012".parse().unwrap());
    let mut placed = place(d.sip, NUMBER, "wss1", &mut phone, "2001", media, WAIT);
    let via = header(&placed.ring, HeaderName::Via);
    assert!(via.starts_with(&format!("SIP/2.0/WSS {}", d.wss)), "{via}");
    let _ = phone.recv_request(Duration::from_millis(300)); // the ACK
    assert!(hang_up(&mut placed, &mut phone), "the hang-up went through");
}

/// A real browser's WebSocket (Chromium, through Playwright): it asks for `sip`, gets it, registers with a
/// SHA-256 digest computed in the page, and the binding says wss.
#[test]
fn chromium_registers_over_secure_websocket() {
    if !switchboard_testkit::require_program("chromium", "chromium chromium-driver") {
        return;
    }
    let Some(python) = switchboard_testkit::e2e_python() else { return };
    let Some((d, _certs, _cert)) = world("") else { return };
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser/websocket.py");
    let out = Command::new(python)
        .arg(script)
        .env("WSS_URL", format!("wss://{}/", d.wss))
        .env("SIP_USER", "2001")
        .env("SIP_PASSWORD", "pass-2001")
        .env("SIP_DOMAIN", "switchboard.local")
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let log = d.log();
    let handshakes: Vec<&str> = log.lines().filter(|l| l.contains("handshake")).collect();
    assert!(out.status.success(), "{said}\ndaemon: {handshakes:?}");
    let result: serde_json::Value =
        serde_json::from_str(said.lines().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("{said}"))).unwrap();
    assert_eq!(result["protocol"], "sip", "{result}");
    assert_eq!(result["first"], "SIP/2.0 401 Unauthorized", "{result}");
    assert_eq!(result["second"], "SIP/2.0 200 OK", "{result}");
    let r = d.registrations();
    assert!(r.iter().any(|b| b["transport"] == "wss" && b["user_agent"] == "Chromium WebSocket"), "{r:?}");
}

/// A phone using `sips:` URIs (RFC 5630) over TLS: its address-of-record and Contact are `sips:`, it registers,
/// and it is called at its `sips:` contact over its own connection.
#[test]
fn a_phone_with_sips_uris_registers_and_is_called_there() {
    let Some((d, _certs, cert)) = world("") else { return };
    let mut phone = SipClient::tls(d.tls, &cert, NAME);
    let text = format!(
        "REGISTER sips:{NAME} SIP/2.0\r\nVia: SIP/2.0/TLS {l};branch=z9hG4bKsips1;rport\r\n\
         From: <sips:2001@{NAME}>;tag=s1\r\nTo: <sips:2001@{NAME}>\r\nCall-ID: sips-1@test\r\nCSeq: 1 REGISTER\r\n\
         Contact: <sips:2001@{l}>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        l = phone.local()
    );
    let reg = switchboard_sip_core::parse_datagram(text.as_bytes(), &Default::default()).unwrap();
    let ok = phone.request_with_auth(reg, "2001", "pass-2001", Some("SHA-256"));
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    let media = ("127.0.0.2:40020".parse().unwrap(), "127.0.0.1:40022".parse().unwrap());
    let mut placed = place(d.sip, NUMBER, "sips1", &mut phone, "2001", media, WAIT);
    let uri = placed.ring.request_uri().unwrap_or_default().to_owned();
    assert_eq!(uri, format!("sips:2001@{}", phone.local()));
    let _ = phone.recv_request(Duration::from_millis(300)); // the ACK
    assert!(hang_up(&mut placed, &mut phone));
}
