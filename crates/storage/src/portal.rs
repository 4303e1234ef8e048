//! Customer portal logins, their sessions and their one-time links. Not part of the change log: the daemon's SIP
//! side never reads them.

use sqlx::FromRow;

use crate::backend::{SqlStore, WritePool, now_ms, with_pool};
use crate::errors::WriteCtx;
use crate::{Login, Millis, NewLoginToken, Result, Session, SpentToken, StoreError, TokenPurpose};

macro_rules! login_columns {
    () => {
        "id, email, password_hash, customer_id, created_at, password_changed_at"
    };
}

#[derive(Debug, FromRow)]
struct LoginRow {
    id: i64,
    email: String,
    password_hash: Option<String>,
    customer_id: Option<i64>,
    created_at: i64,
    password_changed_at: Option<i64>,
}

impl From<LoginRow> for Login {
    fn from(r: LoginRow) -> Self {
        Login {
            id: r.id,
            email: r.email,
            password_hash: r.password_hash,
            customer_id: r.customer_id,
            created_at: r.created_at,
            password_changed_at: r.password_changed_at,
        }
    }
}

#[derive(Debug, FromRow)]
struct SessionRow {
    id_hash: String,
    login_id: i64,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
}

fn login_not_found(id: i64) -> StoreError {
    StoreError::NotFound { entity: "login", key: id.to_string() }
}

impl SqlStore {
    pub(crate) async fn create_login(&self, email: &str, customer_id: Option<i64>) -> Result<Login> {
        let email = email.to_lowercase();
        let unique = [("email", email.as_str())];
        let ctx = WriteCtx::new("login", &unique);
        let ctx = match customer_id {
            Some(id) => ctx.parent("customer", id),
            None => ctx,
        };
        with_pool!(self, pool => {
            let row: LoginRow = sqlx::query_as(concat!(
                "INSERT INTO logins (email, customer_id, created_at) VALUES ($1, $2, $3) RETURNING ",
                login_columns!()
            ))
            .bind(&email)
            .bind(customer_id)
            .bind(now_ms())
            .fetch_one(pool)
            .await
            .map_err(|e| ctx.error(e))?;
            Ok(Login::from(row))
        })
    }

    pub(crate) async fn login(&self, id: i64) -> Result<Option<Login>> {
        with_pool!(self, pool => {
            let row: Option<LoginRow> =
                sqlx::query_as(concat!("SELECT ", login_columns!(), " FROM logins WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(pool)
                    .await?;
            Ok(row.map(Login::from))
        })
    }

    pub(crate) async fn login_by_email(&self, email: &str) -> Result<Option<Login>> {
        with_pool!(self, pool => {
            let row: Option<LoginRow> =
                sqlx::query_as(concat!("SELECT ", login_columns!(), " FROM logins WHERE email = $1"))
                    .bind(email.to_lowercase())
                    .fetch_optional(pool)
                    .await?;
            Ok(row.map(Login::from))
        })
    }

    pub(crate) async fn list_logins(&self) -> Result<Vec<Login>> {
        with_pool!(self, pool => {
            let rows: Vec<LoginRow> = sqlx::query_as(concat!("SELECT ", login_columns!(), " FROM logins ORDER BY id"))
                .fetch_all(pool)
                .await?;
            Ok(rows.into_iter().map(Login::from).collect())
        })
    }

    pub(crate) async fn link_login(&self, id: i64, customer_id: Option<i64>) -> Result<Login> {
        let ctx = WriteCtx::new("login", &[]);
        let ctx = match customer_id {
            Some(c) => ctx.parent("customer", c),
            None => ctx,
        };
        with_pool!(self, pool => {
            let row: Option<LoginRow> = sqlx::query_as(concat!(
                "UPDATE logins SET customer_id = $2 WHERE id = $1 RETURNING ",
                login_columns!()
            ))
            .bind(id)
            .bind(customer_id)
            .fetch_optional(pool)
            .await
            .map_err(|e| ctx.error(e))?;
            row.map(Login::from).ok_or_else(|| login_not_found(id))
        })
    }

    /// Sets the password and ends every session and unused link of the login, in one transaction.
    pub(crate) async fn set_login_password(&self, id: i64, password_hash: &str, at: Millis) -> Result<()> {
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let changed = sqlx::query("UPDATE logins SET password_hash = $2, password_changed_at = $3 WHERE id = $1")
                .bind(id)
                .bind(password_hash)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                return Err(login_not_found(id));
            }
            sqlx::query("DELETE FROM portal_sessions WHERE login_id = $1").bind(id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM login_tokens WHERE login_id = $1 AND used_at IS NULL")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    pub(crate) async fn delete_login(&self, id: i64) -> Result<()> {
        with_pool!(self, pool => {
            let deleted = sqlx::query("DELETE FROM logins WHERE id = $1").bind(id).execute(pool).await?.rows_affected();
            if deleted == 0 {
                return Err(login_not_found(id));
            }
            Ok(())
        })
    }

    pub(crate) async fn create_session(&self, s: &Session) -> Result<()> {
        let ctx = WriteCtx::new("session", &[]).parent("login", s.login_id);
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO portal_sessions (id_hash, login_id, created_at, last_seen_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&s.id_hash)
            .bind(s.login_id)
            .bind(s.created_at)
            .bind(s.last_seen_at)
            .bind(s.expires_at)
            .execute(pool)
            .await
            .map_err(|e| ctx.error(e))?;
            Ok(())
        })
    }

