//! The `Store` contract: one suite, run against SQLite (a temp file) and PostgreSQL (a fresh database per test).
//!
//! PostgreSQL: `postgres://postgres@127.0.0.1:5432/test` unless `SWITCHBOARD_TEST_PG_URL` says otherwise. Each test
//! creates its own database `sb_<pid>_<n>_<nanos>` through that URL and drops it afterwards (even if the test
//! panics), so tests run in parallel without seeing each other. If the server is unreachable the PostgreSQL tests
//! are skipped with a loud line on stderr, except under `CI=true`, where they fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

mod harness;

use std::collections::BTreeSet;

use harness::Ctx;
use sqlx::Connection;
use switchboard_storage::{
    ActiveCall, ActiveCallOp, Binding, BindingOp, Cdr, CdrDirection, CdrDisposition, CdrFilter, Credentials, Device,
    DeviceAuth, DeviceState, DeviceUpdate, DigestMode, DivertReason, DivertWhen, Entity, NewApiToken, NewCdr,
    NewDevice, NewEmail, NewGateway, NewNumber, NewService, NewVoicemail, NumberUpdate, OutboxStatus, ServiceMode,
    Store, StoreError, Voicemail, VoicemailStatus,
};

/// Generates `sqlite::$name` and `postgres::$name` tests for each contract function.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::harness::run_sqlite(crate::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::harness::run_postgres(crate::$name).await;
                }
            )*
        }
    };
}

contract!(
    device_digest_create_update_clear,
    device_auth_upsert_skip_deleted_and_cascade,
    customers_create_list_lookup,
    customer_name_conflict,
    services_create_list_lookup,
    service_name_conflict,
    service_of_missing_customer_not_found,
    devices_create_list_lookup,
    device_auth_id_conflict,
    device_name_conflict_within_service,
    device_of_missing_service_not_found,
    update_device_partial,
    update_device_name_conflict,
    missing_device_update_delete_not_found,
    delete_device_cascades,
    create_devices_all_or_nothing,
    apply_bindings_upsert_remove_in_order,
    apply_bindings_skips_deleted_device,
    apply_bindings_large_batch_with_repeats,
    purge_expired_bindings,
    device_states_upsert,
    change_log_grows_and_pages,
    concurrent_writers,
    reopen_keeps_data,
    numbers_create_list_lookup,
    number_conflict_and_missing_parents,
    number_device_of_another_service_not_found,
    update_number_partial,
    missing_number_update_delete_not_found,
    delete_device_unpins_its_numbers,
    gateways_create_list_lookup_delete,
    change_log_covers_numbers_and_gateways,
    cdrs_insert_list_filter_order,
    cdrs_keep_history_of_deleted_devices,
    cdrs_missing_service_fails_whole_batch,
    cdrs_corrupt_enum_text_is_an_error,
    cdrs_large_batch,
    device_trusted_address_create_update_clear,
    device_trusted_address_conflict,
    active_calls_round_trip_all_fields,
    active_calls_upsert_then_answer,
    active_calls_apply_in_order,
    active_calls_list_oldest_first,
    active_calls_clear_only_that_node,
    active_calls_large_batch_with_repeats,
    voicemails_record_finish_list,
    voicemails_status_delete_and_missing,
    voicemails_go_with_their_number,
    mailbox_pin_set_fail_lock_pass,
    mailbox_email_set_and_clear,
    outbox_queue_claim_settle,
    outbox_claims_are_exclusive_and_lapse,
    outbox_dedupe_and_node_bound_rows,
    api_tokens_create_find_revoke,
    bindings_for_service_only_its_devices,
    portal_logins_sessions_and_links,
    nodes_heartbeat_and_list_with_their_bindings,
    bindings_elsewhere_and_moved_bindings,
);

// ---------------------------------------------------------------------------------------------------------------
// fixtures

fn creds(realm: &str, tag: &str) -> Credentials {
    Credentials {
        realm: realm.to_owned(),
        ha1_md5: format!("md5-{tag}"),
        ha1_sha256: format!("sha256-{tag}"),
        ha1_sha512_256: format!("sha512-256-{tag}"),
    }
}

fn new_device(service_id: i64, name: &str, auth_id: &str) -> NewDevice {
    NewDevice {
        service_id,
        name: name.to_owned(),
        auth_id: auth_id.to_owned(),
        credentials: creds("sip.example.net", auth_id),
        caller_id: Some("441632960000".to_owned()),
        call_types: vec!["local".to_owned(), "national".to_owned(), "mobile".to_owned()],
        max_contacts: 1,
        trusted_address: None,
        digest: DigestMode::Modern,
        md5_from: Vec::new(),
        require_tls: false,
    }
}

fn binding(device_id: i64, contact: &str, expires_at: i64) -> Binding {
    Binding {
        device_id,
        aor: format!("sip:dev{device_id}@sip.example.net"),
        contact: contact.to_owned(),
        q: Some(500),
        expires_at,
        call_id: "a84b4c76e66710@pc33".to_owned(),
        cseq: 1,
        source: "198.51.100.7:5060".to_owned(),
        transport: "udp".to_owned(),
        local: "203.0.113.1:5060".to_owned(),
        // A Path value with a comma inside the URI: the list encoding must keep it one element.
        path: vec!["<sip:edge1.example.net;lr;x=a,b>".to_owned(), "<sip:edge2.example.net;lr>".to_owned()],
        instance_id: Some("urn:uuid:00000000-0000-1000-8000-000A95A0E128".to_owned()),
        reg_id: Some(1),
        user_agent: Some("Softphone/1.0".to_owned()),
        node: "node-a".to_owned(),
        updated_at: 1_000,
    }
}

fn new_number(service_id: i64, number: &str) -> NewNumber {
    NewNumber {
        service_id,
        number: number.to_owned(),
        device_id: None,
        divert_when: DivertWhen::Never,
        divert_to: None,
        no_answer_secs: 60,
        offline_alert: None,
    }
}

fn new_gateway(name: &str, priority: i64) -> NewGateway {
    NewGateway {
        name: name.to_owned(),
        address: format!("{name}.carrier.example:5060"),
        transport: "udp".to_owned(),
        priority,
        enabled: true,
    }
}

/// A minimal answered outbound CDR.
fn new_cdr(call_id: &str, service_id: Option<i64>, started_at: i64) -> NewCdr {
    NewCdr {
        call_id: call_id.to_owned(),
        direction: CdrDirection::Outbound,
        service_id,
        device_id: None,
        caller: "+61298765432".to_owned(),
        callee: "0412345678".to_owned(),
        call_type: None,
        started_at,
        answered_at: None,
        ended_at: None,
        disposition: CdrDisposition::Answered,
        sip_status: None,
        divert_reason: None,
        diverted_to: None,
        gateway: None,
        node: "node-a".to_owned(),
        end_reason: None,
    }
}

/// A stored CDR without its id, to compare with what was inserted.
fn unstored(c: &Cdr) -> NewCdr {
    NewCdr {
        call_id: c.call_id.clone(),
        direction: c.direction,
        service_id: c.service_id,
        device_id: c.device_id,
        caller: c.caller.clone(),
        callee: c.callee.clone(),
        call_type: c.call_type.clone(),
        started_at: c.started_at,
        answered_at: c.answered_at,
        ended_at: c.ended_at,
        disposition: c.disposition,
        sip_status: c.sip_status,
        divert_reason: c.divert_reason,
        diverted_to: c.diverted_to.clone(),
        gateway: c.gateway.clone(),
        node: c.node.clone(),
        end_reason: c.end_reason.clone(),
    }
}

/// A ringing inbound call on `node`.
fn active_call(call_id: &str, node: &str, started_at: i64) -> ActiveCall {
    ActiveCall {
        call_id: call_id.to_owned(),
        node: node.to_owned(),
        direction: CdrDirection::Inbound,
        service_id: None,
        device_id: None,
        caller: "+61298765432".to_owned(),
        callee: "+61755550000".to_owned(),
        state: "ringing".to_owned(),
        started_at,
        answered_at: None,
    }
}

fn active_ids(calls: &[ActiveCall]) -> Vec<&str> {
    calls.iter().map(|c| c.call_id.as_str()).collect()
}

fn cdr_filter(limit: i64) -> CdrFilter {
    CdrFilter { limit, ..Default::default() }
}

fn call_ids(cdrs: &[Cdr]) -> Vec<&str> {
    cdrs.iter().map(|c| c.call_id.as_str()).collect()
}

/// A customer with one service; returns the service id.
async fn service_fixture(store: &dyn Store, name: &str) -> i64 {
    let customer = store.create_customer(&format!("{name}-customer")).await.unwrap();
    let service = store
        .create_service(&NewService {
            customer_id: customer.id,
            name: name.to_owned(),
            mode: ServiceMode::Trunk,
            region: Some("uk".to_owned()),
            require_tls: false,
        })
        .await
        .unwrap();
    service.id
}

fn assert_conflict(result: Result<impl std::fmt::Debug, StoreError>, entity: &str, field: &str, value: &str) {
    match result {
        Err(StoreError::Conflict { entity: e, field: f, value: v }) => {
            assert_eq!((e, f, v.as_str()), (entity, field, value));
        }
        other => panic!("expected Conflict on {entity}.{field}, got {other:?}"),
    }
}

fn assert_not_found(result: Result<impl std::fmt::Debug, StoreError>, entity: &str, key: &str) {
    match result {
        Err(StoreError::NotFound { entity: e, key: k }) => {
            assert_eq!((e, k.as_str()), (entity, key))
        }
        other => panic!("expected NotFound {entity} {key}, got {other:?}"),
    }
}

