//! The [`Store`] trait, implemented by delegating to the SQL in `directory`, `location`, `cdrs`,
//! `active_calls`, `voicemail`, `outbox` and `tokens`.

use async_trait::async_trait;

use crate::backend::SqlStore;
use crate::{
    ActiveCall, ActiveCallOp, ApiToken, Binding, BindingOp, Cdr, CdrFilter, Change, Customer, Device, DeviceAuth,
    DeviceState, DeviceUpdate, Email, Gateway, Located, Login, Mailbox, Millis, NewApiToken, NewCdr, NewDevice,
    NewEmail, NewGateway, NewLoginToken, NewNumber, NewService, NewVoicemail, Node, Number, NumberUpdate, OutboxStatus,
    Result, Service, ServiceMode, Session, SpentToken, Store, Voicemail, VoicemailStatus,
};

#[async_trait]
impl Store for SqlStore {
    async fn create_customer(&self, name: &str) -> Result<Customer> {
        SqlStore::create_customer(self, name).await
    }
    async fn customer(&self, id: i64) -> Result<Option<Customer>> {
        SqlStore::customer(self, id).await
    }
    async fn customer_by_name(&self, name: &str) -> Result<Option<Customer>> {
        SqlStore::customer_by_name(self, name).await
    }
    async fn list_customers(&self) -> Result<Vec<Customer>> {
        SqlStore::list_customers(self).await
    }

    async fn create_service(&self, new: &NewService) -> Result<Service> {
        SqlStore::create_service(self, new).await
    }
    async fn update_service(&self, id: i64, mode: ServiceMode, region: Option<&str>) -> Result<Service> {
        SqlStore::update_service(self, id, mode, region).await
    }
    async fn set_service_require_tls(&self, id: i64, require_tls: bool) -> Result<Service> {
        SqlStore::set_service_require_tls(self, id, require_tls).await
    }
    async fn service_by_name(&self, name: &str) -> Result<Option<Service>> {
        SqlStore::service_by_name(self, name).await
    }
    async fn service(&self, id: i64) -> Result<Option<Service>> {
        SqlStore::service(self, id).await
    }
    async fn list_services(&self, customer_id: Option<i64>) -> Result<Vec<Service>> {
        SqlStore::list_services(self, customer_id).await
    }

    async fn create_device(&self, new: &NewDevice) -> Result<Device> {
        let mut created = SqlStore::create_devices(self, std::slice::from_ref(new)).await?;
        created.pop().ok_or_else(|| crate::StoreError::Database(sqlx::Error::RowNotFound))
    }
    async fn create_devices(&self, new: &[NewDevice]) -> Result<Vec<Device>> {
        SqlStore::create_devices(self, new).await
    }
    async fn device(&self, id: i64) -> Result<Option<Device>> {
        SqlStore::device(self, id).await
    }
    async fn device_by_auth_id(&self, auth_id: &str) -> Result<Option<Device>> {
        SqlStore::device_by_auth_id(self, auth_id).await
    }
    async fn device_by_name(&self, service_id: i64, name: &str) -> Result<Option<Device>> {
        SqlStore::device_by_name(self, service_id, name).await
    }
    async fn list_devices(&self, service_id: Option<i64>) -> Result<Vec<Device>> {
        SqlStore::list_devices(self, service_id).await
    }
    async fn update_device(&self, id: i64, update: &DeviceUpdate) -> Result<Device> {
        SqlStore::update_device(self, id, update).await
    }
    async fn delete_device(&self, id: i64) -> Result<()> {
        SqlStore::delete_device(self, id).await
    }

    async fn create_number(&self, new: &NewNumber) -> Result<Number> {
        SqlStore::create_number(self, new).await
    }
    async fn number(&self, id: i64) -> Result<Option<Number>> {
        SqlStore::number(self, id).await
    }
    async fn number_by_e164(&self, number: &str) -> Result<Option<Number>> {
        SqlStore::number_by_e164(self, number).await
    }
    async fn list_numbers(&self, service_id: Option<i64>) -> Result<Vec<Number>> {
        SqlStore::list_numbers(self, service_id).await
    }
    async fn update_number(&self, id: i64, update: &NumberUpdate) -> Result<Number> {
        SqlStore::update_number(self, id, update).await
    }
    async fn delete_number(&self, id: i64) -> Result<()> {
        SqlStore::delete_number(self, id).await
    }

    async fn create_gateway(&self, new: &NewGateway) -> Result<Gateway> {
        SqlStore::create_gateway(self, new).await
    }
    async fn gateway_by_name(&self, name: &str) -> Result<Option<Gateway>> {
        SqlStore::gateway_by_name(self, name).await
    }
    async fn list_gateways(&self) -> Result<Vec<Gateway>> {
        SqlStore::list_gateways(self).await
    }
    async fn delete_gateway(&self, id: i64) -> Result<()> {
        SqlStore::delete_gateway(self, id).await
    }

