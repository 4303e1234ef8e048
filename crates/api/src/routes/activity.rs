//! What is happening and what happened: registrations, calls in progress, call records, and the email outbox.
//! A service's view is open to its customer; the platform-wide lists are the operator's.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use switchboard_storage::{CDR_LIST_MAX, CdrFilter};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json::{Id, Params};
use crate::views::{ActiveCallView, CdrView, EmailView, RegistrationView};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(all_registrations))
        .routes(routes!(service_registrations))
        .routes(routes!(all_calls))
        .routes(routes!(service_calls))
        .routes(routes!(all_cdrs))
        .routes(routes!(service_cdrs))
        .routes(routes!(outbox))
}

/// Every binding on the platform (operators only).
#[utoipa::path(get, path = "/registrations", tag = "activity",
    responses((status = 200, body = [RegistrationView]), (status = 403, body = ErrorBody)))]
async fn all_registrations(caller: Caller, State(s): State<AppState>) -> ApiResult<Json<Vec<RegistrationView>>> {
    caller.require_operator()?;
    Ok(Json(s.store.list_bindings().await?.into_iter().map(RegistrationView::from).collect()))
}

/// The bindings of the service's devices.
#[utoipa::path(get, path = "/services/{id}/registrations", tag = "activity",
    params(("id" = i64, Path, description = "service id")),
    responses((status = 200, body = [RegistrationView]), (status = 404, body = ErrorBody)))]
async fn service_registrations(
    caller: Caller,
    State(s): State<AppState>,
    Id(id): Id,
) -> ApiResult<Json<Vec<RegistrationView>>> {
    let service = caller.service(s.store.as_ref(), id).await?;
    Ok(Json(s.store.bindings_for_service(service.id).await?.into_iter().map(RegistrationView::from).collect()))
}

/// Calls in progress on every node, oldest first (operators only).
#[utoipa::path(get, path = "/calls", tag = "activity",
    responses((status = 200, body = [ActiveCallView]), (status = 403, body = ErrorBody)))]
async fn all_calls(caller: Caller, State(s): State<AppState>) -> ApiResult<Json<Vec<ActiveCallView>>> {
    caller.require_operator()?;
    Ok(Json(s.store.list_active_calls().await?.into_iter().map(ActiveCallView::from).collect()))
}

/// The service's calls in progress.
#[utoipa::path(get, path = "/services/{id}/calls", tag = "activity", params(("id" = i64, Path, description = "service id")),
    responses((status = 200, body = [ActiveCallView]), (status = 404, body = ErrorBody)))]
async fn service_calls(caller: Caller, State(s): State<AppState>, Id(id): Id) -> ApiResult<Json<Vec<ActiveCallView>>> {
    let service = caller.service(s.store.as_ref(), id).await?;
    let calls = s.store.list_active_calls().await?;
    Ok(Json(calls.into_iter().filter(|c| c.service_id == Some(service.id)).map(ActiveCallView::from).collect()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct CdrQuery {
    /// At most this many, 1 to 10000 (default 100).
    pub limit: Option<i64>,
    /// Calls started at or after this time (Unix ms).
    pub since: Option<i64>,
    /// Calls started before this time (Unix ms).
    pub until: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct AllCdrQuery {
    /// Only this service's calls.
    pub service_id: Option<i64>,
    /// At most this many, 1 to 10000 (default 100).
    pub limit: Option<i64>,
    /// Calls started at or after this time (Unix ms).
    pub since: Option<i64>,
    /// Calls started before this time (Unix ms).
    pub until: Option<i64>,
}

/// Call records, newest first (operators only).
#[utoipa::path(get, path = "/cdrs", tag = "activity", params(AllCdrQuery),
    responses((status = 200, body = [CdrView]), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn all_cdrs(
    caller: Caller,
    State(s): State<AppState>,
    Params(q): Params<AllCdrQuery>,
) -> ApiResult<Json<Vec<CdrView>>> {
    caller.require_operator()?;
    let filter = cdr_filter(q.service_id, q.limit, q.since, q.until)?;
    Ok(Json(s.store.list_cdrs(&filter).await?.into_iter().map(CdrView::from).collect()))
}

/// The service's call records, newest first.
#[utoipa::path(get, path = "/services/{id}/cdrs", tag = "activity", params(("id" = i64, Path, description = "service id"), CdrQuery),
    responses((status = 200, body = [CdrView]), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn service_cdrs(
    caller: Caller,
    State(s): State<AppState>,
    Id(id): Id,
    Params(q): Params<CdrQuery>,
) -> ApiResult<Json<Vec<CdrView>>> {
    let service = caller.service(s.store.as_ref(), id).await?;
    let filter = cdr_filter(Some(service.id), q.limit, q.since, q.until)?;
    Ok(Json(s.store.list_cdrs(&filter).await?.into_iter().map(CdrView::from).collect()))
}

fn cdr_filter(
    service_id: Option<i64>,
    limit: Option<i64>,
    since: Option<i64>,
    until: Option<i64>,
) -> ApiResult<CdrFilter> {
    let limit = switchboard_admin::check::check_range("limit", limit.unwrap_or(100), &(1..=CDR_LIST_MAX))
        .map_err(|e| ApiError::field(axum::http::StatusCode::BAD_REQUEST, e.field, e.message))?;
    Ok(CdrFilter { service_id, since, until, limit })
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutboxQuery {
    /// At most this many, 1 to 10000 (default 50).
    pub limit: Option<i64>,
}

/// The email outbox, newest first: queued, sent, and failed with the reason (operators only).
#[utoipa::path(get, path = "/outbox", tag = "activity", params(OutboxQuery),
    responses((status = 200, body = [EmailView]), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn outbox(
    caller: Caller,
    State(s): State<AppState>,
    Params(q): Params<OutboxQuery>,
) -> ApiResult<Json<Vec<EmailView>>> {
    caller.require_operator()?;
    let limit = switchboard_admin::check::check_range("limit", q.limit.unwrap_or(50), &(1..=10_000))
        .map_err(|e| ApiError::field(axum::http::StatusCode::BAD_REQUEST, e.field, e.message))?;
    Ok(Json(s.store.list_outbox(limit).await?.into_iter().map(EmailView::from).collect()))
}
