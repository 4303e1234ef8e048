//! The customer's screens: My Services with each service's setup (region and operating mode), and SIP Devices
//! (the table with live status, add with the password shown once, edit, delete, reset the password). Every id in
//! a path is looked up through the customer's own records; another customer's is "not found".

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use switchboard_admin::Naming;
use switchboard_admin::check::CALL_TYPES;
use switchboard_admin::devices::{self, DeviceChanges, DeviceFields};
use switchboard_storage::{Binding, Device, DeviceState, Service, ServiceMode};

use super::session::Customer;
use super::{Form, Region, explain, failure, no_such, path_id, render};
use crate::AppState;
use crate::auth::Caller;

/// The customer's service `id`, or "not found".
async fn service_of(s: &AppState, c: &Customer, id: i64) -> Result<Service, Response> {
    Caller::Customer(c.customer_id).service(s.store.as_ref(), id).await.map_err(|_| no_such("service"))
}

/// The customer's device `id` with its service, or "not found".
async fn device_of(s: &AppState, c: &Customer, id: i64) -> Result<(Device, Service), Response> {
    Caller::Customer(c.customer_id).device(s.store.as_ref(), id).await.map_err(|_| no_such("device"))
}

/// A service as My Services lists it.
struct ServiceRow {
    id: i64,
    name: String,
    mode: &'static str,
    region: Option<String>,
    sip_address: Option<String>,
}

#[derive(Template)]
#[template(path = "services.html")]
struct ServicesPage<'a> {
    email: &'a str,
    services: Vec<ServiceRow>,
    signed_in: bool,
}

fn mode_name(m: ServiceMode) -> &'static str {
    match m {
        ServiceMode::Direct => "Direct Mode",
        ServiceMode::Trunk => "Trunk Mode",
    }
}

pub(crate) async fn services(State(s): State<AppState>, c: Customer) -> Response {
    let list = match s.store.list_services(Some(c.customer_id)).await {
        Ok(l) => l,
        Err(e) => return failure(e),
    };
    let regions = s.regions().await;
    let services = list
        .into_iter()
        .map(|svc| ServiceRow {
            id: svc.id,
            sip_address: svc
                .region
                .as_ref()
                .and_then(|r| regions.iter().find(|x| &x.name == r))
                .map(|r| r.sip_address.clone()),
            name: svc.name,
            mode: mode_name(svc.mode),
            region: svc.region,
        })
        .collect();
    render(&ServicesPage { email: &c.login.email, services, signed_in: true })
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage<'a> {
    service: &'a Service,
    regions: &'a [Region],
    current_region: &'a str,
    direct: bool,
    mode_locked: bool,
    error: Option<&'a str>,
    signed_in: bool,
}

pub(crate) async fn setup_page(State(s): State<AppState>, c: Customer, Path(raw): Path<String>) -> Response {
    let service = match async { service_of(&s, &c, path_id(&raw)?).await }.await {
        Ok(svc) => svc,
        Err(r) => return r,
    };
    let locked = match s.store.list_devices(Some(service.id)).await {
        Ok(d) => !d.is_empty(),
        Err(e) => return failure(e),
    };
    render(&SetupPage {
        current_region: service.region.as_deref().unwrap_or(""),
        direct: service.mode == ServiceMode::Direct,
        service: &service,
        regions: &s.regions().await,
        mode_locked: locked,
        error: None,
        signed_in: true,
    })
}

