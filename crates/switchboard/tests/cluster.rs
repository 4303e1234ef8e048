//! Two nodes (Sydney and Melbourne) over one PostgreSQL database, the real binary, on loopback: a phone registered
//! on Sydney is rung by a carrier call sent to Melbourne (relayed, over the phone's own flow, media through both
//! relays, one CDR); Sydney stops; the phone re-registers to Melbourne and calls reach it there; nothing is lost.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use serde_json::Value;
use switchboard_sip_core::HeaderName;
use switchboard_testkit::call::{Carrier, Placed, hang_up, header, place, rtp};
use switchboard_testkit::client::SipClient;
use switchboard_testkit::daemon::{Daemon, PgDatabase, free_port};
use switchboard_testkit::wait_until;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const WAIT: Duration = Duration::from_secs(5);
const NUMBER: &str = "+61299990001";
const SECRET: &str = "the-e2e-cluster-shares-this-secret";

fn config(name: &str, region: &str) -> String {
    format!(
        "[node]\nname = \"{name}\"\nregion = \"{region}\"\nheartbeat_secs = 1\n[cluster]\nsecret = \"{SECRET}\"\n\
         [database]\npoll_ms = 200\n[auth]\nalgorithms = [\"MD5\", \"SHA-256\"]\n[calls]\ngateway_check_secs = 3600\n"
    )
}

fn nodes(d: &Daemon) -> Vec<Value> {
    serde_json::from_str(&d.cli_ok(&["nodes", "--json"])).unwrap()
}

fn node<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter().find(|n| n["name"] == name).unwrap_or_else(|| panic!("no node {name} in {list:?}"))
}

fn register(phone: &mut SipClient) {
    let reg = phone.register("2001", &[&format!("Contact: <{}>", phone.contact("2001"))]);
    let ok = phone.request_with_auth(reg, "2001", "pass-2001", Some("MD5"));
    assert_eq!(ok.status(), Some(200), "{ok:?}");
}

/// Packets readable on `s` within a short while.
fn drain(s: &UdpSocket) -> usize {
    s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut buf = [0u8; 2048];
    let mut n = 0;
    while s.recv_from(&mut buf).is_ok() {
        n += 1;
    }
    n
}

