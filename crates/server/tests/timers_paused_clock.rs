//! Product timers in virtual time: the daemon runs in-process on a paused tokio clock, so registration expiry,
//! keepalive failure and the no-answer divert are checked to the millisecond without sleeping.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_server::{Config, DeviceEvent};
use switchboard_sip_core::digest::{Algorithm, Challenge, ClientAuth, ClientSecret, client_response, ha1};
use switchboard_sip_core::{HeaderName, Limits, Message, parse_datagram};
use switchboard_storage::{
    ActiveCall, ActiveCallOp, ApiToken, Binding, BindingOp, Cdr, CdrFilter, Change, Credentials, Customer, Device,
    DeviceState, DeviceUpdate, Gateway, NewCdr, NewDevice, NewGateway, NewNumber, NewService, Number, NumberUpdate,
    Service, ServiceMode, Store, StoreError, Voicemail, VoicemailStatus,
};
use tokio::net::UdpSocket;

const REALM: &str = "switchboard.local";

/// An in-memory Store: the paused clock must not meet real database I/O (sqlx's pool timeouts would fire in
/// virtual time while a query runs on a worker thread). Only what the daemon uses at run time is implemented;
/// provisioning calls are refused.
#[derive(Debug, Default)]
struct MemStore {
    services: Vec<Service>,
    devices: Vec<Device>,
    numbers: Vec<Number>,
    gateways: Vec<Gateway>,
    bindings: Mutex<Vec<Binding>>,
    states: Mutex<Vec<DeviceState>>,
    cdrs: Mutex<Vec<NewCdr>>,
    voicemails: Mutex<Vec<Voicemail>>,
}

fn refused<T>() -> Result<T, StoreError> {
    Err(StoreError::NotFound { entity: "in-memory test store operation", key: String::new() })
}

