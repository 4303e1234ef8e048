//! Customers, services, devices, numbers and gateways: the provisioned directory. Every write appends to the change log in the same
//! transaction, so other nodes' caches learn about it by polling `changes_since`.

use crate::backend::{SqlStore, WritePool, log_change, now_ms, with_pool};
use crate::errors::WriteCtx;
use crate::rows::{
    CustomerRow, DeviceRow, GatewayRow, NumberRow, ServiceRow, convert_all, device_columns, encode_list,
    gateway_columns, networks_column, number_columns, service_columns,
};
use crate::{
    Customer, Device, DeviceUpdate, Entity, Gateway, NewDevice, NewGateway, NewNumber, NewService, Number,
    NumberUpdate, Result, Service, ServiceMode, StoreError,
};

const INSERT_SERVICE: &str = concat!(
    "INSERT INTO services (customer_id, name, mode, region, created_at, require_tls) VALUES ($1, $2, $3, $4, $5, $6) \
     RETURNING ",
    service_columns!()
);

const INSERT_DEVICE: &str = concat!(
    "INSERT INTO devices (service_id, name, auth_id, realm, ha1_md5, ha1_sha256, ha1_sha512_256, caller_id, \
     call_types, max_contacts, trusted_address, digest, md5_from, require_tls, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $15, $14, $14) RETURNING ",
    device_columns!()
);

const UPDATE_DEVICE: &str = concat!(
    "UPDATE devices SET name = $2, realm = $3, ha1_md5 = $4, ha1_sha256 = $5, ha1_sha512_256 = $6, \
     caller_id = $7, call_types = $8, max_contacts = $9, trusted_address = $10, digest = $11, md5_from = $12, \
     updated_at = $13, require_tls = $14 \
     WHERE id = $1 RETURNING ",
    device_columns!()
);

const INSERT_NUMBER: &str = concat!(
    "INSERT INTO numbers (service_id, number, device_id, divert_when, divert_to, no_answer_secs, offline_alert, \
     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING ",
    number_columns!()
);

const UPDATE_NUMBER: &str = concat!(
    "UPDATE numbers SET device_id = $2, divert_when = $3, divert_to = $4, no_answer_secs = $5, offline_alert = $6, \
     updated_at = $7 WHERE id = $1 RETURNING ",
    number_columns!()
);

const INSERT_GATEWAY: &str = concat!(
    "INSERT INTO gateways (name, address, transport, priority, enabled, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
    gateway_columns!()
);

