//! Row shapes as both drivers decode them, and their conversion into domain records.
//!
//! Storage formats that are not plain columns:
//! - `devices.call_types` and `bindings.path` are JSON arrays of strings stored as TEXT (`["local","mobile"]`),
//!   because SIP Path values can themselves contain commas.
//! - `services.mode` is `direct` / `trunk`; `change_log.entity` is `customer` / `service` / `device` /
//!   `number` / `gateway`.
//! - `numbers.divert_when` is `never` / `no_answer` / `all` / `offline`.
//! - `cdrs.direction`, `cdrs.disposition`, `cdrs.divert_reason`, `active_calls.direction` and `voicemails.status`
//!   are the enums' `as_str` spellings.

use sqlx::FromRow;

use crate::{
    ActiveCall, Binding, Cdr, CdrDirection, CdrDisposition, Change, Credentials, Customer, Device, DeviceAuth,
    DeviceState, DigestMode, DivertReason, Email, Entity, Gateway, IpNet, Mailbox, Number, OutboxStatus, Result,
    Service, ServiceMode, StoreError, Voicemail, VoicemailStatus,
};

/// Column list matching [`DeviceRow`], as a literal so it can be `concat!`ed into `'static` SQL.
macro_rules! device_columns {
    () => {
        "id, service_id, name, auth_id, realm, ha1_md5, ha1_sha256, ha1_sha512_256, caller_id, call_types, \
         max_contacts, trusted_address, digest, md5_from, require_tls, created_at, updated_at"
    };
}
pub(crate) use device_columns;

/// Column list matching [`BindingRow`].
macro_rules! binding_columns {
    () => {
        "device_id, aor, contact, q, expires_at, call_id, cseq, source, transport, local, path, instance_id, \
         reg_id, user_agent, node, updated_at"
    };
}
pub(crate) use binding_columns;

/// Column list matching [`ServiceRow`].
macro_rules! service_columns {
    () => {
        "id, customer_id, name, mode, region, require_tls, created_at"
    };
}
pub(crate) use service_columns;

/// Column list matching [`NumberRow`].
macro_rules! number_columns {
    () => {
        "id, service_id, number, device_id, divert_when, divert_to, no_answer_secs, offline_alert, created_at, \
         updated_at"
    };
}
pub(crate) use number_columns;

/// Column list matching [`GatewayRow`].
macro_rules! gateway_columns {
    () => {
        "id, name, address, transport, priority, enabled, created_at"
    };
}
pub(crate) use gateway_columns;

/// Column list matching [`CdrRow`], without `id` (the insert's column list).
macro_rules! cdr_insert_columns {
    () => {
        "call_id, direction, service_id, device_id, caller, callee, call_type, started_at, answered_at, ended_at, \
         disposition, sip_status, divert_reason, diverted_to, gateway, node, end_reason"
    };
}
pub(crate) use cdr_insert_columns;

/// Column list matching [`ActiveCallRow`].
macro_rules! active_call_columns {
    () => {
        "call_id, node, direction, service_id, device_id, caller, callee, state, started_at, answered_at"
    };
}
pub(crate) use active_call_columns;

/// Column list matching [`EmailRow`].
macro_rules! email_columns {
    () => {
        "id, kind, recipient, subject, body, attachment, attachment_name, voicemail_id, node, dedupe, status, \
         attempts, next_attempt_at, last_error, created_at, sent_at"
    };
}
pub(crate) use email_columns;

/// Column list matching [`MailboxRow`].
macro_rules! mailbox_columns {
    () => {
        "number_id, pin_hash, pin_failures, locked_until, email, email_keep, updated_at"
    };
}
pub(crate) use mailbox_columns;

/// Column list matching [`VoicemailRow`].
macro_rules! voicemail_columns {
    () => {
        "id, number_id, caller, caller_name, received_at, duration_ms, status, file, node"
    };
}
pub(crate) use voicemail_columns;

#[derive(Debug, FromRow)]
pub(crate) struct CustomerRow {
    id: i64,
    name: String,
    created_at: i64,
}

