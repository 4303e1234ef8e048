//! Domain records: what the directory holds (customers, services, devices, numbers, gateways), what the engine
//! produces (bindings, device states, call records) and how each appears in JSON.
//!
//! Times are Unix milliseconds (`i64`) so that both backends store them the same way.
//! Device passwords never appear here: only digest HA1 values (RFC 7616 §3.4.2), one per algorithm.

use crate::{DigestMode, IpNet};
use serde::{Deserialize, Serialize};

/// Unix time in milliseconds.
pub type Millis = i64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub id: i64,
    pub name: String,
    pub created_at: Millis,
}

/// How a customer service connects: one endpoint, or a PBX trunk that receives every number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceMode {
    Direct,
    Trunk,
}

impl ServiceMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceMode::Direct => "direct",
            ServiceMode::Trunk => "trunk",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "direct" => Some(ServiceMode::Direct),
            "trunk" => Some(ServiceMode::Trunk),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub id: i64,
    pub customer_id: i64,
    /// Unique across the platform.
    pub name: String,
    pub mode: ServiceMode,
    pub region: Option<String>,
    /// Every device of the service is accepted and reached over TLS only.
    pub require_tls: bool,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewService {
    pub customer_id: i64,
    pub name: String,
    pub mode: ServiceMode,
    pub region: Option<String>,
    pub require_tls: bool,
}

/// Digest HA1 values, hex, one per algorithm: H(auth_id ":" realm ":" password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub realm: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
    pub ha1_sha512_256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: i64,
    pub service_id: i64,
    /// Unique within its service.
    pub name: String,
    /// The SIP username; unique across the platform.
    pub auth_id: String,
    #[serde(skip_serializing)]
    pub credentials: Credentials,
    /// Default outbound caller ID (E.164 or national digits), if any.
    pub caller_id: Option<String>,
    /// Enabled call types, lower-case names (`local`, `national`, `mobile`, `international`, ...).
    pub call_types: Vec<String>,
    /// How many contacts may be bound at once (1 for Direct Mode).
    pub max_contacts: i64,
    /// `ip:port` (IPv6 as `[v6]:port`) from which this PBX trunk is trusted without digest auth, and where its
    /// inbound calls go when it does not register. Unique across the platform.
    pub trusted_address: Option<String>,
    /// Which digest algorithms the device is challenged with.
    #[serde(with = "digest_text")]
    pub digest: DigestMode,
    /// Networks from which an `md5` device is offered MD5 alone before it ever authenticated.
    #[serde(with = "networks_text")]
    pub md5_from: Vec<IpNet>,
    /// Reached and accepted over TLS (or secure WebSocket) only: its requests over UDP or TCP are refused.
    pub require_tls: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// `DigestMode` as its text in JSON.
mod digest_text {
    use super::DigestMode;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(m: &DigestMode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(m.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DigestMode, D::Error> {
        let text = String::deserialize(d)?;
        DigestMode::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("unknown digest mode {text:?}")))
    }
}

/// Networks as a list of CIDR strings in JSON.
mod networks_text {
    use super::IpNet;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(nets: &[IpNet], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(nets.iter().map(ToString::to_string))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
        let list = Vec::<String>::deserialize(d)?;
        list.iter().map(|n| n.parse().map_err(serde::de::Error::custom)).collect()
    }
}

/// The last successful authentication of a device: what it actually uses ("this ATA still uses MD5").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAuth {
    pub device_id: i64,
    /// `MD5`, `SHA-256`, `SHA-512-256`.
    pub algorithm: String,
    pub user_agent: Option<String>,
    /// The IP address it authenticated from.
    pub source: String,
    /// Since when it has authenticated this way (the algorithm, User-Agent and address above).
    pub since: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDevice {
    pub service_id: i64,
    pub name: String,
    pub auth_id: String,
    pub credentials: Credentials,
    pub caller_id: Option<String>,
    pub call_types: Vec<String>,
    pub max_contacts: i64,
    pub trusted_address: Option<String>,
    pub digest: DigestMode,
    pub md5_from: Vec<IpNet>,
    pub require_tls: bool,
}

