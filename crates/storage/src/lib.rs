//! The `Store`: every piece of persistent state, in domain terms, on SQLite (the default, embedded) or PostgreSQL
//! (multi-node). One contract test suite (`tests/contract.rs`) runs against both.
//!
//! Invariants:
//! - Device passwords are never stored; only HA1 values per digest algorithm.
//! - Every write to customers, services, devices, numbers and gateways appends to the change log in the same transaction, so a
//!   running daemon (any node) sees CLI and API changes by polling [`Store::changes_since`].
//! - Call detail records are append-only history, written in batches, and not part of the change log.
//! - Active calls are transient rows, one per call in progress, written in batches by the node handling the call;
//!   not part of the change log and without foreign keys. Each node clears its own at start.
//! - Voicemail messages are rows written by the node that records them, the row before the first sample; not
//!   part of the change log. The audio is a file on that node.
//! - Emails are queued in the outbox table and claimed by one node at a time; not part of the change log.
//! - Times are Unix milliseconds.

mod active_calls;
mod backend;
mod cdrs;
mod directory;
mod errors;
mod location;
mod nodes;
mod outbox;
mod portal;
mod rows;
mod store;
mod tokens;
mod voicemail;

pub use backend::open;
pub use switchboard_model::records::*;
pub use switchboard_model::{DigestMode, DivertReason, DivertWhen, IpNet, IpNetError, parse_networks};

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique field already holds this value (`field` names it, e.g. `auth_id`).
    #[error("{entity} with this {field} already exists: {value}")]
    Conflict { entity: &'static str, field: &'static str, value: String },
    /// A referenced record does not exist.
    #[error("no such {entity}: {key}")]
    NotFound { entity: &'static str, key: String },
    /// The database URL is not one we support.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://...")]
    BadUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Persistent state. Implementations must be safe to share between tasks and nodes.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    // customers
    async fn create_customer(&self, name: &str) -> Result<Customer>;
    async fn customer(&self, id: i64) -> Result<Option<Customer>>;
    async fn customer_by_name(&self, name: &str) -> Result<Option<Customer>>;
    async fn list_customers(&self) -> Result<Vec<Customer>>;

    // services
    async fn create_service(&self, new: &NewService) -> Result<Service>;
    async fn service_by_name(&self, name: &str) -> Result<Option<Service>>;
    async fn service(&self, id: i64) -> Result<Option<Service>>;
    /// Sets the service's operating mode and region.
    async fn update_service(&self, id: i64, mode: ServiceMode, region: Option<&str>) -> Result<Service>;
    /// Sets whether every device of the service must use TLS; logged, so running daemons apply it.
    async fn set_service_require_tls(&self, id: i64, require_tls: bool) -> Result<Service>;
    /// All services, or those of one customer.
    async fn list_services(&self, customer_id: Option<i64>) -> Result<Vec<Service>>;

    // devices
    async fn create_device(&self, new: &NewDevice) -> Result<Device>;
    /// Creates all devices in one transaction: either all exist afterwards or none.
    async fn create_devices(&self, new: &[NewDevice]) -> Result<Vec<Device>>;
    async fn device(&self, id: i64) -> Result<Option<Device>>;
    async fn device_by_auth_id(&self, auth_id: &str) -> Result<Option<Device>>;
    async fn device_by_name(&self, service_id: i64, name: &str) -> Result<Option<Device>>;
    /// All devices, or those of one service, ordered by id.
    async fn list_devices(&self, service_id: Option<i64>) -> Result<Vec<Device>>;
    async fn update_device(&self, id: i64, update: &DeviceUpdate) -> Result<Device>;
    /// Removes the device with its bindings and state.
    async fn delete_device(&self, id: i64) -> Result<()>;

    // numbers (DIDs)
    /// Fails with `NotFound` for a missing service, or a device that is missing or of another service.
    async fn create_number(&self, new: &NewNumber) -> Result<Number>;
    async fn number(&self, id: i64) -> Result<Option<Number>>;
    /// By E.164 (`+61...`), exactly as stored.
    async fn number_by_e164(&self, number: &str) -> Result<Option<Number>>;
    /// All numbers, or those of one service, ordered by number.
    async fn list_numbers(&self, service_id: Option<i64>) -> Result<Vec<Number>>;
    async fn update_number(&self, id: i64, update: &NumberUpdate) -> Result<Number>;
    async fn delete_number(&self, id: i64) -> Result<()>;

    // carrier gateways
    async fn create_gateway(&self, new: &NewGateway) -> Result<Gateway>;
    async fn gateway_by_name(&self, name: &str) -> Result<Option<Gateway>>;
    /// Every gateway in the order to try them: priority (lowest first), then id.
    async fn list_gateways(&self) -> Result<Vec<Gateway>>;
    async fn delete_gateway(&self, id: i64) -> Result<()>;

    // bindings (the location service's persistent copy)
    /// Applies the operations in order, in one transaction.
    async fn apply_bindings(&self, ops: &[BindingOp]) -> Result<()>;
    /// Every stored binding, including expired ones not yet purged.
    async fn list_bindings(&self) -> Result<Vec<Binding>>;
    async fn bindings_for_device(&self, device_id: i64) -> Result<Vec<Binding>>;
    /// The bindings of every device of service `service_id`, by device.
    async fn bindings_for_service(&self, service_id: i64) -> Result<Vec<Binding>>;
    /// Deletes bindings with `expires_at <= now`; returns how many.
    async fn purge_expired_bindings(&self, now: Millis) -> Result<u64>;

    // device liveness
    async fn set_device_state(&self, state: &DeviceState) -> Result<()>;
    async fn device_states(&self) -> Result<Vec<DeviceState>>;
    /// The stored states of one service's devices (a page of devices reads only those).
    async fn service_device_states(&self, service_id: i64) -> Result<Vec<DeviceState>>;
    /// One device's stored state.
    async fn device_state(&self, device_id: i64) -> Result<Option<DeviceState>>;
    /// Records each device's last successful authentication (the daemon writes it when it changes).
    async fn set_device_auths(&self, auths: &[DeviceAuth]) -> Result<()>;
    /// Every device's last successful authentication.
    async fn device_auths(&self) -> Result<Vec<DeviceAuth>>;
    /// One device's last successful authentication, if it ever authenticated.
    async fn device_auth(&self, device_id: i64) -> Result<Option<DeviceAuth>>;

    // call detail records
    /// Inserts every CDR in one transaction: either all are stored or none. A `device_id` whose device no longer
    /// exists is stored as NULL (as if the device had been deleted afterwards); a `service_id` that does not exist
    /// fails the batch with `NotFound` (service, keyed by the batch's service ids).
    async fn insert_cdrs(&self, cdrs: &[NewCdr]) -> Result<()>;
    /// CDRs matching `filter`, newest (`started_at`, then id) first, at most `filter.limit` capped at
    /// [`CDR_LIST_MAX`]; none if the limit is zero or less.
    async fn list_cdrs(&self, filter: &CdrFilter) -> Result<Vec<Cdr>>;

    // calls in progress
    /// Applies the operations in order, in one transaction. Removing a call that is not stored does nothing.
    async fn apply_active_calls(&self, ops: &[ActiveCallOp]) -> Result<()>;
    /// Every stored call, oldest (`started_at`, then `call_id`) first.
    async fn list_active_calls(&self) -> Result<Vec<ActiveCall>>;
    /// Deletes the calls of `node` (a node clears its own at start); returns how many.
    async fn clear_active_calls(&self, node: &str) -> Result<u64>;

    // voicemail
    /// A number's mailbox settings; `None` if none were ever set.
    async fn mailbox(&self, number_id: i64) -> Result<Option<Mailbox>>;
    /// Sets (or with `None` clears) the PIN hash, creating the mailbox if needed; clears failures and any lock.
    /// `NotFound` (number) if the number does not exist.
    async fn set_mailbox_pin(&self, number_id: i64, pin_hash: Option<&str>) -> Result<Mailbox>;
    /// Sets (or with `None` clears) where new messages are emailed, and whether the mailbox keeps them after;
    /// creates the mailbox if needed. `NotFound` (number) if the number does not exist.
    async fn set_mailbox_email(&self, number_id: i64, email: Option<&str>, keep: bool) -> Result<Mailbox>;
    /// Counts a wrong PIN; at `limit` in a row the mailbox is locked until `lock_until` and the count restarts.
    /// Returns the mailbox after. `NotFound` (mailbox) if it has none.
    async fn mailbox_pin_failed(&self, number_id: i64, limit: i64, lock_until: Millis) -> Result<Mailbox>;
    /// A right PIN: failures and any lock are cleared.
    async fn mailbox_pin_passed(&self, number_id: i64) -> Result<()>;
    /// Stores a message as it starts (status `recording`, no duration). `NotFound` (number) if the number has gone.
    async fn create_voicemail(&self, new: &NewVoicemail) -> Result<Voicemail>;
    /// A recording ends: status `new` with its duration. `NotFound` unless it is stored and still `recording`.
    async fn finish_voicemail(&self, id: i64, duration_ms: i64) -> Result<()>;
    /// `NotFound` if the message is not stored.
    async fn set_voicemail_status(&self, id: i64, status: VoicemailStatus) -> Result<()>;
    /// `NotFound` if the message is not stored. The file is the caller's to remove.
    async fn delete_voicemail(&self, id: i64) -> Result<()>;
    async fn voicemail(&self, id: i64) -> Result<Option<Voicemail>>;
    /// Every message of a number's mailbox, oldest first, whatever its status.
    async fn list_voicemails(&self, number_id: i64) -> Result<Vec<Voicemail>>;
    /// Each mailbox holding messages: its number, how many are new and how many saved (recording ones count in
    /// neither), by number.
    async fn voicemail_counts(&self) -> Result<Vec<(String, i64, i64)>>;
    /// The messages `node` was still recording (a node calls this at start to recover them), oldest first.
    async fn unfinished_voicemails(&self, node: &str) -> Result<Vec<Voicemail>>;

    // email outbox
    /// Queues an email, due now. `None`: one with the same `dedupe` key was queued before (it is not queued
    /// again).
    async fn enqueue_email(&self, new: &NewEmail) -> Result<Option<Email>>;
    /// Claims up to `limit` due emails for `node` (those it may send: no node named, or this one) for
    /// `lease_ms`, oldest first. No other node gets them until they are settled or the lease lapses.
    async fn claim_emails(&self, node: &str, now: Millis, lease_ms: i64, limit: i64) -> Result<Vec<Email>>;
    /// A claimed email went out.
    async fn email_sent(&self, id: i64, at: Millis) -> Result<()>;
    /// A claimed email failed with `error`: tried again at `retry_at`, or given up (`failed`) with `None`.
    async fn email_failed(&self, id: i64, error: &str, retry_at: Option<Millis>) -> Result<()>;
    /// The newest emails, any status, at most `limit` (1 to 10,000).
    async fn list_outbox(&self, limit: i64) -> Result<Vec<Email>>;
    /// How many emails stand in each status (statuses with none are left out).
    async fn outbox_counts(&self) -> Result<Vec<(OutboxStatus, i64)>>;

    // change log
    /// Changes with `seq > after`, oldest first, at most `limit`.
    async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<Change>>;
    /// The newest change's seq (0 if none).
    async fn last_change(&self) -> Result<i64>;

    // management API tokens
    /// Conflict on `name` (or, never in practice, `token_hash`); NotFound when the customer does not exist.
    async fn create_api_token(&self, new: &NewApiToken) -> Result<ApiToken>;
    /// The live (not revoked) token with this hash.
    async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>>;
    /// Every token, revoked ones too, oldest first.
    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>>;
    /// Revokes the live token named `name`; NotFound when there is none.
    async fn revoke_api_token(&self, name: &str) -> Result<ApiToken>;
    /// Records a use of token `id` at `at`.
    async fn touch_api_token(&self, id: i64, at: Millis) -> Result<()>;

    // customer portal
    /// A login for `email` (stored lower-case), linked to `customer_id` if given; Conflict on `email`.
    async fn create_login(&self, email: &str, customer_id: Option<i64>) -> Result<Login>;
    async fn login(&self, id: i64) -> Result<Option<Login>>;
    async fn login_by_email(&self, email: &str) -> Result<Option<Login>>;
    async fn list_logins(&self) -> Result<Vec<Login>>;
    /// Links the login to a customer (or unlinks it with `None`).
    async fn link_login(&self, id: i64, customer_id: Option<i64>) -> Result<Login>;
    /// Sets the password hash, and ends every session and unused link of the login.
    async fn set_login_password(&self, id: i64, password_hash: &str, at: Millis) -> Result<()>;
    async fn delete_login(&self, id: i64) -> Result<()>;
    async fn create_session(&self, session: &Session) -> Result<()>;
    /// The session with this id hash, if it has not expired at `now`.
    async fn session(&self, id_hash: &str, now: Millis) -> Result<Option<Session>>;
    async fn touch_session(&self, id_hash: &str, at: Millis, expires_at: Millis) -> Result<()>;
    async fn delete_session(&self, id_hash: &str) -> Result<()>;
    /// Deletes sessions expired at `now` and links spent or expired before `before`; how many rows went.
    async fn purge_portal(&self, now: Millis, before: Millis) -> Result<u64>;
    async fn create_login_token(&self, token: &NewLoginToken) -> Result<()>;
    /// Spends a one-time link: `None` when unknown, used or expired at `now`; never twice.
    async fn spend_login_token(&self, token_hash: &str, now: Millis) -> Result<Option<SpentToken>>;
    /// Whether the link is unused and unexpired at `now` (without spending it).
    async fn login_token_live(&self, token_hash: &str, now: Millis) -> Result<bool>;

    // cluster
    /// Inserts or replaces the node's row (its start and its latest heartbeat).
    async fn heartbeat_node(&self, node: &Node) -> Result<()>;
    /// Every node that ever announced itself, by region and name, with the bindings each holds.
    async fn list_nodes(&self) -> Result<Vec<(Node, i64)>>;
    /// Nodes whose last heartbeat is at or after `since` (the live ones), without counting their bindings.
    async fn live_nodes(&self, since: Millis) -> Result<Vec<Node>>;
    /// Bindings that nodes other than `node` hold, updated after `since` and unexpired at `now`.
    async fn bindings_elsewhere(&self, node: &str, since: Millis, now: Millis) -> Result<Vec<Located>>;
}
