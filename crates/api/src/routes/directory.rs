//! Customers and their services. Customers are made by operators; a customer's caller sees only its own.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use switchboard_admin::check::{check_mode, check_name};
use switchboard_storage::NewService;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json::{Body, Id, Params};
use crate::views::{CustomerView, ServiceView};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_customers, create_customer))
        .routes(routes!(get_customer))
        .routes(routes!(list_services, create_service))
        .routes(routes!(get_service))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewCustomerBody {
    pub name: String,
}

/// Customers: every one for an operator, its own for a customer.
#[utoipa::path(get, path = "/customers", tag = "customers",
    responses((status = 200, body = [CustomerView]), (status = 401, body = ErrorBody)))]
async fn list_customers(caller: Caller, State(s): State<AppState>) -> ApiResult<Json<Vec<CustomerView>>> {
    let list = s.store.list_customers().await?;
    Ok(Json(list.into_iter().filter(|c| caller.reaches(c.id)).map(CustomerView::from).collect()))
}

/// Adds a customer (operators only).
#[utoipa::path(post, path = "/customers", tag = "customers", request_body = NewCustomerBody,
    responses(
        (status = 201, body = CustomerView),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn create_customer(
    caller: Caller,
    State(s): State<AppState>,
    Body(b): Body<NewCustomerBody>,
) -> ApiResult<(StatusCode, Json<CustomerView>)> {
    caller.require_operator()?;
    let name = check_name("name", &b.name)?;
    let c = s.store.create_customer(&name).await?;
    Ok((StatusCode::CREATED, Json(c.into())))
}

#[utoipa::path(get, path = "/customers/{id}", tag = "customers", params(("id" = i64, Path)),
    responses((status = 200, body = CustomerView), (status = 404, body = ErrorBody)))]
async fn get_customer(caller: Caller, State(s): State<AppState>, Id(id): Id) -> ApiResult<Json<CustomerView>> {
    match s.store.customer(id).await? {
        Some(c) if caller.reaches(c.id) => Ok(Json(c.into())),
        _ => Err(ApiError::not_found("customer")),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceQuery {
    /// Only this customer's services.
    pub customer_id: Option<i64>,
}

/// Services: every one (or one customer's) for an operator, its own for a customer.
#[utoipa::path(get, path = "/services", tag = "services", params(ServiceQuery),
    responses((status = 200, body = [ServiceView]), (status = 401, body = ErrorBody)))]
async fn list_services(
    caller: Caller,
    State(s): State<AppState>,
    Params(q): Params<ServiceQuery>,
) -> ApiResult<Json<Vec<ServiceView>>> {
    let customer = match (caller.customer(), q.customer_id) {
        (Some(own), Some(asked)) if own != asked => return Ok(Json(Vec::new())),
        (Some(own), _) => Some(own),
        (None, asked) => asked,
    };
    let list = s.store.list_services(customer).await?;
    Ok(Json(list.into_iter().map(ServiceView::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewServiceBody {
    pub customer_id: i64,
    /// Unique across the platform.
    pub name: String,
    /// `direct` or `trunk`.
    pub mode: String,
    #[serde(default)]
    pub region: Option<String>,
    /// Accept and reach every device of the service over TLS only (default false).
    #[serde(default)]
    pub require_tls: bool,
}

/// Adds a service to a customer (operators only).
#[utoipa::path(post, path = "/services", tag = "services", request_body = NewServiceBody,
    responses(
        (status = 201, body = ServiceView),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn create_service(
    caller: Caller,
    State(s): State<AppState>,
    Body(b): Body<NewServiceBody>,
) -> ApiResult<(StatusCode, Json<ServiceView>)> {
    caller.require_operator()?;
    let new = NewService {
        customer_id: b.customer_id,
        name: check_name("name", &b.name)?,
        mode: check_mode("mode", &b.mode)?,
        region: b.region.as_deref().map(|r| check_name("region", r)).transpose()?,
        require_tls: b.require_tls,
    };
    if s.store.customer(new.customer_id).await?.is_none() {
        return Err(ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "customer_id", "no such customer"));
    }
    let service = s.store.create_service(&new).await?;
    Ok((StatusCode::CREATED, Json(service.into())))
}

#[utoipa::path(get, path = "/services/{id}", tag = "services", params(("id" = i64, Path)),
    responses((status = 200, body = ServiceView), (status = 404, body = ErrorBody)))]
async fn get_service(caller: Caller, State(s): State<AppState>, Id(id): Id) -> ApiResult<Json<ServiceView>> {
    Ok(Json(caller.service(s.store.as_ref(), id).await?.into()))
}
