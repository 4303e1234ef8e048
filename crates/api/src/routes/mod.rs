//! The routes of `/api/v1` and `/healthz`, grouped by what they manage.

mod activity;
pub(crate) mod devices;
mod directory;
mod gateways;
mod logins;
pub(crate) mod metrics;
mod numbers;
pub(crate) mod voicemail;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::views::Health;

/// Everything under `/api/v1`.
pub(crate) fn v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(directory::routes())
        .merge(devices::routes())
        .merge(numbers::routes())
        .merge(voicemail::routes())
        .merge(gateways::routes())
        .merge(activity::routes())
        .merge(logins::routes())
}

pub(crate) fn health() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(metrics::metrics))
}

/// For load balancers: 200 when the database answers, 503 when it does not. No token needed.
#[utoipa::path(
    get, path = "/healthz", tag = "health", security(()),
    responses(
        (status = 200, description = "Serving", body = Health),
        (status = 503, description = "The database does not answer", body = Health),
    )
)]
async fn healthz(State(state): State<AppState>) -> Response {
    let version = state.settings.version.clone();
    match state.store.last_change().await {
        Ok(_) => axum::Json(Health { status: "ok".into(), version }).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(Health { status: "database unavailable".into(), version }))
                .into_response()
        }
    }
}

/// Any path we do not serve.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route")
}

/// A response that must not be kept by any cache (it shows a password).
pub(crate) fn no_store(status: StatusCode, body: impl serde::Serialize) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