/// An answered carrier call through `sip` to the phone: RTP both ways, then the carrier hangs up.
fn call_and_talk(sip: SocketAddr, call: &str, phone: &mut SipClient) -> Placed {
    let carrier_rtp = UdpSocket::bind("127.0.0.2:0").unwrap();
    let phone_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let media = (carrier_rtp.local_addr().unwrap(), phone_rtp.local_addr().unwrap());
    let mut placed = place(sip, NUMBER, call, phone, "2001", media, WAIT);
    let _ = phone.recv_request(Duration::from_millis(300)); // its ACK
    for seq in 0..30u16 {
        phone_rtp.send_to(&rtp(seq, 1, &[]), placed.relay_b).unwrap();
        carrier_rtp.send_to(&rtp(seq, 2, &[]), placed.relay_a).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    // Each relay on the way holds back its first packets (latching probation); the rest go through.
    let (to_carrier, to_phone) = (drain(&carrier_rtp), drain(&phone_rtp));
    assert!(to_carrier >= 20 && to_phone >= 20, "carrier heard {to_carrier}, phone heard {to_phone}");
    assert!(hang_up(&mut placed, phone), "the hang-up went through");
    placed
}

#[test]
fn a_call_reaches_a_device_on_another_node_and_after_failover_on_this_one() {
    let Some(pg) = PgDatabase::create() else { return };
    let gw_port = free_port();
    let mut syd = Daemon::with_database(BIN, &config("syd", "sydney"), &pg.url);
    syd.provision_direct(&[("2001", "pass-2001", &[])]);
    syd.cli_ok(&[
        "number",
        "add",
        "--service",
        "acme",
        "--number",
        NUMBER,
        "--device",
        "2001",
        "--divert-when",
        "never",
    ]);
    syd.cli_ok(&["gateway", "add", "--name", "gw1", "--address", &format!("127.0.0.2:{gw_port}")]);
    syd.launch();
    let mut mel = Daemon::with_database(BIN, &config("mel", "melbourne"), &pg.url);
    mel.launch();

    // The phone registers with Sydney; Melbourne learns where it is.
    let mut phone = SipClient::udp(syd.sip);
    register(&mut phone);
    let known = wait_until(WAIT, || {
        let list = nodes(&mel);
        list.len() == 2 && node(&list, "syd")["bindings"] == 1 && list.iter().all(|n| n["up"] == true)
    });
    let list = nodes(&mel);
    assert!(known, "{list:?}");
    assert_eq!(node(&list, "syd")["cluster_address"], syd.sip.to_string());
    // Melbourne's own count of devices bound elsewhere (published each second).
    let http = mel.http(None);
    let remote = wait_until(WAIT, || {
        let page = http.get("/metrics").text();
        switchboard_testkit::http::metric(&page, "switchboard_remote_devices") == Some(1.0)
            && switchboard_testkit::http::metric(&page, "switchboard_cluster_nodes_up") == Some(1.0)
    });
    assert!(remote, "{}", http.get("/metrics").text());

    // The carrier calls Melbourne: Sydney rings the phone over the phone's own flow, media flows end to end.
    let placed = call_and_talk(mel.sip, "relay1", &mut phone);
    let via = header(&placed.ring, HeaderName::Via);
    assert!(via.contains(&syd.sip.to_string()), "rung by Sydney: {via}");
    assert!(placed.ring.headers.get(&HeaderName::Other("X-Switchboard-Relay".into())).is_none());

    // A forged relay straight at Sydney from a stranger is refused.
    let mut stranger = SipClient::udp_from("127.0.0.66", syd.sip);
    let forged = format!(
        "INVITE sip:{NUMBER}@{s} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bKforged\r\nMax-Forwards: 70\r\n\
         From: <sip:+61400000001@x>;tag=f\r\nTo: <sip:{NUMBER}@x>\r\nCall-ID: forged@x\r\nCSeq: 1 INVITE\r\n\
         X-Switchboard-Relay: device=1;number={NUMBER};node=mel;ts=1;mac=00\r\nContent-Length: 0\r\n\r\n",
        s = syd.sip,
        l = stranger.local()
    );
    stranger.send_raw(forged.as_bytes());
    let refused = stranger.recv_response(WAIT).expect("an answer");
    assert_eq!(refused.status(), Some(403), "{refused:?}");
    assert!(
        phone
            .recv_request(Duration::from_millis(300))
            .is_none_or(|m| m.method().is_some_and(|m| m.as_str() != "INVITE"))
    );

    // Sydney stops. Melbourne sees it stale after three missed heartbeats and no longer relays to it.
    let stopped = Instant::now();
    syd.stop();
    let stale = wait_until(Duration::from_secs(8), || node(&nodes(&mel), "syd")["up"] == false);
    let stale_after = stopped.elapsed();
    assert!(stale, "{:?}", nodes(&mel));
    // Melbourne, the only live node, reports the stranded phone offline.
    let reported = wait_until(WAIT, || mel.registrations().iter().all(|r| r["online"] == false));
    assert!(reported, "{:?}", mel.registrations());
    assert!(mel.log().contains("nodes stopped"), "{}", mel.log());
    std::thread::sleep(Duration::from_millis(600));
    let answer = Carrier::invite(mel.sip, NUMBER, "offline1", "127.0.0.2:9".parse().unwrap()).final_response(WAIT);
    assert_eq!(answer.status(), Some(480), "{answer:?}");

    // The phone fails over to Melbourne (its DNS SRV's next target) and is reachable there at once.
    let mut phone = SipClient::udp(mel.sip);
    let failover = Instant::now();
    register(&mut phone);
    let placed = call_and_talk(mel.sip, "direct1", &mut phone);
    let reached_after = failover.elapsed();
    let via = header(&placed.ring, HeaderName::Via);
    assert!(via.contains(&mel.sip.to_string()), "rung by Melbourne itself: {via}");
    eprintln!("FIGURES: stale after {stale_after:?} (heartbeat 1 s); re-registered and rung in {reached_after:?}");

    // Nothing lost: each call recorded once, by the node the carrier called; the binding is Melbourne's.
    let mut cdrs: Vec<Value> = Vec::new();
    wait_until(WAIT, || {
        cdrs = serde_json::from_str(&mel.cli_ok(&["cdr", "--json"])).unwrap();
        cdrs.len() >= 3
    });
    std::thread::sleep(Duration::from_millis(500));
    cdrs = serde_json::from_str(&mel.cli_ok(&["cdr", "--json"])).unwrap();
    let answered: Vec<&Value> = cdrs.iter().filter(|c| c["disposition"] == "answered").collect();
    assert_eq!(answered.len(), 2, "{cdrs:#?}");
    assert!(cdrs.iter().all(|c| c["node"] == "mel"), "{cdrs:#?}");
    assert_eq!(cdrs.len(), 3, "two answered and the one while the phone was nowhere: {cdrs:#?}");
    let regs = mel.registrations();
    let on_mel: Vec<&Value> = regs.iter().filter(|r| r["node"] == "mel").collect();
    assert_eq!(on_mel.len(), 1, "{regs:?}");
    assert_eq!(on_mel[0]["source"], phone.local().to_string(), "{regs:?}");
    assert_eq!(on_mel[0]["online"], true, "online again: {regs:?}");
    // Sydney's own row stays (a clean stop keeps bindings for the restart), shown with its node stale.
    assert_eq!(node(&nodes(&mel), "syd")["bindings"], 1);
    // Sydney comes back: it takes none of Melbourne's bindings, and calls still reach the phone through Melbourne.
    syd.launch();
    assert!(syd.log().contains("bindings held by other nodes left to them"), "{}", syd.log());
}