pub(crate) async fn setup(State(s): State<AppState>, c: Customer, Path(raw): Path<String>, form: Form) -> Response {
    let service = match async { service_of(&s, &c, path_id(&raw)?).await }.await {
        Ok(svc) => svc,
        Err(r) => return r,
    };
    let devices = match s.store.list_devices(Some(service.id)).await {
        Ok(d) => d,
        Err(e) => return failure(e),
    };
    let regions = &s.regions().await;
    let region = form.text("region");
    let mode = match form.get("mode") {
        Some("direct") => ServiceMode::Direct,
        Some("trunk") => ServiceMode::Trunk,
        _ => service.mode,
    };
    let error = if !region.as_ref().is_some_and(|r| regions.iter().any(|x| &x.name == r)) {
        Some("Choose one of the regions.")
    } else if mode != service.mode && !devices.is_empty() {
        Some("The operating mode can change only while the service has no devices.")
    } else {
        None
    };
    if let Some(error) = error {
        let page = SetupPage {
            current_region: service.region.as_deref().unwrap_or(""),
            direct: service.mode == ServiceMode::Direct,
            service: &service,
            regions,
            mode_locked: !devices.is_empty(),
            error: Some(error),
            signed_in: true,
        };
        return (StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response();
    }
    match s.store.update_service(service.id, mode, region.as_deref()).await {
        Ok(_) => Redirect::to("/portal/").into_response(),
        Err(e) => failure(e),
    }
}

/// A device as the table shows it.
struct DeviceRow {
    id: i64,
    name: String,
    auth_id: String,
    caller_id: String,
    call_types: String,
    online: bool,
    /// "since 2026-12-07 10:15 UTC", or "never registered".
    since: String,
    address: String,
    user_agent: String,
}

fn utc(ms: i64) -> String {
    format!("{} UTC", switchboard_model::date::local_minute(ms, 0))
}

fn row(d: Device, state: Option<&DeviceState>, bindings: &[Binding]) -> DeviceRow {
    let latest = bindings.iter().max_by_key(|b| b.updated_at);
    DeviceRow {
        id: d.id,
        name: d.name,
        auth_id: d.auth_id,
        caller_id: d.caller_id.unwrap_or_else(|| "-".into()),
        call_types: d.call_types.join(", "),
        online: state.is_some_and(|s| s.online),
        since: state.map_or_else(|| "never registered".into(), |s| format!("since {}", utc(s.since))),
        address: latest.map_or_else(|| "-".into(), |b| format!("{} ({})", b.source, b.transport)),
        user_agent: latest.and_then(|b| b.user_agent.clone()).unwrap_or_else(|| "-".into()),
    }
}

/// A call type's checkbox.
struct CallTypeBox {
    name: &'static str,
    checked: bool,
}

/// The add and edit forms' values.
struct DeviceForm {
    name: String,
    auth_id: String,
    caller_id: String,
    call_types: Vec<CallTypeBox>,
}

fn boxes(checked: impl Fn(&str) -> bool) -> Vec<CallTypeBox> {
    CALL_TYPES.iter().map(|t| CallTypeBox { name: t, checked: checked(t) }).collect()
}

impl DeviceForm {
    fn empty() -> DeviceForm {
        let defaults = switchboard_admin::check::DEFAULT_CALL_TYPES;
        DeviceForm {
            name: String::new(),
            auth_id: String::new(),
            caller_id: String::new(),
            call_types: boxes(|t| defaults.contains(&t)),
        }
    }

    fn of(form: &Form) -> DeviceForm {
        let chosen = form.all("call_types");
        DeviceForm {
            name: form.text("name").unwrap_or_default(),
            auth_id: form.text("auth_id").unwrap_or_default(),
            caller_id: form.text("caller_id").unwrap_or_default(),
            call_types: boxes(|t| chosen.iter().any(|c| c == t)),
        }
    }

    fn chosen(&self) -> Vec<String> {
        self.call_types.iter().filter(|b| b.checked).map(|b| b.name.to_owned()).collect()
    }
}

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage<'a> {
    service: &'a Service,
    devices: Vec<DeviceRow>,
    form: DeviceForm,
    error: Option<String>,
    signed_in: bool,
}

pub(crate) async fn devices(State(s): State<AppState>, c: Customer, Path(raw): Path<String>) -> Response {
    let service = match async { service_of(&s, &c, path_id(&raw)?).await }.await {
        Ok(svc) => svc,
        Err(r) => return r,
    };
    devices_page(&s, &service, DeviceForm::empty(), None, StatusCode::OK).await
}

async fn devices_page(
    s: &AppState,
    service: &Service,
    form: DeviceForm,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let devices = match crate::routes::devices::with_status(s.store.as_ref(), service.id).await {
        Ok(list) => list.into_iter().map(|(d, state, own)| row(d, state.as_ref(), &own)).collect(),
        Err(e) => return failure(e),
    };
    (status, render(&DevicesPage { service, devices, form, error, signed_in: true })).into_response()
}

#[derive(Template)]
#[template(path = "password_once.html")]
struct PasswordOnce<'a> {
    service_id: i64,
    name: &'a str,
    auth_id: &'a str,
    password: &'a str,
    realm: &'a str,
    signed_in: bool,
}

