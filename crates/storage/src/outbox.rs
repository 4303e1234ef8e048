//! The email outbox: rows queued by whoever has something to say, claimed and sent by one node, retried with
//! back-off, kept as history. Not part of the change log.

use crate::backend::{SqlStore, now_ms, with_pool};
use crate::rows::{EmailRow, convert_all, email_columns};
use crate::{Email, Millis, NewEmail, OutboxStatus, Result, StoreError};

const INSERT: &str = concat!(
    "INSERT INTO outbox (kind, recipient, subject, body, attachment, attachment_name, voicemail_id, node, dedupe, \
     status, attempts, next_attempt_at, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', 0, $10, $10) \
     ON CONFLICT (dedupe) DO NOTHING RETURNING ",
    email_columns!()
);
/// One statement: the inner SELECT picks due rows this node may send; the outer WHERE checks the claim again on
/// each row as it is updated, so when two nodes race for a row only one UPDATE matches it (PostgreSQL re-reads a
/// row changed under it before updating; SQLite has one writer at a time).
const CLAIM: &str = concat!(
    "UPDATE outbox SET claimed_by = $1, claimed_until = $2 \
     WHERE id IN (SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= $3 \
       AND (claimed_until IS NULL OR claimed_until < $3) AND (node IS NULL OR node = $1) ORDER BY id LIMIT $4) \
     AND status = 'queued' AND (claimed_until IS NULL OR claimed_until < $3) RETURNING ",
    email_columns!()
);
const LIST: &str = concat!("SELECT ", email_columns!(), " FROM outbox ORDER BY id DESC LIMIT $1");

fn not_found(id: i64) -> StoreError {
    StoreError::NotFound { entity: "email", key: id.to_string() }
}

impl SqlStore {
    pub(crate) async fn outbox_counts(&self) -> Result<Vec<(OutboxStatus, i64)>> {
        with_pool!(self, pool => {
            let rows: Vec<(String, i64)> =
                sqlx::query_as("SELECT status, COUNT(*) FROM outbox GROUP BY status ORDER BY status")
                    .fetch_all(pool)
                    .await?;
            rows.into_iter()
                .map(|(status, n)| {
                    OutboxStatus::parse(&status)
                        .map(|s| (s, n))
                        .ok_or_else(|| crate::rows::corrupt(format!("outbox.status {status:?}")))
                })
                .collect()
        })
    }

    pub(crate) async fn enqueue_email(&self, new: &NewEmail) -> Result<Option<Email>> {
        with_pool!(self, pool => {
            let row: Option<EmailRow> = sqlx::query_as(INSERT)
                .bind(&new.kind)
                .bind(&new.recipient)
                .bind(&new.subject)
                .bind(&new.body)
                .bind(&new.attachment)
                .bind(&new.attachment_name)
                .bind(new.voicemail_id)
                .bind(&new.node)
                .bind(&new.dedupe)
                .bind(now_ms())
                .fetch_optional(pool)
                .await?;
            row.map(Email::try_from).transpose()
        })
    }

    pub(crate) async fn claim_emails(&self, node: &str, now: Millis, lease_ms: i64, limit: i64) -> Result<Vec<Email>> {
        with_pool!(self, pool => {
            let rows: Vec<EmailRow> = sqlx::query_as(CLAIM)
                .bind(node)
                .bind(now + lease_ms)
                .bind(now)
                .bind(limit.max(1))
                .fetch_all(pool)
                .await?;
            let mut emails: Vec<Email> = convert_all(rows)?;
            emails.sort_by_key(|e| e.id);
            Ok(emails)
        })
    }

    pub(crate) async fn email_sent(&self, id: i64, at: Millis) -> Result<()> {
        with_pool!(self, pool => {
            let done = sqlx::query(
                "UPDATE outbox SET status = 'sent', sent_at = $2, attempts = attempts + 1, claimed_until = NULL, \
                 last_error = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected();
            if done == 0 { Err(not_found(id)) } else { Ok(()) }
        })
    }

    pub(crate) async fn email_failed(&self, id: i64, error: &str, retry_at: Option<Millis>) -> Result<()> {
        with_pool!(self, pool => {
            let done = sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2, claimed_until = NULL, \
                 status = CASE WHEN $3 IS NULL THEN 'failed' ELSE 'queued' END, \
                 next_attempt_at = COALESCE($3, next_attempt_at) WHERE id = $1",
            )
            .bind(id)
            .bind(error)
            .bind(retry_at)
            .execute(pool)
            .await?
            .rows_affected();
            if done == 0 { Err(not_found(id)) } else { Ok(()) }
        })
    }

    pub(crate) async fn list_outbox(&self, limit: i64) -> Result<Vec<Email>> {
        with_pool!(self, pool => {
            let rows: Vec<EmailRow> = sqlx::query_as(LIST).bind(limit.clamp(1, 10_000)).fetch_all(pool).await?;
            convert_all(rows)
        })
    }
}