#[async_trait::async_trait]
impl Store for MemStore {
    async fn create_customer(&self, _: &str) -> Result<Customer, StoreError> {
        refused()
    }
    async fn customer(&self, _: i64) -> Result<Option<Customer>, StoreError> {
        Ok(None)
    }
    async fn customer_by_name(&self, _: &str) -> Result<Option<Customer>, StoreError> {
        Ok(None)
    }
    async fn list_customers(&self) -> Result<Vec<Customer>, StoreError> {
        Ok(vec![])
    }
    async fn create_service(&self, _: &NewService) -> Result<Service, StoreError> {
        refused()
    }
    async fn update_service(
        &self,
        _: i64,
        _: switchboard_storage::ServiceMode,
        _: Option<&str>,
    ) -> Result<Service, StoreError> {
        refused()
    }
    async fn set_service_require_tls(&self, _: i64, _: bool) -> Result<Service, StoreError> {
        refused()
    }
    async fn service_by_name(&self, _: &str) -> Result<Option<Service>, StoreError> {
        Ok(None)
    }
    async fn service(&self, id: i64) -> Result<Option<Service>, StoreError> {
        Ok(self.services.iter().find(|s| s.id == id).cloned())
    }
    async fn list_services(&self, _: Option<i64>) -> Result<Vec<Service>, StoreError> {
        Ok(self.services.clone())
    }
    async fn create_device(&self, _: &NewDevice) -> Result<Device, StoreError> {
        refused()
    }
    async fn create_devices(&self, _: &[NewDevice]) -> Result<Vec<Device>, StoreError> {
        refused()
    }
    async fn device(&self, id: i64) -> Result<Option<Device>, StoreError> {
        Ok(self.devices.iter().find(|d| d.id == id).cloned())
    }
    async fn device_by_auth_id(&self, a: &str) -> Result<Option<Device>, StoreError> {
        Ok(self.devices.iter().find(|d| d.auth_id == a).cloned())
    }
    async fn device_by_name(&self, _: i64, _: &str) -> Result<Option<Device>, StoreError> {
        Ok(None)
    }
    async fn list_devices(&self, _: Option<i64>) -> Result<Vec<Device>, StoreError> {
        Ok(self.devices.clone())
    }
    async fn update_device(&self, _: i64, _: &DeviceUpdate) -> Result<Device, StoreError> {
        refused()
    }
    async fn delete_device(&self, _: i64) -> Result<(), StoreError> {
        refused()
    }
    async fn create_number(&self, _: &NewNumber) -> Result<Number, StoreError> {
        refused()
    }
    async fn number(&self, id: i64) -> Result<Option<Number>, StoreError> {
        Ok(self.numbers.iter().find(|n| n.id == id).cloned())
    }
    async fn number_by_e164(&self, _: &str) -> Result<Option<Number>, StoreError> {
        Ok(None)
    }
    async fn list_numbers(&self, _: Option<i64>) -> Result<Vec<Number>, StoreError> {
        Ok(self.numbers.clone())
    }
    async fn update_number(&self, _: i64, _: &NumberUpdate) -> Result<Number, StoreError> {
        refused()
    }
    async fn delete_number(&self, _: i64) -> Result<(), StoreError> {
        refused()
    }
    async fn create_gateway(&self, _: &NewGateway) -> Result<Gateway, StoreError> {
        refused()
    }
    async fn gateway_by_name(&self, _: &str) -> Result<Option<Gateway>, StoreError> {
        Ok(None)
    }
    async fn list_gateways(&self) -> Result<Vec<Gateway>, StoreError> {
        Ok(self.gateways.clone())
    }
    async fn delete_gateway(&self, _: i64) -> Result<(), StoreError> {
        refused()
    }
    async fn apply_bindings(&self, ops: &[BindingOp]) -> Result<(), StoreError> {
        let mut b = self.bindings.lock().unwrap();
        for op in ops {
            match op {
                BindingOp::Upsert(n) => {
                    b.retain(|x| !(x.device_id == n.device_id && x.contact == n.contact));
                    b.push(n.clone());
                }
                BindingOp::Remove { device_id, contact, node } => {
                    b.retain(|x| !(x.device_id == *device_id && &x.contact == contact && &x.node == node))
                }
                BindingOp::RemoveAll { device_id } => b.retain(|x| x.device_id != *device_id),
            }
        }
        Ok(())
    }
    async fn list_bindings(&self) -> Result<Vec<Binding>, StoreError> {
        Ok(self.bindings.lock().unwrap().clone())
    }
    async fn bindings_for_device(&self, id: i64) -> Result<Vec<Binding>, StoreError> {
        Ok(self.bindings.lock().unwrap().iter().filter(|b| b.device_id == id).cloned().collect())
    }
    async fn bindings_for_service(&self, _: i64) -> Result<Vec<Binding>, StoreError> {
        refused()
    }
    async fn purge_expired_bindings(&self, _: i64) -> Result<u64, StoreError> {
        Ok(0)
    }
    async fn set_device_state(&self, s: &DeviceState) -> Result<(), StoreError> {
        let mut st = self.states.lock().unwrap();
        st.retain(|x| x.device_id != s.device_id);
        st.push(s.clone());
        Ok(())
    }
    async fn device_states(&self) -> Result<Vec<DeviceState>, StoreError> {
        Ok(self.states.lock().unwrap().clone())
    }
    async fn service_device_states(&self, _: i64) -> Result<Vec<DeviceState>, StoreError> {
        Ok(self.states.lock().unwrap().clone())
    }
    async fn device_state(&self, id: i64) -> Result<Option<DeviceState>, StoreError> {
        Ok(self.states.lock().unwrap().iter().find(|s| s.device_id == id).cloned())
    }
    async fn set_device_auths(&self, _: &[switchboard_storage::DeviceAuth]) -> Result<(), StoreError> {
        Ok(())
    }
    async fn device_auths(&self) -> Result<Vec<switchboard_storage::DeviceAuth>, StoreError> {
        Ok(Vec::new())
    }
    async fn device_auth(&self, _: i64) -> Result<Option<switchboard_storage::DeviceAuth>, StoreError> {
        Ok(None)
    }
    async fn insert_cdrs(&self, cdrs: &[NewCdr]) -> Result<(), StoreError> {
        self.cdrs.lock().unwrap().extend_from_slice(cdrs);
        Ok(())
    }
    async fn apply_active_calls(&self, _: &[ActiveCallOp]) -> Result<(), StoreError> {
        Ok(())
    }
    async fn list_active_calls(&self) -> Result<Vec<ActiveCall>, StoreError> {
        Ok(vec![])
    }
    async fn clear_active_calls(&self, _: &str) -> Result<u64, StoreError> {
        Ok(0)
    }
    async fn list_cdrs(&self, _: &CdrFilter) -> Result<Vec<Cdr>, StoreError> {
        Ok(vec![])
    }
    async fn changes_since(&self, _: i64, _: i64) -> Result<Vec<Change>, StoreError> {
        Ok(vec![])
    }
    async fn last_change(&self) -> Result<i64, StoreError> {
        Ok(0)
    }
    async fn create_voicemail(&self, new: &switchboard_storage::NewVoicemail) -> Result<Voicemail, StoreError> {
        let mut all = self.voicemails.lock().unwrap();
        let v = Voicemail {
            id: all.len() as i64 + 1,
            number_id: new.number_id,
            caller: new.caller.clone(),
            caller_name: new.caller_name.clone(),
            received_at: new.received_at,
            duration_ms: 0,
            status: VoicemailStatus::Recording,
            file: new.file.clone(),
            node: new.node.clone(),
        };
        all.push(v.clone());
        Ok(v)
    }
    async fn finish_voicemail(&self, id: i64, duration_ms: i64) -> Result<(), StoreError> {
        let mut all = self.voicemails.lock().unwrap();
        let v = all
            .iter_mut()
            .find(|v| v.id == id)
            .ok_or(StoreError::NotFound { entity: "voicemail", key: id.to_string() })?;
        (v.status, v.duration_ms) = (VoicemailStatus::New, duration_ms);
        Ok(())
    }
    async fn set_voicemail_status(&self, _: i64, _: VoicemailStatus) -> Result<(), StoreError> {
        refused()
    }
    async fn delete_voicemail(&self, id: i64) -> Result<(), StoreError> {
        self.voicemails.lock().unwrap().retain(|v| v.id != id);
        Ok(())
    }
    async fn voicemail(&self, id: i64) -> Result<Option<Voicemail>, StoreError> {
        Ok(self.voicemails.lock().unwrap().iter().find(|v| v.id == id).cloned())
    }
    async fn list_voicemails(&self, number_id: i64) -> Result<Vec<Voicemail>, StoreError> {
        Ok(self.voicemails.lock().unwrap().iter().filter(|v| v.number_id == number_id).cloned().collect())
    }
    async fn voicemail_counts(&self) -> Result<Vec<(String, i64, i64)>, StoreError> {
        Ok(vec![])
    }
    async fn unfinished_voicemails(&self, _: &str) -> Result<Vec<Voicemail>, StoreError> {
        Ok(vec![])
    }
    async fn mailbox(&self, _: i64) -> Result<Option<switchboard_storage::Mailbox>, StoreError> {
        Ok(None)
    }
    async fn set_mailbox_pin(&self, _: i64, _: Option<&str>) -> Result<switchboard_storage::Mailbox, StoreError> {
        refused()
    }
    async fn mailbox_pin_failed(&self, _: i64, _: i64, _: i64) -> Result<switchboard_storage::Mailbox, StoreError> {
        refused()
    }
    async fn set_mailbox_email(
        &self,
        _: i64,
        _: Option<&str>,
        _: bool,
    ) -> Result<switchboard_storage::Mailbox, StoreError> {
        refused()
    }
    async fn mailbox_pin_passed(&self, _: i64) -> Result<(), StoreError> {
        refused()
    }
    async fn enqueue_email(
        &self,
        _: &switchboard_storage::NewEmail,
    ) -> Result<Option<switchboard_storage::Email>, StoreError> {
        refused()
    }
    async fn claim_emails(
        &self,
        _: &str,
        _: i64,
        _: i64,
        _: i64,
    ) -> Result<Vec<switchboard_storage::Email>, StoreError> {
        Ok(vec![])
    }
    async fn email_sent(&self, _: i64, _: i64) -> Result<(), StoreError> {
        refused()
    }
    async fn email_failed(&self, _: i64, _: &str, _: Option<i64>) -> Result<(), StoreError> {
        refused()
    }
    async fn list_outbox(&self, _: i64) -> Result<Vec<switchboard_storage::Email>, StoreError> {
        Ok(vec![])
    }
    async fn outbox_counts(&self) -> Result<Vec<(switchboard_storage::OutboxStatus, i64)>, StoreError> {
        Ok(vec![])
    }
    async fn create_login(&self, _: &str, _: Option<i64>) -> Result<switchboard_storage::Login, StoreError> {
        refused()
    }
    async fn login(&self, _: i64) -> Result<Option<switchboard_storage::Login>, StoreError> {
        Ok(None)
    }
    async fn login_by_email(&self, _: &str) -> Result<Option<switchboard_storage::Login>, StoreError> {
        Ok(None)
    }
    async fn list_logins(&self) -> Result<Vec<switchboard_storage::Login>, StoreError> {
        Ok(vec![])
    }
    async fn link_login(&self, _: i64, _: Option<i64>) -> Result<switchboard_storage::Login, StoreError> {
        refused()
    }
    async fn set_login_password(&self, _: i64, _: &str, _: i64) -> Result<(), StoreError> {
        refused()
    }
    async fn delete_login(&self, _: i64) -> Result<(), StoreError> {
        refused()
    }
    async fn create_session(&self, _: &switchboard_storage::Session) -> Result<(), StoreError> {
        refused()
    }
    async fn session(&self, _: &str, _: i64) -> Result<Option<switchboard_storage::Session>, StoreError> {
        Ok(None)
    }
    async fn touch_session(&self, _: &str, _: i64, _: i64) -> Result<(), StoreError> {
        refused()
    }
    async fn delete_session(&self, _: &str) -> Result<(), StoreError> {
        refused()
    }
    async fn purge_portal(&self, _: i64, _: i64) -> Result<u64, StoreError> {
        Ok(0)
    }
    async fn create_login_token(&self, _: &switchboard_storage::NewLoginToken) -> Result<(), StoreError> {
        refused()
    }
    async fn spend_login_token(&self, _: &str, _: i64) -> Result<Option<switchboard_storage::SpentToken>, StoreError> {
        Ok(None)
    }
    async fn login_token_live(&self, _: &str, _: i64) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn heartbeat_node(&self, _: &switchboard_storage::Node) -> Result<(), StoreError> {
        Ok(())
    }
    async fn list_nodes(&self) -> Result<Vec<(switchboard_storage::Node, i64)>, StoreError> {
        Ok(vec![])
    }
    async fn live_nodes(&self, _: i64) -> Result<Vec<switchboard_storage::Node>, StoreError> {
        Ok(vec![])
    }
    async fn bindings_elsewhere(
        &self,
        _: &str,
        _: i64,
        _: i64,
    ) -> Result<Vec<switchboard_storage::Located>, StoreError> {
        Ok(vec![])
    }
    async fn create_api_token(&self, _: &switchboard_storage::NewApiToken) -> Result<ApiToken, StoreError> {
        refused()
    }
    async fn api_token_by_hash(&self, _: &str) -> Result<Option<ApiToken>, StoreError> {
        Ok(None)
    }
    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        Ok(vec![])
    }
    async fn revoke_api_token(&self, _: &str) -> Result<ApiToken, StoreError> {
        refused()
    }
    async fn touch_api_token(&self, _: i64, _: i64) -> Result<(), StoreError> {
        refused()
    }
}

