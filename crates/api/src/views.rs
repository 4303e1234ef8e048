//! What the API answers with: the stored records as a client should see them (never a credential or a PIN hash),
//! documented for the OpenAPI document. Times are Unix milliseconds.

use serde::Serialize;
use switchboard_storage::{
    ActiveCall, Binding, Cdr, Customer, Device, DeviceState, Email, Gateway, Mailbox, Number, Service, Voicemail,
};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CustomerView {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
}

impl From<Customer> for CustomerView {
    fn from(c: Customer) -> Self {
        CustomerView { id: c.id, name: c.name, created_at: c.created_at }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ServiceView {
    pub id: i64,
    pub customer_id: i64,
    pub name: String,
    /// `direct` (one endpoint registers) or `trunk` (a PBX).
    pub mode: String,
    pub region: Option<String>,
    /// Every device of the service is accepted and reached over TLS only.
    pub require_tls: bool,
    pub created_at: i64,
}

impl From<Service> for ServiceView {
    fn from(s: Service) -> Self {
        ServiceView {
            id: s.id,
            customer_id: s.customer_id,
            name: s.name,
            mode: s.mode.as_str().to_owned(),
            region: s.region,
            require_tls: s.require_tls,
            created_at: s.created_at,
        }
    }
}

/// A device's registration state, as the registrar last stored it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeviceStatus {
    pub online: bool,
    /// When it last went online or offline (`None`: never registered).
    pub since: Option<i64>,
    /// The bound contacts.
    pub registrations: Vec<RegistrationView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RegistrationView {
    pub contact: String,
    /// Where the REGISTER came from (`ip:port`, the NAT-facing address).
    pub source: String,
    /// `udp` or `tcp`.
    pub transport: String,
    pub user_agent: Option<String>,
    pub expires_at: i64,
    /// The node holding the device's flow.
    pub node: String,
    pub updated_at: i64,
}

impl From<Binding> for RegistrationView {
    fn from(b: Binding) -> Self {
        RegistrationView {
            contact: b.contact,
            source: b.source,
            transport: b.transport,
            user_agent: b.user_agent,
            expires_at: b.expires_at,
            node: b.node,
            updated_at: b.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeviceView {
    pub id: i64,
    pub service_id: i64,
    pub name: String,
    /// The SIP username.
    pub auth_id: String,
    /// Default outbound caller ID.
    pub caller_id: Option<String>,
    pub call_types: Vec<String>,
    pub max_contacts: i64,
    pub trusted_address: Option<String>,
    /// `modern` (SHA-256 and MD5 offered) or `md5`.
    pub digest: String,
    pub md5_from: Vec<String>,
    /// Accepted and reached over TLS only.
    pub require_tls: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub status: DeviceStatus,
}

impl DeviceView {
    pub(crate) fn new(d: Device, state: Option<&DeviceState>, bindings: Vec<Binding>) -> DeviceView {
        DeviceView {
            id: d.id,
            service_id: d.service_id,
            name: d.name,
            auth_id: d.auth_id,
            caller_id: d.caller_id,
            call_types: d.call_types,
            max_contacts: d.max_contacts,
            trusted_address: d.trusted_address,
            digest: d.digest.as_str().to_owned(),
            md5_from: d.md5_from.iter().map(ToString::to_string).collect(),
            require_tls: d.require_tls,
            created_at: d.created_at,
            updated_at: d.updated_at,
            status: DeviceStatus {
                online: state.is_some_and(|s| s.online),
                since: state.map(|s| s.since),
                registrations: bindings.into_iter().map(RegistrationView::from).collect(),
            },
        }
    }
}

/// A device just made or given a new password: the only answer that ever carries the password.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeviceWithPassword {
    pub device: DeviceView,
    /// Shown this once; only digest hashes are stored.
    pub password: String,
    /// Whether the password was generated (else it was the one given).
    pub generated: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NewPasswordView {
    pub device_id: i64,
    /// Shown this once; only digest hashes are stored.
    pub password: String,
    pub generated: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NumberView {
    pub id: i64,
    pub service_id: i64,
    /// E.164.
    pub number: String,
    /// The device that rings; `None`: every device of the service.
    pub device_id: Option<i64>,
    /// `never`, `no_answer`, `all` or `offline`.
    pub divert_when: String,
    /// `voicemail` or an E.164 number.
    pub divert_to: Option<String>,
    pub no_answer_secs: i64,
    /// Told by email when the number's devices go offline.
    pub offline_alert: Option<String>,
    pub voicemail: MailboxView,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The number's mailbox settings (the PIN itself is never shown).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MailboxView {
    pub pin_set: bool,
    /// New messages are emailed here.
    pub email: Option<String>,
    /// Messages stay in the mailbox once emailed.
    pub email_keep: bool,
    /// Locked after wrong PINs, until then.
    pub locked_until: Option<i64>,
}

impl NumberView {
    pub(crate) fn new(n: Number, mailbox: Option<Mailbox>) -> NumberView {
        let voicemail = match mailbox {
            Some(m) => MailboxView {
                pin_set: m.pin_hash.is_some(),
                email: m.email,
                email_keep: m.email_keep,
                locked_until: m.locked_until,
            },
            None => MailboxView { pin_set: false, email: None, email_keep: true, locked_until: None },
        };
        NumberView {
            id: n.id,
            service_id: n.service_id,
            number: n.number,
            device_id: n.device_id,
            divert_when: n.divert_when.as_str().to_owned(),
            divert_to: n.divert_to,
            no_answer_secs: n.no_answer_secs,
            offline_alert: n.offline_alert,
            voicemail,
            created_at: n.created_at,
            updated_at: n.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GatewayView {
    pub id: i64,
    pub name: String,
    /// `host:port`.
    pub address: String,
    /// `udp` or `tcp`.
    pub transport: String,
    /// Lower is tried first.
    pub priority: i64,
    pub enabled: bool,
    pub created_at: i64,
}

impl From<Gateway> for GatewayView {
    fn from(g: Gateway) -> Self {
        GatewayView {
            id: g.id,
            name: g.name,
            address: g.address,
            transport: g.transport,
            priority: g.priority,
            enabled: g.enabled,
            created_at: g.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok` when the database answers.
    pub status: String,
    pub version: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ActiveCallView {
    pub call_id: String,
    /// The node handling the call.
    pub node: String,
    /// `inbound`, `outbound` or `on_net`.
    pub direction: String,
    pub service_id: Option<i64>,
    pub device_id: Option<i64>,
    pub caller: String,
    pub callee: String,
    /// `ringing` or `answered`.
    pub state: String,
    pub started_at: i64,
    pub answered_at: Option<i64>,
}

impl From<ActiveCall> for ActiveCallView {
    fn from(c: ActiveCall) -> Self {
        ActiveCallView {
            call_id: c.call_id,
            node: c.node,
            direction: c.direction.as_str().to_owned(),
            service_id: c.service_id,
            device_id: c.device_id,
            caller: c.caller,
            callee: c.callee,
            state: c.state,
            started_at: c.started_at,
            answered_at: c.answered_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CdrView {
    pub id: i64,
    pub call_id: String,
    /// `inbound`, `outbound` or `on_net`.
    pub direction: String,
    pub service_id: Option<i64>,
    pub device_id: Option<i64>,
    pub caller: String,
    pub callee: String,
    /// `local`, `mobile`, ... when routing classified the call.
    pub call_type: Option<String>,
    pub started_at: i64,
    pub answered_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// `answered`, `busy`, `no_answer`, `failed`, `cancelled`, `barred`, ...
    pub disposition: String,
    pub sip_status: Option<u16>,
    pub divert_reason: Option<String>,
    pub diverted_to: Option<String>,
    pub gateway: Option<String>,
    pub node: String,
    pub end_reason: Option<String>,
}

impl From<Cdr> for CdrView {
    fn from(c: Cdr) -> Self {
        CdrView {
            id: c.id,
            call_id: c.call_id,
            direction: c.direction.as_str().to_owned(),
            service_id: c.service_id,
            device_id: c.device_id,
            caller: c.caller,
            callee: c.callee,
            call_type: c.call_type,
            started_at: c.started_at,
            answered_at: c.answered_at,
            ended_at: c.ended_at,
            disposition: c.disposition.as_str().to_owned(),
            sip_status: c.sip_status,
            divert_reason: c.divert_reason.map(|r| r.as_str().to_owned()),
            diverted_to: c.diverted_to,
            gateway: c.gateway,
            node: c.node,
            end_reason: c.end_reason,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EmailView {
    pub id: i64,
    /// `voicemail`, `offline`, `online`, ...
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub attachment_name: Option<String>,
    /// `queued`, `sent` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

impl From<Email> for EmailView {
    fn from(e: Email) -> Self {
        EmailView {
            id: e.id,
            kind: e.kind,
            recipient: e.recipient,
            subject: e.subject,
            attachment_name: e.attachment_name,
            status: e.status.as_str().to_owned(),
            attempts: e.attempts,
            next_attempt_at: e.next_attempt_at,
            last_error: e.last_error,
            created_at: e.created_at,
            sent_at: e.sent_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VoicemailView {
    pub id: i64,
    pub number_id: i64,
    /// Who called: E.164, or what the caller's From held.
    pub caller: String,
    pub caller_name: Option<String>,
    pub received_at: i64,
    pub duration_ms: i64,
    /// `recording`, `new` or `saved`.
    pub status: String,
    /// The node holding the recording.
    pub node: String,
}

impl From<Voicemail> for VoicemailView {
    fn from(v: Voicemail) -> Self {
        VoicemailView {
            id: v.id,
            number_id: v.number_id,
            caller: v.caller,
            caller_name: v.caller_name,
            received_at: v.received_at,
            duration_ms: v.duration_ms,
            status: v.status.as_str().to_owned(),
            node: v.node,
        }
    }
}
