//! Signing in and out, registering, "having trouble signing in", and setting a password from an emailed link.
//!
//! Nothing here tells whether an email address has a login: sign-in failures read the same and cost the same
//! (an argon2 verify against a dummy hash for an unknown address), and register and recover answer at once with
//! the same page while the work (a link, an email through the outbox) happens behind the answer.

use std::net::SocketAddr;
use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use askama::Template;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use switchboard_admin::logins;
use switchboard_storage::{Login, Session};

use super::session::{self, Signed};
use super::{Form, failure, page_error, render};
use crate::AppState;
use switchboard_model::date::now_ms;

/// Shortest portal password.
const MIN_PASSWORD: usize = 10;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    email: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    signed_in: bool,
}

pub(crate) async fn login_page() -> Response {
    render(&LoginPage { email: "", error: None, notice: None, signed_in: false })
}

/// Same words whatever was wrong: unknown email, no password yet, or a wrong one.
const WRONG: &str = "The email or password is not right.";

pub(crate) async fn login(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    form: Form,
) -> Response {
    let email = form.text("email").unwrap_or_default().to_lowercase();
    let password = form.get("password").unwrap_or_default().to_owned();
    let pair = format!("{email}|{}", peer.ip());
    let address = peer.ip().to_string();
    let now = u64::try_from(now_ms()).unwrap_or_default();
    let blocked = s.portal.throttle.lock().map(|t| t.0.is_blocked(&pair, now) || t.1.is_blocked(&address, now));
    if blocked.unwrap_or(true) {
        let page = LoginPage {
            email: &email,
            error: Some("Too many failed attempts; wait a while and try again."),
            notice: None,
            signed_in: false,
        };
        return (StatusCode::TOO_MANY_REQUESTS, render(&page)).into_response();
    }
    let login = match s.store.login_by_email(&email).await {
        Ok(l) => l,
        Err(e) => return failure(e),
    };
    let stored = login.as_ref().and_then(|l| l.password_hash.clone());
    let ok = verify(password, stored).await;
    let login = match (ok, login) {
        (true, Some(l)) => l,
        _ => {
            if let Ok(mut t) = s.portal.throttle.lock() {
                t.0.record_failure(&pair, now);
                t.1.record_failure(&address, now);
            }
            tracing::info!(%peer, "portal: a sign-in failed");
            let page = LoginPage { email: &email, error: Some(WRONG), notice: None, signed_in: false };
            return (StatusCode::UNAUTHORIZED, render(&page)).into_response();
        }
    };
    if let Ok(mut t) = s.portal.throttle.lock() {
        t.0.record_success(&pair);
    }
    start_session(&s, &login).await
}

/// A fresh session (a new id, whatever the browser had) and the way in.
async fn start_session(s: &AppState, login: &Login) -> Response {
    let Some((id, hash)) = session::new_id() else {
        return failure("no randomness for a session id");
    };
    let now = now_ms();
    let p = &s.portal.settings;
    let session = Session {
        id_hash: hash,
        login_id: login.id,
        created_at: now,
        last_seen_at: now,
        expires_at: now + p.idle_ms.min(p.absolute_ms),
    };
    if let Err(e) = s.store.create_session(&session).await {
        return failure(e);
    }
    tracing::info!(login = login.id, "portal: signed in");
    let mut r = Redirect::to("/portal/").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::cookie(&id, p.absolute_ms / 1000)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

pub(crate) async fn logout(State(s): State<AppState>, signed: Signed) -> Response {
    if let Err(e) = s.store.delete_session(&signed.session.id_hash).await {
        return failure(e);
    }
    let mut r = Redirect::to("/portal/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::cleared()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Template)]
#[template(path = "email_form.html")]
struct EmailForm<'a> {
    title: &'a str,
    intro: &'a str,
    action: &'a str,
    button: &'a str,
    error: Option<&'a str>,
    signed_in: bool,
}

const REGISTER: EmailForm<'static> = EmailForm {
    title: "Register",
    intro: "Enter your email address. We will email you a link to choose your password; your provider then links \
            your login to your services.",
    action: "/portal/register",
    button: "Email me a link",
    error: None,
    signed_in: false,
};

const RECOVER: EmailForm<'static> = EmailForm {
    title: "Having trouble signing in",
    intro: "Enter the email address you sign in with. We will email you a link to choose a new password.",
    action: "/portal/recover",
    button: "Email me a link",
    error: None,
    signed_in: false,
};

