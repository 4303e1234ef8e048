//! `/metrics` for Prometheus: the daemon's families (refreshed every second by its event loop), the mailbox and
//! outbox levels read from the database at scrape time, and this API's own requests by route and status.

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use switchboard_model::metrics::{Family, Kind, render};
use switchboard_storage::OutboxStatus;

use crate::AppState;

/// Requests answered, by (route pattern, method, status).
#[derive(Debug, Default)]
pub(crate) struct HttpCounts(Mutex<BTreeMap<(String, String, u16), u64>>);

/// Counts every routed request by its route pattern (`/api/v1/devices/{id}`, never the id itself).
pub(crate) async fn count(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let response = next.run(req).await;
    if let Ok(mut c) = s.http.0.lock() {
        *c.entry((route, method, response.status().as_u16())).or_default() += 1;
    }
    response
}

/// Prometheus text format. No token: it tells counts, never a customer's records.
#[utoipa::path(get, path = "/metrics", tag = "health", security(()),
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain")))]
pub(crate) async fn metrics(State(s): State<AppState>) -> Response {
    let mut families = s.hooks.as_ref().map(|h| h.metrics()).unwrap_or_default();
    match s.store.voicemail_counts().await {
        Ok(counts) => {
            let (new, saved) = counts.iter().fold((0, 0), |(n, v), (_, a, b)| (n + a, v + b));
            families.push(
                Family::new("switchboard_voicemail_messages", "Voicemail messages stored, by status.", Kind::Gauge)
                    .with(&[("status", "new")], new as f64)
                    .with(&[("status", "saved")], saved as f64),
            );
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count voicemail messages"),
    }
    match s.store.outbox_counts().await {
        Ok(counts) => {
            let mut f = Family::new("switchboard_outbox_emails", "Emails in the outbox, by status.", Kind::Gauge);
            for status in [OutboxStatus::Queued, OutboxStatus::Sent, OutboxStatus::Failed] {
                let n = counts.iter().find(|(st, _)| *st == status).map_or(0, |(_, n)| *n);
                f.push(&[("status", status.as_str())], n as f64);
            }
            families.push(f);
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count the outbox"),
    }
    let mut http =
        Family::new("switchboard_http_requests_total", "API requests answered, by route and status.", Kind::Counter);
    if let Ok(c) = s.http.0.lock() {
        for ((route, method, status), n) in c.iter() {
            http.push(&[("route", route), ("method", method), ("status", &status.to_string())], *n as f64);
        }
    }
    families.push(http);
    let mut r = render(&families).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    r
}