impl SqlStore {
    pub(crate) async fn create_customer(&self, name: &str) -> Result<Customer> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin_logged().await?;
            let row: CustomerRow = sqlx::query_as(
                "INSERT INTO customers (name, created_at) VALUES ($1, $2) RETURNING id, name, created_at",
            )
            .bind(name)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| WriteCtx::new("customer", &[("name", name)]).error(e))?;
            let customer = Customer::from(row);
            log_change!(tx, Entity::Customer, customer.id, now);
            tx.commit().await?;
            Ok(customer)
        })
    }

    pub(crate) async fn customer(&self, id: i64) -> Result<Option<Customer>> {
        with_pool!(self, pool => {
            let row: Option<CustomerRow> = sqlx::query_as("SELECT id, name, created_at FROM customers WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(Customer::from))
        })
    }

    pub(crate) async fn customer_by_name(&self, name: &str) -> Result<Option<Customer>> {
        with_pool!(self, pool => {
            let row: Option<CustomerRow> =
                sqlx::query_as("SELECT id, name, created_at FROM customers WHERE name = $1")
                    .bind(name)
                    .fetch_optional(pool)
                    .await?;
            Ok(row.map(Customer::from))
        })
    }

    pub(crate) async fn list_customers(&self) -> Result<Vec<Customer>> {
        with_pool!(self, pool => {
            let rows: Vec<CustomerRow> = sqlx::query_as("SELECT id, name, created_at FROM customers ORDER BY id")
                .fetch_all(pool)
                .await?;
            Ok(rows.into_iter().map(Customer::from).collect())
        })
    }

    pub(crate) async fn create_service(&self, new: &NewService) -> Result<Service> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin_logged().await?;
            let row: ServiceRow = sqlx::query_as(INSERT_SERVICE)
                .bind(new.customer_id)
                .bind(&new.name)
                .bind(new.mode.as_str())
                .bind(&new.region)
                .bind(now)
                .bind(new.require_tls)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| {
                    WriteCtx::new("service", &[("name", &new.name)]).parent("customer", new.customer_id).error(e)
                })?;
            let service = Service::try_from(row)?;
            log_change!(tx, Entity::Service, service.id, now);
            tx.commit().await?;
            Ok(service)
        })
    }

    pub(crate) async fn update_service(&self, id: i64, mode: ServiceMode, region: Option<&str>) -> Result<Service> {
        self.change_service(id, Some(mode), Some(region), None).await
    }

    pub(crate) async fn set_service_require_tls(&self, id: i64, require_tls: bool) -> Result<Service> {
        self.change_service(id, None, None, Some(require_tls)).await
    }

    /// Changes what is given (`None` keeps it; `region: Some(None)` clears it), logged for the daemons.
    async fn change_service(
        &self,
        id: i64,
        mode: Option<ServiceMode>,
        region: Option<Option<&str>>,
        require_tls: Option<bool>,
    ) -> Result<Service> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin_logged().await?;
            let row: Option<ServiceRow> = sqlx::query_as(concat!(
                "UPDATE services SET mode = COALESCE($2, mode), region = CASE WHEN $3 THEN $4 ELSE region END, \
                 require_tls = COALESCE($5, require_tls) WHERE id = $1 RETURNING ",
                service_columns!()
            ))
            .bind(id)
            .bind(mode.map(ServiceMode::as_str))
            .bind(region.is_some())
            .bind(region.flatten())
            .bind(require_tls)
            .fetch_optional(&mut *tx)
            .await?;
            let service = row
                .ok_or_else(|| StoreError::NotFound { entity: "service", key: id.to_string() })
                .and_then(Service::try_from)?;
            log_change!(tx, Entity::Service, service.id, now);
            tx.commit().await?;
            Ok(service)
        })
    }

    pub(crate) async fn service_by_name(&self, name: &str) -> Result<Option<Service>> {
        with_pool!(self, pool => {
            let row: Option<ServiceRow> =
                sqlx::query_as(concat!("SELECT ", service_columns!(), " FROM services WHERE name = $1"))
                    .bind(name)
                    .fetch_optional(pool)
                    .await?;
            row.map(Service::try_from).transpose()
        })
    }

    pub(crate) async fn service(&self, id: i64) -> Result<Option<Service>> {
        with_pool!(self, pool => {
            let row: Option<ServiceRow> =
                sqlx::query_as(concat!("SELECT ", service_columns!(), " FROM services WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(pool)
                    .await?;
            row.map(Service::try_from).transpose()
        })
    }

    pub(crate) async fn list_services(&self, customer_id: Option<i64>) -> Result<Vec<Service>> {
        with_pool!(self, pool => {
            let rows: Vec<ServiceRow> = sqlx::query_as(concat!(
                "SELECT ", service_columns!(), " FROM services WHERE ($1 IS NULL OR customer_id = $1) ORDER BY id"
            ))
            .bind(customer_id)
            .fetch_all(pool)
            .await?;
            convert_all(rows)
        })
    }

    /// All or nothing: the first failing row rolls back the whole batch (the transaction is dropped uncommitted).
    pub(crate) async fn create_devices(&self, new: &[NewDevice]) -> Result<Vec<Device>> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin_logged().await?;
            let mut created = Vec::with_capacity(new.len());
            for d in new {
                let row: DeviceRow = sqlx::query_as(INSERT_DEVICE)
                    .bind(d.service_id)
                    .bind(&d.name)
                    .bind(&d.auth_id)
                    .bind(&d.credentials.realm)
                    .bind(&d.credentials.ha1_md5)
                    .bind(&d.credentials.ha1_sha256)
                    .bind(&d.credentials.ha1_sha512_256)
                    .bind(&d.caller_id)
                    .bind(encode_list(&d.call_types))
                    .bind(d.max_contacts)
                    .bind(&d.trusted_address)
                    .bind(d.digest.as_str())
                    .bind(networks_column(&d.md5_from))
                    .bind(now)
                    .bind(d.require_tls)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| {
                        device_ctx(&d.auth_id, &d.name, d.trusted_address.as_deref(), Some(d.service_id)).error(e)
                    })?;
                log_change!(tx, Entity::Device, row.id, now);
                created.push(Device::try_from(row)?);
            }
            tx.commit().await?;
            Ok(created)
        })
    }

    pub(crate) async fn device(&self, id: i64) -> Result<Option<Device>> {
        with_pool!(self, pool => {
            let row: Option<DeviceRow> =
                sqlx::query_as(concat!("SELECT ", device_columns!(), " FROM devices WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(pool)
                    .await?;
            row.map(Device::try_from).transpose()
        })
    }

    pub(crate) async fn device_by_auth_id(&self, auth_id: &str) -> Result<Option<Device>> {
        with_pool!(self, pool => {
            let row: Option<DeviceRow> =
                sqlx::query_as(concat!("SELECT ", device_columns!(), " FROM devices WHERE auth_id = $1"))
                    .bind(auth_id)
                    .fetch_optional(pool)
                    .await?;
            row.map(Device::try_from).transpose()
        })
    }

    pub(crate) async fn device_by_name(&self, service_id: i64, name: &str) -> Result<Option<Device>> {
        with_pool!(self, pool => {
            let row: Option<DeviceRow> = sqlx::query_as(concat!(
                "SELECT ", device_columns!(), " FROM devices WHERE service_id = $1 AND name = $2"
            ))
            .bind(service_id)
            .bind(name)
            .fetch_optional(pool)
            .await?;
            row.map(Device::try_from).transpose()
        })
    }

    pub(crate) async fn list_devices(&self, service_id: Option<i64>) -> Result<Vec<Device>> {
        with_pool!(self, pool => {
            let rows: Vec<DeviceRow> = sqlx::query_as(concat!(
                "SELECT ", device_columns!(), " FROM devices WHERE ($1 IS NULL OR service_id = $1) ORDER BY id"
            ))
            .bind(service_id)
            .fetch_all(pool)
            .await?;
            convert_all(rows)
        })
    }

    /// Read, merge in Rust, write back: one UPDATE statement for any combination of fields. The change-log lock
    /// taken by `begin_logged` serialises directory writers, so the read cannot go stale before the write.
    pub(crate) async fn update_device(&self, id: i64, update: &DeviceUpdate) -> Result<Device> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin_logged().await?;
            let current: Option<DeviceRow> =
                sqlx::query_as(concat!("SELECT ", device_columns!(), " FROM devices WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(current) = current else {
                return Err(device_not_found(id));
            };
            let mut d = Device::try_from(current)?;
            merge(&mut d, update);
            let row: DeviceRow = sqlx::query_as(UPDATE_DEVICE)
                .bind(id)
                .bind(&d.name)
                .bind(&d.credentials.realm)
                .bind(&d.credentials.ha1_md5)
                .bind(&d.credentials.ha1_sha256)
                .bind(&d.credentials.ha1_sha512_256)
                .bind(&d.caller_id)
                .bind(encode_list(&d.call_types))
                .bind(d.max_contacts)
                .bind(&d.trusted_address)
                .bind(d.digest.as_str())
                .bind(networks_column(&d.md5_from))
                .bind(now)
                .bind(d.require_tls)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| device_ctx(&d.auth_id, &d.name, d.trusted_address.as_deref(), None).error(e))?;
            log_change!(tx, Entity::Device, id, now);
            tx.commit().await?;
            Device::try_from(row)
        })
    }

    /// Bindings and state go with the device (`ON DELETE CASCADE`); numbers pinned to it lose their device
    /// (`ON DELETE SET NULL`) and are logged as changed too.
    pub(crate) async fn delete_device(&self, id: i64) -> Result<()> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin_logged().await?;
            let pinned: Vec<(i64,)> = sqlx::query_as("SELECT id FROM numbers WHERE device_id = $1 ORDER BY id")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
            let deleted = sqlx::query("DELETE FROM devices WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                return Err(device_not_found(id));
            }
            log_change!(tx, Entity::Device, id, now);
            for (number_id,) in pinned {
                log_change!(tx, Entity::Number, number_id, now);
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub(crate) async fn create_number(&self, new: &NewNumber) -> Result<Number> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin_logged().await?;
            if let Some(device_id) = new.device_id {
                let owner: Option<(i64,)> = sqlx::query_as("SELECT service_id FROM devices WHERE id = $1")
                    .bind(device_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if owner.map(|(s,)| s) != Some(new.service_id) {
                    return Err(device_not_found(device_id));
                }
            }
            let row: NumberRow = sqlx::query_as(INSERT_NUMBER)
                .bind(new.service_id)
                .bind(&new.number)
                .bind(new.device_id)
                .bind(new.divert_when.as_str())
                .bind(&new.divert_to)
                .bind(new.no_answer_secs)
                .bind(&new.offline_alert)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| {
                    WriteCtx::new("number", &[("number", &new.number)]).parent("service", new.service_id).error(e)
                })?;
            let number = Number::try_from(row)?;
            log_change!(tx, Entity::Number, number.id, now);
            tx.commit().await?;
            Ok(number)
        })
    }

    pub(crate) async fn number(&self, id: i64) -> Result<Option<Number>> {
        with_pool!(self, pool => {
            let row: Option<NumberRow> =
                sqlx::query_as(concat!("SELECT ", number_columns!(), " FROM numbers WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(pool)
                    .await?;
            row.map(Number::try_from).transpose()
        })
    }

    pub(crate) async fn number_by_e164(&self, number: &str) -> Result<Option<Number>> {
        with_pool!(self, pool => {
            let row: Option<NumberRow> =
                sqlx::query_as(concat!("SELECT ", number_columns!(), " FROM numbers WHERE number = $1"))
                    .bind(number)
                    .fetch_optional(pool)
                    .await?;
            row.map(Number::try_from).transpose()
        })
    }

    pub(crate) async fn list_numbers(&self, service_id: Option<i64>) -> Result<Vec<Number>> {
        with_pool!(self, pool => {
            let rows: Vec<NumberRow> = sqlx::query_as(concat!(
                "SELECT ", number_columns!(), " FROM numbers WHERE ($1 IS NULL OR service_id = $1) ORDER BY number"
            ))
            .bind(service_id)
            .fetch_all(pool)
            .await?;
            convert_all(rows)
        })
    }

    /// Read, merge, write back under the change-log lock, like [`SqlStore::update_device`].
    pub(crate) async fn update_number(&self, id: i64, update: &NumberUpdate) -> Result<Number> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin_logged().await?;
            let current: Option<NumberRow> =
                sqlx::query_as(concat!("SELECT ", number_columns!(), " FROM numbers WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(current) = current else {
                return Err(number_not_found(id));
            };
            let mut n = Number::try_from(current)?;
            merge_number(&mut n, update);
            if let Some(Some(device_id)) = update.device_id {
                let owner: Option<(i64,)> = sqlx::query_as("SELECT service_id FROM devices WHERE id = $1")
                    .bind(device_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if owner.map(|(s,)| s) != Some(n.service_id) {
                    return Err(device_not_found(device_id));
                }
            }
            let row: NumberRow = sqlx::query_as(UPDATE_NUMBER)
                .bind(id)
                .bind(n.device_id)
                .bind(n.divert_when.as_str())
                .bind(&n.divert_to)
                .bind(n.no_answer_secs)
                .bind(&n.offline_alert)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            log_change!(tx, Entity::Number, id, now);
            tx.commit().await?;
            Number::try_from(row)
        })
    }

    pub(crate) async fn delete_number(&self, id: i64) -> Result<()> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin_logged().await?;
            let deleted = sqlx::query("DELETE FROM numbers WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                return Err(number_not_found(id));
            }
            log_change!(tx, Entity::Number, id, now);
            tx.commit().await?;
            Ok(())
        })
    }

    pub(crate) async fn create_gateway(&self, new: &NewGateway) -> Result<Gateway> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin_logged().await?;
            let row: GatewayRow = sqlx::query_as(INSERT_GATEWAY)
                .bind(&new.name)
                .bind(&new.address)
                .bind(&new.transport)
                .bind(new.priority)
                .bind(new.enabled)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| WriteCtx::new("gateway", &[("name", &new.name)]).error(e))?;
            let gateway = Gateway::from(row);
            log_change!(tx, Entity::Gateway, gateway.id, now);
            tx.commit().await?;
            Ok(gateway)
        })
    }

    pub(crate) async fn gateway_by_name(&self, name: &str) -> Result<Option<Gateway>> {
        with_pool!(self, pool => {
            let row: Option<GatewayRow> =
                sqlx::query_as(concat!("SELECT ", gateway_columns!(), " FROM gateways WHERE name = $1"))
                    .bind(name)
                    .fetch_optional(pool)
                    .await?;
            Ok(row.map(Gateway::from))
        })
    }

    pub(crate) async fn list_gateways(&self) -> Result<Vec<Gateway>> {
        with_pool!(self, pool => {
            let rows: Vec<GatewayRow> =
                sqlx::query_as(concat!("SELECT ", gateway_columns!(), " FROM gateways ORDER BY priority, id"))
                    .fetch_all(pool)
                    .await?;
            Ok(rows.into_iter().map(Gateway::from).collect())
        })
    }

    pub(crate) async fn delete_gateway(&self, id: i64) -> Result<()> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin_logged().await?;
            let deleted = sqlx::query("DELETE FROM gateways WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                return Err(StoreError::NotFound { entity: "gateway", key: id.to_string() });
            }
            log_change!(tx, Entity::Gateway, id, now);
            tx.commit().await?;
            Ok(())
        })
    }
}

