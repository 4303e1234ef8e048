//! Phone Number Configuration (number -> device, Divert When, Divert To, the offline alert, the mailbox's PIN and
//! email), Voicemail (play, download, keep, delete) and Calls (recent call records). Numbers themselves come
//! from the operator; customers configure them.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use switchboard_admin::Naming;
use switchboard_admin::numbers::{self, NumberChanges};
use switchboard_storage::{CdrFilter, Device, Number, Service, Voicemail, VoicemailStatus};

use super::session::Customer;
use super::{Form, explain, failure, no_such, page_error, path_id, render};
use crate::AppState;
use crate::auth::Caller;

async fn service_of(s: &AppState, c: &Customer, raw: &str) -> Result<Service, Response> {
    let id = path_id(raw)?;
    Caller::Customer(c.customer_id).service(s.store.as_ref(), id).await.map_err(|_| no_such("service"))
}

async fn number_of(s: &AppState, c: &Customer, raw: &str) -> Result<(Number, Service), Response> {
    let id = path_id(raw)?;
    Caller::Customer(c.customer_id).number(s.store.as_ref(), id).await.map_err(|_| no_such("number"))
}

async fn message_of(s: &AppState, c: &Customer, raw: &str) -> Result<(Voicemail, Number), Response> {
    let id = path_id(raw)?;
    Caller::Customer(c.customer_id).voicemail(s.store.as_ref(), id).await.map_err(|_| no_such("message"))
}

fn when_label(w: &str) -> &'static str {
    match w {
        "no_answer" => "No answer",
        "all" => "All calls",
        "offline" => "All devices offline",
        _ => "Never",
    }
}

/// A number as the table shows it.
struct NumberRow {
    id: i64,
    number: String,
    device: String,
    divert: String,
    offline_alert: String,
    voicemail: String,
}

#[derive(Template)]
#[template(path = "numbers.html")]
struct NumbersPage<'a> {
    service: &'a Service,
    numbers: Vec<NumberRow>,
    signed_in: bool,
}

pub(crate) async fn numbers(State(s): State<AppState>, c: Customer, Path(raw): Path<String>) -> Response {
    let service = match service_of(&s, &c, &raw).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (list, devices) =
        match tokio::try_join!(s.store.list_numbers(Some(service.id)), s.store.list_devices(Some(service.id))) {
            Ok(x) => x,
            Err(e) => return failure(e),
        };
    let mut rows = Vec::with_capacity(list.len());
    for n in list {
        let mailbox = match s.store.mailbox(n.id).await {
            Ok(m) => m,
            Err(e) => return failure(e),
        };
        let device = n
            .device_id
            .and_then(|d| devices.iter().find(|x| x.id == d))
            .map_or_else(|| "every device of the service".to_owned(), |d| d.name.clone());
        let divert = match (n.divert_when.as_str(), &n.divert_to) {
            ("never", _) | (_, None) => "Never".to_owned(),
            ("no_answer", Some(to)) => format!("No answer after {} s: {to}", n.no_answer_secs),
            (w, Some(to)) => format!("{}: {to}", when_label(w)),
        };
        let voicemail = match mailbox {
            Some(m) => {
                let pin = if m.pin_hash.is_some() { "PIN set" } else { "no PIN" };
                match m.email {
                    Some(e) => format!("{pin}; emailed to {e}"),
                    None => pin.to_owned(),
                }
            }
            None => "no PIN".to_owned(),
        };
        rows.push(NumberRow {
            id: n.id,
            number: n.number,
            device,
            divert,
            offline_alert: n.offline_alert.unwrap_or_else(|| "-".into()),
            voicemail,
        });
    }
    render(&NumbersPage { service: &service, numbers: rows, signed_in: true })
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "number.html")]
struct NumberPage<'a> {
    service: &'a Service,
    number: &'a Number,
    devices: Vec<Choice>,
    whens: Vec<Choice>,
    to_voicemail: bool,
    to_number: String,
    no_answer_secs: String,
    offline_alert: String,
    pin_set: bool,
    voicemail_email: String,
    email_keep: bool,
    error: Option<String>,
    signed_in: bool,
}