fn store_with_device() -> Arc<dyn Store> {
    let pw = "timer-test-pw";
    Arc::new(MemStore {
        services: vec![Service {
            id: 1,
            customer_id: 1,
            name: "acme".into(),
            mode: ServiceMode::Direct,
            region: None,
            require_tls: false,
            created_at: 0,
        }],
        devices: vec![Device {
            id: 1,
            service_id: 1,
            name: "desk".into(),
            auth_id: "3001".into(),
            credentials: Credentials {
                realm: REALM.into(),
                ha1_md5: ha1(Algorithm::Md5, "3001", REALM, pw),
                ha1_sha256: ha1(Algorithm::Sha256, "3001", REALM, pw),
                ha1_sha512_256: ha1(Algorithm::Sha512_256, "3001", REALM, pw),
            },
            caller_id: None,
            call_types: vec![],
            max_contacts: 1,
            trusted_address: None,
            digest: switchboard_storage::DigestMode::Modern,
            md5_from: Vec::new(),
            require_tls: false,
            created_at: 0,
            updated_at: 0,
        }],
        ..Default::default()
    })
}

fn config(interval_secs: u64) -> Config {
    let mut c = Config::default();
    c.sip.listen = "127.0.0.1:0".parse().unwrap();
    c.keepalive.interval_secs = interval_secs;
    c
}