fn merge_number(n: &mut Number, update: &NumberUpdate) {
    let NumberUpdate { device_id, divert_when, divert_to, no_answer_secs, offline_alert } = update;
    if let Some(device_id) = device_id {
        n.device_id = *device_id;
    }
    if let Some(divert_when) = divert_when {
        n.divert_when = *divert_when;
    }
    if let Some(divert_to) = divert_to {
        n.divert_to.clone_from(divert_to);
    }
    if let Some(no_answer_secs) = no_answer_secs {
        n.no_answer_secs = *no_answer_secs;
    }
    if let Some(offline_alert) = offline_alert {
        n.offline_alert.clone_from(offline_alert);
    }
}

fn number_not_found(id: i64) -> StoreError {
    StoreError::NotFound { entity: "number", key: id.to_string() }
}

/// The constraints a device write can break: `auth_id` and `trusted_address` (global), and `name` (within the
/// service).
fn device_ctx<'a>(
    auth_id: &'a str,
    name: &'a str,
    trusted_address: Option<&'a str>,
    service_id: Option<i64>,
) -> DeviceCtx<'a> {
    let unique = [("auth_id", auth_id), ("trusted_address", trusted_address.unwrap_or_default()), ("name", name)];
    DeviceCtx { unique, service_id }
}