    async fn apply_bindings(&self, ops: &[BindingOp]) -> Result<()> {
        SqlStore::apply_bindings(self, ops).await
    }
    async fn list_bindings(&self) -> Result<Vec<Binding>> {
        SqlStore::list_bindings(self).await
    }
    async fn bindings_for_service(&self, service_id: i64) -> Result<Vec<Binding>> {
        SqlStore::bindings_for_service(self, service_id).await
    }
    async fn bindings_for_device(&self, device_id: i64) -> Result<Vec<Binding>> {
        SqlStore::bindings_for_device(self, device_id).await
    }
    async fn purge_expired_bindings(&self, now: Millis) -> Result<u64> {
        SqlStore::purge_expired_bindings(self, now).await
    }

    async fn set_device_state(&self, state: &DeviceState) -> Result<()> {
        SqlStore::set_device_state(self, state).await
    }
    async fn device_states(&self) -> Result<Vec<DeviceState>> {
        SqlStore::device_states(self).await
    }
    async fn service_device_states(&self, service_id: i64) -> Result<Vec<DeviceState>> {
        SqlStore::device_states_of(self, Some(service_id), None).await
    }
    async fn device_state(&self, device_id: i64) -> Result<Option<DeviceState>> {
        Ok(SqlStore::device_states_of(self, None, Some(device_id)).await?.into_iter().next())
    }
    async fn set_device_auths(&self, auths: &[DeviceAuth]) -> Result<()> {
        SqlStore::set_device_auths(self, auths).await
    }
    async fn device_auths(&self) -> Result<Vec<DeviceAuth>> {
        SqlStore::device_auths(self).await
    }
    async fn device_auth(&self, device_id: i64) -> Result<Option<DeviceAuth>> {
        SqlStore::device_auth(self, device_id).await
    }

    async fn insert_cdrs(&self, cdrs: &[NewCdr]) -> Result<()> {
        SqlStore::insert_cdrs(self, cdrs).await
    }
    async fn list_cdrs(&self, filter: &CdrFilter) -> Result<Vec<Cdr>> {
        SqlStore::list_cdrs(self, filter).await
    }

    async fn apply_active_calls(&self, ops: &[ActiveCallOp]) -> Result<()> {
        SqlStore::apply_active_calls(self, ops).await
    }
    async fn list_active_calls(&self) -> Result<Vec<ActiveCall>> {
        SqlStore::list_active_calls(self).await
    }
    async fn clear_active_calls(&self, node: &str) -> Result<u64> {
        SqlStore::clear_active_calls(self, node).await
    }