async fn recv(sock: &UdpSocket) -> Message {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, _) = sock.recv_from(&mut buf).await.unwrap();
        let m = parse_datagram(&buf[..n], &Limits::default()).unwrap();
        if !m.is_request() {
            return m;
        }
    }
}

/// Registers device 3001 with `expires` seconds from a socket that never answers keepalives.
async fn register(server: std::net::SocketAddr, expires: u32) -> UdpSocket {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = sock.local_addr().unwrap();
    let build = |cseq: u32, auth: Option<String>| {
        let mut t = format!(
            "REGISTER sip:{server} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKt{cseq}\r\n\
             From: <sip:3001@{server}>;tag=1\r\nTo: <sip:3001@{server}>\r\nCall-ID: timers@test\r\n\
             CSeq: {cseq} REGISTER\r\nContact: <sip:3001@{local}>\r\nExpires: {expires}\r\nMax-Forwards: 70\r\n"
        );
        if let Some(a) = auth {
            t.push_str(&format!("Authorization: {a}\r\n"));
        }
        t.push_str("Content-Length: 0\r\n\r\n");
        t
    };
    sock.send_to(build(1, None).as_bytes(), server).await.unwrap();
    let challenge = recv(&sock).await;
    assert_eq!(challenge.status(), Some(401));
    let ch = Challenge::parse(challenge.headers.get(&HeaderName::WwwAuthenticate).unwrap()).unwrap();
    let uri = format!("sip:{server}");
    let auth = ClientAuth {
        username: "3001",
        secret: ClientSecret::Password("timer-test-pw"),
        method: "REGISTER",
        uri: &uri,
        cnonce: b"c1",
        nc: 1,
    };
    sock.send_to(build(2, Some(client_response(&ch, &auth).unwrap())).as_bytes(), server).await.unwrap();
    assert_eq!(recv(&sock).await.status(), Some(200));
    sock
}

