//! Phone numbers of a service, with their divert rules and mailbox settings.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use switchboard_admin::Naming;
use switchboard_admin::numbers::{self, NumberChanges, NumberFields};
use switchboard_storage::{Number, Service, Store};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json::{Body, Id};
use crate::views::NumberView;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_numbers, create_number)).routes(routes!(
        get_number,
        update_number,
        delete_number
    ))
}

#[utoipa::path(get, path = "/services/{id}/numbers", tag = "numbers", params(("id" = i64, Path, description = "service id")),
    responses((status = 200, body = [NumberView]), (status = 404, body = ErrorBody)))]
async fn list_numbers(caller: Caller, State(s): State<AppState>, Id(id): Id) -> ApiResult<Json<Vec<NumberView>>> {
    let service = caller.service(s.store.as_ref(), id).await?;
    let mut views = Vec::new();
    for n in s.store.list_numbers(Some(service.id)).await? {
        views.push(view(s.store.as_ref(), n).await?);
    }
    Ok(Json(views))
}

/// Adds a number to the service. `device_id` must be a device of the same service.
#[utoipa::path(post, path = "/services/{id}/numbers", tag = "numbers", params(("id" = i64, Path, description = "service id")),
    request_body = NumberFields,
    responses(
        (status = 201, body = NumberView),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn create_number(
    caller: Caller,
    State(s): State<AppState>,
    Id(id): Id,
    Body(fields): Body<NumberFields>,
) -> ApiResult<(StatusCode, Json<NumberView>)> {
    let service = caller.service(s.store.as_ref(), id).await?;
    if let Some(d) = fields.device_id {
        device_of(s.store.as_ref(), &service, d).await?;
    }
    let planned = numbers::new_number(&fields, service.id, Naming::Json)?;
    let n = s.store.create_number(&planned.number).await?;
    planned.mailbox.apply(s.store.as_ref(), n.id).await?;
    Ok((StatusCode::CREATED, Json(view(s.store.as_ref(), n).await?)))
}

#[utoipa::path(get, path = "/numbers/{id}", tag = "numbers", params(("id" = i64, Path)),
    responses((status = 200, body = NumberView), (status = 404, body = ErrorBody)))]
async fn get_number(caller: Caller, State(s): State<AppState>, Id(id): Id) -> ApiResult<Json<NumberView>> {
    let (n, _) = caller.number(s.store.as_ref(), id).await?;
    Ok(Json(view(s.store.as_ref(), n).await?))
}

/// Changes a number's rules or mailbox: absent fields stay as they are, `null` clears an optional one.
#[utoipa::path(patch, path = "/numbers/{id}", tag = "numbers", params(("id" = i64, Path)), request_body = NumberChanges,
    responses(
        (status = 200, body = NumberView),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
async fn update_number(
    caller: Caller,
    State(s): State<AppState>,
    Id(id): Id,
    Body(changes): Body<NumberChanges>,
) -> ApiResult<Json<NumberView>> {
    let (n, service) = caller.number(s.store.as_ref(), id).await?;
    if let Some(Some(d)) = changes.device_id {
        device_of(s.store.as_ref(), &service, d).await?;
    }
    let mailbox = s.store.mailbox(n.id).await?;
    let (update, mailbox) = numbers::number_update(&changes, &n, mailbox.as_ref(), Naming::Json)?;
    let n = if update == Default::default() { n } else { s.store.update_number(n.id, &update).await? };
    mailbox.apply(s.store.as_ref(), n.id).await?;
    Ok(Json(view(s.store.as_ref(), n).await?))
}

/// Deletes a number, with its mailbox and messages.
#[utoipa::path(delete, path = "/numbers/{id}", tag = "numbers", params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
async fn delete_number(caller: Caller, State(s): State<AppState>, Id(id): Id) -> ApiResult<StatusCode> {
    let (n, _) = caller.number(s.store.as_ref(), id).await?;
    s.store.delete_number(n.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Device `id` must belong to `service` (a device of another service, or of another customer, is refused alike).
async fn device_of(store: &dyn Store, service: &Service, id: i64) -> ApiResult<()> {
    match store.device(id).await? {
        Some(d) if d.service_id == service.id => Ok(()),
        _ => Err(ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "device_id", "no such device in this service")),
    }
}

async fn view(store: &dyn Store, n: Number) -> Result<NumberView, ApiError> {
    let mailbox = store.mailbox(n.id).await?;
    Ok(NumberView::new(n, mailbox))
}