/// Owns the unique-field list so the borrowed [`WriteCtx`] can be built from it.
struct DeviceCtx<'a> {
    unique: [(&'static str, &'a str); 3],
    service_id: Option<i64>,
}

impl DeviceCtx<'_> {
    fn error(&self, err: sqlx::Error) -> StoreError {
        let ctx = WriteCtx::new("device", &self.unique);
        match self.service_id {
            Some(service_id) => ctx.parent("service", service_id).error(err),
            None => ctx.error(err),
        }
    }
}

fn merge(d: &mut Device, update: &DeviceUpdate) {
    let DeviceUpdate {
        name,
        caller_id,
        call_types,
        max_contacts,
        credentials,
        trusted_address,
        digest,
        md5_from,
        require_tls,
    } = update;
    if let Some(require_tls) = require_tls {
        d.require_tls = *require_tls;
    }
    if let Some(digest) = digest {
        d.digest = *digest;
    }
    if let Some(md5_from) = md5_from {
        d.md5_from.clone_from(md5_from);
    }
    if let Some(name) = name {
        d.name.clone_from(name);
    }
    if let Some(caller_id) = caller_id {
        d.caller_id.clone_from(caller_id);
    }
    if let Some(call_types) = call_types {
        d.call_types.clone_from(call_types);
    }
    if let Some(max_contacts) = max_contacts {
        d.max_contacts = *max_contacts;
    }
    if let Some(credentials) = credentials {
        d.credentials.clone_from(credentials);
    }
    if let Some(trusted_address) = trusted_address {
        d.trusted_address.clone_from(trusted_address);
    }
}

fn device_not_found(id: i64) -> StoreError {
    StoreError::NotFound { entity: "device", key: id.to_string() }
}