/// A partial update: `None` leaves the field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceUpdate {
    pub name: Option<String>,
    /// `Some(None)` clears the caller ID.
    pub caller_id: Option<Option<String>>,
    pub call_types: Option<Vec<String>>,
    pub max_contacts: Option<i64>,
    pub credentials: Option<Credentials>,
    /// `Some(None)` clears the trusted address.
    pub trusted_address: Option<Option<String>>,
    pub digest: Option<DigestMode>,
    /// `Some(vec![])` clears the networks.
    pub md5_from: Option<Vec<IpNet>>,
    pub require_tls: Option<bool>,
}

/// One registered contact of a device (RFC 3261 §10.3), as the location service keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    pub device_id: i64,
    /// The address-of-record the binding was made for (To URI of the REGISTER).
    pub aor: String,
    /// The Contact URI, as sent; bindings are keyed by (device_id, contact).
    pub contact: String,
    /// q value in thousandths (RFC 3261 §20.10: 0.000 .. 1.000), if the contact gave one.
    pub q: Option<i64>,
    pub expires_at: Millis,
    pub call_id: String,
    pub cseq: i64,
    /// Where the REGISTER came from, `ip:port` (the NAT-facing address).
    pub source: String,
    /// `udp` or `tcp`.
    pub transport: String,
    /// The local socket the REGISTER arrived on, `ip:port`.
    pub local: String,
    /// Path header values (RFC 3327), in order.
    pub path: Vec<String>,
    /// `+sip.instance` (RFC 5626), without the quotes.
    pub instance_id: Option<String>,
    pub reg_id: Option<i64>,
    pub user_agent: Option<String>,
    /// The node that holds the device's flow.
    pub node: String,
    pub updated_at: Millis,
}

/// A change to bindings, applied in batches by the daemon's write-behind task.
// Upserts dominate the batches and are moved straight into the queue; boxing them would add an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum BindingOp {
    Upsert(Binding),
    /// Only while `node` holds it: a binding that moved to another node (the device registered there since) is
    /// that node's to remove.
    Remove {
        device_id: i64,
        contact: String,
        node: String,
    },
    RemoveAll {
        device_id: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceState {
    pub device_id: i64,
    pub online: bool,
    pub since: Millis,
}

use crate::DivertWhen;

/// [`DivertWhen`] in JSON as its stored name (`no_answer`).
mod divert_when_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::DivertWhen;

    pub fn serialize<S: Serializer>(w: &DivertWhen, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(w.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DivertWhen, D::Error> {
        let name = String::deserialize(d)?;
        super::divert_when_from_stored(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown divert_when {name:?}")))
    }
}

/// A stored `divert_when` name: the canonical spelling only (`no_answer`, not the flag's `no-answer`).
pub fn divert_when_from_stored(name: &str) -> Option<DivertWhen> {
    DivertWhen::parse(name).filter(|w| w.as_str() == name)
}

/// A phone number (DID) of a service, with its inbound rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Number {
    pub id: i64,
    pub service_id: i64,
    /// E.164 (`+61298765432`); unique across the platform.
    pub number: String,
    /// The device that rings, if the number is pinned to one (else every device of the service). Cleared when
    /// the device is deleted.
    pub device_id: Option<i64>,
    #[serde(with = "divert_when_name")]
    pub divert_when: DivertWhen,
    /// `voicemail` or an E.164 number.
    pub divert_to: Option<String>,
    /// Ring time before a no-answer divert.
    pub no_answer_secs: i64,
    /// Email address told when the service's devices go offline.
    pub offline_alert: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNumber {
    pub service_id: i64,
    pub number: String,
    /// Must be a device of `service_id`.
    pub device_id: Option<i64>,
    pub divert_when: DivertWhen,
    pub divert_to: Option<String>,
    pub no_answer_secs: i64,
    pub offline_alert: Option<String>,
}

/// A partial update: `None` leaves the field as it is, `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NumberUpdate {
    /// Must be a device of the number's service.
    pub device_id: Option<Option<i64>>,
    pub divert_when: Option<DivertWhen>,
    pub divert_to: Option<Option<String>>,
    pub no_answer_secs: Option<i64>,
    pub offline_alert: Option<Option<String>>,
}

/// A carrier gateway that outbound (off-net) calls are sent to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gateway {
    pub id: i64,
    /// Unique across the platform.
    pub name: String,
    /// `host:port`.
    pub address: String,
    /// `udp` or `tcp`.
    pub transport: String,
    /// Lower is tried first.
    pub priority: i64,
    pub enabled: bool,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGateway {
    pub name: String,
    pub address: String,
    pub transport: String,
    pub priority: i64,
    pub enabled: bool,
}

/// What a change-log entry is about; the daemon drops cached copies when it sees one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Entity {
    Customer,
    Service,
    Device,
    Number,
    Gateway,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub seq: i64,
    pub entity: Entity,
    pub entity_id: i64,
}

/// Which way a call went: from a carrier to a customer, from a customer to a carrier, or between two devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CdrDirection {
    Inbound,
    Outbound,
    OnNet,
}

