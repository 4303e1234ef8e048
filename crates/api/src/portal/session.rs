//! Portal sessions: a random 256-bit id in a `__Host-` cookie (HttpOnly, Secure, SameSite=Lax), only its SHA-256
//! stored; an idle expiry pushed on by use and an absolute one; a new id at every sign-in; all of a login's
//! sessions end when its password changes.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use switchboard_storage::{Login, Session};

use crate::AppState;
use switchboard_model::date::now_ms;

/// The session cookie's name. `__Host-`: only ever set by this host, for `/`, over a secure context (browsers
/// count http://127.0.0.1 and http://localhost as secure).
pub(crate) const COOKIE: &str = "__Host-sb_session";

/// A new session id for the browser, and its stored hash.
pub(crate) fn new_id() -> Option<(String, String)> {
    switchboard_admin::tokens::secret().ok()
}

/// `Set-Cookie` for session `id`, living `max_age_secs`.
pub(crate) fn cookie(id: &str, max_age_secs: i64) -> String {
    format!("{COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}")
}

/// `Set-Cookie` that removes the session cookie.
pub(crate) fn cleared() -> String {
    format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// The session id the browser sent, if any.
pub(crate) fn presented(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whoever is signed in, linked to a customer or not.
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    pub login: Login,
    pub session: Session,
}

/// A signed-in login linked to a customer: what every customer page needs.
#[derive(Debug, Clone)]
pub(crate) struct Customer {
    pub login: Login,
    pub customer_id: i64,
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Signed, Response> {
        let to_login = || Redirect::to("/portal/login").into_response();
        let Some(id) = presented(parts) else { return Err(to_login()) };
        let hash = switchboard_admin::tokens::hash(&id);
        let now = now_ms();
        let session = match s.store.session(&hash, now).await {
            Ok(Some(session)) => session,
            Ok(None) => return Err(to_login()),
            Err(e) => return Err(crate::portal::failure(e)),
        };
        let login = match s.store.login(session.login_id).await {
            Ok(Some(l)) => l,
            Ok(None) => return Err(to_login()),
            Err(e) => return Err(crate::portal::failure(e)),
        };
        let p = &s.portal.settings;
        // Written at most once a minute per session (sooner for short idle limits); never past the absolute
        // lifetime.
        if now - session.last_seen_at >= (p.idle_ms / 2).min(60_000) {
            let expires = (now + p.idle_ms).min(session.created_at + p.absolute_ms);
            if let Err(e) = s.store.touch_session(&hash, now, expires).await {
                tracing::warn!(error = %e, "portal: cannot extend a session");
            }
        }
        Ok(Signed { login, session })
    }
}

impl FromRequestParts<AppState> for Customer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Customer, Response> {
        let signed = Signed::from_request_parts(parts, s).await?;
        match signed.login.customer_id {
            Some(customer_id) => Ok(Customer { login: signed.login, customer_id }),
            None => Err(Redirect::to("/portal/waiting").into_response()),
        }
    }
}
