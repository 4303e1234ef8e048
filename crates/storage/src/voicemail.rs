//! Mailboxes (a number's PIN and email settings) and voicemail messages: a row per message, written by the node that records it (the row comes first, so that a
//! node dying mid-message finds the message at restart), read by retrieval, the API and the portal. Not part of
//! the change log.

use crate::backend::{SqlStore, now_ms, with_pool};
use crate::errors::WriteCtx;
use crate::rows::{MailboxRow, VoicemailRow, convert_all, mailbox_columns, voicemail_columns};
use crate::{Mailbox, Millis, NewVoicemail, Result, StoreError, Voicemail, VoicemailStatus};

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

const MAILBOX: &str = concat!("SELECT ", mailbox_columns!(), " FROM mailboxes WHERE number_id = $1");
const SET_PIN: &str = concat!(
    "INSERT INTO mailboxes (number_id, pin_hash, updated_at) VALUES ($1, $2, $3) \
     ON CONFLICT (number_id) DO UPDATE SET pin_hash = excluded.pin_hash, pin_failures = 0, locked_until = NULL, \
     updated_at = excluded.updated_at RETURNING ",
    mailbox_columns!()
);
const SET_EMAIL: &str = concat!(
    "INSERT INTO mailboxes (number_id, email, email_keep, updated_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (number_id) DO UPDATE SET email = excluded.email, email_keep = excluded.email_keep, \
     updated_at = excluded.updated_at RETURNING ",
    mailbox_columns!()
);
/// One statement, so that two calls failing at once both count: every right-hand side reads the old row.
const PIN_FAILED: &str = concat!(
    "UPDATE mailboxes SET \
     pin_failures = CASE WHEN pin_failures + 1 >= $2 THEN 0 ELSE pin_failures + 1 END, \
     locked_until = CASE WHEN pin_failures + 1 >= $2 THEN $3 ELSE locked_until END \
     WHERE number_id = $1 RETURNING ",
    mailbox_columns!()
);

fn not_found(id: i64) -> StoreError {
    StoreError::NotFound { entity: "voicemail", key: id.to_string() }
}

impl SqlStore {
    pub(crate) async fn mailbox(&self, number_id: i64) -> Result<Option<Mailbox>> {
        with_pool!(self, pool => {
            let row: Option<MailboxRow> = sqlx::query_as(MAILBOX).bind(number_id).fetch_optional(pool).await?;
            Ok(row.map(Mailbox::from))
        })
    }

    pub(crate) async fn set_mailbox_pin(&self, number_id: i64, pin_hash: Option<&str>) -> Result<Mailbox> {
        with_pool!(self, pool => {
            let row: MailboxRow = sqlx::query_as(SET_PIN)
                .bind(number_id)
                .bind(pin_hash)
                .bind(now_ms())
                .fetch_one(pool)
                .await
                .map_err(|e| WriteCtx::new("mailbox", &[]).parent("number", number_id).error(e))?;
            Ok(Mailbox::from(row))
        })
    }

    pub(crate) async fn set_mailbox_email(&self, number_id: i64, email: Option<&str>, keep: bool) -> Result<Mailbox> {
        with_pool!(self, pool => {
            let row: MailboxRow = sqlx::query_as(SET_EMAIL)
                .bind(number_id)
                .bind(email)
                .bind(keep)
                .bind(now_ms())
                .fetch_one(pool)
                .await
                .map_err(|e| WriteCtx::new("mailbox", &[]).parent("number", number_id).error(e))?;
            Ok(Mailbox::from(row))
        })
    }

    pub(crate) async fn mailbox_pin_failed(&self, number_id: i64, limit: i64, lock_until: Millis) -> Result<Mailbox> {
        with_pool!(self, pool => {
            let row: Option<MailboxRow> = sqlx::query_as(PIN_FAILED)
                .bind(number_id)
                .bind(limit.max(1))
                .bind(lock_until)
                .fetch_optional(pool)
                .await?;
            row.map(Mailbox::from).ok_or_else(|| StoreError::NotFound { entity: "mailbox", key: number_id.to_string() })
        })
    }

    pub(crate) async fn mailbox_pin_passed(&self, number_id: i64) -> Result<()> {
        with_pool!(self, pool => {
            sqlx::query("UPDATE mailboxes SET pin_failures = 0, locked_until = NULL WHERE number_id = $1")
                .bind(number_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

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

    pub(crate) async fn voicemail_counts(&self) -> Result<Vec<(String, i64, i64)>> {
        with_pool!(self, pool => {
            let rows: Vec<(String, i64, i64)> = sqlx::query_as(
                "SELECT n.number, \
                 CAST(SUM(CASE WHEN v.status = 'new' THEN 1 ELSE 0 END) AS BIGINT), \
                 CAST(SUM(CASE WHEN v.status = 'saved' THEN 1 ELSE 0 END) AS BIGINT) \
                 FROM voicemails v JOIN numbers n ON n.id = v.number_id GROUP BY n.number ORDER BY n.number",
            )
            .fetch_all(pool)
            .await?;
            Ok(rows)
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
