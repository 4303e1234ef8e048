//! Customer portal logins, for operators: invite (a login linked to a customer, emailed a link to choose its
//! password), list, link or unlink, remove. The same as `switchboard login`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use switchboard_admin::logins::Letter;
use switchboard_storage::Login;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json::{Body, Id};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_logins, invite)).routes(routes!(link, remove))
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LoginView {
    pub id: i64,
    pub email: String,
    /// The customer it reaches; `None`: not linked yet (it reaches nothing).
    pub customer_id: Option<i64>,
    /// Whether its owner has chosen a password.
    pub password_set: bool,
    pub created_at: i64,
}

impl From<Login> for LoginView {
    fn from(l: Login) -> Self {
        LoginView {
            id: l.id,
            email: l.email,
            customer_id: l.customer_id,
            password_set: l.password_hash.is_some(),
            created_at: l.created_at,
        }
    }
}

#[utoipa::path(get, path = "/logins", tag = "logins",
    responses((status = 200, body = [LoginView]), (status = 403, body = ErrorBody)))]
async fn list_logins(caller: Caller, State(s): State<AppState>) -> ApiResult<Json<Vec<LoginView>>> {
    caller.require_operator()?;
    Ok(Json(s.store.list_logins().await?.into_iter().map(LoginView::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InviteBody {
    pub email: String,
    pub customer_id: i64,
}

/// Makes a login for a customer and queues an invitation: a link to choose the password (it works once).
#[utoipa::path(post, path = "/logins", tag = "logins", request_body = InviteBody,
    responses((status = 201, body = LoginView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn invite(
    caller: Caller,
    State(s): State<AppState>,
    Body(b): Body<InviteBody>,
) -> ApiResult<(StatusCode, Json<LoginView>)> {
    caller.require_operator()?;
    let email = switchboard_admin::check::check_email("email", b.email.trim())?;
    if s.store.customer(b.customer_id).await?.is_none() {
        return Err(ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "customer_id", "no such customer"));
    }
    let login = s.store.create_login(&email, Some(b.customer_id)).await?;
    s.links().send(s.store.as_ref(), &login, Letter::Invite).await?;
    Ok((StatusCode::CREATED, Json(login.into())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkBody {
    /// The customer the login reaches; `null` unlinks it.
    pub customer_id: Option<i64>,
}

/// Links a login to a customer, or unlinks it.
#[utoipa::path(patch, path = "/logins/{id}", tag = "logins", params(("id" = i64, Path)), request_body = LinkBody,
    responses((status = 200, body = LoginView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn link(
    caller: Caller,
    State(s): State<AppState>,
    Id(id): Id,
    Body(b): Body<LinkBody>,
) -> ApiResult<Json<LoginView>> {
    caller.require_operator()?;
    if let Some(c) = b.customer_id
        && s.store.customer(c).await?.is_none()
    {
        return Err(ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "customer_id", "no such customer"));
    }
    Ok(Json(s.store.link_login(id, b.customer_id).await?.into()))
}

/// Removes a login; its sessions end with it.
#[utoipa::path(delete, path = "/logins/{id}", tag = "logins", params(("id" = i64, Path)),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody)))]
async fn remove(caller: Caller, State(s): State<AppState>, Id(id): Id) -> ApiResult<StatusCode> {
    caller.require_operator()?;
    s.store.delete_login(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
