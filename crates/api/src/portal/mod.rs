//! The customer portal: server-rendered pages from compile-time checked templates (HTML-escaped by default), no
//! JavaScript, every change a POST form. What a customer may do here is what a customer's API token may do, with
//! the same rules (the `admin` crate) and the same scoping (another customer's id is "not found").
//!
//! Protections, each with a test: cross-origin form posts refused (`CsrfLayer`: Origin / Sec-Fetch-Site), nothing
//! changes on GET, session cookies `__Host-` + HttpOnly + Secure + SameSite=Lax with a new id at sign-in, a CSP
//! without inline script and `frame-ancestors 'none'`, `no-store` everywhere (pages can show a password), argon2id
//! passwords, one-time links hashed and spent once within 60 minutes, built from `api.public_url` (never from the
//! Host header), the same answer and the same work whether or not an email has a login, and failed sign-ins
//! throttled per email and address, and per address, without touching SIP.

mod auth;
mod numbers;
mod pages;
mod session;

use std::sync::Mutex;

use askama::Template;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use switchboard_sip_core::digest::FailureThrottle;
use tower_http::csrf::CsrfLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::AppState;

/// A region customers can choose: its name and the SIP server address their phones point at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub name: String,
    pub sip_address: String,
}

/// The portal's settings.
#[derive(Debug, Clone)]
pub struct PortalSettings {
    /// Emailed links start with this (`https://portal.example.net`), never with what a request's Host says.
    pub public_url: String,
    pub idle_ms: i64,
    pub absolute_ms: i64,
    /// How long an emailed link works.
    pub link_ms: i64,
    /// Failed sign-ins per email and address before that pair waits, and how long it waits.
    pub login_failures: u32,
    pub login_window_ms: u64,
    /// Configured regions (`[[api.regions]]`); when there are none, the regions of the live nodes are offered.
    pub regions: Vec<Region>,
    /// This node's region, offered when no node has announced itself yet.
    pub own_region: Region,
    /// A node whose heartbeat is older than this is not offered.
    pub node_stale_ms: i64,
}

impl Default for PortalSettings {
    fn default() -> Self {
        PortalSettings {
            public_url: "http://127.0.0.1:8080".into(),
            idle_ms: 30 * 60_000,
            absolute_ms: 12 * 3_600_000,
            link_ms: 60 * 60_000,
            login_failures: 5,
            login_window_ms: 15 * 60_000,
            regions: Vec::new(),
            own_region: Region { name: "default".into(), sip_address: "127.0.0.1".into() },
            node_stale_ms: 30_000,
        }
    }
}

/// State of the portal beyond the API's.
#[derive(Debug)]
pub(crate) struct PortalState {
    pub(crate) settings: PortalSettings,
    /// Failed sign-ins by `email|address`, and by address (five times as many).
    pub(crate) throttle: Mutex<(FailureThrottle, FailureThrottle)>,
    /// Link emails asked for, by address asked for (3 an hour) and by address asking (20 an hour).
    pub(crate) mailings: Mutex<(FailureThrottle, FailureThrottle)>,
}

impl PortalState {
    pub(crate) fn new(settings: PortalSettings) -> PortalState {
        let s = &settings;
        let pair = FailureThrottle::new(s.login_failures, s.login_window_ms, s.login_window_ms, 100_000);
        let address =
            FailureThrottle::new(s.login_failures.saturating_mul(5), s.login_window_ms, s.login_window_ms, 100_000);
        const HOUR: u64 = 3_600_000;
        let mailings = (FailureThrottle::new(3, HOUR, HOUR, 100_000), FailureThrottle::new(20, HOUR, HOUR, 100_000));
        PortalState { throttle: Mutex::new((pair, address)), mailings: Mutex::new(mailings), settings }
    }
}