async fn show_number(
    s: &AppState,
    service: &Service,
    n: &Number,
    form: Option<&Form>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let (devices, mailbox) = match tokio::try_join!(s.store.list_devices(Some(service.id)), s.store.mailbox(n.id)) {
        Ok(x) => x,
        Err(e) => return failure(e),
    };
    let pick = |name: &str, current: String| form.and_then(|f| f.get(name).map(str::to_owned)).unwrap_or(current);
    let device_now = pick("device", n.device_id.map(|d| d.to_string()).unwrap_or_default());
    let mut device_choices = vec![Choice {
        value: String::new(),
        label: "Every device of the service".into(),
        selected: device_now.is_empty(),
    }];
    device_choices.extend(devices.iter().map(|d: &Device| Choice {
        value: d.id.to_string(),
        label: d.name.clone(),
        selected: device_now == d.id.to_string(),
    }));
    let when_now = pick("divert_when", n.divert_when.as_str().to_owned());
    let whens = ["never", "no_answer", "all", "offline"]
        .iter()
        .map(|w| Choice { value: (*w).to_owned(), label: when_label(w).to_owned(), selected: when_now == *w })
        .collect();
    let target_now = pick(
        "divert_to",
        match n.divert_to.as_deref() {
            Some("voicemail") | None => "voicemail".into(),
            Some(_) => "number".into(),
        },
    );
    let to_number = pick("divert_number", n.divert_to.clone().filter(|t| t != "voicemail").unwrap_or_default());
    let page = NumberPage {
        service,
        number: n,
        devices: device_choices,
        whens,
        to_voicemail: target_now != "number",
        to_number,
        no_answer_secs: pick("no_answer_secs", n.no_answer_secs.to_string()),
        offline_alert: pick("offline_alert", n.offline_alert.clone().unwrap_or_default()),
        pin_set: mailbox.as_ref().is_some_and(|m| m.pin_hash.is_some()),
        voicemail_email: pick("voicemail_email", mailbox.as_ref().and_then(|m| m.email.clone()).unwrap_or_default()),
        email_keep: form
            .map_or_else(|| mailbox.as_ref().is_none_or(|m| m.email_keep), |f| f.get("voicemail_email_keep").is_some()),
        error,
        signed_in: true,
    };
    (status, render(&page)).into_response()
}

pub(crate) async fn number(State(s): State<AppState>, c: Customer, Path(raw): Path<String>) -> Response {
    match number_of(&s, &c, &raw).await {
        Ok((n, service)) => show_number(&s, &service, &n, None, None, StatusCode::OK).await,
        Err(r) => r,
    }
}

pub(crate) async fn edit_number(
    State(s): State<AppState>,
    c: Customer,
    Path(raw): Path<String>,
    form: Form,
) -> Response {
    let (n, service) = match number_of(&s, &c, &raw).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let refuse = |message: String, status| show_number(&s, &service, &n, Some(&form), Some(message), status);
    let device_id = match form.text("device") {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(d) => match s.store.device(d).await {
                Ok(Some(dev)) if dev.service_id == service.id => Some(d),
                Ok(_) => {
                    return refuse("Choose one of this service's devices.".into(), StatusCode::UNPROCESSABLE_ENTITY)
                        .await;
                }
                Err(e) => return failure(e),
            },
            Err(_) => {
                return refuse("Choose one of this service's devices.".into(), StatusCode::UNPROCESSABLE_ENTITY).await;
            }
        },
    };
    let divert_when = form.text("divert_when").unwrap_or_else(|| "never".into());
    let divert_to = match form.get("divert_to") {
        Some("number") => form.text("divert_number"),
        _ => Some("voicemail".to_owned()),
    };
    let no_answer_secs = match form.text("no_answer_secs").map(|v| v.parse::<i64>()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            return refuse("Ring time: a number of seconds, 5 to 300.".into(), StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    let voicemail_email = form.text("voicemail_email");
    let changes = NumberChanges {
        device_id: Some(device_id),
        divert_to: Some(divert_to),
        divert_when: Some(divert_when),
        no_answer_secs,
        offline_alert: Some(form.text("offline_alert")),
        voicemail_pin: match (form.text("voicemail_pin"), form.get("clear_pin").is_some()) {
            (Some(pin), _) => Some(Some(pin)),
            (None, true) => Some(None),
            (None, false) => None,
        },
        voicemail_email_keep: voicemail_email.as_ref().map(|_| form.get("voicemail_email_keep").is_some()),
        voicemail_email: Some(voicemail_email),
    };
    let mailbox = match s.store.mailbox(n.id).await {
        Ok(m) => m,
        Err(e) => return failure(e),
    };
    let (update, mailbox) = match numbers::number_update(&changes, &n, mailbox.as_ref(), Naming::Json) {
        Ok(x) => x,
        Err(e) => return refuse(explain(&e), StatusCode::UNPROCESSABLE_ENTITY).await,
    };
    if update != Default::default()
        && let Err(e) = s.store.update_number(n.id, &update).await
    {
        return failure(e);
    }
    if let Err(e) = mailbox.apply(s.store.as_ref(), n.id).await {
        return failure(e);
    }
    Redirect::to(&format!("/portal/services/{}/numbers", service.id)).into_response()
}

struct MessageRow {
    id: i64,
    from: String,
    received: String,
    length: String,
    new: bool,
    here: bool,
}

#[derive(Template)]
#[template(path = "voicemail.html")]
struct VoicemailPage<'a> {
    service: &'a Service,
    number: &'a Number,
    messages: Vec<MessageRow>,
    signed_in: bool,
}