pub(crate) async fn add_device(
    State(s): State<AppState>,
    c: Customer,
    Path(raw): Path<String>,
    form: Form,
) -> Response {
    let service = match async { service_of(&s, &c, path_id(&raw)?).await }.await {
        Ok(svc) => svc,
        Err(r) => return r,
    };
    let values = DeviceForm::of(&form);
    let fields = DeviceFields {
        name: values.name.clone(),
        auth_id: values.auth_id.clone(),
        password: form.text("password"),
        caller_id: form.text("caller_id"),
        call_types: Some(values.chosen()),
        ..Default::default()
    };
    let created =
        match devices::new_device(&fields, &service, &s.settings.realm, s.settings.trunk_max_contacts, Naming::Json) {
            Ok(c) => c,
            Err(e) => {
                return devices_page(&s, &service, values, Some(explain(&e)), StatusCode::UNPROCESSABLE_ENTITY).await;
            }
        };
    let device = match s.store.create_device(&created.device).await {
        Ok(d) => d,
        Err(switchboard_storage::StoreError::Conflict { field, .. }) => {
            let message = format!("Another device already uses this {}.", field.replace('_', " "));
            return devices_page(&s, &service, values, Some(message), StatusCode::CONFLICT).await;
        }
        Err(e) => return failure(e),
    };
    render(&PasswordOnce {
        service_id: service.id,
        name: &device.name,
        auth_id: &device.auth_id,
        password: &created.password,
        realm: &s.settings.realm,
        signed_in: true,
    })
}

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage<'a> {
    service: &'a Service,
    device: &'a Device,
    form: DeviceForm,
    error: Option<String>,
    signed_in: bool,
}

pub(crate) async fn device_page(State(s): State<AppState>, c: Customer, Path(raw): Path<String>) -> Response {
    let (device, service) = match async { device_of(&s, &c, path_id(&raw)?).await }.await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let form = DeviceForm {
        name: device.name.clone(),
        auth_id: device.auth_id.clone(),
        caller_id: device.caller_id.clone().unwrap_or_default(),
        call_types: boxes(|t| device.call_types.iter().any(|c| c == t)),
    };
    render(&DevicePage { service: &service, device: &device, form, error: None, signed_in: true })
}

pub(crate) async fn edit_device(
    State(s): State<AppState>,
    c: Customer,
    Path(raw): Path<String>,
    form: Form,
) -> Response {
    let (device, service) = match async { device_of(&s, &c, path_id(&raw)?).await }.await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let values = DeviceForm::of(&form);
    let changes = DeviceChanges {
        name: Some(values.name.clone()),
        caller_id: Some(form.text("caller_id")),
        call_types: Some(values.chosen()),
        ..Default::default()
    };
    let refused = |message: String, status| {
        let page = DevicePage {
            service: &service,
            device: &device,
            form: DeviceForm { auth_id: device.auth_id.clone(), ..values },
            error: Some(message),
            signed_in: true,
        };
        (status, render(&page)).into_response()
    };
    let update = match devices::device_update(&changes, &device, service.mode, Naming::Json) {
        Ok(u) => u,
        Err(e) => return refused(explain(&e), StatusCode::UNPROCESSABLE_ENTITY),
    };
    match s.store.update_device(device.id, &update).await {
        Ok(_) => Redirect::to(&format!("/portal/services/{}/devices", service.id)).into_response(),
        Err(switchboard_storage::StoreError::Conflict { .. }) => {
            refused("Another device of this service already has this name.".into(), StatusCode::CONFLICT)
        }
        Err(e) => failure(e),
    }
}

pub(crate) async fn delete_device(State(s): State<AppState>, c: Customer, Path(raw): Path<String>) -> Response {
    let (device, service) = match async { device_of(&s, &c, path_id(&raw)?).await }.await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s.store.delete_device(device.id).await {
        Ok(()) => Redirect::to(&format!("/portal/services/{}/devices", service.id)).into_response(),
        Err(e) => failure(e),
    }
}

pub(crate) async fn reset_device_password(State(s): State<AppState>, c: Customer, Path(raw): Path<String>) -> Response {
    let (device, service) = match async { device_of(&s, &c, path_id(&raw)?).await }.await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let new = match devices::reset_password(&device, None, &s.settings.realm, Naming::Json) {
        Ok(n) => n,
        Err(e) => return failure(e),
    };
    if let Err(e) = s.store.update_device(device.id, &new.update).await {
        return failure(e);
    }
    render(&PasswordOnce {
        service_id: service.id,
        name: &device.name,
        auth_id: &device.auth_id,
        password: &new.password,
        realm: &s.settings.realm,
        signed_in: true,
    })
}