async fn next_event(events: &mut tokio::sync::broadcast::Receiver<DeviceEvent>) -> DeviceEvent {
    tokio::time::timeout(Duration::from_secs(7200), events.recv()).await.expect("event in time").unwrap()
}

#[tokio::test(start_paused = true)]
async fn registration_expires_at_exactly_the_granted_time() {
    // Keepalives far apart, so only expiry can end the registration.
    let running = switchboard_server::start(config(3000), store_with_device()).await.unwrap();
    let mut events = running.subscribe();
    let _sock = register(running.sip_addr(), 60).await;
    let online = next_event(&mut events).await;
    assert!(online.online);
    let offline = next_event(&mut events).await;
    assert!(!offline.online);
    assert_eq!(offline.reason, Some(switchboard_registrar::OfflineReason::Unregistered));
    assert_eq!(offline.at - online.at, 60_000, "expiry at exactly 60 s");
    running.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn silent_device_is_offline_after_two_missed_keepalives() {
    // Defaults: probe every 30 s, 5 s to answer, offline after 2 misses.
    let running = switchboard_server::start(config(30), store_with_device()).await.unwrap();
    let mut events = running.subscribe();
    let _sock = register(running.sip_addr(), 3600).await;
    let online = next_event(&mut events).await;
    assert!(online.online);
    let offline = next_event(&mut events).await;
    assert!(!offline.online);
    assert_eq!(offline.reason, Some(switchboard_registrar::OfflineReason::NoKeepalive));
    // Probe at 30 s fails at 35 s (miss 1); probe at 60 s fails at 65 s (miss 2).
    assert_eq!(offline.at - online.at, 65_000);
    running.shutdown().await;
}

/// A store with device 3001 on number +61299990001 (no-answer divert after 60 s to +61255550000) and one carrier
/// gateway at `gateway`.
fn store_with_number(gateway: std::net::SocketAddr) -> Arc<dyn Store> {
    let base = store_with_device();
    let devices = futures_free_block(base.list_devices(None)).unwrap();
    let services = futures_free_block(base.list_services(None)).unwrap();
    Arc::new(MemStore {
        services,
        devices,
        numbers: vec![Number {
            id: 1,
            service_id: 1,
            number: "+61299990001".into(),
            device_id: Some(1),
            divert_when: switchboard_storage::DivertWhen::NoAnswer,
            divert_to: Some("+61255550000".into()),
            no_answer_secs: 60,
            offline_alert: None,
            created_at: 0,
            updated_at: 0,
        }],
        gateways: vec![Gateway {
            id: 1,
            name: "carrier".into(),
            address: gateway.to_string(),
            transport: "udp".into(),
            priority: 10,
            enabled: true,
            created_at: 0,
        }],
        ..Default::default()
    })
}

/// The MemStore answers without awaiting anything, so its futures complete on the first poll.
fn futures_free_block<T>(f: impl std::future::Future<Output = T>) -> T {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the in-memory store never waits"),
    }
}