fn contacts(bindings: &[Binding]) -> BTreeSet<(i64, String)> {
    bindings.iter().map(|b| (b.device_id, b.contact.clone())).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// customers and services

async fn customers_create_list_lookup(ctx: Ctx) {
    let s = &*ctx.store;
    assert!(s.list_customers().await.unwrap().is_empty());
    let acme = s.create_customer("acme").await.unwrap();
    let globex = s.create_customer("globex").await.unwrap();
    assert_eq!(acme.name, "acme");
    assert!(acme.created_at > 1_600_000_000_000, "created_at is Unix ms: {}", acme.created_at);
    assert_ne!(acme.id, globex.id);

    assert_eq!(s.list_customers().await.unwrap(), vec![acme.clone(), globex]);
    assert_eq!(s.customer_by_name("acme").await.unwrap(), Some(acme));
    assert_eq!(s.customer_by_name("initech").await.unwrap(), None);
}

async fn customer_name_conflict(ctx: Ctx) {
    let s = &*ctx.store;
    s.create_customer("acme").await.unwrap();
    assert_conflict(s.create_customer("acme").await, "customer", "name", "acme");
    assert_eq!(s.list_customers().await.unwrap().len(), 1);
}

async fn services_create_list_lookup(ctx: Ctx) {
    let s = &*ctx.store;
    let acme = s.create_customer("acme").await.unwrap();
    let globex = s.create_customer("globex").await.unwrap();
    let new = |customer_id, name: &str, mode, region: Option<&str>| NewService {
        customer_id,
        name: name.to_owned(),
        mode,
        region: region.map(str::to_owned),
        require_tls: false,
    };
    let a1 = s.create_service(&new(acme.id, "acme-hq", ServiceMode::Trunk, Some("uk"))).await.unwrap();
    let a2 = s.create_service(&new(acme.id, "acme-desk", ServiceMode::Direct, None)).await.unwrap();
    let g1 = s.create_service(&new(globex.id, "globex", ServiceMode::Direct, Some("ie"))).await.unwrap();

    assert_eq!((a1.customer_id, a1.mode, a1.region.as_deref()), (acme.id, ServiceMode::Trunk, Some("uk")));
    assert_eq!((a2.mode, a2.region.as_deref()), (ServiceMode::Direct, None));
    assert_eq!(s.list_services(None).await.unwrap(), vec![a1.clone(), a2.clone(), g1.clone()]);
    assert_eq!(s.list_services(Some(acme.id)).await.unwrap(), vec![a1.clone(), a2]);
    assert_eq!(s.list_services(Some(globex.id)).await.unwrap(), vec![g1.clone()]);
    assert_eq!(s.list_services(Some(globex.id + 1000)).await.unwrap(), vec![]);
    assert_eq!(s.service(g1.id).await.unwrap(), Some(g1));
    assert_eq!(s.service(-1).await.unwrap(), None);
    assert_eq!(s.service_by_name("acme-hq").await.unwrap(), Some(a1.clone()));
    assert_eq!(s.service_by_name("nope").await.unwrap(), None);
    // TLS only for a whole service: set, read back, lifted.
    let secure = s.set_service_require_tls(a1.id, true).await.unwrap();
    assert!(secure.require_tls && s.service(a1.id).await.unwrap().unwrap().require_tls);
    assert!(!s.set_service_require_tls(a1.id, false).await.unwrap().require_tls);
    assert!(s.set_service_require_tls(-1, true).await.is_err(), "no such service");
}

async fn service_name_conflict(ctx: Ctx) {
    let s = &*ctx.store;
    let acme = s.create_customer("acme").await.unwrap();
    let globex = s.create_customer("globex").await.unwrap();
    let new = |customer_id| NewService {
        customer_id,
        name: "main".to_owned(),
        mode: ServiceMode::Direct,
        region: None,
        require_tls: false,
    };
    s.create_service(&new(acme.id)).await.unwrap();
    // Service names are unique across the platform, not per customer.
    assert_conflict(s.create_service(&new(globex.id)).await, "service", "name", "main");
}

async fn service_of_missing_customer_not_found(ctx: Ctx) {
    let s = &*ctx.store;
    let new = NewService {
        customer_id: 4242,
        name: "orphan".to_owned(),
        mode: ServiceMode::Direct,
        region: None,
        require_tls: false,
    };
    assert_not_found(s.create_service(&new).await, "customer", "4242");
    assert!(s.list_services(None).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------------------------
// devices

async fn devices_create_list_lookup(ctx: Ctx) {
    let s = &*ctx.store;
    let svc1 = service_fixture(s, "one").await;
    let svc2 = service_fixture(s, "two").await;

    let mut bare = new_device(svc2, "fax", "fax-2");
    bare.caller_id = None;
    bare.call_types = vec![];
    let d1 = s.create_device(&new_device(svc1, "desk", "desk-1")).await.unwrap();
    let d2 = s.create_device(&bare).await.unwrap();

    assert_eq!(d1.service_id, svc1);
    assert_eq!((d1.name.as_str(), d1.auth_id.as_str()), ("desk", "desk-1"));
    assert_eq!(d1.credentials, creds("sip.example.net", "desk-1"));
    assert_eq!(d1.caller_id.as_deref(), Some("441632960000"));
    assert_eq!(d1.call_types, ["local", "national", "mobile"]);
    assert_eq!(d1.max_contacts, 1);
    assert_eq!(d1.created_at, d1.updated_at);
    assert_eq!((d2.caller_id.clone(), d2.call_types.clone()), (None, vec![]));

    assert_eq!(s.device(d1.id).await.unwrap(), Some(d1.clone()));
    assert_eq!(s.device(d2.id + 1000).await.unwrap(), None);
    assert_eq!(s.device_by_auth_id("fax-2").await.unwrap(), Some(d2.clone()));
    assert_eq!(s.device_by_auth_id("nobody").await.unwrap(), None);
    assert_eq!(s.device_by_name(svc1, "desk").await.unwrap(), Some(d1.clone()));
    assert_eq!(s.device_by_name(svc2, "desk").await.unwrap(), None);
    assert_eq!(s.list_devices(None).await.unwrap(), vec![d1.clone(), d2.clone()]);
    assert_eq!(s.list_devices(Some(svc1)).await.unwrap(), vec![d1]);
    assert_eq!(s.list_devices(Some(svc2)).await.unwrap(), vec![d2]);
}

async fn device_auth_id_conflict(ctx: Ctx) {
    let s = &*ctx.store;
    let svc1 = service_fixture(s, "one").await;
    let svc2 = service_fixture(s, "two").await;
    s.create_device(&new_device(svc1, "desk", "alice")).await.unwrap();
    // auth_id is unique platform-wide, even in another service and under another name.
    assert_conflict(s.create_device(&new_device(svc2, "phone", "alice")).await, "device", "auth_id", "alice");
}

async fn device_name_conflict_within_service(ctx: Ctx) {
    let s = &*ctx.store;
    let svc1 = service_fixture(s, "one").await;
    let svc2 = service_fixture(s, "two").await;
    s.create_device(&new_device(svc1, "desk", "alice")).await.unwrap();
    assert_conflict(s.create_device(&new_device(svc1, "desk", "bob")).await, "device", "name", "desk");
    // The same name in another service is fine.
    s.create_device(&new_device(svc2, "desk", "carol")).await.unwrap();
}

async fn device_of_missing_service_not_found(ctx: Ctx) {
    let s = &*ctx.store;
    assert_not_found(s.create_device(&new_device(777, "desk", "alice")).await, "service", "777");
    assert!(s.list_devices(None).await.unwrap().is_empty());
}

async fn update_device_partial(ctx: Ctx) {
    let s = &*ctx.store;
    let svc = service_fixture(s, "one").await;
    let orig = s.create_device(&new_device(svc, "desk", "alice")).await.unwrap();

    // No fields: nothing changes but updated_at may move.
    let same = s.update_device(orig.id, &DeviceUpdate::default()).await.unwrap();
    assert_eq!(Device { updated_at: orig.updated_at, ..same.clone() }, orig);
    assert!(same.updated_at >= orig.updated_at);

    let renamed = s
        .update_device(orig.id, &DeviceUpdate { name: Some("reception".to_owned()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(renamed.name, "reception");
    assert_eq!(
        (renamed.caller_id.clone(), renamed.call_types.clone()),
        (orig.caller_id.clone(), orig.call_types.clone())
    );
    assert_eq!((renamed.auth_id.as_str(), renamed.created_at), ("alice", orig.created_at));

    let cleared =
        s.update_device(orig.id, &DeviceUpdate { caller_id: Some(None), ..Default::default() }).await.unwrap();
    assert_eq!(cleared.caller_id, None);
    assert_eq!(cleared.name, "reception");

    let new_creds = creds("other.example.net", "rotated");
    let updated = s
        .update_device(
            orig.id,
            &DeviceUpdate {
                caller_id: Some(Some("441632960999".to_owned())),
                call_types: Some(vec!["international".to_owned()]),
                max_contacts: Some(5),
                credentials: Some(new_creds.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.caller_id.as_deref(), Some("441632960999"));
    assert_eq!(updated.call_types, ["international"]);
    assert_eq!(updated.max_contacts, 5);
    assert_eq!(updated.credentials, new_creds);
    assert_eq!(updated.name, "reception");
    // What update returns is what is stored.
    assert_eq!(s.device(orig.id).await.unwrap(), Some(updated.clone()));
    assert_eq!(s.device_by_auth_id("alice").await.unwrap(), Some(updated));
}

async fn update_device_name_conflict(ctx: Ctx) {
    let s = &*ctx.store;
    let svc = service_fixture(s, "one").await;
    s.create_device(&new_device(svc, "desk", "alice")).await.unwrap();
    let bob = s.create_device(&new_device(svc, "phone", "bob")).await.unwrap();
    let rename = DeviceUpdate { name: Some("desk".to_owned()), ..Default::default() };
    assert_conflict(s.update_device(bob.id, &rename).await, "device", "name", "desk");
    assert_eq!(s.device(bob.id).await.unwrap(), Some(bob));
}

async fn missing_device_update_delete_not_found(ctx: Ctx) {
    let s = &*ctx.store;
    let before = s.last_change().await.unwrap();
    assert_not_found(s.update_device(99, &DeviceUpdate::default()).await, "device", "99");
    assert_not_found(s.delete_device(99).await, "device", "99");
    assert_not_found(s.set_device_state(&DeviceState { device_id: 99, online: true, since: 1 }).await, "device", "99");
    assert_eq!(s.last_change().await.unwrap(), before, "failed writes leave no change-log entry");
}

async fn delete_device_cascades(ctx: Ctx) {
    let s = &*ctx.store;
    let svc = service_fixture(s, "one").await;
    let alice = s.create_device(&new_device(svc, "desk", "alice")).await.unwrap();
    let bob = s.create_device(&new_device(svc, "phone", "bob")).await.unwrap();
    s.apply_bindings(&[
        BindingOp::Upsert(binding(alice.id, "sip:alice@198.51.100.7", 10_000)),
        BindingOp::Upsert(binding(alice.id, "sip:alice@198.51.100.8", 10_000)),
        BindingOp::Upsert(binding(bob.id, "sip:bob@198.51.100.9", 10_000)),
    ])
    .await
    .unwrap();
    s.set_device_state(&DeviceState { device_id: alice.id, online: true, since: 5 }).await.unwrap();
    s.set_device_state(&DeviceState { device_id: bob.id, online: true, since: 6 }).await.unwrap();

    s.delete_device(alice.id).await.unwrap();

    assert_eq!(s.device(alice.id).await.unwrap(), None);
    assert_eq!(s.device_by_auth_id("alice").await.unwrap(), None);
    assert!(s.bindings_for_device(alice.id).await.unwrap().is_empty());
    assert_eq!(contacts(&s.list_bindings().await.unwrap()), contacts(&[binding(bob.id, "sip:bob@198.51.100.9", 0)]));
    assert_eq!(s.device_states().await.unwrap(), vec![DeviceState { device_id: bob.id, online: true, since: 6 }]);
    // The auth_id is free again.
    s.create_device(&new_device(svc, "desk", "alice")).await.unwrap();
}

async fn create_devices_all_or_nothing(ctx: Ctx) {
    let s = &*ctx.store;
    let svc = service_fixture(s, "one").await;
    s.create_device(&new_device(svc, "existing", "taken")).await.unwrap();
    let before_log = s.last_change().await.unwrap();
    let before = s.list_devices(None).await.unwrap();

    // The last row collides with a stored device: the first two must not survive.
    let batch = [new_device(svc, "a", "a"), new_device(svc, "b", "b"), new_device(svc, "c", "taken")];
    assert_conflict(s.create_devices(&batch).await, "device", "auth_id", "taken");
    // Rows colliding with each other inside the batch.
    let batch = [new_device(svc, "a", "a"), new_device(svc, "a", "a2")];
    assert_conflict(s.create_devices(&batch).await, "device", "name", "a");
    assert_eq!(s.list_devices(None).await.unwrap(), before);
    assert_eq!(s.device_by_auth_id("a").await.unwrap(), None);
    assert_eq!(s.last_change().await.unwrap(), before_log);

    let batch = [new_device(svc, "a", "a"), new_device(svc, "b", "b"), new_device(svc, "c", "c")];
    let created = s.create_devices(&batch).await.unwrap();
    assert_eq!(created.iter().map(|d| d.auth_id.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(s.list_devices(Some(svc)).await.unwrap()[1..], created[..]);
    assert!(s.create_devices(&[]).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------------------------
// bindings and state

async fn apply_bindings_upsert_remove_in_order(ctx: Ctx) {
    let s = &*ctx.store;
    let svc = service_fixture(s, "one").await;
    let d = s.create_device(&new_device(svc, "desk", "alice")).await.unwrap().id;
    let e = s.create_device(&new_device(svc, "phone", "bob")).await.unwrap().id;
    let a = binding(d, "sip:a@198.51.100.7:5060", 10_000);
    let b = binding(d, "sip:b@198.51.100.7:5062", 10_000);
    let mut other = binding(e, "sip:e@198.51.100.9", 10_000);
    other.q = None;
    other.path = vec![];
    other.instance_id = None;
    other.reg_id = None;
    other.user_agent = None;
    s.apply_bindings(&[BindingOp::Upsert(a.clone()), BindingOp::Upsert(b.clone()), BindingOp::Upsert(other.clone())])
        .await
        .unwrap();
    assert_eq!(s.bindings_for_device(d).await.unwrap(), vec![a.clone(), b.clone()]);
    assert_eq!(s.list_bindings().await.unwrap(), vec![a.clone(), b.clone(), other.clone()]);

    // Upsert replaces the row with the same (device_id, contact), every field.
    let a2 = Binding {
        aor: "sip:alias@sip.example.net".to_owned(),
        q: Some(1000),
        expires_at: 20_000,
        call_id: "new-call".to_owned(),
        cseq: 7,
        source: "198.51.100.70:40000".to_owned(),
        transport: "tcp".to_owned(),
        local: "203.0.113.1:5061".to_owned(),
        path: vec![],
        instance_id: None,
        reg_id: None,
        user_agent: None,
        node: "node-b".to_owned(),
        updated_at: 2_000,
        ..a.clone()
    };
    s.apply_bindings(&[
        BindingOp::Upsert(a2.clone()),
        BindingOp::Remove { device_id: d, contact: b.contact.clone(), node: "node-a".into() },
    ])
    .await
    .unwrap();
    assert_eq!(s.bindings_for_device(d).await.unwrap(), vec![a2]);

    // Ops apply in order: what is inserted before RemoveAll goes, what comes after stays.
    let c = binding(d, "sip:c@198.51.100.7", 30_000);
    s.apply_bindings(&[
        BindingOp::Upsert(b.clone()),
        BindingOp::RemoveAll { device_id: d },
        BindingOp::Upsert(c.clone()),
        BindingOp::Remove { device_id: d, contact: "sip:never-bound@x".to_owned(), node: "node-a".into() },
    ])
    .await
    .unwrap();
    assert_eq!(s.bindings_for_device(d).await.unwrap(), vec![c.clone()]);
    // And the reverse: inserted then removed in the same batch.
    s.apply_bindings(&[
        BindingOp::Upsert(a.clone()),
        BindingOp::Remove { device_id: d, contact: a.contact.clone(), node: "node-a".into() },
    ])
    .await
    .unwrap();
    assert_eq!(s.bindings_for_device(d).await.unwrap(), vec![c]);
    // Other devices are untouched.
    assert_eq!(s.bindings_for_device(e).await.unwrap(), vec![other]);
    s.apply_bindings(&[]).await.unwrap();
}

async fn apply_bindings_skips_deleted_device(ctx: Ctx) {
    let s = &*ctx.store;
    let svc = service_fixture(s, "one").await;
    let d = s.create_device(&new_device(svc, "desk", "alice")).await.unwrap().id;
    let gone = s.create_device(&new_device(svc, "old", "old")).await.unwrap().id;
    s.delete_device(gone).await.unwrap();
    let kept = binding(d, "sip:a@198.51.100.7", 10_000);
    s.apply_bindings(&[
        BindingOp::Upsert(binding(gone, "sip:old@198.51.100.8", 10_000)),
        BindingOp::Upsert(kept.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(s.list_bindings().await.unwrap(), vec![kept]);
}

/// A batch bigger than one statement's chunk, with the same binding upserted twice (last wins), a removal in the
/// middle and a deleted device: the result equals applying the operations one by one.
async fn apply_bindings_large_batch_with_repeats(ctx: Ctx) {
    let s = &*ctx.store;
    let svc = service_fixture(s, "big").await;
    let d = s.create_device(&new_device(svc, "trunk", "trunk")).await.unwrap().id;
    let gone = s.create_device(&new_device(svc, "gone", "gone")).await.unwrap().id;
    s.delete_device(gone).await.unwrap();
    let mut ops: Vec<BindingOp> =
        (0..450).map(|i| BindingOp::Upsert(binding(d, &format!("sip:{i}@198.51.100.7"), 10_000))).collect();
    ops.push(BindingOp::Upsert(binding(gone, "sip:x@198.51.100.9", 10_000)));
    ops.push(BindingOp::Upsert(binding(d, "sip:7@198.51.100.7", 99_000)));
    ops.push(BindingOp::Remove { device_id: d, contact: "sip:8@198.51.100.7".into(), node: "node-a".into() });
    ops.push(BindingOp::Upsert(binding(d, "sip:8@198.51.100.7", 55_000)));
    ops.push(BindingOp::Remove { device_id: d, contact: "sip:9@198.51.100.7".into(), node: "node-a".into() });
    s.apply_bindings(&ops).await.unwrap();
    let stored = s.bindings_for_device(d).await.unwrap();
    assert_eq!(stored.len(), 449);
    let at = |c: &str| stored.iter().find(|b| b.contact == c).map(|b| b.expires_at);
    assert_eq!(at("sip:7@198.51.100.7"), Some(99_000));
    assert_eq!(at("sip:8@198.51.100.7"), Some(55_000));
    assert_eq!(at("sip:9@198.51.100.7"), None);
    assert_eq!(at("sip:449@198.51.100.7"), Some(10_000));
    assert_eq!(s.list_bindings().await.unwrap().len(), 449, "nothing stored for the deleted device");
    assert_eq!(
        stored.iter().find(|b| b.contact == "sip:0@198.51.100.7"),
        Some(&binding(d, "sip:0@198.51.100.7", 10_000))
    );
}

async fn purge_expired_bindings(ctx: Ctx) {
    let s = &*ctx.store;
    let svc = service_fixture(s, "one").await;
    let d = s.create_device(&new_device(svc, "desk", "alice")).await.unwrap().id;
    let ops: Vec<_> = [100, 200, 300]
        .into_iter()
        .map(|t| BindingOp::Upsert(binding(d, &format!("sip:{t}@198.51.100.7"), t)))
        .collect();
    s.apply_bindings(&ops).await.unwrap();

    assert_eq!(s.purge_expired_bindings(99).await.unwrap(), 0);
    // `expires_at <= now` is expired.
    assert_eq!(s.purge_expired_bindings(200).await.unwrap(), 2);
    let left = s.list_bindings().await.unwrap();
    assert_eq!(left.iter().map(|b| b.expires_at).collect::<Vec<_>>(), [300]);
    assert_eq!(s.purge_expired_bindings(200).await.unwrap(), 0);
}

async fn device_states_upsert(ctx: Ctx) {
    let s = &*ctx.store;
    let svc = service_fixture(s, "one").await;
    let d = s.create_device(&new_device(svc, "desk", "alice")).await.unwrap().id;
    let e = s.create_device(&new_device(svc, "phone", "bob")).await.unwrap().id;
    assert!(s.device_states().await.unwrap().is_empty());

    s.set_device_state(&DeviceState { device_id: e, online: true, since: 10 }).await.unwrap();
    s.set_device_state(&DeviceState { device_id: d, online: true, since: 20 }).await.unwrap();
    s.set_device_state(&DeviceState { device_id: d, online: false, since: 30 }).await.unwrap();
    assert_eq!(
        s.device_states().await.unwrap(),
        vec![
            DeviceState { device_id: d, online: false, since: 30 },
            DeviceState { device_id: e, online: true, since: 10 },
        ]
    );
    // By service and by device: another service's device stays out.
    let other = service_fixture(s, "two").await;
    let f = s.create_device(&new_device(other, "hall", "carol")).await.unwrap().id;
    s.set_device_state(&DeviceState { device_id: f, online: true, since: 40 }).await.unwrap();
    let mine: Vec<i64> = s.service_device_states(svc).await.unwrap().iter().map(|st| st.device_id).collect();
    assert_eq!(mine, vec![d, e]);
    assert_eq!(
        s.service_device_states(other).await.unwrap(),
        vec![DeviceState { device_id: f, online: true, since: 40 }]
    );
    assert_eq!(s.device_state(d).await.unwrap(), Some(DeviceState { device_id: d, online: false, since: 30 }));
    assert_eq!(s.device_state(-1).await.unwrap(), None);
}

async fn device_digest_create_update_clear(ctx: Ctx) {
    let s = &*ctx.store;
    let svc = service_fixture(s, "one").await;
    let office = vec!["203.0.113.0/24".parse().unwrap(), "2001:db8::/32".parse().unwrap()];
    let ata = s
        .create_device(&NewDevice {
            digest: DigestMode::Md5,
            md5_from: office.clone(),
            ..new_device(svc, "ata", "ata")
        })
        .await
        .unwrap();
    assert_eq!((ata.digest, ata.md5_from.clone()), (DigestMode::Md5, office.clone()));
    let phone = s.create_device(&new_device(svc, "phone", "phone")).await.unwrap();
    assert_eq!((phone.digest, phone.md5_from.len()), (DigestMode::Modern, 0));
    assert_eq!(s.device(ata.id).await.unwrap(), Some(ata.clone()));
    // Unrelated edits keep the setting; clearing the networks keeps the mode.
    let renamed = s.update_device(ata.id, &DeviceUpdate { name: Some("hall".into()), ..Default::default() }).await;
    assert_eq!(renamed.unwrap().md5_from, office);
    let cleared =
        s.update_device(ata.id, &DeviceUpdate { md5_from: Some(Vec::new()), ..Default::default() }).await.unwrap();
    assert_eq!((cleared.digest, cleared.md5_from.len()), (DigestMode::Md5, 0));
    let back = s
        .update_device(ata.id, &DeviceUpdate { digest: Some(DigestMode::Modern), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(back.digest, DigestMode::Modern);
    assert_eq!(s.device(ata.id).await.unwrap(), Some(back));
    // TLS only: stored on creation and by an update, kept by unrelated edits, and lifted again.
    let secure = s.create_device(&NewDevice { require_tls: true, ..new_device(svc, "secure", "secure") }).await;
    let secure = secure.unwrap();
    assert!(secure.require_tls);
    let rename = DeviceUpdate { name: Some("vault".into()), ..Default::default() };
    assert!(s.update_device(secure.id, &rename).await.unwrap().require_tls);
    let lift = DeviceUpdate { require_tls: Some(false), ..Default::default() };
    assert!(!s.update_device(secure.id, &lift).await.unwrap().require_tls);
    assert!(!s.device(phone.id).await.unwrap().unwrap().require_tls);
}

async fn device_auth_upsert_skip_deleted_and_cascade(ctx: Ctx) {
    let s = &*ctx.store;
    let svc = service_fixture(s, "one").await;
    let a = s.create_device(&new_device(svc, "desk", "alice")).await.unwrap().id;
    let b = s.create_device(&new_device(svc, "phone", "bob")).await.unwrap().id;
    assert!(s.device_auths().await.unwrap().is_empty());
    let auth = |device_id, algorithm: &str, since| DeviceAuth {
        device_id,
        algorithm: algorithm.into(),
        user_agent: Some("Grandstream HT801 1.0.5.11".into()),
        source: "198.51.100.7".into(),
        since,
    };
    s.set_device_auths(&[auth(a, "SHA-256", 10), auth(b, "MD5", 20), auth(a, "MD5", 30)]).await.unwrap();
    assert_eq!(s.device_auths().await.unwrap(), vec![auth(a, "MD5", 30), auth(b, "MD5", 20)]);
    assert_eq!(s.device_auth(b).await.unwrap(), Some(auth(b, "MD5", 20)));
    // A device deleted while its record was queued: skipped, the rest written.
    s.delete_device(b).await.unwrap();
    s.set_device_auths(&[auth(b, "SHA-256", 40), auth(a, "SHA-256", 50)]).await.unwrap();
    assert_eq!(s.device_auths().await.unwrap(), vec![auth(a, "SHA-256", 50)]);
    s.delete_device(a).await.unwrap();
    assert!(s.device_auths().await.unwrap().is_empty(), "cascade");
    assert_eq!(s.device_auth(a).await.unwrap(), None);
}

// ---------------------------------------------------------------------------------------------------------------
// change log, concurrency, durability

async fn change_log_grows_and_pages(ctx: Ctx) {
    let s = &*ctx.store;
    assert_eq!(s.last_change().await.unwrap(), 0);
    assert!(s.changes_since(0, 100).await.unwrap().is_empty());

    let customer = s.create_customer("acme").await.unwrap();
    let service = s
        .create_service(&NewService {
            customer_id: customer.id,
            name: "hq".into(),
            mode: ServiceMode::Direct,
            region: None,
            require_tls: false,
        })
        .await
        .unwrap();
    let d = s.create_device(&new_device(service.id, "desk", "alice")).await.unwrap();
    let more = s.create_devices(&[new_device(service.id, "b", "b"), new_device(service.id, "c", "c")]).await.unwrap();
    s.update_device(d.id, &DeviceUpdate { max_contacts: Some(2), ..Default::default() }).await.unwrap();
    s.delete_device(more[0].id).await.unwrap();
    // Bindings and liveness are not directory changes.
    s.apply_bindings(&[BindingOp::Upsert(binding(d.id, "sip:a@198.51.100.7", 10_000))]).await.unwrap();
    s.set_device_state(&DeviceState { device_id: d.id, online: true, since: 1 }).await.unwrap();

    let all = s.changes_since(0, 100).await.unwrap();
    let summary: Vec<_> = all.iter().map(|c| (c.entity, c.entity_id)).collect();
    assert_eq!(
        summary,
        [
            (Entity::Customer, customer.id),
            (Entity::Service, service.id),
            (Entity::Device, d.id),
            (Entity::Device, more[0].id),
            (Entity::Device, more[1].id),
            (Entity::Device, d.id),
            (Entity::Device, more[0].id),
        ]
    );
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "seqs increase: {all:?}");
    assert_eq!(s.last_change().await.unwrap(), all.last().unwrap().seq);

    // Paging: pages of 3 from a cursor reassemble the whole log.
    let mut cursor = 0;
    let mut paged = Vec::new();
    loop {
        let page = s.changes_since(cursor, 3).await.unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        paged.extend(page);
    }
    assert_eq!(paged, all);
    assert_eq!(s.changes_since(all[4].seq, 100).await.unwrap(), all[5..]);
    assert!(s.changes_since(s.last_change().await.unwrap(), 100).await.unwrap().is_empty());
    assert!(s.changes_since(0, 0).await.unwrap().is_empty());
    assert!(s.changes_since(0, -1).await.unwrap().is_empty());
}

/// Many tasks writing at once: none fails with a lock error, and the change log has one entry per write.
async fn concurrent_writers(ctx: Ctx) {
    let svc = service_fixture(&*ctx.store, "one").await;
    let before = ctx.store.last_change().await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = ctx.store.clone();
            tokio::spawn(async move {
                let d = store.create_device(&new_device(svc, &format!("d{i}"), &format!("auth{i}"))).await.unwrap();
                store.apply_bindings(&[BindingOp::Upsert(binding(d.id, "sip:x@198.51.100.7", 10_000))]).await.unwrap();
                store.update_device(d.id, &DeviceUpdate { max_contacts: Some(3), ..Default::default() }).await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let s = &*ctx.store;
    assert_eq!(s.list_devices(Some(svc)).await.unwrap().len(), 16);
    assert_eq!(s.list_bindings().await.unwrap().len(), 16);
    assert_eq!(s.changes_since(before, 1000).await.unwrap().len(), 32);
}

/// Closing the store and opening the same URL again (a daemon restart) finds everything; migrations re-run as
/// a no-op.
async fn reopen_keeps_data(ctx: Ctx) {
    let svc = service_fixture(&*ctx.store, "one").await;
    let d = ctx.store.create_device(&new_device(svc, "desk", "alice")).await.unwrap();
    let b = binding(d.id, "sip:a@198.51.100.7", 10_000);
    ctx.store.apply_bindings(&[BindingOp::Upsert(b.clone())]).await.unwrap();
    let state = DeviceState { device_id: d.id, online: true, since: 42 };
    ctx.store.set_device_state(&state).await.unwrap();
    let customers = ctx.store.list_customers().await.unwrap();
    let services = ctx.store.list_services(None).await.unwrap();
    let log = ctx.store.changes_since(0, 100).await.unwrap();

    let ctx = ctx.reopen().await;

    let s = &*ctx.store;
    assert_eq!(s.list_customers().await.unwrap(), customers);
    assert_eq!(s.list_services(None).await.unwrap(), services);
    assert_eq!(s.list_devices(None).await.unwrap(), vec![d.clone()]);
    assert_eq!(s.list_bindings().await.unwrap(), vec![b]);
    assert_eq!(s.device_states().await.unwrap(), vec![state]);
    assert_eq!(s.changes_since(0, 100).await.unwrap(), log);
    // Ids and seqs carry on rather than restarting.
    let d2 = s.create_device(&new_device(svc, "phone", "bob")).await.unwrap();
    assert!(d2.id > d.id);
    assert!(s.last_change().await.unwrap() > log.last().unwrap().seq);
}

// ---------------------------------------------------------------------------------------------------------------
// numbers and gateways

async fn numbers_create_list_lookup(ctx: Ctx) {
    let s = &*ctx.store;
    let one = service_fixture(s, "one").await;
    let two = service_fixture(s, "two").await;
    let desk = s.create_device(&new_device(one, "desk", "alice")).await.unwrap();
    assert!(s.list_numbers(None).await.unwrap().is_empty());

    let full = NewNumber {
        device_id: Some(desk.id),
        divert_when: DivertWhen::NoAnswer,
        divert_to: Some("voicemail".to_owned()),
        no_answer_secs: 25,
        offline_alert: Some("noc@example.net".to_owned()),
        ..new_number(one, "+61298765432")
    };
    let a = s.create_number(&full).await.unwrap();
    assert_eq!(
        (a.service_id, a.number.as_str(), a.device_id, a.divert_when, a.divert_to.as_deref(), a.no_answer_secs),
        (one, "+61298765432", Some(desk.id), DivertWhen::NoAnswer, Some("voicemail"), 25)
    );
    assert_eq!(a.offline_alert.as_deref(), Some("noc@example.net"));
    assert!(a.created_at > 1_600_000_000_000 && a.updated_at == a.created_at, "{a:?}");
    // Listed in number order, not creation order.
    let b = s.create_number(&new_number(one, "+61212340000")).await.unwrap();
    let c = s.create_number(&new_number(two, "+61755550000")).await.unwrap();
    assert_eq!((b.device_id, b.divert_when, b.divert_to.clone()), (None, DivertWhen::Never, None));

    assert_eq!(s.list_numbers(None).await.unwrap(), vec![b.clone(), a.clone(), c.clone()]);
    assert_eq!(s.list_numbers(Some(one)).await.unwrap(), vec![b.clone(), a.clone()]);
    assert_eq!(s.list_numbers(Some(two)).await.unwrap(), vec![c]);
    assert_eq!(s.number(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(s.number_by_e164("+61298765432").await.unwrap(), Some(a));
    assert_eq!(s.number_by_e164("+61299999999").await.unwrap(), None);
    assert_eq!(s.number(-1).await.unwrap(), None);
}

async fn number_conflict_and_missing_parents(ctx: Ctx) {
    let s = &*ctx.store;
    let one = service_fixture(s, "one").await;
    let two = service_fixture(s, "two").await;
    s.create_number(&new_number(one, "+61298765432")).await.unwrap();
    // Unique across the platform, not just within the service.
    assert_conflict(s.create_number(&new_number(two, "+61298765432")).await, "number", "number", "+61298765432");
    assert_not_found(s.create_number(&new_number(9999, "+61211111111")).await, "service", "9999");
    let pinned = NewNumber { device_id: Some(8888), ..new_number(one, "+61211111111") };
    assert_not_found(s.create_number(&pinned).await, "device", "8888");
    assert_eq!(s.list_numbers(None).await.unwrap().len(), 1);
}

async fn number_device_of_another_service_not_found(ctx: Ctx) {
    let s = &*ctx.store;
    let one = service_fixture(s, "one").await;
    let two = service_fixture(s, "two").await;
    let theirs = s.create_device(&new_device(two, "desk", "bob")).await.unwrap().id;
    let pinned = NewNumber { device_id: Some(theirs), ..new_number(one, "+61298765432") };
    assert_not_found(s.create_number(&pinned).await, "device", &theirs.to_string());
    let n = s.create_number(&new_number(one, "+61298765432")).await.unwrap();
    let update = NumberUpdate { device_id: Some(Some(theirs)), ..Default::default() };
    assert_not_found(s.update_number(n.id, &update).await, "device", &theirs.to_string());
    assert_eq!(s.number(n.id).await.unwrap(), Some(n));
}

async fn update_number_partial(ctx: Ctx) {
    let s = &*ctx.store;
    let one = service_fixture(s, "one").await;
    let desk = s.create_device(&new_device(one, "desk", "alice")).await.unwrap().id;
    let n = s.create_number(&new_number(one, "+61298765432")).await.unwrap();

    let update = NumberUpdate {
        device_id: Some(Some(desk)),
        divert_when: Some(DivertWhen::All),
        divert_to: Some(Some("+61400000000".to_owned())),
        ..Default::default()
    };
    let u = s.update_number(n.id, &update).await.unwrap();
    assert_eq!(
        (u.device_id, u.divert_when, u.divert_to.as_deref()),
        (Some(desk), DivertWhen::All, Some("+61400000000"))
    );
    assert_eq!((u.no_answer_secs, u.offline_alert.clone(), u.created_at), (60, None, n.created_at));
    assert!(u.updated_at >= n.updated_at);

    let update = NumberUpdate {
        no_answer_secs: Some(30),
        offline_alert: Some(Some("ops@example.net".to_owned())),
        ..Default::default()
    };
    let u2 = s.update_number(n.id, &update).await.unwrap();
    assert_eq!((u2.device_id, u2.divert_when, u2.divert_to.clone()), (u.device_id, u.divert_when, u.divert_to));
    assert_eq!((u2.no_answer_secs, u2.offline_alert.as_deref()), (30, Some("ops@example.net")));

    let clear = NumberUpdate {
        device_id: Some(None),
        divert_when: Some(DivertWhen::Offline),
        divert_to: Some(Some("voicemail".to_owned())),
        offline_alert: Some(None),
        ..Default::default()
    };
    let u3 = s.update_number(n.id, &clear).await.unwrap();
    assert_eq!((u3.device_id, u3.divert_when, u3.offline_alert.clone()), (None, DivertWhen::Offline, None));
    assert_eq!(s.number_by_e164("+61298765432").await.unwrap(), Some(u3.clone()));
    // An empty update changes nothing but the timestamp.
    let same = s.update_number(n.id, &NumberUpdate::default()).await.unwrap();
    assert_eq!((same.divert_to, same.no_answer_secs), (u3.divert_to, u3.no_answer_secs));
}

async fn missing_number_update_delete_not_found(ctx: Ctx) {
    let s = &*ctx.store;
    let one = service_fixture(s, "one").await;
    let update = NumberUpdate { no_answer_secs: Some(10), ..Default::default() };
    assert_not_found(s.update_number(4242, &update).await, "number", "4242");
    assert_not_found(s.delete_number(4242).await, "number", "4242");
    let n = s.create_number(&new_number(one, "+61298765432")).await.unwrap();
    s.delete_number(n.id).await.unwrap();
    assert_eq!(s.number(n.id).await.unwrap(), None);
    assert_not_found(s.delete_number(n.id).await, "number", &n.id.to_string());
    // The number is free again, with a new id.
    let again = s.create_number(&new_number(one, "+61298765432")).await.unwrap();
    assert!(again.id > n.id);
}

async fn delete_device_unpins_its_numbers(ctx: Ctx) {
    let s = &*ctx.store;
    let one = service_fixture(s, "one").await;
    let desk = s.create_device(&new_device(one, "desk", "alice")).await.unwrap().id;
    let other = s.create_device(&new_device(one, "phone", "bob")).await.unwrap().id;
    let a = s.create_number(&NewNumber { device_id: Some(desk), ..new_number(one, "+61298765432") }).await.unwrap();
    let b = s.create_number(&NewNumber { device_id: Some(other), ..new_number(one, "+61298765433") }).await.unwrap();
    let before = s.last_change().await.unwrap();
    s.delete_device(desk).await.unwrap();
    let a2 = s.number(a.id).await.unwrap().expect("the number stays with its service");
    assert_eq!((a2.device_id, a2.service_id), (None, one));
    assert_eq!(s.number(b.id).await.unwrap(), Some(b));
    let summary: Vec<_> = s.changes_since(before, 100).await.unwrap().iter().map(|c| (c.entity, c.entity_id)).collect();
    assert_eq!(summary, [(Entity::Device, desk), (Entity::Number, a.id)]);
}

async fn gateways_create_list_lookup_delete(ctx: Ctx) {
    let s = &*ctx.store;
    assert!(s.list_gateways().await.unwrap().is_empty());
    let backup = s.create_gateway(&new_gateway("backup", 20)).await.unwrap();
    let primary =
        s.create_gateway(&NewGateway { transport: "tcp".to_owned(), ..new_gateway("primary", 10) }).await.unwrap();
    let spare = s.create_gateway(&NewGateway { enabled: false, ..new_gateway("spare", 20) }).await.unwrap();
    assert_eq!(
        (
            primary.name.as_str(),
            primary.address.as_str(),
            primary.transport.as_str(),
            primary.priority,
            primary.enabled
        ),
        ("primary", "primary.carrier.example:5060", "tcp", 10, true)
    );
    assert!(!spare.enabled);
    assert!(primary.created_at > 1_600_000_000_000);
    // Priority first, then id.
    assert_eq!(s.list_gateways().await.unwrap(), vec![primary.clone(), backup.clone(), spare.clone()]);
    assert_eq!(s.gateway_by_name("primary").await.unwrap(), Some(primary.clone()));
    assert_eq!(s.gateway_by_name("nope").await.unwrap(), None);

    assert_conflict(s.create_gateway(&new_gateway("primary", 1)).await, "gateway", "name", "primary");
    s.delete_gateway(backup.id).await.unwrap();
    assert_not_found(s.delete_gateway(backup.id).await, "gateway", &backup.id.to_string());
    assert_eq!(s.list_gateways().await.unwrap(), vec![primary, spare]);
}

async fn change_log_covers_numbers_and_gateways(ctx: Ctx) {
    let s = &*ctx.store;
    let one = service_fixture(s, "one").await;
    let before = s.last_change().await.unwrap();
    let n = s.create_number(&new_number(one, "+61298765432")).await.unwrap();
    s.update_number(n.id, &NumberUpdate { no_answer_secs: Some(20), ..Default::default() }).await.unwrap();
    let g = s.create_gateway(&new_gateway("primary", 10)).await.unwrap();
    s.delete_number(n.id).await.unwrap();
    s.delete_gateway(g.id).await.unwrap();
    // Failed writes log nothing.
    s.create_number(&new_number(9999, "+61211111111")).await.unwrap_err();
    let summary: Vec<_> = s.changes_since(before, 100).await.unwrap().iter().map(|c| (c.entity, c.entity_id)).collect();
    assert_eq!(
        summary,
        [
            (Entity::Number, n.id),
            (Entity::Number, n.id),
            (Entity::Gateway, g.id),
            (Entity::Number, n.id),
            (Entity::Gateway, g.id),
        ]
    );
}

// ---------------------------------------------------------------------------------------------------------------
// call detail records

async fn cdrs_insert_list_filter_order(ctx: Ctx) {
    let s = &*ctx.store;
    let one = service_fixture(s, "one").await;
    let two = service_fixture(s, "two").await;
    let desk = s.create_device(&new_device(one, "desk", "alice")).await.unwrap().id;
    assert!(s.list_cdrs(&cdr_filter(100)).await.unwrap().is_empty());
    s.insert_cdrs(&[]).await.unwrap();
    let before = s.last_change().await.unwrap();

    // Every optional field set, so the round trip covers them all.
    let full = NewCdr {
        call_id: "c-full".to_owned(),
        direction: CdrDirection::Inbound,
        service_id: Some(one),
        device_id: Some(desk),
        caller: "+442079460000".to_owned(),
        callee: "+61298765432".to_owned(),
        call_type: Some("international".to_owned()),
        started_at: 2_000,
        answered_at: Some(2_500),
        ended_at: Some(9_000),
        disposition: CdrDisposition::NoAnswer,
        sip_status: Some(487),
        divert_reason: Some(DivertReason::NoAnswer),
        diverted_to: Some("voicemail".to_owned()),
        gateway: Some("primary".to_owned()),
        node: "node-b".to_owned(),
        end_reason: Some("media_timeout".to_owned()),
    };
    let on_net = NewCdr {
        direction: CdrDirection::OnNet,
        disposition: CdrDisposition::Busy,
        divert_reason: Some(DivertReason::Busy),
        ..new_cdr("c-on-net", Some(one), 1_000)
    };
    let batch = vec![
        on_net.clone(),
        full.clone(),
        new_cdr("c-two", Some(two), 3_000),
        new_cdr("c-none", None, 4_000),
        // Same start as c-none, inserted later: the higher id comes first.
        NewCdr { disposition: CdrDisposition::Cancelled, ..new_cdr("c-tie", Some(one), 4_000) },
    ];
    s.insert_cdrs(&batch).await.unwrap();

    let all = s.list_cdrs(&cdr_filter(100)).await.unwrap();
    assert_eq!(call_ids(&all), ["c-tie", "c-none", "c-two", "c-full", "c-on-net"]);
    assert_eq!(unstored(&all[3]), full);
    assert_eq!(unstored(&all[4]), on_net);
    let ids: BTreeSet<i64> = all.iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), 5);

    let of_one = s.list_cdrs(&CdrFilter { service_id: Some(one), ..cdr_filter(100) }).await.unwrap();
    assert_eq!(call_ids(&of_one), ["c-tie", "c-full", "c-on-net"]);
    // `since` is inclusive, `until` exclusive.
    let window = s.list_cdrs(&CdrFilter { since: Some(2_000), until: Some(4_000), ..cdr_filter(100) }).await.unwrap();
    assert_eq!(call_ids(&window), ["c-two", "c-full"]);
    let both = CdrFilter { service_id: Some(one), since: Some(1_500), until: None, limit: 100 };
    assert_eq!(call_ids(&s.list_cdrs(&both).await.unwrap()), ["c-tie", "c-full"]);
    assert!(s.list_cdrs(&CdrFilter { service_id: Some(9999), ..cdr_filter(100) }).await.unwrap().is_empty());

    assert_eq!(call_ids(&s.list_cdrs(&cdr_filter(2)).await.unwrap()), ["c-tie", "c-none"]);
    assert!(s.list_cdrs(&cdr_filter(0)).await.unwrap().is_empty());
    assert!(s.list_cdrs(&cdr_filter(-1)).await.unwrap().is_empty());
    assert_eq!(s.list_cdrs(&cdr_filter(i64::MAX)).await.unwrap().len(), 5);

    // CDRs are not directory changes.
    assert_eq!(s.last_change().await.unwrap(), before);
}

async fn cdrs_keep_history_of_deleted_devices(ctx: Ctx) {
    let s = &*ctx.store;
    let one = service_fixture(s, "one").await;
    let desk = s.create_device(&new_device(one, "desk", "alice")).await.unwrap().id;
    let phone = s.create_device(&new_device(one, "phone", "bob")).await.unwrap().id;
    s.insert_cdrs(&[
        NewCdr { device_id: Some(desk), ..new_cdr("c-desk", Some(one), 1_000) },
        NewCdr { device_id: Some(phone), ..new_cdr("c-phone", Some(one), 2_000) },
    ])
    .await
    .unwrap();
    s.delete_device(desk).await.unwrap();
    let after: Vec<_> =
        s.list_cdrs(&cdr_filter(100)).await.unwrap().iter().map(|c| (c.call_id.clone(), c.device_id)).collect();
    assert_eq!(after, [("c-phone".to_owned(), Some(phone)), ("c-desk".to_owned(), None)]);

    // A CDR of a device deleted before the batch was written is stored too, without the device, and does not
    // take the rest of the batch down with it.
    s.insert_cdrs(&[
        NewCdr { device_id: Some(desk), ..new_cdr("c-late", Some(one), 3_000) },
        NewCdr { device_id: Some(phone), ..new_cdr("c-ok", Some(one), 4_000) },
    ])
    .await
    .unwrap();
    let newest = s.list_cdrs(&CdrFilter { since: Some(3_000), ..cdr_filter(100) }).await.unwrap();
    let newest: Vec<_> = newest.iter().map(|c| (c.call_id.as_str(), c.device_id)).collect();
    assert_eq!(newest, [("c-ok", Some(phone)), ("c-late", None)]);
}

async fn cdrs_missing_service_fails_whole_batch(ctx: Ctx) {
    let s = &*ctx.store;
    let one = service_fixture(s, "one").await;
    let result = s.insert_cdrs(&[new_cdr("c-ok", Some(one), 1_000), new_cdr("c-bad", Some(9999), 2_000)]).await;
    assert_not_found(result, "service", &format!("{one},9999"));
    assert!(s.list_cdrs(&cdr_filter(100)).await.unwrap().is_empty(), "all or nothing");
}

/// A value the enums do not know (schema drift, a hand edit) is a decode error, not a panic.
async fn cdrs_corrupt_enum_text_is_an_error(ctx: Ctx) {
    let s = &*ctx.store;
    s.insert_cdrs(&[new_cdr("c-1", None, 1_000)]).await.unwrap();
    let url = ctx.url();
    if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::raw_sql("PRAGMA ignore_check_constraints = ON; UPDATE cdrs SET direction = 'sideways'")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql("ALTER TABLE cdrs DROP CONSTRAINT cdrs_direction_check; UPDATE cdrs SET direction = 'sideways'")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    match s.list_cdrs(&cdr_filter(10)).await {
        Err(StoreError::Database(e)) => assert!(e.to_string().contains("sideways"), "{e}"),
        other => panic!("expected a decode error, got {other:?}"),
    }
}

async fn cdrs_large_batch(ctx: Ctx) {
    let s = &*ctx.store;
    let one = service_fixture(s, "one").await;
    let desk = s.create_device(&new_device(one, "desk", "alice")).await.unwrap().id;
    let batch: Vec<NewCdr> = (0..1_000)
        .map(|i| NewCdr {
            device_id: (i % 2 == 0).then_some(desk),
            sip_status: Some(200),
            ..new_cdr(&format!("c-{i:04}"), Some(one), 10_000 + i)
        })
        .collect();
    s.insert_cdrs(&batch).await.unwrap();
    let all = s.list_cdrs(&cdr_filter(10_000)).await.unwrap();
    assert_eq!(all.len(), 1_000);
    let mut expected: Vec<NewCdr> = batch;
    expected.reverse();
    assert_eq!(all.iter().map(unstored).collect::<Vec<_>>(), expected);
    let page = s.list_cdrs(&CdrFilter { since: Some(10_100), until: Some(10_200), ..cdr_filter(30) }).await.unwrap();
    assert_eq!((page.len(), page[0].call_id.as_str(), page[29].call_id.as_str()), (30, "c-0199", "c-0170"));
}

// ---------------------------------------------------------------------------------------------------------------
// trusted addresses

async fn device_trusted_address_create_update_clear(ctx: Ctx) {
    let s = &*ctx.store;
    let svc = service_fixture(s, "one").await;
    let pbx = s
        .create_device(&NewDevice {
            trusted_address: Some("192.0.2.10:5060".to_owned()),
            ..new_device(svc, "pbx", "pbx")
        })
        .await
        .unwrap();
    let phone = s.create_device(&new_device(svc, "phone", "phone")).await.unwrap();
    assert_eq!(pbx.trusted_address.as_deref(), Some("192.0.2.10:5060"));
    assert_eq!(phone.trusted_address, None);
    assert_eq!(s.device(pbx.id).await.unwrap(), Some(pbx.clone()));
    assert_eq!(s.device_by_auth_id("pbx").await.unwrap(), Some(pbx.clone()));
    assert_eq!(s.list_devices(Some(svc)).await.unwrap(), vec![pbx.clone(), phone.clone()]);

    // Other fields leave it alone.
    let renamed =
        s.update_device(pbx.id, &DeviceUpdate { name: Some("trunk".to_owned()), ..Default::default() }).await.unwrap();
    assert_eq!(renamed.trusted_address.as_deref(), Some("192.0.2.10:5060"));

    let before = s.last_change().await.unwrap();
    let moved = s
        .update_device(
            pbx.id,
            &DeviceUpdate { trusted_address: Some(Some("[2001:db8::10]:5070".to_owned())), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(moved.trusted_address.as_deref(), Some("[2001:db8::10]:5070"));
    assert_eq!(s.device(pbx.id).await.unwrap(), Some(moved.clone()));
    assert_eq!(s.changes_since(before, 10).await.unwrap().len(), 1, "a directory change like any other");

    let cleared =
        s.update_device(pbx.id, &DeviceUpdate { trusted_address: Some(None), ..Default::default() }).await.unwrap();
    assert_eq!(cleared.trusted_address, None);
    assert_eq!(cleared.name, "trunk");
    assert_eq!(s.device(pbx.id).await.unwrap(), Some(cleared));

    // Setting one on a device that had none.
    let set = s
        .update_device(
            phone.id,
            &DeviceUpdate { trusted_address: Some(Some("192.0.2.11:5060".to_owned())), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(s.device(phone.id).await.unwrap().and_then(|d| d.trusted_address), Some("192.0.2.11:5060".to_owned()));
    assert_eq!(set.trusted_address.as_deref(), Some("192.0.2.11:5060"));
}

/// A source address names at most one device; many devices may have none.
async fn device_trusted_address_conflict(ctx: Ctx) {
    let s = &*ctx.store;
    let one = service_fixture(s, "one").await;
    let two = service_fixture(s, "two").await;
    let at = |addr: &str, d: NewDevice| NewDevice { trusted_address: Some(addr.to_owned()), ..d };
    s.create_device(&at("192.0.2.10:5060", new_device(one, "pbx", "pbx-1"))).await.unwrap();
    s.create_device(&new_device(one, "a", "a")).await.unwrap();
    s.create_device(&new_device(one, "b", "b")).await.unwrap();
    let other = s.create_device(&at("192.0.2.10:5062", new_device(two, "pbx", "pbx-2"))).await.unwrap();

    let taken = at("192.0.2.10:5060", new_device(two, "pbx2", "pbx-3"));
    assert_conflict(s.create_device(&taken).await, "device", "trusted_address", "192.0.2.10:5060");
    let update = DeviceUpdate { trusted_address: Some(Some("192.0.2.10:5060".to_owned())), ..Default::default() };
    assert_conflict(s.update_device(other.id, &update).await, "device", "trusted_address", "192.0.2.10:5060");
    assert_eq!(s.device(other.id).await.unwrap(), Some(other));
}

// ---------------------------------------------------------------------------------------------------------------
// calls in progress

async fn active_calls_round_trip_all_fields(ctx: Ctx) {
    let s = &*ctx.store;
    assert!(s.list_active_calls().await.unwrap().is_empty());
    s.apply_active_calls(&[]).await.unwrap();
    let before = s.last_change().await.unwrap();
    let full = ActiveCall {
        call_id: "c-full".to_owned(),
        node: "node-b".to_owned(),
        direction: CdrDirection::OnNet,
        // No foreign keys: ids of things that do not exist (any more) are stored as given.
        service_id: Some(4242),
        device_id: Some(77),
        caller: "+61298765432".to_owned(),
        callee: "1234".to_owned(),
        state: "answered".to_owned(),
        started_at: 1_000,
        answered_at: Some(4_500),
    };
    let bare = ActiveCall { direction: CdrDirection::Outbound, ..active_call("c-bare", "node-a", 2_000) };
    let inbound = active_call("c-in", "node-a", 3_000);
    s.apply_active_calls(&[
        ActiveCallOp::Upsert(full.clone()),
        ActiveCallOp::Upsert(bare.clone()),
        ActiveCallOp::Upsert(inbound.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(s.list_active_calls().await.unwrap(), vec![full, bare, inbound]);
    assert_eq!(s.last_change().await.unwrap(), before, "calls are not directory changes");
}

async fn active_calls_upsert_then_answer(ctx: Ctx) {
    let s = &*ctx.store;
    let ringing = active_call("c-1", "node-a", 1_000);
    s.apply_active_calls(&[ActiveCallOp::Upsert(ringing.clone())]).await.unwrap();
    assert_eq!(s.list_active_calls().await.unwrap(), vec![ringing.clone()]);

    // In a later batch: the same call, answered (and picked up by a device), replaces the row.
    let answered = ActiveCall {
        state: "answered".to_owned(),
        answered_at: Some(6_000),
        device_id: Some(5),
        service_id: Some(3),
        ..ringing.clone()
    };
    s.apply_active_calls(&[ActiveCallOp::Upsert(answered.clone())]).await.unwrap();
    assert_eq!(s.list_active_calls().await.unwrap(), vec![answered.clone()]);

    // Every field is replaced, the optional ones too.
    s.apply_active_calls(&[ActiveCallOp::Upsert(ringing.clone())]).await.unwrap();
    assert_eq!(s.list_active_calls().await.unwrap(), vec![ringing]);

    // Ringing then answered in one batch: one row, the last state.
    let other = active_call("c-2", "node-a", 2_000);
    s.apply_active_calls(&[
        ActiveCallOp::Upsert(other.clone()),
        ActiveCallOp::Upsert(ActiveCall { state: "answered".to_owned(), answered_at: Some(2_500), ..other.clone() }),
    ])
    .await
    .unwrap();
    let listed = s.list_active_calls().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!((listed[1].state.as_str(), listed[1].answered_at), ("answered", Some(2_500)));
}

/// Removals and upserts of the same call in one batch take effect in the order given.
async fn active_calls_apply_in_order(ctx: Ctx) {
    let s = &*ctx.store;
    let a = active_call("c-a", "node-a", 1_000);
    let b = active_call("c-b", "node-a", 2_000);
    let c = active_call("c-c", "node-a", 3_000);
    s.apply_active_calls(&[ActiveCallOp::Upsert(a.clone()), ActiveCallOp::Upsert(b.clone())]).await.unwrap();

    let remove = |call: &ActiveCall| ActiveCallOp::Remove { call_id: call.call_id.clone() };
    let b_again = ActiveCall { state: "answered".to_owned(), answered_at: Some(9_000), ..b.clone() };
    s.apply_active_calls(&[
        // a: removed, then back (a retried call id): stored.
        remove(&a),
        ActiveCallOp::Upsert(a.clone()),
        // b: updated, then removed: gone.
        ActiveCallOp::Upsert(b_again),
        remove(&b),
        // c: new, then removed within the batch: never seen.
        ActiveCallOp::Upsert(c.clone()),
        remove(&c),
        // Removing what is not there is not an error.
        ActiveCallOp::Remove { call_id: "c-nobody".to_owned() },
    ])
    .await
    .unwrap();
    assert_eq!(s.list_active_calls().await.unwrap(), vec![a.clone()]);

    s.apply_active_calls(&[remove(&a)]).await.unwrap();
    assert!(s.list_active_calls().await.unwrap().is_empty());
}

async fn active_calls_list_oldest_first(ctx: Ctx) {
    let s = &*ctx.store;
    let ops: Vec<ActiveCallOp> = [("c-a", 3_000), ("c-z", 1_000), ("c-b", 4_000), ("c-y2", 2_000), ("c-y1", 2_000)]
        .into_iter()
        .map(|(id, at)| ActiveCallOp::Upsert(active_call(id, "node-a", at)))
        .collect();
    s.apply_active_calls(&ops).await.unwrap();
    // Equal start times in call id order.
    assert_eq!(active_ids(&s.list_active_calls().await.unwrap()), ["c-z", "c-y1", "c-y2", "c-a", "c-b"]);
}

async fn active_calls_clear_only_that_node(ctx: Ctx) {
    let s = &*ctx.store;
    s.apply_active_calls(&[
        ActiveCallOp::Upsert(active_call("a-1", "node-a", 1_000)),
        ActiveCallOp::Upsert(active_call("b-1", "node-b", 2_000)),
        ActiveCallOp::Upsert(active_call("a-2", "node-a", 3_000)),
        ActiveCallOp::Upsert(active_call("b-2", "node-b", 4_000)),
        // A node name that merely starts with another's.
        ActiveCallOp::Upsert(active_call("aa-1", "node-aa", 5_000)),
    ])
    .await
    .unwrap();
    assert_eq!(s.clear_active_calls("node-a").await.unwrap(), 2);
    assert_eq!(active_ids(&s.list_active_calls().await.unwrap()), ["b-1", "b-2", "aa-1"]);
    assert_eq!(s.clear_active_calls("node-a").await.unwrap(), 0);
    assert_eq!(s.clear_active_calls("node-c").await.unwrap(), 0);
    assert_eq!(s.clear_active_calls("node-b").await.unwrap(), 2);
    assert_eq!(active_ids(&s.list_active_calls().await.unwrap()), ["aa-1"]);
}

/// Batches larger than one statement, with many operations per call: the outcome equals applying them one by one.
async fn active_calls_large_batch_with_repeats(ctx: Ctx) {
    let s = &*ctx.store;
    let mut expected = std::collections::BTreeMap::new();
    let mut first = Vec::new();
    for i in 0..600_i64 {
        let call = active_call(&format!("c-{i:04}"), if i % 2 == 0 { "node-a" } else { "node-b" }, 10_000 + i);
        first.push(ActiveCallOp::Upsert(call.clone()));
        expected.insert(call.call_id.clone(), call);
    }
    s.apply_active_calls(&first).await.unwrap();
    assert_eq!(s.list_active_calls().await.unwrap().len(), 600);

    // The second batch answers, ends and restarts calls stored by the first, and starts new ones.
    let mut ops = Vec::new();
    for i in 600..900_i64 {
        let call = active_call(&format!("c-{i:04}"), "node-b", 10_000 + i);
        ops.push(ActiveCallOp::Upsert(call.clone()));
        expected.insert(call.call_id.clone(), call);
    }
    for i in (0..900_i64).step_by(3) {
        let id = format!("c-{i:04}");
        let answered =
            ActiveCall { state: "answered".to_owned(), answered_at: Some(20_000 + i), ..expected[&id].clone() };
        ops.push(ActiveCallOp::Upsert(answered.clone()));
        expected.insert(id, answered);
    }
    for i in (0..900_i64).step_by(5) {
        let id = format!("c-{i:04}");
        ops.push(ActiveCallOp::Remove { call_id: id.clone() });
        expected.remove(&id);
    }
    // Some come back after their removal.
    for i in (0..600_i64).step_by(25) {
        let call = active_call(&format!("c-{i:04}"), "node-c", 10_000 + i);
        ops.push(ActiveCallOp::Upsert(call.clone()));
        expected.insert(call.call_id.clone(), call);
    }
    s.apply_active_calls(&ops).await.unwrap();
    let listed = s.list_active_calls().await.unwrap();
    // Start times follow the ids, so the list is in id order.
    assert_eq!(listed, expected.into_values().collect::<Vec<_>>());
    assert_eq!(listed.len(), 900 - 180 + 24);
}

// ---------------------------------------------------------------------------------------------------------------
// backend-independent checks

fn new_voicemail(number_id: i64, caller: &str, received_at: i64, node: &str) -> NewVoicemail {
    NewVoicemail {
        number_id,
        caller: caller.to_owned(),
        caller_name: None,
        received_at,
        file: format!("61299990001/{received_at}.wav"),
        node: node.to_owned(),
    }
}

async fn voicemails_record_finish_list(ctx: Ctx) {
    let s = &*ctx.store;
    let service = service_fixture(s, "vm").await;
    let number = s.create_number(&new_number(service, "+61299990001")).await.unwrap();
    let other = s.create_number(&new_number(service, "+61299990002")).await.unwrap();
    let before = s.last_change().await.unwrap();
    let named = NewVoicemail {
        caller_name: Some("Alice O'Neil".to_owned()),
        ..new_voicemail(number.id, "+61400000001", 2_000, "a")
    };
    let late = s.create_voicemail(&named).await.unwrap();
    let early = s.create_voicemail(&new_voicemail(number.id, "0299990000", 1_000, "b")).await.unwrap();
    s.create_voicemail(&new_voicemail(other.id, "+61400000002", 500, "a")).await.unwrap();
    assert_eq!(
        late,
        Voicemail {
            id: late.id,
            number_id: number.id,
            caller: "+61400000001".to_owned(),
            caller_name: Some("Alice O'Neil".to_owned()),
            received_at: 2_000,
            duration_ms: 0,
            status: VoicemailStatus::Recording,
            file: "61299990001/2000.wav".to_owned(),
            node: "a".to_owned(),
        }
    );
    let listed = s.list_voicemails(number.id).await.unwrap();
    assert_eq!(listed.iter().map(|v| v.id).collect::<Vec<_>>(), [early.id, late.id], "oldest first, one mailbox");
    let unfinished = |node: &'static str| async move {
        s.unfinished_voicemails(node).await.unwrap().iter().map(|v| v.caller.clone()).collect::<Vec<_>>()
    };
    assert_eq!(unfinished("a").await, ["+61400000002", "+61400000001"]);
    s.finish_voicemail(late.id, 4_250).await.unwrap();
    assert_eq!(unfinished("a").await, ["+61400000002"]);
    assert_eq!(unfinished("b").await, ["0299990000"]);
    assert_eq!(
        s.voicemail_counts().await.unwrap(),
        [("+61299990001".to_owned(), 1, 0), ("+61299990002".to_owned(), 0, 0)],
        "new and saved only; one still recording counts in neither"
    );
    s.set_voicemail_status(early.id, VoicemailStatus::Saved).await.unwrap();
    assert_eq!(s.voicemail_counts().await.unwrap()[0], ("+61299990001".to_owned(), 1, 1));
    let done = s.voicemail(late.id).await.unwrap().unwrap();
    assert_eq!((done.status, done.duration_ms), (VoicemailStatus::New, 4_250));
    // A message is finished once: a second finish (a restart recovering what was already finished) is refused.
    assert_not_found(s.finish_voicemail(late.id, 1).await, "voicemail", &late.id.to_string());
    assert_eq!(s.voicemail(late.id).await.unwrap().unwrap().duration_ms, 4_250);
    assert_eq!(s.last_change().await.unwrap(), before, "messages are not directory changes");
}

async fn voicemails_status_delete_and_missing(ctx: Ctx) {
    let s = &*ctx.store;
    let service = service_fixture(s, "vm").await;
    let number = s.create_number(&new_number(service, "+61299990001")).await.unwrap();
    let m = s.create_voicemail(&new_voicemail(number.id, "+61400000001", 1_000, "a")).await.unwrap();
    s.finish_voicemail(m.id, 1_500).await.unwrap();
    s.set_voicemail_status(m.id, VoicemailStatus::Saved).await.unwrap();
    assert_eq!(s.voicemail(m.id).await.unwrap().unwrap().status, VoicemailStatus::Saved);
    s.set_voicemail_status(m.id, VoicemailStatus::New).await.unwrap();
    assert_eq!(s.voicemail(m.id).await.unwrap().unwrap().status, VoicemailStatus::New);
    s.delete_voicemail(m.id).await.unwrap();
    assert!(s.voicemail(m.id).await.unwrap().is_none());
    assert!(s.list_voicemails(number.id).await.unwrap().is_empty());
    let key = m.id.to_string();
    assert_not_found(s.delete_voicemail(m.id).await, "voicemail", &key);
    assert_not_found(s.set_voicemail_status(m.id, VoicemailStatus::Saved).await, "voicemail", &key);
    assert_not_found(s.finish_voicemail(m.id, 1).await, "voicemail", &key);
    assert_not_found(s.create_voicemail(&new_voicemail(424_242, "x", 1, "a")).await, "number", "424242");
}

async fn voicemails_go_with_their_number(ctx: Ctx) {
    let s = &*ctx.store;
    let service = service_fixture(s, "vm").await;
    let number = s.create_number(&new_number(service, "+61299990001")).await.unwrap();
    let kept = s.create_number(&new_number(service, "+61299990002")).await.unwrap();
    s.create_voicemail(&new_voicemail(number.id, "+61400000001", 1_000, "a")).await.unwrap();
    let other = s.create_voicemail(&new_voicemail(kept.id, "+61400000001", 1_000, "a")).await.unwrap();
    s.delete_number(number.id).await.unwrap();
    assert!(s.list_voicemails(number.id).await.unwrap().is_empty());
    assert_eq!(s.unfinished_voicemails("a").await.unwrap(), vec![other]);
}

async fn mailbox_pin_set_fail_lock_pass(ctx: Ctx) {
    let s = &*ctx.store;
    let service = service_fixture(s, "vm").await;
    let number = s.create_number(&new_number(service, "+61299990001")).await.unwrap();
    assert_eq!(s.mailbox(number.id).await.unwrap(), None);
    assert_not_found(s.mailbox_pin_failed(number.id, 3, 1).await, "mailbox", &number.id.to_string());
    let m = s.set_mailbox_pin(number.id, Some("hash-1")).await.unwrap();
    assert_eq!((m.pin_hash.as_deref(), m.pin_failures, m.locked_until, m.email_keep), (Some("hash-1"), 0, None, true));
    assert_eq!(s.mailbox(number.id).await.unwrap(), Some(m.clone()));
    assert!(!serde_json::to_string(&m).unwrap().contains("hash-1"), "the hash never leaves in JSON");
    // Two wrong PINs count; the third reaches the limit: locked, and the count starts again.
    assert_eq!(s.mailbox_pin_failed(number.id, 3, 10_000).await.unwrap().pin_failures, 1);
    assert_eq!(s.mailbox_pin_failed(number.id, 3, 10_000).await.unwrap().pin_failures, 2);
    let locked = s.mailbox_pin_failed(number.id, 3, 10_000).await.unwrap();
    assert_eq!((locked.pin_failures, locked.locked_until), (0, Some(10_000)));
    // A right PIN clears the count (the lock is the caller's to honour before asking).
    s.mailbox_pin_failed(number.id, 3, 20_000).await.unwrap();
    s.mailbox_pin_passed(number.id).await.unwrap();
    let m = s.mailbox(number.id).await.unwrap().unwrap();
    assert_eq!((m.pin_failures, m.locked_until), (0, None));
    // A new PIN replaces the hash and clears failures; clearing the PIN keeps the row.
    s.mailbox_pin_failed(number.id, 3, 20_000).await.unwrap();
    let m = s.set_mailbox_pin(number.id, Some("hash-2")).await.unwrap();
    assert_eq!((m.pin_hash.as_deref(), m.pin_failures), (Some("hash-2"), 0));
    assert_eq!(s.set_mailbox_pin(number.id, None).await.unwrap().pin_hash, None);
    assert_not_found(s.set_mailbox_pin(424_242, Some("h")).await, "number", "424242");
    s.delete_number(number.id).await.unwrap();
    assert_eq!(s.mailbox(number.id).await.unwrap(), None, "the mailbox goes with its number");
}

async fn mailbox_email_set_and_clear(ctx: Ctx) {
    let s = &*ctx.store;
    let service = service_fixture(s, "vm").await;
    let number = s.create_number(&new_number(service, "+61299990001")).await.unwrap();
    let m = s.set_mailbox_email(number.id, Some("owner@example.com"), false).await.unwrap();
    assert_eq!((m.email.as_deref(), m.email_keep, m.pin_hash), (Some("owner@example.com"), false, None));
    s.set_mailbox_pin(number.id, Some("h")).await.unwrap();
    let m = s.set_mailbox_email(number.id, None, true).await.unwrap();
    assert_eq!((m.email, m.email_keep, m.pin_hash.as_deref()), (None, true, Some("h")), "the PIN is kept");
    assert_not_found(s.set_mailbox_email(424_242, None, true).await, "number", "424242");
}

fn email(recipient: &str) -> NewEmail {
    NewEmail {
        kind: "voicemail".into(),
        recipient: recipient.into(),
        subject: "New voicemail".into(),
        body: "From +61400000001".into(),
        ..NewEmail::default()
    }
}

async fn outbox_queue_claim_settle(ctx: Ctx) {
    let s = &*ctx.store;
    let full = NewEmail {
        attachment: Some("61299990001/1.wav".into()),
        attachment_name: Some("voicemail.wav".into()),
        voicemail_id: Some(7),
        ..email("a@example.com")
    };
    let a = s.enqueue_email(&full).await.unwrap().unwrap();
    assert_eq!((a.status, a.attempts, a.voicemail_id), (OutboxStatus::Queued, 0, Some(7)));
    let b = s.enqueue_email(&email("b@example.com")).await.unwrap().unwrap();
    // Both are due (b was queued a little later: on a loaded machine, more than a few milliseconds).
    let now = a.next_attempt_at.max(b.next_attempt_at) + 10;
    let claimed = s.claim_emails("n1", now, 60_000, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|e| e.id).collect::<Vec<_>>(), [a.id, b.id], "oldest first");
    assert_eq!(claimed[0].attachment.as_deref(), Some("61299990001/1.wav"));
    assert!(s.claim_emails("n1", now, 60_000, 10).await.unwrap().is_empty(), "claimed rows are not claimed again");
    s.email_sent(a.id, now + 5).await.unwrap();
    s.email_failed(b.id, "451 try later", Some(now + 60_000)).await.unwrap();
    let listed = s.list_outbox(10).await.unwrap();
    assert_eq!(listed.iter().map(|e| e.id).collect::<Vec<_>>(), [b.id, a.id], "newest first");
    assert_eq!((listed[1].status, listed[1].sent_at, listed[1].attempts), (OutboxStatus::Sent, Some(now + 5), 1));
    assert_eq!((listed[0].status, listed[0].attempts), (OutboxStatus::Queued, 1));
    assert_eq!(listed[0].last_error.as_deref(), Some("451 try later"));
    assert!(s.claim_emails("n1", now + 59_999, 60_000, 10).await.unwrap().is_empty(), "not due before its retry");
    assert_eq!(s.claim_emails("n1", now + 60_000, 60_000, 10).await.unwrap().len(), 1);
    s.email_failed(b.id, "550 no such user", None).await.unwrap();
    let b = s.list_outbox(1).await.unwrap().remove(0);
    assert_eq!((b.status, b.attempts, b.last_error.as_deref()), (OutboxStatus::Failed, 2, Some("550 no such user")));
    assert!(s.claim_emails("n1", now + 10_000_000, 60_000, 10).await.unwrap().is_empty(), "failed rows stay");
    assert_not_found(s.email_sent(424_242, 1).await, "email", "424242");
    let counts = s.outbox_counts().await.unwrap();
    assert_eq!(counts.iter().map(|(st, _)| *st).collect::<Vec<_>>(), [OutboxStatus::Failed, OutboxStatus::Sent]);
    assert!(counts.iter().all(|(_, n)| *n == 1), "{counts:?}");
}

async fn outbox_claims_are_exclusive_and_lapse(ctx: Ctx) {
    let s = &*ctx.store;
    for i in 0..40 {
        s.enqueue_email(&email(&format!("u{i}@example.com"))).await.unwrap();
    }
    let now = s.list_outbox(1).await.unwrap()[0].next_attempt_at + 1;
    // Two nodes claiming at once never get the same row (on PostgreSQL the loser of a race for the same rows
    // gets none of them this round, not the next ones); what is left is claimed next round.
    let (x, y) = tokio::join!(s.claim_emails("n1", now, 60_000, 25), s.claim_emails("n2", now, 60_000, 25));
    let (x, y) = (x.unwrap(), y.unwrap());
    let rest = s.claim_emails("n2", now, 60_000, 100).await.unwrap();
    let mut ids: Vec<i64> = x.iter().chain(&y).chain(&rest).map(|e| e.id).collect();
    assert_eq!(ids.len(), 40, "all claimed once: {} + {} + {}", x.len(), y.len(), rest.len());
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40, "no row claimed twice");
    // A claim that lapses (its node died) is taken again.
    assert!(s.claim_emails("n3", now + 59_999, 60_000, 100).await.unwrap().is_empty());
    assert_eq!(s.claim_emails("n3", now + 60_001, 60_000, 100).await.unwrap().len(), 40);
}

async fn outbox_dedupe_and_node_bound_rows(ctx: Ctx) {
    let s = &*ctx.store;
    let alert = NewEmail { dedupe: Some("offline:+61299990001:1000".into()), ..email("a@example.com") };
    assert!(s.enqueue_email(&alert).await.unwrap().is_some());
    assert!(s.enqueue_email(&alert).await.unwrap().is_none(), "the same key is never queued twice");
    let bound = NewEmail { node: Some("n2".into()), ..email("b@example.com") };
    let bound = s.enqueue_email(&bound).await.unwrap().unwrap();
    let now = bound.next_attempt_at + 1;
    let n1 = s.claim_emails("n1", now, 60_000, 10).await.unwrap();
    assert_eq!(n1.len(), 1, "n1 takes the unbound alert, not n2's email");
    let n2 = s.claim_emails("n2", now, 60_000, 10).await.unwrap();
    assert_eq!(n2.iter().map(|e| e.id).collect::<Vec<_>>(), [bound.id]);
}

#[tokio::test]
async fn open_rejects_unsupported_urls() {
    for url in ["mysql://localhost/x", "sqlite::memory:", "sqlite://", "file:/tmp/x.db", ""] {
        match switchboard_storage::open(url).await {
            Err(StoreError::BadUrl(u)) => assert_eq!(u, url),
            other => panic!("{url:?}: expected BadUrl, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn open_accepts_sqlite_url_forms() {
    let dir = tempfile::tempdir().unwrap();
    // `sqlite:PATH` with parent directories that do not exist yet.
    let path = dir.path().join("a/b/sb.db");
    let store = switchboard_storage::open(&format!("sqlite:{}", path.display())).await.unwrap();
    store.create_customer("acme").await.unwrap();
    assert!(path.exists());
}

/// Every migration file, in both dialects: the same file names, and each file the same tables and columns.
#[test]
fn migrations_define_same_tables_and_columns() {
    // Read at run time: a build reused from another checkout (a shared target directory) must read this one's files.
    let package = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    let root = format!("{package}/../../migrations");
    let files = |dialect: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(format!("{root}/{dialect}"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        names.sort();
        names
    };
    let names = files("sqlite");
    assert_eq!(
        names,
        [
            "0001_init.sql",
            "0002_numbers_gateways.sql",
            "0003_cdrs.sql",
            "0004_calls.sql",
            "0005_device_digest.sql",
            "0006_cdr_end_reason.sql",
            "0007_voicemail.sql",
            "0008_mailboxes.sql",
            "0009_outbox.sql",
            "0010_api_tokens.sql",
            "0011_portal.sql",
            "0012_nodes.sql",
            "0013_cluster.sql",
            "0014_require_tls.sql",
        ]
    );
    assert_eq!(files("postgres"), names);
    let mut all = std::collections::BTreeMap::new();
    for name in &names {
        let read = |dialect: &str| std::fs::read_to_string(format!("{root}/{dialect}/{name}")).unwrap();
        let sqlite = harness::schema_of(&read("sqlite"));
        let postgres = harness::schema_of(&read("postgres"));
        assert!(!sqlite.is_empty(), "{name} creates or alters no table");
        assert_eq!(sqlite, postgres, "{name}");
        harness::apply_schema(&mut all, &read("sqlite"));
    }
    let tables: Vec<_> = all.keys().map(String::as_str).collect();
    assert_eq!(
        tables,
        [
            "active_calls",
            "api_tokens",
            "bindings",
            "cdrs",
            "change_log",
            "customers",
            "device_auth",
            "device_states",
            "devices",
            "gateways",
            "login_tokens",
            "logins",
            "mailboxes",
            "nodes",
            "numbers",
            "outbox",
            "portal_sessions",
            "services",
            "voicemails"
        ]
    );
    assert!(all["devices"].iter().any(|c| c == "auth_id"));
    let devices: Vec<&str> = all["devices"].iter().map(String::as_str).collect();
    assert!(
        devices.ends_with(&["trusted_address", "digest", "md5_from", "require_tls"]),
        "added by 0004, 0005 and 0014: {devices:?}"
    );
    assert_eq!(all["device_auth"], ["device_id", "algorithm", "user_agent", "source", "since"]);
    assert_eq!(
        all["active_calls"],
        [
            "call_id",
            "node",
            "direction",
            "service_id",
            "device_id",
            "caller",
            "callee",
            "state",
            "started_at",
            "answered_at"
        ]
    );
    assert_eq!(
        all["numbers"],
        [
            "id",
            "service_id",
            "number",
            "device_id",
            "divert_when",
            "divert_to",
            "no_answer_secs",
            "offline_alert",
            "created_at",
            "updated_at"
        ]
    );
    assert_eq!(
        all["outbox"],
        [
            "id",
            "kind",
            "recipient",
            "subject",
            "body",
            "attachment",
            "attachment_name",
            "voicemail_id",
            "node",
            "dedupe",
            "status",
            "attempts",
            "next_attempt_at",
            "claimed_by",
            "claimed_until",
            "last_error",
            "created_at",
            "sent_at"
        ]
    );
    assert_eq!(
        all["mailboxes"],
        ["number_id", "pin_hash", "pin_failures", "locked_until", "email", "email_keep", "updated_at"]
    );
    assert_eq!(
        all["voicemails"],
        ["id", "number_id", "caller", "caller_name", "received_at", "duration_ms", "status", "file", "node"]
    );
    assert_eq!(all["gateways"], ["id", "name", "address", "transport", "priority", "enabled", "created_at"]);
    assert_eq!(
        all["cdrs"],
        [
            "id",
            "call_id",
            "direction",
            "service_id",
            "device_id",
            "caller",
            "callee",
            "call_type",
            "started_at",
            "answered_at",
            "ended_at",
            "disposition",
            "sip_status",
            "divert_reason",
            "diverted_to",
            "gateway",
            "node",
            "end_reason"
        ]
    );
}

async fn api_tokens_create_find_revoke(ctx: Ctx) {
    let store = &*ctx.store;
    let customer = store.create_customer("Acme").await.unwrap();
    assert_eq!(store.customer(customer.id).await.unwrap(), Some(customer.clone()));
    assert_eq!(store.customer(customer.id + 100).await.unwrap(), None);
    let new =
        |name: &str, hash: &str, customer_id| NewApiToken { name: name.into(), token_hash: hash.into(), customer_id };
    let ops = store.create_api_token(&new("ops", "aa11", None)).await.unwrap();
    let acme = store.create_api_token(&new("acme-portal", "bb22", Some(customer.id))).await.unwrap();
    assert_eq!((ops.customer_id, acme.customer_id), (None, Some(customer.id)));
    assert_conflict(store.create_api_token(&new("ops", "cc33", None)).await, "API token", "name", "ops");
    assert_not_found(
        store.create_api_token(&new("ghost", "dd44", Some(customer.id + 100))).await,
        "customer",
        &(customer.id + 100).to_string(),
    );
    assert_eq!(store.api_token_by_hash("bb22").await.unwrap(), Some(acme.clone()));
    assert_eq!(store.api_token_by_hash("zz").await.unwrap(), None);
    store.touch_api_token(acme.id, 1234).await.unwrap();
    assert_eq!(store.api_token_by_hash("bb22").await.unwrap().unwrap().last_used_at, Some(1234));
    let revoked = store.revoke_api_token("acme-portal").await.unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(store.api_token_by_hash("bb22").await.unwrap(), None, "a revoked token never authenticates");
    assert_not_found(store.revoke_api_token("acme-portal").await, "API token", "acme-portal");
    let names: Vec<String> = store.list_api_tokens().await.unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["ops", "acme-portal"], "revoked tokens stay listed as history");
}

async fn bindings_for_service_only_its_devices(ctx: Ctx) {
    let s = &*ctx.store;
    let one = service_fixture(s, "one").await;
    let two = service_fixture(s, "two").await;
    let a = s.create_device(&new_device(one, "desk", "alice")).await.unwrap().id;
    let b = s.create_device(&new_device(one, "phone", "bob")).await.unwrap().id;
    let c = s.create_device(&new_device(two, "desk", "carol")).await.unwrap().id;
    let ops: Vec<_> = [(b, "sip:b@198.51.100.2"), (a, "sip:a@198.51.100.1"), (c, "sip:c@198.51.100.3")]
        .into_iter()
        .map(|(d, contact)| BindingOp::Upsert(binding(d, contact, 5000)))
        .collect();
    s.apply_bindings(&ops).await.unwrap();
    let got: Vec<i64> = s.bindings_for_service(one).await.unwrap().iter().map(|b| b.device_id).collect();
    assert_eq!(got, [a, b]);
    assert_eq!(s.bindings_for_service(two).await.unwrap().len(), 1);
    assert!(s.bindings_for_service(two + 100).await.unwrap().is_empty());
}

async fn portal_logins_sessions_and_links(ctx: Ctx) {
    use switchboard_storage::{NewLoginToken, Session, TokenPurpose};
    let s = &*ctx.store;
    let acme = s.create_customer("Acme").await.unwrap();
    let login = s.create_login("Ann@Example.com", None).await.unwrap();
    assert_eq!((login.email.as_str(), login.customer_id, login.password_hash.clone()), ("ann@example.com", None, None));
    assert_conflict(s.create_login("ANN@example.com", None).await, "login", "email", "ann@example.com");
    assert_not_found(
        s.create_login("bob@example.com", Some(acme.id + 100)).await,
        "customer",
        &(acme.id + 100).to_string(),
    );
    assert_eq!(s.login_by_email("ann@EXAMPLE.com").await.unwrap().map(|l| l.id), Some(login.id));
    let svc = service_fixture(s, "portal-svc").await;
    let changed = s.update_service(svc, ServiceMode::Direct, Some("syd")).await.unwrap();
    assert_eq!((changed.mode, changed.region.as_deref()), (ServiceMode::Direct, Some("syd")));
    assert_eq!(s.service(svc).await.unwrap(), Some(changed));
    assert!(s.changes_since(0, 1000).await.unwrap().iter().any(|c| c.entity == Entity::Service && c.entity_id == svc));
    assert_not_found(s.update_service(svc + 100, ServiceMode::Trunk, None).await, "service", &(svc + 100).to_string());
    // A region cleared; whether TLS is required is left as it is by a mode or region change, and the other way.
    s.set_service_require_tls(svc, true).await.unwrap();
    let cleared = s.update_service(svc, ServiceMode::Trunk, None).await.unwrap();
    assert_eq!((cleared.mode, cleared.region.as_deref(), cleared.require_tls), (ServiceMode::Trunk, None, true));
    let lifted = s.set_service_require_tls(svc, false).await.unwrap();
    assert_eq!((lifted.mode, lifted.region.as_deref(), lifted.require_tls), (ServiceMode::Trunk, None, false));
    let linked = s.link_login(login.id, Some(acme.id)).await.unwrap();
    assert_eq!(linked.customer_id, Some(acme.id));
    assert_not_found(s.link_login(login.id + 100, None).await, "login", &(login.id + 100).to_string());

    let session = |id: &str, expires_at| Session {
        id_hash: id.into(),
        login_id: login.id,
        created_at: 1_000,
        last_seen_at: 1_000,
        expires_at,
    };
    s.create_session(&session("s1", 10_000)).await.unwrap();
    s.create_session(&session("s2", 5_000)).await.unwrap();
    assert_eq!(s.session("s1", 9_999).await.unwrap(), Some(session("s1", 10_000)));
    assert_eq!(s.session("s1", 10_000).await.unwrap(), None, "expired at its expiry");
    s.touch_session("s1", 9_000, 20_000).await.unwrap();
    assert_eq!(s.session("s1", 10_000).await.unwrap().unwrap().expires_at, 20_000);

    let link = |hash: &str, purpose| NewLoginToken {
        token_hash: hash.into(),
        login_id: login.id,
        purpose,
        expires_at: 50_000,
    };
    s.create_login_token(&link("t1", TokenPurpose::Welcome)).await.unwrap();
    s.create_login_token(&link("t2", TokenPurpose::Reset)).await.unwrap();
    assert!(s.login_token_live("t1", 49_999).await.unwrap());
    assert!(!s.login_token_live("t1", 50_000).await.unwrap(), "expired");
    let spent = s.spend_login_token("t1", 2_000).await.unwrap().unwrap();
    assert_eq!((spent.login_id, spent.purpose), (login.id, TokenPurpose::Welcome));
    assert_eq!(s.spend_login_token("t1", 2_001).await.unwrap(), None, "a link works once");
    assert_eq!(s.spend_login_token("t2", 50_000).await.unwrap(), None, "not after it expired");
    assert_eq!(s.spend_login_token("nope", 1).await.unwrap(), None);

    // A password change ends every session and every unused link.
    s.create_login_token(&link("t3", TokenPurpose::Reset)).await.unwrap();
    s.set_login_password(login.id, "$argon2id$v=19$stub", 3_000).await.unwrap();
    let after = s.login(login.id).await.unwrap().unwrap();
    assert_eq!((after.password_hash.as_deref(), after.password_changed_at), (Some("$argon2id$v=19$stub"), Some(3_000)));
    assert_eq!(s.session("s1", 3_001).await.unwrap(), None);
    assert!(!s.login_token_live("t3", 3_001).await.unwrap());

    s.create_session(&session("s4", 4_000)).await.unwrap();
    assert_eq!(
        s.purge_portal(4_000, 100_000).await.unwrap(),
        2,
        "the expired session and the spent link (the password change took the unused one)"
    );
    s.delete_login(login.id).await.unwrap();
    assert!(s.list_logins().await.unwrap().is_empty());
    assert_not_found(s.delete_login(login.id).await, "login", &login.id.to_string());
}

async fn nodes_heartbeat_and_list_with_their_bindings(ctx: Ctx) {
    use switchboard_storage::Node;
    let s = &*ctx.store;
    let node = |name: &str, region: &str, at| Node {
        name: name.into(),
        region: region.into(),
        sip_address: format!("{name}.sip.example"),
        started_at: 1_000,
        heartbeat_at: at,
        cluster_address: format!("{name}.cluster:5060"),
    };
    s.heartbeat_node(&node("syd1", "sydney", 5_000)).await.unwrap();
    s.heartbeat_node(&node("mel1", "melbourne", 5_000)).await.unwrap();
    s.heartbeat_node(&node("syd1", "sydney", 9_000)).await.unwrap();
    let svc = service_fixture(s, "one").await;
    let d = s.create_device(&new_device(svc, "desk", "alice")).await.unwrap().id;
    let b = Binding { node: "syd1".into(), ..binding(d, "sip:a@198.51.100.1", 50_000) };
    s.apply_bindings(&[BindingOp::Upsert(b)]).await.unwrap();
    let listed = s.list_nodes().await.unwrap();
    assert_eq!(listed, vec![(node("mel1", "melbourne", 5_000), 0), (node("syd1", "sydney", 9_000), 1)]);
    assert_eq!(s.live_nodes(6_000).await.unwrap(), vec![node("syd1", "sydney", 9_000)]);
    assert_eq!(s.live_nodes(5_000).await.unwrap().len(), 2, "a heartbeat exactly at the limit is live");
}

/// Each node reads the bindings the others hold, changed since its last look; a binding that moved to another
/// node (the device registered there with the same contact) is not removed by the node it left.
async fn bindings_elsewhere_and_moved_bindings(ctx: Ctx) {
    use switchboard_storage::Located;
    let s = &*ctx.store;
    let svc = service_fixture(s, "one").await;
    let d = s.create_device(&new_device(svc, "desk", "alice")).await.unwrap().id;
    let e = s.create_device(&new_device(svc, "phone", "bob")).await.unwrap().id;
    let at = |device_id, contact: &str, node: &str, updated_at, expires_at| Binding {
        node: node.into(),
        updated_at,
        ..binding(device_id, contact, expires_at)
    };
    s.apply_bindings(&[
        BindingOp::Upsert(at(d, "sip:a@198.51.100.1", "syd1", 1_000, 50_000)),
        BindingOp::Upsert(at(e, "sip:e@198.51.100.2", "mel1", 2_000, 50_000)),
        BindingOp::Upsert(at(e, "sip:old@198.51.100.2", "mel1", 1_500, 2_500)),
    ])
    .await
    .unwrap();
    let located = |device_id, contact: &str, node: &str, updated_at| Located {
        device_id,
        contact: contact.into(),
        node: node.into(),
        updated_at,
        expires_at: 50_000,
    };
    // syd1 sees mel1's live binding, not its own, nor the expired one.
    assert_eq!(
        s.bindings_elsewhere("syd1", 0, 3_000).await.unwrap(),
        vec![located(e, "sip:e@198.51.100.2", "mel1", 2_000)]
    );
    assert_eq!(s.bindings_elsewhere("syd1", 2_000, 3_000).await.unwrap(), vec![], "nothing changed since 2,000");
    assert_eq!(
        s.bindings_elsewhere("mel1", 0, 3_000).await.unwrap(),
        vec![located(d, "sip:a@198.51.100.1", "syd1", 1_000)]
    );
    // alice registers to mel1 with the same contact: the row moves.
    s.apply_bindings(&[BindingOp::Upsert(at(d, "sip:a@198.51.100.1", "mel1", 4_000, 50_000))]).await.unwrap();
    assert_eq!(
        s.bindings_elsewhere("syd1", 3_000, 5_000).await.unwrap(),
        vec![located(d, "sip:a@198.51.100.1", "mel1", 4_000)]
    );
    // syd1's copy expires: its removal leaves mel1's row alone; mel1's own removal takes it.
    let remove =
        |node: &str| BindingOp::Remove { device_id: d, contact: "sip:a@198.51.100.1".into(), node: node.into() };
    s.apply_bindings(&[remove("syd1")]).await.unwrap();
    assert_eq!(s.bindings_for_device(d).await.unwrap().len(), 1, "the moved binding stays");
    s.apply_bindings(&[remove("mel1")]).await.unwrap();
    assert_eq!(s.bindings_for_device(d).await.unwrap(), vec![]);
}