impl AppState {
    /// The regions a customer may choose: the configured ones, else each region of the live nodes with their
    /// SIP addresses (several nodes of one region are listed together).
    pub(crate) async fn regions(&self) -> Vec<Region> {
        let p = &self.portal.settings;
        if !p.regions.is_empty() {
            return p.regions.clone();
        }
        let now = switchboard_model::date::now_ms();
        let mut regions: Vec<Region> = Vec::new();
        match self.store.list_nodes().await {
            Ok(nodes) => {
                for (n, _) in nodes.into_iter().filter(|(n, _)| now - n.heartbeat_at <= p.node_stale_ms) {
                    match regions.iter_mut().find(|r| r.name == n.region) {
                        Some(r) if !r.sip_address.split(", ").any(|a| a == n.sip_address) => {
                            r.sip_address = format!("{}, {}", r.sip_address, n.sip_address);
                        }
                        Some(_) => {}
                        None => regions.push(Region { name: n.region, sip_address: n.sip_address }),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "portal: cannot list the nodes for the regions"),
        }
        if regions.is_empty() {
            regions.push(p.own_region.clone());
        }
        regions
    }

    /// How emailed links are made.
    pub(crate) fn links(&self) -> switchboard_admin::logins::Links {
        let p = &self.portal.settings;
        switchboard_admin::logins::Links { public_url: p.public_url.clone(), ttl_ms: p.link_ms }
    }
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/portal", get(|| async { Redirect::to("/portal/") }))
        .route("/portal/", get(pages::services))
        .route("/portal/login", get(auth::login_page).post(auth::login))
        .route("/portal/logout", post(auth::logout))
        .route("/portal/register", get(auth::register_page).post(auth::register))
        .route("/portal/recover", get(auth::recover_page).post(auth::recover))
        .route("/portal/password/{token}", get(auth::password_page).post(auth::set_password))
        .route("/portal/waiting", get(auth::waiting))
        .route("/portal/services/{id}/setup", get(pages::setup_page).post(pages::setup))
        .route("/portal/services/{id}/devices", get(pages::devices).post(pages::add_device))
        .route("/portal/devices/{id}", get(pages::device_page).post(pages::edit_device))
        .route("/portal/devices/{id}/delete", post(pages::delete_device))
        .route("/portal/devices/{id}/password", post(pages::reset_device_password))
        .route("/portal/services/{id}/numbers", get(numbers::numbers))
        .route("/portal/numbers/{id}", get(numbers::number).post(numbers::edit_number))
        .route("/portal/numbers/{id}/voicemail", get(numbers::voicemail))
        .route("/portal/voicemails/{id}/audio", get(numbers::audio))
        .route("/portal/voicemails/{id}/keep", post(numbers::keep_message))
        .route("/portal/voicemails/{id}/delete", post(numbers::delete_message))
        .route("/portal/services/{id}/calls", get(numbers::calls))
        .route("/portal/static/portal.css", get(css))
        .layer(CsrfLayer::new().with_rejection_response(|_| {
            page_error(StatusCode::FORBIDDEN, "This form was sent from another site, so it was refused.")
        }))
}

/// Headers on every answer, portal pages and API alike: no page of ours runs script, is framed, is sniffed
/// into another type, tells another site where it came from, or is kept by a cache (pages can show a password).
pub(crate) fn secure_headers(r: Router) -> Router {
    let headers = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; media-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
    ];
    let mut r =
        r.layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    for (name, value) in headers {
        r = r.layer(SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value)));
    }
    r
}

/// Answers a path nobody serves: a page under `/portal`, JSON elsewhere.
pub(crate) async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/portal") {
        page_error(StatusCode::NOT_FOUND, "There is no such page.")
    } else {
        crate::routes::not_found().await.into_response()
    }
}

async fn css() -> Response {
    let mut r = include_str!("../../templates/portal.css").into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    r
}

/// A rendered page.
pub(crate) fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "portal: a template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error (logged)").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    signed_in: bool,
}

/// A refusal from the shared field rules as a sentence for a page: the field by its label on the form
/// (`caller_id: ...` reads `Default outbound caller ID: ...`).
pub(crate) fn explain(e: &switchboard_admin::Error) -> String {
    const LABELS: &[(&str, &str)] = &[
        ("auth_id", "Auth ID"),
        ("caller_id", "Default outbound caller ID"),
        ("call_types", "Call types"),
        ("password", "Password"),
        ("name", "Name"),
        ("divert_to", "Divert to"),
        ("divert_when", "Divert when"),
        ("no_answer_secs", "Ring time"),
        ("offline_alert", "Offline alert email"),
        ("voicemail_pin", "Voicemail PIN"),
        ("voicemail_email_keep", "Keep emailed messages"),
        ("voicemail_email", "Send messages to"),
    ];
    match e {
        switchboard_admin::Error::Invalid(i) => {
            let label = LABELS.iter().find(|(f, _)| *f == i.field).map_or(i.field.as_str(), |(_, l)| l);
            format!("{label}: {}", i.message)
        }
        other => other.to_string(),
    }
}

/// A path id, or a "no such page" answer.
pub(crate) fn path_id(raw: &str) -> Result<i64, Response> {
    raw.parse().map_err(|_| page_error(StatusCode::NOT_FOUND, "There is no such page."))
}

/// "There is no such WHAT": also the answer for another customer's records.
pub(crate) fn no_such(what: &str) -> Response {
    page_error(StatusCode::NOT_FOUND, &format!("There is no such {what}."))
}

/// A page that says what went wrong, with its status.
pub(crate) fn page_error(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    (status, render(&ErrorPage { title, message, signed_in: false })).into_response()
}

/// A database failure: logged, and a page that says so without details.
pub(crate) fn failure(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "portal: database error");
    page_error(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on our side; it has been logged.")
}

/// A form body: `application/x-www-form-urlencoded` pairs, in order (checkboxes repeat a name).
#[derive(Debug, Default)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The value, trimmed; `None` when absent or blank.
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
    }

    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for Form {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Form, Response> {
        let form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !form {
            return Err(page_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "This page takes a form."));
        }
        let bytes = bytes::Bytes::from_request(req, state)
            .await
            .map_err(|_| page_error(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large."))?;
        Ok(Form(form_urlencoded::parse(&bytes).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()))
    }
}