    async fn mailbox(&self, number_id: i64) -> Result<Option<Mailbox>> {
        SqlStore::mailbox(self, number_id).await
    }
    async fn set_mailbox_pin(&self, number_id: i64, pin_hash: Option<&str>) -> Result<Mailbox> {
        SqlStore::set_mailbox_pin(self, number_id, pin_hash).await
    }
    async fn set_mailbox_email(&self, number_id: i64, email: Option<&str>, keep: bool) -> Result<Mailbox> {
        SqlStore::set_mailbox_email(self, number_id, email, keep).await
    }
    async fn mailbox_pin_failed(&self, number_id: i64, limit: i64, lock_until: Millis) -> Result<Mailbox> {
        SqlStore::mailbox_pin_failed(self, number_id, limit, lock_until).await
    }
    async fn mailbox_pin_passed(&self, number_id: i64) -> Result<()> {
        SqlStore::mailbox_pin_passed(self, number_id).await
    }
    async fn create_voicemail(&self, new: &NewVoicemail) -> Result<Voicemail> {
        SqlStore::create_voicemail(self, new).await
    }
    async fn finish_voicemail(&self, id: i64, duration_ms: i64) -> Result<()> {
        SqlStore::finish_voicemail(self, id, duration_ms).await
    }
    async fn set_voicemail_status(&self, id: i64, status: VoicemailStatus) -> Result<()> {
        SqlStore::set_voicemail_status(self, id, status).await
    }
    async fn delete_voicemail(&self, id: i64) -> Result<()> {
        SqlStore::delete_voicemail(self, id).await
    }
    async fn voicemail(&self, id: i64) -> Result<Option<Voicemail>> {
        SqlStore::voicemail(self, id).await
    }
    async fn list_voicemails(&self, number_id: i64) -> Result<Vec<Voicemail>> {
        SqlStore::list_voicemails(self, number_id).await
    }
    async fn voicemail_counts(&self) -> Result<Vec<(String, i64, i64)>> {
        SqlStore::voicemail_counts(self).await
    }
    async fn unfinished_voicemails(&self, node: &str) -> Result<Vec<Voicemail>> {
        SqlStore::unfinished_voicemails(self, node).await
    }
    async fn enqueue_email(&self, new: &NewEmail) -> Result<Option<Email>> {
        SqlStore::enqueue_email(self, new).await
    }
    async fn claim_emails(&self, node: &str, now: Millis, lease_ms: i64, limit: i64) -> Result<Vec<Email>> {
        SqlStore::claim_emails(self, node, now, lease_ms, limit).await
    }
    async fn email_sent(&self, id: i64, at: Millis) -> Result<()> {
        SqlStore::email_sent(self, id, at).await
    }
    async fn email_failed(&self, id: i64, error: &str, retry_at: Option<Millis>) -> Result<()> {
        SqlStore::email_failed(self, id, error, retry_at).await
    }
    async fn list_outbox(&self, limit: i64) -> Result<Vec<Email>> {
        SqlStore::list_outbox(self, limit).await
    }
    async fn outbox_counts(&self) -> Result<Vec<(OutboxStatus, i64)>> {
        SqlStore::outbox_counts(self).await
    }
    async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<Change>> {
        SqlStore::changes_since(self, after, limit).await
    }
    async fn last_change(&self) -> Result<i64> {
        SqlStore::last_change(self).await
    }
    async fn create_api_token(&self, new: &NewApiToken) -> Result<ApiToken> {
        SqlStore::create_api_token(self, new).await
    }
    async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        SqlStore::api_token_by_hash(self, token_hash).await
    }
    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>> {
        SqlStore::list_api_tokens(self).await
    }
    async fn revoke_api_token(&self, name: &str) -> Result<ApiToken> {
        SqlStore::revoke_api_token(self, name).await
    }
    async fn touch_api_token(&self, id: i64, at: Millis) -> Result<()> {
        SqlStore::touch_api_token(self, id, at).await
    }
    async fn create_login(&self, email: &str, customer_id: Option<i64>) -> Result<Login> {
        SqlStore::create_login(self, email, customer_id).await
    }
    async fn login(&self, id: i64) -> Result<Option<Login>> {
        SqlStore::login(self, id).await
    }
    async fn login_by_email(&self, email: &str) -> Result<Option<Login>> {
        SqlStore::login_by_email(self, email).await
    }
    async fn list_logins(&self) -> Result<Vec<Login>> {
        SqlStore::list_logins(self).await
    }
    async fn link_login(&self, id: i64, customer_id: Option<i64>) -> Result<Login> {
        SqlStore::link_login(self, id, customer_id).await
    }
    async fn set_login_password(&self, id: i64, password_hash: &str, at: Millis) -> Result<()> {
        SqlStore::set_login_password(self, id, password_hash, at).await
    }
    async fn delete_login(&self, id: i64) -> Result<()> {
        SqlStore::delete_login(self, id).await
    }
    async fn create_session(&self, session: &Session) -> Result<()> {
        SqlStore::create_session(self, session).await
    }
    async fn session(&self, id_hash: &str, now: Millis) -> Result<Option<Session>> {
        SqlStore::session(self, id_hash, now).await
    }
    async fn touch_session(&self, id_hash: &str, at: Millis, expires_at: Millis) -> Result<()> {
        SqlStore::touch_session(self, id_hash, at, expires_at).await
    }
    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        SqlStore::delete_session(self, id_hash).await
    }
    async fn purge_portal(&self, now: Millis, before: Millis) -> Result<u64> {
        SqlStore::purge_portal(self, now, before).await
    }
    async fn create_login_token(&self, token: &NewLoginToken) -> Result<()> {
        SqlStore::create_login_token(self, token).await
    }
    async fn spend_login_token(&self, token_hash: &str, now: Millis) -> Result<Option<SpentToken>> {
        SqlStore::spend_login_token(self, token_hash, now).await
    }
    async fn login_token_live(&self, token_hash: &str, now: Millis) -> Result<bool> {
        SqlStore::login_token_live(self, token_hash, now).await
    }
    async fn heartbeat_node(&self, node: &Node) -> Result<()> {
        SqlStore::heartbeat_node(self, node).await
    }
    async fn list_nodes(&self) -> Result<Vec<(Node, i64)>> {
        SqlStore::list_nodes(self).await
    }
    async fn live_nodes(&self, since: Millis) -> Result<Vec<Node>> {
        SqlStore::live_nodes(self, since).await
    }
    async fn bindings_elsewhere(&self, node: &str, since: Millis, now: Millis) -> Result<Vec<Located>> {
        SqlStore::bindings_elsewhere(self, node, since, now).await
    }
}
