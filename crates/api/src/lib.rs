//! The management REST API: `/api/v1/...` for everything the operator's CLI does, JSON in and out, with the
//! OpenAPI 3.1 document generated from the handlers at `/api/v1/openapi.json`, and `/healthz`.
//!
//! Two kinds of caller, both by bearer token (`switchboard token create`): an operator's token reaches everything;
//! a customer's token reaches that customer's services and what hangs off them, and any other id answers 404, as
//! if it did not exist. The API writes through the same [`Store`] as the CLI, so a running daemon applies its
//! changes from the change log as it applies the CLI's.

mod auth;
mod error;
mod json;
pub mod portal;
mod routes;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use switchboard_storage::Store;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use auth::{BearerScheme, CommonResponses};
pub use error::ApiError;

/// What the API needs to know of the daemon's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// The digest realm device credentials are made for (`sip.domain`).
    pub realm: String,
    /// Contacts a new trunk device may bind when none is given.
    pub trunk_max_contacts: u32,
    /// The daemon's version, for `/healthz`.
    pub version: String,
    /// This node's name: it serves the recordings it made.
    pub node: String,
    /// Where this node keeps voicemail recordings (`voicemail.dir`).
    pub voicemail_dir: std::path::PathBuf,
    pub portal: portal::PortalSettings,
}

/// What the API tells the running daemon of (the change log carries the rest).
pub trait Hooks: Send + Sync + std::fmt::Debug {
    /// Number `number` (E.164) now holds `new` unheard and `saved` kept messages.
    fn mailbox_changed(&self, number: &str, new: u32, saved: u32);
    /// The daemon's metric families, for `/metrics`.
    fn metrics(&self) -> Vec<switchboard_model::metrics::Family>;
}

/// Shared by every handler.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) settings: Arc<Settings>,
    pub(crate) tokens: Arc<auth::UseLog>,
    pub(crate) hooks: Option<Arc<dyn Hooks>>,
    pub(crate) http: Arc<routes::metrics::HttpCounts>,
    pub(crate) portal: Arc<portal::PortalState>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard management API",
        description = "Customers, services, SIP devices, phone numbers, gateways, registrations, calls and \
                       voicemail. Authenticate with `Authorization: Bearer TOKEN` (`switchboard token create`). A \
                       customer's token sees only that customer's records: any other id answers 404.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "customers"), (name = "services"), (name = "devices"), (name = "numbers"), (name = "voicemail"),
        (name = "gateways"), (name = "activity"), (name = "logins"), (name = "health")
    )
)]
struct ApiDoc;

/// Every route, with the OpenAPI document they make.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest("/api/v1", routes::v1()).merge(routes::health())
}

/// The OpenAPI document, as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    finished(documented().into_openapi())
}

/// The document with what every route shares, once all routes are in it.
fn finished(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    utoipa::Modify::modify(&CommonResponses, &mut doc);
    doc
}

/// The API's routes on `store`.
pub fn router(store: Arc<dyn Store>, settings: Settings, hooks: Option<Arc<dyn Hooks>>) -> Router {
    let state = AppState {
        store,
        portal: Arc::new(portal::PortalState::new(settings.portal.clone())),
        settings: Arc::new(settings),
        tokens: Arc::new(auth::UseLog::default()),
        hooks,
        http: Arc::default(),
    };
    let (api, doc) = documented().split_for_parts();
    let doc = Arc::new(finished(doc));
    let app = api
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .merge(portal::router())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), routes::metrics::count))
        .fallback(portal::not_found)
        .with_state(state);
    portal::secure_headers(app)
}

/// Binds `settings.listen` and serves until `shutdown`; returns the bound address.
pub async fn start(
    store: Arc<dyn Store>,
    settings: Settings,
    hooks: Option<Arc<dyn Hooks>>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(settings.listen).await?;
    let addr = listener.local_addr()?;
    tracker.spawn(purge_portal(store.clone(), shutdown.clone()));
    let app = router(store, settings, hooks);
    tracker.spawn(async move {
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the API server stopped");
        }
    });
    tracing::info!(%addr, "management API listening");
    Ok(addr)
}

/// Every ten minutes, deletes expired portal sessions and one-time links spent or expired a day ago.
async fn purge_portal(store: Arc<dyn Store>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {
                let now = switchboard_model::date::now_ms();
                match store.purge_portal(now, now - 86_400_000).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(rows = n, "portal: purged expired sessions and links"),
                    Err(e) => tracing::warn!(error = %e, "portal: cannot purge expired sessions"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// The document is generated from the same handlers the router serves; this pins what it promises.
    #[test]
    fn the_document_lists_every_route_and_refuses_unknown_fields() {
        let doc = serde_json::to_value(openapi()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut ops = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                ops.push(format!("{} {path}", method.to_uppercase()));
                let public = path == "/healthz" || path == "/metrics";
                let security = op.get("security").or(doc.get("security")).unwrap();
                assert_eq!(security.as_array().unwrap().iter().all(|s| s == &serde_json::json!({})), public, "{path}");
            }
        }
        ops.sort();
        let want = [
            "DELETE /api/v1/devices/{id}",
            "DELETE /api/v1/gateways/{id}",
            "DELETE /api/v1/logins/{id}",
            "DELETE /api/v1/numbers/{id}",
            "DELETE /api/v1/voicemails/{id}",
            "GET /api/v1/calls",
            "GET /api/v1/cdrs",
            "GET /api/v1/customers",
            "GET /api/v1/customers/{id}",
            "GET /api/v1/devices/{id}",
            "GET /api/v1/gateways",
            "GET /api/v1/logins",
            "GET /api/v1/numbers/{id}",
            "GET /api/v1/numbers/{id}/voicemails",
            "GET /api/v1/outbox",
            "GET /api/v1/registrations",
            "GET /api/v1/services",
            "GET /api/v1/services/{id}",
            "GET /api/v1/services/{id}/calls",
            "GET /api/v1/services/{id}/cdrs",
            "GET /api/v1/services/{id}/devices",
            "GET /api/v1/services/{id}/numbers",
            "GET /api/v1/services/{id}/registrations",
            "GET /api/v1/voicemails/{id}",
            "GET /api/v1/voicemails/{id}/audio",
            "GET /healthz",
            "GET /metrics",
            "PATCH /api/v1/devices/{id}",
            "PATCH /api/v1/logins/{id}",
            "PATCH /api/v1/numbers/{id}",
            "PATCH /api/v1/voicemails/{id}",
            "POST /api/v1/customers",
            "POST /api/v1/devices/{id}/password",
            "POST /api/v1/gateways",
            "POST /api/v1/logins",
            "POST /api/v1/services",
            "POST /api/v1/services/{id}/devices",
            "POST /api/v1/services/{id}/numbers",
        ];
        assert_eq!(ops, want);
        let mut bodies = Vec::new();
        for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
            let body = name != "ErrorBody" && ["Fields", "Changes", "Body"].iter().any(|s| name.ends_with(s));
            if body {
                assert_eq!(schema["additionalProperties"], false, "{name} refuses unknown fields");
                bodies.push(name.as_str());
            }
        }
        let want = [
            "DeviceChanges",
            "DeviceFields",
            "InviteBody",
            "LinkBody",
            "NewCustomerBody",
            "NewGatewayBody",
            "NewServiceBody",
            "NumberChanges",
            "NumberFields",
            "ResetBody",
            "VoicemailChangesBody",
        ];
        assert_eq!(bodies, want);
    }
}