impl CdrDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            CdrDirection::Inbound => "inbound",
            CdrDirection::Outbound => "outbound",
            CdrDirection::OnNet => "on_net",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "inbound" => Some(CdrDirection::Inbound),
            "outbound" => Some(CdrDirection::Outbound),
            "on_net" => Some(CdrDirection::OnNet),
            _ => None,
        }
    }
}

/// How a call attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CdrDisposition {
    Answered,
    Busy,
    NoAnswer,
    Failed,
    Cancelled,
    Rejected,
}

impl CdrDisposition {
    pub fn as_str(self) -> &'static str {
        match self {
            CdrDisposition::Answered => "answered",
            CdrDisposition::Busy => "busy",
            CdrDisposition::NoAnswer => "no_answer",
            CdrDisposition::Failed => "failed",
            CdrDisposition::Cancelled => "cancelled",
            CdrDisposition::Rejected => "rejected",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "answered" => Some(CdrDisposition::Answered),
            "busy" => Some(CdrDisposition::Busy),
            "no_answer" => Some(CdrDisposition::NoAnswer),
            "failed" => Some(CdrDisposition::Failed),
            "cancelled" => Some(CdrDisposition::Cancelled),
            "rejected" => Some(CdrDisposition::Rejected),
            _ => None,
        }
    }
}

use crate::DivertReason;

/// An optional [`DivertReason`] in JSON as its stored name (`no_answer`), or null.
mod divert_reason_text {
    use super::DivertReason;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(r: &Option<DivertReason>, s: S) -> Result<S::Ok, S::Error> {
        match r {
            Some(r) => s.serialize_some(r.as_str()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DivertReason>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| DivertReason::parse(&t).ok_or_else(|| serde::de::Error::custom(format!("unknown reason {t:?}"))))
            .transpose()
    }
}

/// A call detail record: one per call attempt, written by the call engine (write-behind, in batches).
/// Not part of the change log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cdr {
    pub id: i64,
    /// Our internal call id.
    pub call_id: String,
    pub direction: CdrDirection,
    /// The customer service billed, if the call touched one.
    pub service_id: Option<i64>,
    /// The device involved; cleared when the device is deleted (the record stays).
    pub device_id: Option<i64>,
    /// E.164 or dialled digits.
    pub caller: String,
    /// E.164 or dialled digits.
    pub callee: String,
    /// The routing call type name (`local`, `mobile`, ...), if routing classified the call.
    pub call_type: Option<String>,
    pub started_at: Millis,
    pub answered_at: Option<Millis>,
    pub ended_at: Option<Millis>,
    pub disposition: CdrDisposition,
    /// The final SIP response status, if there was one.
    pub sip_status: Option<u16>,
    #[serde(with = "divert_reason_text")]
    pub divert_reason: Option<DivertReason>,
    /// Where the call was diverted to (`voicemail` or E.164).
    pub diverted_to: Option<String>,
    /// The carrier gateway's name, for off-net legs.
    pub gateway: Option<String>,
    /// The node that handled the call.
    pub node: String,
    /// Why the call ended (`caller_hangup`, `callee_hangup`, `caller_cancelled`, `unanswered`, `max_duration`,
    /// `dead_leg`, `shutdown`, `media_timeout`); none for attempts refused before a call started.
    pub end_reason: Option<String>,
}

