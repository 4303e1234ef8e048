//! SIP devices of a service: list with live status, add (the password is in that answer only), show, change,
//! delete, reset the password.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use switchboard_admin::Naming;
use switchboard_admin::devices::{self, DeviceChanges, DeviceFields};
use switchboard_storage::{Binding, Device, DeviceState, Store};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::no_store;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json::{Body, Id};
use crate::views::{DeviceView, DeviceWithPassword, NewPasswordView};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_devices, create_device))
        .routes(routes!(get_device, update_device, delete_device))
        .routes(routes!(reset_password))
}

/// The service's devices, each with its registration state.
#[utoipa::path(get, path = "/services/{id}/devices", tag = "devices", params(("id" = i64, Path, description = "service id")),
    responses((status = 200, body = [DeviceView]), (status = 404, body = ErrorBody)))]
async fn list_devices(caller: Caller, State(s): State<AppState>, Id(id): Id) -> ApiResult<Json<Vec<DeviceView>>> {
    let service = caller.service(s.store.as_ref(), id).await?;
    let views = with_status(s.store.as_ref(), service.id)
        .await?
        .into_iter()
        .map(|(d, state, bindings)| DeviceView::new(d, state.as_ref(), bindings))
        .collect();
    Ok(Json(views))
}

/// Adds a device. The answer carries its password, once: a generated one unless `password` was given.
#[utoipa::path(post, path = "/services/{id}/devices", tag = "devices", params(("id" = i64, Path, description = "service id")),
    request_body = DeviceFields,
    responses(
        (status = 201, body = DeviceWithPassword, description = "Made; not cached (Cache-Control: no-store)"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn create_device(
    caller: Caller,
    State(s): State<AppState>,
    Id(id): Id,
    Body(fields): Body<DeviceFields>,
) -> ApiResult<Response> {
    let service = caller.service(s.store.as_ref(), id).await?;
    let created =
        devices::new_device(&fields, &service, &s.settings.realm, s.settings.trunk_max_contacts, Naming::Json)?;
    let device = s.store.create_device(&created.device).await?;
    let body = DeviceWithPassword {
        device: DeviceView::new(device, None, Vec::new()),
        password: created.password,
        generated: created.generated,
    };
    Ok(no_store(StatusCode::CREATED, body))
}

#[utoipa::path(get, path = "/devices/{id}", tag = "devices", params(("id" = i64, Path)),
    responses((status = 200, body = DeviceView), (status = 404, body = ErrorBody)))]
async fn get_device(caller: Caller, State(s): State<AppState>, Id(id): Id) -> ApiResult<Json<DeviceView>> {
    let (device, _) = caller.device(s.store.as_ref(), id).await?;
    Ok(Json(view(s.store.as_ref(), device).await?))
}

/// Changes a device: absent fields stay as they are, `null` clears an optional one.
#[utoipa::path(patch, path = "/devices/{id}", tag = "devices", params(("id" = i64, Path)), request_body = DeviceChanges,
    responses(
        (status = 200, body = DeviceView),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn update_device(
    caller: Caller,
    State(s): State<AppState>,
    Id(id): Id,
    Body(changes): Body<DeviceChanges>,
) -> ApiResult<Json<DeviceView>> {
    let (device, service) = caller.device(s.store.as_ref(), id).await?;
    let update = devices::device_update(&changes, &device, service.mode, Naming::Json)?;
    let device = if changes.is_empty() { device } else { s.store.update_device(device.id, &update).await? };
    Ok(Json(view(s.store.as_ref(), device).await?))
}

/// Deletes a device; its registrations go with it, and numbers pinned to it ring the whole service.
#[utoipa::path(delete, path = "/devices/{id}", tag = "devices", params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
async fn delete_device(caller: Caller, State(s): State<AppState>, Id(id): Id) -> ApiResult<StatusCode> {
    let (device, _) = caller.device(s.store.as_ref(), id).await?;
    s.store.delete_device(device.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetBody {
    /// The new password; generated when absent.
    #[serde(default)]
    pub password: Option<String>,
}

/// Gives the device a new password (generated unless one is given) and answers with it, once. The old one stops
/// working at once.
#[utoipa::path(post, path = "/devices/{id}/password", tag = "devices", params(("id" = i64, Path)),
    request_body = ResetBody,
    responses(
        (status = 200, body = NewPasswordView, description = "Not cached (Cache-Control: no-store)"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
async fn reset_password(
    caller: Caller,
    State(s): State<AppState>,
    Id(id): Id,
    Body(b): Body<ResetBody>,
) -> ApiResult<Response> {
    let (device, _) = caller.device(s.store.as_ref(), id).await?;
    let new = devices::reset_password(&device, b.password.as_deref(), &s.settings.realm, Naming::Json)?;
    s.store.update_device(device.id, &new.update).await?;
    Ok(no_store(
        StatusCode::OK,
        NewPasswordView { device_id: device.id, password: new.password, generated: new.generated },
    ))
}

/// The service's devices, each with its stored state and bindings (three reads, joined here): the API's list
/// and the portal's table.
pub(crate) async fn with_status(
    store: &dyn Store,
    service_id: i64,
) -> Result<Vec<(Device, Option<DeviceState>, Vec<Binding>)>, switchboard_storage::StoreError> {
    let (devices, states, bindings) = tokio::try_join!(
        store.list_devices(Some(service_id)),
        store.service_device_states(service_id),
        store.bindings_for_service(service_id)
    )?;
    let mut states: std::collections::HashMap<i64, DeviceState> =
        states.into_iter().map(|st| (st.device_id, st)).collect();
    let mut by_device: std::collections::HashMap<i64, Vec<Binding>> = std::collections::HashMap::new();
    for b in bindings {
        by_device.entry(b.device_id).or_default().push(b);
    }
    Ok(devices
        .into_iter()
        .map(|d| {
            let (state, own) = (states.remove(&d.id), by_device.remove(&d.id).unwrap_or_default());
            (d, state, own)
        })
        .collect())
}

/// A device with its current state and bindings.
async fn view(store: &dyn Store, device: Device) -> Result<DeviceView, ApiError> {
    let (state, bindings) = tokio::try_join!(store.device_state(device.id), store.bindings_for_device(device.id))?;
    Ok(DeviceView::new(device, state.as_ref(), bindings))
}