/// The next request on `sock`, skipping responses and requests with other methods.
async fn recv_request(sock: &UdpSocket, method: &str) -> (Message, std::net::SocketAddr) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, from) = sock.recv_from(&mut buf).await.unwrap();
        let m = parse_datagram(&buf[..n], &Limits::default()).unwrap();
        if m.method().is_some_and(|x| x.as_str() == method) {
            return (m, from);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn no_answer_diverts_at_exactly_sixty_seconds() {
    let gateway = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let gw_addr = gateway.local_addr().unwrap();
    let running = switchboard_server::start(config(3000), store_with_number(gw_addr)).await.unwrap();
    let server = running.sip_addr();
    let device = register(server, 3600).await;

    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let invite = format!(
        "INVITE sip:+61299990001@{server} SIP/2.0\r\nVia: SIP/2.0/UDP {gw_addr};branch=z9hG4bKpaused1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:+61400000001@carrier>;tag=g1\r\nTo: <sip:+61299990001@{server}>\r\n\
         Call-ID: paused-divert@carrier\r\nCSeq: 1 INVITE\r\nContact: <sip:carrier@{gw_addr}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    gateway.send_to(invite.as_bytes(), server).await.unwrap();

    // The device rings.
    let (ring, from) = recv_request(&device, "INVITE").await;
    let rang_at = tokio::time::Instant::now();
    let mut ringing = switchboard_sip_core::validate::response_to(&ring.headers, 180, "Ringing", Some("dev1"));
    ringing.headers.push(HeaderName::Contact, format!("<sip:3001@{}>", device.local_addr().unwrap()));
    device.send_to(&ringing.to_bytes(), from).await.unwrap();

    // Sixty seconds later to the millisecond: the device leg is cancelled and the gateway gets the divert.
    let (diverted, _) = recv_request(&gateway, "INVITE").await;
    let diverted_at = tokio::time::Instant::now();
    assert_eq!(diverted_at - rang_at, Duration::from_secs(60), "divert at exactly 60 s");
    assert!(diverted.request_uri().unwrap().starts_with("sip:+61255550000@"), "{:?}", diverted.request_uri());
    let diversion = diverted.headers.get(&HeaderName::Diversion).unwrap();
    assert!(diversion.contains("reason=no-answer"), "{diversion}");
    let (cancel, _) = recv_request(&device, "CANCEL").await;
    assert_eq!(tokio::time::Instant::now() - rang_at, Duration::from_secs(60), "CANCEL with the divert");
    assert_eq!(
        cancel.headers.get(&HeaderName::Via),
        ring.headers.get(&HeaderName::Via),
        "the CANCEL matches the INVITE's transaction"
    );
    running.shutdown().await;
}