    /// The session, if it has not expired at `now`.
    pub(crate) async fn session(&self, id_hash: &str, now: Millis) -> Result<Option<Session>> {
        with_pool!(self, pool => {
            let row: Option<SessionRow> = sqlx::query_as(
                "SELECT id_hash, login_id, created_at, last_seen_at, expires_at FROM portal_sessions \
                 WHERE id_hash = $1 AND expires_at > $2",
            )
            .bind(id_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|r| Session {
                id_hash: r.id_hash,
                login_id: r.login_id,
                created_at: r.created_at,
                last_seen_at: r.last_seen_at,
                expires_at: r.expires_at,
            }))
        })
    }

    pub(crate) async fn touch_session(&self, id_hash: &str, at: Millis, expires_at: Millis) -> Result<()> {
        with_pool!(self, pool => {
            sqlx::query("UPDATE portal_sessions SET last_seen_at = $2, expires_at = $3 WHERE id_hash = $1")
                .bind(id_hash)
                .bind(at)
                .bind(expires_at)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    pub(crate) async fn delete_session(&self, id_hash: &str) -> Result<()> {
        with_pool!(self, pool => {
            sqlx::query("DELETE FROM portal_sessions WHERE id_hash = $1").bind(id_hash).execute(pool).await?;
            Ok(())
        })
    }

    /// Deletes expired sessions and links spent or expired before `before`; how many rows went.
    pub(crate) async fn purge_portal(&self, now: Millis, before: Millis) -> Result<u64> {
        with_pool!(self, pool => {
            let sessions = sqlx::query("DELETE FROM portal_sessions WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected();
            let tokens = sqlx::query("DELETE FROM login_tokens WHERE expires_at <= $1 OR used_at <= $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(sessions + tokens)
        })
    }

    pub(crate) async fn create_login_token(&self, t: &NewLoginToken) -> Result<()> {
        let ctx = WriteCtx::new("login token", &[]).parent("login", t.login_id);
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO login_tokens (token_hash, login_id, purpose, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&t.token_hash)
            .bind(t.login_id)
            .bind(t.purpose.as_str())
            .bind(now_ms())
            .bind(t.expires_at)
            .execute(pool)
            .await
            .map_err(|e| ctx.error(e))?;
            Ok(())
        })
    }

    /// Spends the link: `None` when it is unknown, already used or expired at `now`. One statement, so two
    /// requests racing with the same link never both get it.
    pub(crate) async fn spend_login_token(&self, token_hash: &str, now: Millis) -> Result<Option<SpentToken>> {
        with_pool!(self, pool => {
            let row: Option<(i64, String)> = sqlx::query_as(
                "UPDATE login_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
                 RETURNING login_id, purpose",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            row.map(|(login_id, purpose)| {
                let purpose = TokenPurpose::parse(&purpose)
                    .ok_or_else(|| crate::rows::corrupt(format!("login_tokens.purpose {purpose:?}")))?;
                Ok(SpentToken { login_id, purpose })
            })
            .transpose()
        })
    }

    /// Whether the link would be spent at `now` (a page showing the form asks before the form is sent).
    pub(crate) async fn login_token_live(&self, token_hash: &str, now: Millis) -> Result<bool> {
        with_pool!(self, pool => {
            let row: Option<(i64,)> = sqlx::query_as(
                "SELECT login_id FROM login_tokens WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            Ok(row.is_some())
        })
    }
}