/// A [`Cdr`] to insert: everything but the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCdr {
    pub call_id: String,
    pub direction: CdrDirection,
    /// Must be an existing service.
    pub service_id: Option<i64>,
    /// Stored as NULL if the device no longer exists.
    pub device_id: Option<i64>,
    pub caller: String,
    pub callee: String,
    pub call_type: Option<String>,
    pub started_at: Millis,
    pub answered_at: Option<Millis>,
    pub ended_at: Option<Millis>,
    pub disposition: CdrDisposition,
    pub sip_status: Option<u16>,
    pub divert_reason: Option<DivertReason>,
    pub diverted_to: Option<String>,
    pub gateway: Option<String>,
    pub node: String,
    pub end_reason: Option<String>,
}

/// Which CDRs `Store::list_cdrs` returns: all conditions given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CdrFilter {
    pub service_id: Option<i64>,
    /// `started_at >= since`.
    pub since: Option<Millis>,
    /// `started_at < until`.
    pub until: Option<Millis>,
    /// At most this many (capped at [`CDR_LIST_MAX`]); zero or less returns nothing.
    pub limit: i64,
}

/// The most CDRs one `Store::list_cdrs` call returns.
pub const CDR_LIST_MAX: i64 = 10_000;

/// A call in progress, as the node handling it reports it (`active_calls`). Transient: the node removes the row
/// when the call ends and clears all of its rows when it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveCall {
    /// Our internal call id (the CDR's `call_id` once the call ends).
    pub call_id: String,
    /// The node that handles the call.
    pub node: String,
    pub direction: CdrDirection,
    /// The customer service involved, if any. Not a reference: the service may have gone since.
    pub service_id: Option<i64>,
    /// The device involved, if any. Not a reference: the device may have gone since.
    pub device_id: Option<i64>,
    /// E.164 or dialled digits.
    pub caller: String,
    /// E.164 or dialled digits.
    pub callee: String,
    /// `ringing` or `answered`.
    pub state: String,
    pub started_at: Millis,
    pub answered_at: Option<Millis>,
}

/// A change to the active calls, applied in batches by the daemon's write-behind task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActiveCallOp {
    /// Inserts the call, or replaces every field of the stored one with the same `call_id`.
    Upsert(ActiveCall),
    /// Removes the call if it is stored.
    Remove { call_id: String },
}

/// Where a voicemail message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoicemailStatus {
    /// The caller is still speaking (or the node died before the message was finished: restart recovers it).
    Recording,
    /// Not yet listened to: it lights the message-waiting lamp.
    New,
    /// Listened to and kept.
    Saved,
}

impl VoicemailStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VoicemailStatus::Recording => "recording",
            VoicemailStatus::New => "new",
            VoicemailStatus::Saved => "saved",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "recording" => Some(VoicemailStatus::Recording),
            "new" => Some(VoicemailStatus::New),
            "saved" => Some(VoicemailStatus::Saved),
            _ => None,
        }
    }
}

/// A message left in a number's mailbox. The audio is an 8 kHz 16-bit mono WAV file on the node that recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voicemail {
    pub id: i64,
    pub number_id: i64,
    /// Who called: E.164, or what the caller's From held.
    pub caller: String,
    /// The caller's display name, if one was sent.
    pub caller_name: Option<String>,
    pub received_at: Millis,
    pub duration_ms: i64,
    pub status: VoicemailStatus,
    /// The WAV file, relative to the recording node's `voicemail.dir`.
    pub file: String,
    /// The node that recorded it (and holds the file).
    pub node: String,
}

/// A message as it starts: stored with status `recording` and no duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVoicemail {
    pub number_id: i64,
    pub caller: String,
    pub caller_name: Option<String>,
    pub received_at: Millis,
    pub file: String,
    pub node: String,
}

/// A number's mailbox settings (`mailboxes`). A number without one has no PIN, so `777` cannot open it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub number_id: i64,
    /// The PIN's hash (`pbkdf2-sha256$ITERATIONS$SALT$HASH`); never the PIN. Not shown in JSON.
    #[serde(skip_serializing)]
    pub pin_hash: Option<String>,
    /// Wrong PINs in a row, across calls.
    pub pin_failures: i64,
    /// Locked after too many wrong PINs, until then.
    pub locked_until: Option<Millis>,
    /// Where new messages are emailed.
    pub email: Option<String>,
    /// Keep a message after emailing it.
    pub email_keep: bool,
    pub updated_at: Millis,
}

