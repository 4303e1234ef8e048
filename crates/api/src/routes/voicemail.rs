//! A number's voicemail messages: list, play or download the recording, mark saved or new, delete. Each change
//! counts the mailbox again and tells the daemon, which lights or clears the phone's message-waiting lamp.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use switchboard_storage::{Number, Store, Voicemail, VoicemailStatus};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json::{Body, Id, Params};
use crate::views::VoicemailView;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_voicemails))
        .routes(routes!(get_voicemail, update_voicemail, delete_voicemail))
        .routes(routes!(audio))
}

impl Caller {
    /// Message `id` and its number, if the caller may see them.
    pub(crate) async fn voicemail(self, store: &dyn Store, id: i64) -> ApiResult<(Voicemail, Number)> {
        let m = store.voicemail(id).await?.ok_or_else(|| ApiError::not_found("voicemail message"))?;
        let (number, _) =
            self.number(store, m.number_id).await.map_err(|_| ApiError::not_found("voicemail message"))?;
        Ok((m, number))
    }
}

/// The number's messages, newest first.
#[utoipa::path(get, path = "/numbers/{id}/voicemails", tag = "voicemail", params(("id" = i64, Path, description = "number id")),
    responses((status = 200, body = [VoicemailView]), (status = 404, body = ErrorBody)))]
async fn list_voicemails(caller: Caller, State(s): State<AppState>, Id(id): Id) -> ApiResult<Json<Vec<VoicemailView>>> {
    let (number, _) = caller.number(s.store.as_ref(), id).await?;
    let mut list = s.store.list_voicemails(number.id).await?;
    list.sort_by_key(|m| std::cmp::Reverse((m.received_at, m.id)));
    Ok(Json(list.into_iter().map(VoicemailView::from).collect()))
}

#[utoipa::path(get, path = "/voicemails/{id}", tag = "voicemail", params(("id" = i64, Path)),
    responses((status = 200, body = VoicemailView), (status = 404, body = ErrorBody)))]
async fn get_voicemail(caller: Caller, State(s): State<AppState>, Id(id): Id) -> ApiResult<Json<VoicemailView>> {
    let (m, _) = caller.voicemail(s.store.as_ref(), id).await?;
    Ok(Json(m.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VoicemailChangesBody {
    /// `saved` (listened to, kept) or `new`.
    pub status: String,
}

/// Marks a message saved or new again.
#[utoipa::path(patch, path = "/voicemails/{id}", tag = "voicemail", params(("id" = i64, Path)),
    request_body = VoicemailChangesBody,
    responses(
        (status = 200, body = VoicemailView),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn update_voicemail(
    caller: Caller,
    State(s): State<AppState>,
    Id(id): Id,
    Body(b): Body<VoicemailChangesBody>,
) -> ApiResult<Json<VoicemailView>> {
    let (m, number) = caller.voicemail(s.store.as_ref(), id).await?;
    let status = match b.status.as_str() {
        "saved" => VoicemailStatus::Saved,
        "new" => VoicemailStatus::New,
        other => {
            let message = format!("{other:?} is not a status to set (use saved or new)");
            return Err(ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "status", message));
        }
    };
    set_status(&s, &m, &number, status).await?;
    Ok(Json(Voicemail { status, ..m }.into()))
}

/// Marks a message saved or new, and relights the lamp.
pub(crate) async fn set_status(s: &AppState, m: &Voicemail, number: &Number, status: VoicemailStatus) -> ApiResult<()> {
    if m.status == VoicemailStatus::Recording {
        return Err(ApiError::new(StatusCode::CONFLICT, "the caller is still leaving this message"));
    }
    s.store.set_voicemail_status(m.id, status).await?;
    mailbox_changed(s, number).await;
    Ok(())
}

/// Deletes a message and its recording.
#[utoipa::path(delete, path = "/voicemails/{id}", tag = "voicemail", params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_voicemail(caller: Caller, State(s): State<AppState>, Id(id): Id) -> ApiResult<StatusCode> {
    let (m, number) = caller.voicemail(s.store.as_ref(), id).await?;
    delete_message(&s, &m, &number).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a message with its recording (when this node holds it) and relights the lamp.
pub(crate) async fn delete_message(s: &AppState, m: &Voicemail, number: &Number) -> ApiResult<()> {
    if m.status == VoicemailStatus::Recording {
        return Err(ApiError::new(StatusCode::CONFLICT, "the caller is still leaving this message"));
    }
    s.store.delete_voicemail(m.id).await?;
    if m.node == s.settings.node
        && let Some(path) = recording(s, m)
        && let Err(e) = tokio::fs::remove_file(&path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, file = %path.display(), "cannot remove a deleted message's recording");
    }
    mailbox_changed(s, number).await;
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct AudioQuery {
    /// `true`: sent as a file to save (`Content-Disposition: attachment`) rather than to play.
    pub download: Option<bool>,
}

/// The recording, 8 kHz 16-bit PCM WAV, from the node that recorded it.
#[utoipa::path(get, path = "/voicemails/{id}/audio", tag = "voicemail", params(("id" = i64, Path), AudioQuery),
    responses(
        (status = 200, description = "audio/wav", content_type = "audio/wav"),
        (status = 404, body = ErrorBody),
    ))]
async fn audio(
    caller: Caller,
    State(s): State<AppState>,
    Id(id): Id,
    Params(q): Params<AudioQuery>,
) -> ApiResult<Response> {
    let (m, _) = caller.voicemail(s.store.as_ref(), id).await?;
    recording_response(&s, &m, q.download.unwrap_or(false)).await
}

/// The message's recording as a WAV answer: to play (`inline`) or to save (`attachment`).
pub(crate) async fn recording_response(s: &AppState, m: &Voicemail, download: bool) -> ApiResult<Response> {
    if m.status == VoicemailStatus::Recording {
        return Err(ApiError::new(StatusCode::CONFLICT, "the caller is still leaving this message"));
    }
    if m.node != s.settings.node {
        let message = format!("the recording is held by node {}; ask that node's API", m.node);
        return Err(ApiError::new(StatusCode::NOT_FOUND, message));
    }
    let path = recording(s, m).ok_or_else(|| ApiError::not_found("recording"))?;
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ApiError::not_found("recording")),
        Err(e) => {
            tracing::error!(error = %e, file = %path.display(), "cannot read a recording");
            return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the recording (logged)"));
        }
    };
    let disposition = if download { "attachment" } else { "inline" };
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    if let Ok(v) = HeaderValue::from_str(&format!("{disposition}; filename=\"voicemail-{}.wav\"", m.id)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(r)
}

/// The recording's path under `voicemail.dir`; `None` for a stored name that would leave it.
fn recording(s: &AppState, m: &Voicemail) -> Option<std::path::PathBuf> {
    let rel = std::path::Path::new(&m.file);
    let inside = rel.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    inside.then(|| s.settings.voicemail_dir.join(rel))
}

/// Counts the number's mailbox and tells the daemon (the message-waiting lamp).
pub(crate) async fn mailbox_changed(s: &AppState, number: &Number) {
    let Some(hooks) = &s.hooks else { return };
    match s.store.list_voicemails(number.id).await {
        Ok(list) => {
            let count = |st| u32::try_from(list.iter().filter(|m| m.status == st).count()).unwrap_or(u32::MAX);
            hooks.mailbox_changed(&number.number, count(VoicemailStatus::New), count(VoicemailStatus::Saved));
        }
        Err(e) => tracing::error!(error = %e, "cannot count a mailbox for the lamp"),
    }
}
