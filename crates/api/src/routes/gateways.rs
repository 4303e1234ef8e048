//! Carrier gateways (operators only).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use switchboard_admin::check::{check_address, check_name, check_range, check_transport};
use switchboard_storage::NewGateway;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::json::{Body, Id};
use crate::views::GatewayView;

const PRIORITY: std::ops::RangeInclusive<i64> = 0..=1000;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_gateways, create_gateway)).routes(routes!(delete_gateway))
}

#[utoipa::path(get, path = "/gateways", tag = "gateways",
    responses((status = 200, body = [GatewayView]), (status = 403, body = ErrorBody)))]
async fn list_gateways(caller: Caller, State(s): State<AppState>) -> ApiResult<Json<Vec<GatewayView>>> {
    caller.require_operator()?;
    Ok(Json(s.store.list_gateways().await?.into_iter().map(GatewayView::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewGatewayBody {
    pub name: String,
    /// `host:port`.
    pub address: String,
    /// `udp` (the default) or `tcp`.
    #[serde(default)]
    pub transport: Option<String>,
    /// 0 to 1000, lower first (default 100).
    #[serde(default)]
    pub priority: Option<i64>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[utoipa::path(post, path = "/gateways", tag = "gateways", request_body = NewGatewayBody,
    responses(
        (status = 201, body = GatewayView),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn create_gateway(
    caller: Caller,
    State(s): State<AppState>,
    Body(b): Body<NewGatewayBody>,
) -> ApiResult<(StatusCode, Json<GatewayView>)> {
    caller.require_operator()?;
    let new = NewGateway {
        name: check_name("name", &b.name)?,
        address: check_address("address", &b.address)?,
        transport: check_transport("transport", b.transport.as_deref().unwrap_or("udp"))?,
        priority: check_range("priority", b.priority.unwrap_or(100), &PRIORITY)?,
        enabled: b.enabled.unwrap_or(true),
    };
    let g = s.store.create_gateway(&new).await?;
    Ok((StatusCode::CREATED, Json(g.into())))
}

#[utoipa::path(delete, path = "/gateways/{id}", tag = "gateways", params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_gateway(caller: Caller, State(s): State<AppState>, Id(id): Id) -> ApiResult<StatusCode> {
    caller.require_operator()?;
    s.store.delete_gateway(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