pub(crate) async fn register_page() -> Response {
    render(&REGISTER)
}

pub(crate) async fn recover_page() -> Response {
    render(&RECOVER)
}

#[derive(Template)]
#[template(path = "notice.html")]
struct Notice<'a> {
    title: &'a str,
    message: &'a str,
    signed_in: bool,
}

/// The one answer to register and recover, whatever the address.
const SENT: &str = "If this address can be used, a link is on its way to it. The link works once, for a limited \
                    time. Nothing arrived? Check the spam folder, or ask again in a few minutes.";

pub(crate) async fn register(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    form: Form,
) -> Response {
    let Some(email) = checked_email(&form) else {
        return render(&EmailForm { error: Some("That is not an email address."), ..REGISTER });
    };
    if !may_email(&s, &email, peer) {
        return render(&Notice { title: "Check your email", message: SENT, signed_in: false });
    }
    tokio::spawn(async move {
        if let Err(e) = register_behind(&s, &email).await {
            tracing::error!(error = %e, "portal: a registration failed");
        }
    });
    render(&Notice { title: "Check your email", message: SENT, signed_in: false })
}

pub(crate) async fn recover(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    form: Form,
) -> Response {
    let Some(email) = checked_email(&form) else {
        return render(&EmailForm { error: Some("That is not an email address."), ..RECOVER });
    };
    if !may_email(&s, &email, peer) {
        return render(&Notice { title: "Check your email", message: SENT, signed_in: false });
    }
    tokio::spawn(async move {
        if let Err(e) = recover_behind(&s, &email).await {
            tracing::error!(error = %e, "portal: a recovery failed");
        }
    });
    render(&Notice { title: "Check your email", message: SENT, signed_in: false })
}

/// Whether another link email may go to `email` at the request of `peer`: a few an hour per address asked for
/// and per address asking, so nobody can flood an inbox with our mail. Over the limit the page is the same and
/// nothing is sent.
fn may_email(s: &AppState, email: &str, peer: SocketAddr) -> bool {
    let now = u64::try_from(now_ms()).unwrap_or_default();
    let Ok(mut t) = s.portal.mailings.lock() else { return false };
    let (to, from) = (format!("to:{email}"), format!("from:{}", peer.ip()));
    if t.0.is_blocked(&to, now) || t.1.is_blocked(&from, now) {
        tracing::info!(%peer, "portal: link email withheld (too many asked for)");
        return false;
    }
    t.0.record_failure(&to, now);
    t.1.record_failure(&from, now);
    true
}

fn checked_email(form: &Form) -> Option<String> {
    let email = form.text("email")?;
    switchboard_admin::check::check_email("email", &email).ok().map(|e| e.to_lowercase())
}

