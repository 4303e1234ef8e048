//! Who is calling: `Authorization: Bearer TOKEN`, looked up by the token's hash on every request (a revoked token
//! stops working at once), and what that caller may reach. A customer's caller finds another customer's records
//! exactly as it finds ids that do not exist: 404.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use switchboard_storage::{Device, Number, Service, Store};
use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// How often a token's `last_used_at` is written at most.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// The caller of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    /// Everything.
    Operator,
    /// Only this customer's records.
    Customer(i64),
}

impl Caller {
    /// `Some(id)` when the caller is limited to customer `id`.
    pub(crate) fn customer(self) -> Option<i64> {
        match self {
            Caller::Operator => None,
            Caller::Customer(id) => Some(id),
        }
    }

    pub(crate) fn require_operator(self) -> ApiResult<()> {
        match self {
            Caller::Operator => Ok(()),
            Caller::Customer(_) => Err(ApiError::forbidden("this needs an operator's token")),
        }
    }

    /// Whether the caller may see records of customer `customer_id`.
    pub(crate) fn reaches(self, customer_id: i64) -> bool {
        self.customer().is_none_or(|own| own == customer_id)
    }

    /// Service `id`, if the caller may see it.
    pub(crate) async fn service(self, store: &dyn Store, id: i64) -> ApiResult<Service> {
        match store.service(id).await? {
            Some(s) if self.reaches(s.customer_id) => Ok(s),
            _ => Err(ApiError::not_found("service")),
        }
    }

    /// Device `id` and its service, if the caller may see them.
    pub(crate) async fn device(self, store: &dyn Store, id: i64) -> ApiResult<(Device, Service)> {
        let device = store.device(id).await?.ok_or_else(|| ApiError::not_found("device"))?;
        let service = self.service(store, device.service_id).await.map_err(|_| ApiError::not_found("device"))?;
        Ok((device, service))
    }

    /// Number `id` and its service, if the caller may see them.
    pub(crate) async fn number(self, store: &dyn Store, id: i64) -> ApiResult<(Number, Service)> {
        let number = store.number(id).await?.ok_or_else(|| ApiError::not_found("number"))?;
        let service = self.service(store, number.service_id).await.map_err(|_| ApiError::not_found("number"))?;
        Ok((number, service))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("an Authorization: Bearer token is required"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("the Authorization header must be Bearer TOKEN"))?;
        let hash = switchboard_admin::tokens::hash(token);
        let found = state.store.api_token_by_hash(&hash).await?;
        let token = found.ok_or_else(|| ApiError::unauthorized("this token is not valid (unknown or revoked)"))?;
        if state.tokens.due(token.id) {
            let at = switchboard_model::date::now_ms();
            if let Err(e) = state.store.touch_api_token(token.id, at).await {
                tracing::warn!(error = %e, token = token.id, "cannot record a token's use");
            }
        }
        Ok(match token.customer_id {
            Some(id) => Caller::Customer(id),
            None => Caller::Operator,
        })
    }
}

/// When each token's use was last written, so a busy token costs one write a minute.
#[derive(Debug, Default)]
pub(crate) struct UseLog {
    last: Mutex<HashMap<i64, Instant>>,
}

impl UseLog {
    /// Whether token `id`'s use should be written now (and notes that it is).
    fn due(&self, id: i64) -> bool {
        let Ok(mut last) = self.last.lock() else { return false };
        let now = Instant::now();
        match last.get(&id) {
            Some(at) if now.duration_since(*at) < TOUCH_EVERY => false,
            _ => {
                last.insert(id, now);
                true
            }
        }
    }
}

/// Declares the bearer token scheme and applies it to every operation of the document.
#[derive(Debug)]
pub(crate) struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("A token from `switchboard token create` (sbt_...)"))
            .build();
        doc.components.get_or_insert_with(Default::default).add_security_scheme("token", SecurityScheme::Http(scheme));
        doc.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new("token", Vec::<String>::new())]);
    }
}

/// Documents the answers every route can give besides its own: 401 (no or bad token), 403 (an operator's route
/// called with a customer's token), 400 for a bad id or query, 404 where the path names a record, and 415 where a
/// JSON body is expected. `/healthz` needs no token and is left alone.
#[derive(Debug)]
pub(crate) struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |why: &str| {
            let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
            ResponseBuilder::new().description(why).content("application/json", content).build()
        };
        for (path, item) in doc.paths.paths.iter_mut() {
            if !path.starts_with("/api/") {
                continue;
            }
            let ops = [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete];
            for op in ops.into_iter().flatten() {
                let mut add = vec![
                    ("400", "The id, query string or body is malformed"),
                    ("401", "No token, or not a valid one"),
                    ("403", "Operators only"),
                ];
                if path.contains('{') {
                    add.push(("404", "No such record (or not the caller's)"));
                }
                if op.request_body.is_some() {
                    add.push(("415", "The body is not application/json"));
                    add.push(("422", "A field's value is refused"));
                }
                for (status, why) in add {
                    op.responses.responses.entry(status.to_owned()).or_insert_with(|| error(why).into());
                }
            }
        }
    }
}