/// Where an email stands in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    Queued,
    Sent,
    /// Given up after the last retry.
    Failed,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Queued => "queued",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "queued" => Some(OutboxStatus::Queued),
            "sent" => Some(OutboxStatus::Sent),
            "failed" => Some(OutboxStatus::Failed),
            _ => None,
        }
    }
}

/// An email to send, as queued.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewEmail {
    /// `voicemail`, `offline`, `online`, `unstable`.
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    /// Plain text.
    pub body: String,
    /// A file under the voicemail folder of `node`.
    pub attachment: Option<String>,
    /// The attachment's file name as the recipient sees it.
    pub attachment_name: Option<String>,
    /// A message to delete once this is sent.
    pub voicemail_id: Option<i64>,
    /// Only this node may send it (it holds the attachment).
    pub node: Option<String>,
    /// At most one email per key, ever (alerts that must not repeat after a restart).
    pub dedupe: Option<String>,
}

/// An email in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub attachment: Option<String>,
    pub attachment_name: Option<String>,
    pub voicemail_id: Option<i64>,
    pub node: Option<String>,
    pub dedupe: Option<String>,
    pub status: OutboxStatus,
    pub attempts: i64,
    pub next_attempt_at: Millis,
    pub last_error: Option<String>,
    pub created_at: Millis,
    pub sent_at: Option<Millis>,
}

/// A management API token: an operator's (`customer_id` `None`: everything) or one customer's. The token itself
/// is shown once when made; only its SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: i64,
    /// Unique across the platform; says whose or what for.
    pub name: String,
    /// The customer it is limited to, if any.
    pub customer_id: Option<i64>,
    pub created_at: Millis,
    /// Updated at most once a minute.
    pub last_used_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken {
    pub name: String,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    pub customer_id: Option<i64>,
}

/// A customer portal login: an email address and (once set) an argon2 password hash. An operator links it to a
/// customer; until then it reaches nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    pub id: i64,
    /// Lower-case; unique.
    pub email: String,
    /// PHC string (`$argon2id$...`); `None` until the owner sets a password from an emailed link.
    #[serde(skip_serializing)]
    pub password_hash: Option<String>,
    pub customer_id: Option<i64>,
    pub created_at: Millis,
    pub password_changed_at: Option<Millis>,
}

/// A signed-in portal session. Only the SHA-256 of its id is stored: the id itself lives in the browser's cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id_hash: String,
    pub login_id: i64,
    pub created_at: Millis,
    pub last_seen_at: Millis,
    /// Idle expiry, pushed on by use, never past `created_at` plus the absolute lifetime.
    pub expires_at: Millis,
}

/// What an emailed one-time link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenPurpose {
    /// "Having trouble signing in": set a new password.
    Reset,
    /// An operator's invitation, or a self-registration confirming its address: set the first password.
    Welcome,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::Reset => "reset",
            TokenPurpose::Welcome => "welcome",
        }
    }

    pub fn parse(s: &str) -> Option<TokenPurpose> {
        match s {
            "reset" => Some(TokenPurpose::Reset),
            "welcome" => Some(TokenPurpose::Welcome),
            _ => None,
        }
    }
}

/// A one-time link's token, as stored: its SHA-256, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLoginToken {
    pub token_hash: String,
    pub login_id: i64,
    pub purpose: TokenPurpose,
    pub expires_at: Millis,
}

/// A one-time link, spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpentToken {
    pub login_id: i64,
    pub purpose: TokenPurpose,
}

/// A node of the cluster as it last announced itself (a heartbeat in the shared database).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub region: String,
    /// The SIP address phones in its region point at.
    pub sip_address: String,
    /// When the node last started.
    pub started_at: Millis,
    pub heartbeat_at: Millis,
    /// The `ip:port` other nodes relay calls to, and trust relayed calls from; empty: it takes none.
    pub cluster_address: String,
}

/// A binding some node holds, as the other nodes read it: enough to relay a call there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Located {
    pub device_id: i64,
    /// The contact URI (the binding's key in the table).
    pub contact: String,
    pub node: String,
    pub updated_at: Millis,
    pub expires_at: Millis,
}