pub(crate) async fn voicemail(State(s): State<AppState>, c: Customer, Path(raw): Path<String>) -> Response {
    let (n, service) = match number_of(&s, &c, &raw).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut list = match s.store.list_voicemails(n.id).await {
        Ok(l) => l,
        Err(e) => return failure(e),
    };
    list.retain(|m| m.status != VoicemailStatus::Recording);
    list.sort_by_key(|m| std::cmp::Reverse((m.received_at, m.id)));
    let messages = list
        .into_iter()
        .map(|m| MessageRow {
            id: m.id,
            from: match m.caller_name {
                Some(name) => format!("{name} ({})", m.caller),
                None => m.caller,
            },
            received: format!("{} UTC", switchboard_model::date::local_minute(m.received_at, 0)),
            length: format!("{}:{:02}", m.duration_ms / 60_000, m.duration_ms / 1000 % 60),
            new: m.status == VoicemailStatus::New,
            here: m.node == s.settings.node,
        })
        .collect();
    render(&VoicemailPage { service: &service, number: &n, messages, signed_in: true })
}

#[derive(Debug, Deserialize)]
pub(crate) struct AudioQuery {
    download: Option<String>,
}

pub(crate) async fn audio(
    State(s): State<AppState>,
    c: Customer,
    Path(raw): Path<String>,
    q: Query<AudioQuery>,
) -> Response {
    let (m, _) = match message_of(&s, &c, &raw).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match crate::routes::voicemail::recording_response(&s, &m, q.download.is_some()).await {
        Ok(r) => r,
        Err(e) => page_error(e.status, &e.message),
    }
}

pub(crate) async fn keep_message(State(s): State<AppState>, c: Customer, Path(raw): Path<String>) -> Response {
    let (m, n) = match message_of(&s, &c, &raw).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match crate::routes::voicemail::set_status(&s, &m, &n, VoicemailStatus::Saved).await {
        Ok(()) => Redirect::to(&format!("/portal/numbers/{}/voicemail", n.id)).into_response(),
        Err(e) => page_error(e.status, &e.message),
    }
}

pub(crate) async fn delete_message(State(s): State<AppState>, c: Customer, Path(raw): Path<String>) -> Response {
    let (m, n) = match message_of(&s, &c, &raw).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match crate::routes::voicemail::delete_message(&s, &m, &n).await {
        Ok(()) => Redirect::to(&format!("/portal/numbers/{}/voicemail", n.id)).into_response(),
        Err(e) => page_error(e.status, &e.message),
    }
}

struct CallRow {
    started: String,
    direction: &'static str,
    from: String,
    to: String,
    result: String,
    talked: String,
}

#[derive(Template)]
#[template(path = "calls.html")]
struct CallsPage<'a> {
    service: &'a Service,
    calls: Vec<CallRow>,
    signed_in: bool,
}

pub(crate) async fn calls(State(s): State<AppState>, c: Customer, Path(raw): Path<String>) -> Response {
    let service = match service_of(&s, &c, &raw).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let filter = CdrFilter { service_id: Some(service.id), since: None, until: None, limit: 200 };
    let list = match s.store.list_cdrs(&filter).await {
        Ok(l) => l,
        Err(e) => return failure(e),
    };
    let calls = list
        .into_iter()
        .map(|c| {
            let talked = match (c.answered_at, c.ended_at) {
                (Some(a), Some(e)) => format!("{}:{:02}", (e - a) / 60_000, (e - a) / 1000 % 60),
                _ => "-".into(),
            };
            let mut result = c.disposition.as_str().replace('_', " ");
            if let (Some(reason), Some(to)) = (c.divert_reason, &c.diverted_to) {
                result = format!("{result}; diverted ({}) to {to}", reason.as_str().replace('_', " "));
            }
            CallRow {
                started: format!("{} UTC", switchboard_model::date::local_minute(c.started_at, 0)),
                direction: match c.direction.as_str() {
                    "inbound" => "in",
                    "outbound" => "out",
                    _ => "on-net",
                },
                from: c.caller,
                to: c.callee,
                result,
                talked,
            }
        })
        .collect();
    render(&CallsPage { service: &service, calls, signed_in: true })
}
