//! Voicemail messages: a row per message, written by the node that records it (the row comes first, so that a
//! node dying mid-message finds the message at restart), read by retrieval, the API and the portal. Not part of
//! the change log.

use crate::backend::{SqlStore, with_pool};
use crate::errors::WriteCtx;
use crate::rows::{VoicemailRow, convert_all, voicemail_columns};
use crate::{NewVoicemail, Result, StoreError, Voicemail, VoicemailStatus};

const INSERT: &str = concat!(
    "INSERT INTO voicemails (number_id, caller, caller_name, received_at, duration_ms, status, file, node) \
     VALUES ($1, $2, $3, $4, 0, 'recording', $5, $6) RETURNING ",
    voicemail_columns!()
);
const BY_ID: &str = concat!("SELECT ", voicemail_columns!(), " FROM voicemails WHERE id = $1");
const BY_NUMBER: &str =
    concat!("SELECT ", voicemail_columns!(), " FROM voicemails WHERE number_id = $1 ORDER BY received_at, id");
const UNFINISHED: &str = concat!(
    "SELECT ",
    voicemail_columns!(),
    " FROM voicemails WHERE status = 'recording' AND node = $1 ORDER BY received_at, id"
);

fn not_found(id: i64) -> StoreError {
    StoreError::NotFound { entity: "voicemail", key: id.to_string() }
}

impl SqlStore {
    pub(crate) async fn create_voicemail(&self, new: &NewVoicemail) -> Result<Voicemail> {
        with_pool!(self, pool => {
            let row: VoicemailRow = sqlx::query_as(INSERT)
                .bind(new.number_id)
                .bind(&new.caller)
                .bind(&new.caller_name)
                .bind(new.received_at)
                .bind(&new.file)
                .bind(&new.node)
                .fetch_one(pool)
                .await
                .map_err(|e| WriteCtx::new("voicemail", &[]).parent("number", new.number_id).error(e))?;
            Voicemail::try_from(row)
        })
    }

    pub(crate) async fn finish_voicemail(&self, id: i64, duration_ms: i64) -> Result<()> {
        with_pool!(self, pool => {
            let done = sqlx::query(
                "UPDATE voicemails SET status = 'new', duration_ms = $2 WHERE id = $1 AND status = 'recording'",
            )
            .bind(id)
            .bind(duration_ms.max(0))
            .execute(pool)
            .await?
            .rows_affected();
            if done == 0 { Err(not_found(id)) } else { Ok(()) }
        })
    }

    pub(crate) async fn set_voicemail_status(&self, id: i64, status: VoicemailStatus) -> Result<()> {
        with_pool!(self, pool => {
            let done = sqlx::query("UPDATE voicemails SET status = $2 WHERE id = $1")
                .bind(id)
                .bind(status.as_str())
                .execute(pool)
                .await?
                .rows_affected();
            if done == 0 { Err(not_found(id)) } else { Ok(()) }
        })
    }

    pub(crate) async fn delete_voicemail(&self, id: i64) -> Result<()> {
        with_pool!(self, pool => {
            let done = sqlx::query("DELETE FROM voicemails WHERE id = $1").bind(id).execute(pool).await?.rows_affected();
            if done == 0 { Err(not_found(id)) } else { Ok(()) }
        })
    }

    pub(crate) async fn voicemail(&self, id: i64) -> Result<Option<Voicemail>> {
        with_pool!(self, pool => {
            let row: Option<VoicemailRow> = sqlx::query_as(BY_ID).bind(id).fetch_optional(pool).await?;
            row.map(Voicemail::try_from).transpose()
        })
    }

    pub(crate) async fn list_voicemails(&self, number_id: i64) -> Result<Vec<Voicemail>> {
        with_pool!(self, pool => {
            let rows: Vec<VoicemailRow> = sqlx::query_as(BY_NUMBER).bind(number_id).fetch_all(pool).await?;
            convert_all(rows)
        })
    }

    pub(crate) async fn unfinished_voicemails(&self, node: &str) -> Result<Vec<Voicemail>> {
        with_pool!(self, pool => {
            let rows: Vec<VoicemailRow> = sqlx::query_as(UNFINISHED).bind(node).fetch_all(pool).await?;
            convert_all(rows)
        })
    }
}