impl From<CustomerRow> for Customer {
    fn from(r: CustomerRow) -> Self {
        Customer { id: r.id, name: r.name, created_at: r.created_at }
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct ServiceRow {
    id: i64,
    customer_id: i64,
    name: String,
    mode: String,
    region: Option<String>,
    require_tls: bool,
    created_at: i64,
}

impl TryFrom<ServiceRow> for Service {
    type Error = StoreError;
    fn try_from(r: ServiceRow) -> Result<Self> {
        let mode = ServiceMode::parse(&r.mode).ok_or_else(|| corrupt(format!("services.mode {:?}", r.mode)))?;
        Ok(Service {
            id: r.id,
            customer_id: r.customer_id,
            name: r.name,
            mode,
            region: r.region,
            require_tls: r.require_tls,
            created_at: r.created_at,
        })
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct DeviceRow {
    pub(crate) id: i64,
    service_id: i64,
    name: String,
    auth_id: String,
    realm: String,
    ha1_md5: String,
    ha1_sha256: String,
    ha1_sha512_256: String,
    caller_id: Option<String>,
    call_types: String,
    max_contacts: i64,
    trusted_address: Option<String>,
    digest: String,
    md5_from: Option<String>,
    require_tls: bool,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<DeviceRow> for Device {
    type Error = StoreError;
    fn try_from(r: DeviceRow) -> Result<Self> {
        Ok(Device {
            id: r.id,
            service_id: r.service_id,
            name: r.name,
            auth_id: r.auth_id,
            credentials: Credentials {
                realm: r.realm,
                ha1_md5: r.ha1_md5,
                ha1_sha256: r.ha1_sha256,
                ha1_sha512_256: r.ha1_sha512_256,
            },
            caller_id: r.caller_id,
            call_types: decode_list("devices.call_types", &r.call_types)?,
            max_contacts: r.max_contacts,
            trusted_address: r.trusted_address,
            digest: DigestMode::parse(&r.digest)
                .ok_or_else(|| corrupt(format!("devices.digest holds {:?}", r.digest)))?,
            md5_from: switchboard_model::parse_networks(r.md5_from.as_deref().unwrap_or_default())
                .map_err(|e| corrupt(format!("devices.md5_from: {e}")))?,
            require_tls: r.require_tls,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// Networks as stored: comma-separated, or NULL for none.
pub(crate) fn networks_column(nets: &[IpNet]) -> Option<String> {
    (!nets.is_empty()).then(|| nets.iter().map(ToString::to_string).collect::<Vec<_>>().join(","))
}

#[derive(Debug, FromRow)]
pub(crate) struct DeviceAuthRow {
    device_id: i64,
    algorithm: String,
    user_agent: Option<String>,
    source: String,
    since: i64,
}

impl From<DeviceAuthRow> for DeviceAuth {
    fn from(r: DeviceAuthRow) -> Self {
        DeviceAuth {
            device_id: r.device_id,
            algorithm: r.algorithm,
            user_agent: r.user_agent,
            source: r.source,
            since: r.since,
        }
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct BindingRow {
    device_id: i64,
    aor: String,
    contact: String,
    q: Option<i64>,
    expires_at: i64,
    call_id: String,
    cseq: i64,
    source: String,
    transport: String,
    local: String,
    path: String,
    instance_id: Option<String>,
    reg_id: Option<i64>,
    user_agent: Option<String>,
    node: String,
    updated_at: i64,
}

impl TryFrom<BindingRow> for Binding {
    type Error = StoreError;
    fn try_from(r: BindingRow) -> Result<Self> {
        Ok(Binding {
            device_id: r.device_id,
            aor: r.aor,
            contact: r.contact,
            q: r.q,
            expires_at: r.expires_at,
            call_id: r.call_id,
            cseq: r.cseq,
            source: r.source,
            transport: r.transport,
            local: r.local,
            path: decode_list("bindings.path", &r.path)?,
            instance_id: r.instance_id,
            reg_id: r.reg_id,
            user_agent: r.user_agent,
            node: r.node,
            updated_at: r.updated_at,
        })
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct DeviceStateRow {
    device_id: i64,
    online: bool,
    since: i64,
}

impl From<DeviceStateRow> for DeviceState {
    fn from(r: DeviceStateRow) -> Self {
        DeviceState { device_id: r.device_id, online: r.online, since: r.since }
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct NumberRow {
    id: i64,
    service_id: i64,
    number: String,
    device_id: Option<i64>,
    divert_when: String,
    divert_to: Option<String>,
    no_answer_secs: i64,
    offline_alert: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<NumberRow> for Number {
    type Error = StoreError;
    fn try_from(r: NumberRow) -> Result<Self> {
        let divert_when = switchboard_model::records::divert_when_from_stored(&r.divert_when)
            .ok_or_else(|| corrupt(format!("numbers.divert_when {:?}", r.divert_when)))?;
        Ok(Number {
            id: r.id,
            service_id: r.service_id,
            number: r.number,
            device_id: r.device_id,
            divert_when,
            divert_to: r.divert_to,
            no_answer_secs: r.no_answer_secs,
            offline_alert: r.offline_alert,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct GatewayRow {
    id: i64,
    name: String,
    address: String,
    transport: String,
    priority: i64,
    enabled: bool,
    created_at: i64,
}

impl From<GatewayRow> for Gateway {
    fn from(r: GatewayRow) -> Self {
        Gateway {
            id: r.id,
            name: r.name,
            address: r.address,
            transport: r.transport,
            priority: r.priority,
            enabled: r.enabled,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct CdrRow {
    id: i64,
    call_id: String,
    direction: String,
    service_id: Option<i64>,
    device_id: Option<i64>,
    caller: String,
    callee: String,
    call_type: Option<String>,
    started_at: i64,
    answered_at: Option<i64>,
    ended_at: Option<i64>,
    disposition: String,
    sip_status: Option<i32>,
    divert_reason: Option<String>,
    diverted_to: Option<String>,
    gateway: Option<String>,
    node: String,
    end_reason: Option<String>,
}

impl TryFrom<CdrRow> for Cdr {
    type Error = StoreError;
    fn try_from(r: CdrRow) -> Result<Self> {
        let direction =
            CdrDirection::parse(&r.direction).ok_or_else(|| corrupt(format!("cdrs.direction {:?}", r.direction)))?;
        let disposition = CdrDisposition::parse(&r.disposition)
            .ok_or_else(|| corrupt(format!("cdrs.disposition {:?}", r.disposition)))?;
        let divert_reason = r
            .divert_reason
            .map(|text| DivertReason::parse(&text).ok_or_else(|| corrupt(format!("cdrs.divert_reason {text:?}"))))
            .transpose()?;
        let sip_status = r
            .sip_status
            .map(|status| u16::try_from(status).map_err(|_| corrupt(format!("cdrs.sip_status {status}"))))
            .transpose()?;
        Ok(Cdr {
            id: r.id,
            call_id: r.call_id,
            direction,
            service_id: r.service_id,
            device_id: r.device_id,
            caller: r.caller,
            callee: r.callee,
            call_type: r.call_type,
            started_at: r.started_at,
            answered_at: r.answered_at,
            ended_at: r.ended_at,
            disposition,
            sip_status,
            divert_reason,
            diverted_to: r.diverted_to,
            gateway: r.gateway,
            node: r.node,
            end_reason: r.end_reason,
        })
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct ActiveCallRow {
    call_id: String,
    node: String,
    direction: String,
    service_id: Option<i64>,
    device_id: Option<i64>,
    caller: String,
    callee: String,
    state: String,
    started_at: i64,
    answered_at: Option<i64>,
}

impl TryFrom<ActiveCallRow> for ActiveCall {
    type Error = StoreError;
    fn try_from(r: ActiveCallRow) -> Result<Self> {
        let direction = CdrDirection::parse(&r.direction)
            .ok_or_else(|| corrupt(format!("active_calls.direction {:?}", r.direction)))?;
        Ok(ActiveCall {
            call_id: r.call_id,
            node: r.node,
            direction,
            service_id: r.service_id,
            device_id: r.device_id,
            caller: r.caller,
            callee: r.callee,
            state: r.state,
            started_at: r.started_at,
            answered_at: r.answered_at,
        })
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct ChangeRow {
    seq: i64,
    entity: String,
    entity_id: i64,
}

impl TryFrom<ChangeRow> for Change {
    type Error = StoreError;
    fn try_from(r: ChangeRow) -> Result<Self> {
        let entity = match r.entity.as_str() {
            "customer" => Entity::Customer,
            "service" => Entity::Service,
            "device" => Entity::Device,
            "number" => Entity::Number,
            "gateway" => Entity::Gateway,
            other => return Err(corrupt(format!("change_log.entity {other:?}"))),
        };
        Ok(Change { seq: r.seq, entity, entity_id: r.entity_id })
    }
}

/// Converts every row, failing on the first that does not decode.
#[derive(Debug, FromRow)]
pub(crate) struct VoicemailRow {
    id: i64,
    number_id: i64,
    caller: String,
    caller_name: Option<String>,
    received_at: i64,
    duration_ms: i64,
    status: String,
    file: String,
    node: String,
}

impl TryFrom<VoicemailRow> for Voicemail {
    type Error = StoreError;
    fn try_from(r: VoicemailRow) -> Result<Self> {
        let status =
            VoicemailStatus::parse(&r.status).ok_or_else(|| corrupt(format!("voicemails.status {:?}", r.status)))?;
        Ok(Voicemail {
            id: r.id,
            number_id: r.number_id,
            caller: r.caller,
            caller_name: r.caller_name,
            received_at: r.received_at,
            duration_ms: r.duration_ms,
            status,
            file: r.file,
            node: r.node,
        })
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct MailboxRow {
    number_id: i64,
    pin_hash: Option<String>,
    pin_failures: i64,
    locked_until: Option<i64>,
    email: Option<String>,
    email_keep: bool,
    updated_at: i64,
}

impl From<MailboxRow> for Mailbox {
    fn from(r: MailboxRow) -> Self {
        Mailbox {
            number_id: r.number_id,
            pin_hash: r.pin_hash,
            pin_failures: r.pin_failures,
            locked_until: r.locked_until,
            email: r.email,
            email_keep: r.email_keep,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct EmailRow {
    id: i64,
    kind: String,
    recipient: String,
    subject: String,
    body: String,
    attachment: Option<String>,
    attachment_name: Option<String>,
    voicemail_id: Option<i64>,
    node: Option<String>,
    dedupe: Option<String>,
    status: String,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    created_at: i64,
    sent_at: Option<i64>,
}

impl TryFrom<EmailRow> for Email {
    type Error = StoreError;
    fn try_from(r: EmailRow) -> Result<Self> {
        let status = OutboxStatus::parse(&r.status).ok_or_else(|| corrupt(format!("outbox.status {:?}", r.status)))?;
        Ok(Email {
            id: r.id,
            kind: r.kind,
            recipient: r.recipient,
            subject: r.subject,
            body: r.body,
            attachment: r.attachment,
            attachment_name: r.attachment_name,
            voicemail_id: r.voicemail_id,
            node: r.node,
            dedupe: r.dedupe,
            status,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            created_at: r.created_at,
            sent_at: r.sent_at,
        })
    }
}

pub(crate) fn convert_all<R, T>(rows: Vec<R>) -> Result<Vec<T>>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}

/// How `change_log.entity` spells each entity.
pub(crate) fn entity_str(entity: Entity) -> &'static str {
    match entity {
        Entity::Customer => "customer",
        Entity::Service => "service",
        Entity::Device => "device",
        Entity::Number => "number",
        Entity::Gateway => "gateway",
    }
}

/// A list column's stored text: a JSON array of strings.
pub(crate) fn encode_list(items: &[String]) -> String {
    // Serialising strings cannot fail; an empty list is the harmless answer should it ever.
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

fn decode_list(column: &str, text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text).map_err(|e| corrupt(format!("{column} is not a JSON string array: {e}")))
}

/// A stored value we did not write (or a schema drift): reported as a decode error.
pub(crate) fn corrupt(what: String) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(what.into()))
}