/// A new address gets a welcome link; one with a login already is told so, with a way to reset.
async fn register_behind(s: &AppState, email: &str) -> Result<(), switchboard_admin::Error> {
    let links = s.links();
    match s.store.login_by_email(email).await? {
        Some(login) => links.send(s.store.as_ref(), &login, logins::Letter::AlreadyRegistered).await,
        None => {
            let login = match s.store.create_login(email, None).await {
                Ok(l) => l,
                // Registered twice at once: the other request sends the email.
                Err(switchboard_storage::StoreError::Conflict { .. }) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            links.send(s.store.as_ref(), &login, logins::Letter::Welcome).await
        }
    }
}

async fn recover_behind(s: &AppState, email: &str) -> Result<(), switchboard_admin::Error> {
    let Some(login) = s.store.login_by_email(email).await? else {
        tracing::info!("portal: recovery asked for an address with no login");
        return Ok(());
    };
    s.links().send(s.store.as_ref(), &login, logins::Letter::Reset).await
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage<'a> {
    action: &'a str,
    error: Option<&'a str>,
    signed_in: bool,
}

fn token_ok(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

const DEAD_LINK: &str = "This link does not work: it was used already, it is too old, or the password was changed \
                         since. Ask for a new one from \"Having trouble signing in\".";

pub(crate) async fn password_page(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    let live = token_ok(&token)
        && s.store.login_token_live(&switchboard_admin::tokens::hash(&token), now_ms()).await.unwrap_or(false);
    if !live {
        return page_error(StatusCode::NOT_FOUND, DEAD_LINK);
    }
    let action = format!("/portal/password/{token}");
    render(&PasswordPage { action: &action, error: None, signed_in: false })
}

pub(crate) async fn set_password(State(s): State<AppState>, Path(token): Path<String>, form: Form) -> Response {
    let action = format!("/portal/password/{token}");
    let password = form.get("password").unwrap_or_default().to_owned();
    let again = form.get("again").unwrap_or_default();
    let problem = if password.chars().count() < MIN_PASSWORD {
        Some("Choose a password of at least 10 characters.")
    } else if password.chars().count() > 128 {
        Some("Choose a password of at most 128 characters.")
    } else if password != again {
        Some("The two passwords are not the same.")
    } else {
        None
    };
    if let Some(error) = problem {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            render(&PasswordPage { action: &action, error: Some(error), signed_in: false }),
        )
            .into_response();
    }
    if !token_ok(&token) {
        return page_error(StatusCode::NOT_FOUND, DEAD_LINK);
    }
    let spent = match s.store.spend_login_token(&switchboard_admin::tokens::hash(&token), now_ms()).await {
        Ok(Some(t)) => t,
        Ok(None) => return page_error(StatusCode::NOT_FOUND, DEAD_LINK),
        Err(e) => return failure(e),
    };
    let Some(hash) = hash_password(password).await else { return failure("cannot hash a password") };
    if let Err(e) = s.store.set_login_password(spent.login_id, &hash, now_ms()).await {
        return failure(e);
    }
    tracing::info!(login = spent.login_id, purpose = spent.purpose.as_str(), "portal: password set from a link");
    if let Ok(Some(login)) = s.store.login(spent.login_id).await
        && let Err(e) = s.links().send(s.store.as_ref(), &login, logins::Letter::Changed).await
    {
        tracing::warn!(error = %e, "portal: cannot queue the password-changed email");
    }
    // No automatic sign-in: the owner signs in with the new password.
    let page =
        LoginPage { email: "", error: None, notice: Some("Your password is set. Sign in with it."), signed_in: false };
    render(&page)
}

pub(crate) async fn waiting(signed: Signed) -> Response {
    if signed.login.customer_id.is_some() {
        return Redirect::to("/portal/").into_response();
    }
    let message = "You are signed in, but your provider has not linked your login to your services yet. Ask them to \
                   link it; this page then shows your services.";
    render(&Notice { title: "Waiting for your provider", message, signed_in: true })
}

/// argon2id with its own salt, off the async threads.
pub(crate) async fn hash_password(password: String) -> Option<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default().hash_password(password.as_bytes()).ok().map(|h| h.to_string())
    })
    .await
    .ok()
    .flatten()
}

/// Whether `password` matches `stored`; without a stored hash, the same work against a dummy one, so an unknown
/// address costs what a known one does.
async fn verify(password: String, stored: Option<String>) -> bool {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    tokio::task::spawn_blocking(move || {
        let dummy =
            DUMMY.get_or_init(|| Argon2::default().hash_password(b"not anyone's password").ok().map(|h| h.to_string()));
        let (phc, real) = match (&stored, dummy) {
            (Some(s), _) => (s.as_str(), true),
            (None, Some(d)) => (d.as_str(), false),
            (None, None) => return false,
        };
        let matched =
            PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok());
        matched && real
    })
    .await
    .unwrap_or(false)
}
