//! Management API tokens: made (only the hash stored), found by hash, listed, revoked. Not part of the change log:
//! the API reads them on every request.

use sqlx::FromRow;

use crate::backend::{SqlStore, now_ms, with_pool};
use crate::errors::WriteCtx;
use crate::{ApiToken, Millis, NewApiToken, Result, StoreError};

macro_rules! token_columns {
    () => {
        "id, name, customer_id, created_at, last_used_at, revoked_at"
    };
}

#[derive(Debug, FromRow)]
struct TokenRow {
    id: i64,
    name: String,
    customer_id: Option<i64>,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl From<TokenRow> for ApiToken {
    fn from(r: TokenRow) -> Self {
        ApiToken {
            id: r.id,
            name: r.name,
            customer_id: r.customer_id,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

impl SqlStore {
    pub(crate) async fn create_api_token(&self, new: &NewApiToken) -> Result<ApiToken> {
        let unique = [("token_hash", "(hidden)"), ("name", new.name.as_str())];
        let ctx = WriteCtx::new("API token", &unique);
        let ctx = match new.customer_id {
            Some(id) => ctx.parent("customer", id),
            None => ctx,
        };
        with_pool!(self, pool => {
            let row: TokenRow = sqlx::query_as(concat!(
                "INSERT INTO api_tokens (name, token_hash, customer_id, created_at) VALUES ($1, $2, $3, $4) \
                 RETURNING ",
                token_columns!()
            ))
            .bind(&new.name)
            .bind(&new.token_hash)
            .bind(new.customer_id)
            .bind(now_ms())
            .fetch_one(pool)
            .await
            .map_err(|e| ctx.error(e))?;
            Ok(ApiToken::from(row))
        })
    }

    pub(crate) async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        with_pool!(self, pool => {
            let row: Option<TokenRow> = sqlx::query_as(concat!(
                "SELECT ",
                token_columns!(),
                " FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL"
            ))
            .bind(token_hash)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(ApiToken::from))
        })
    }

    pub(crate) async fn list_api_tokens(&self) -> Result<Vec<ApiToken>> {
        with_pool!(self, pool => {
            let rows: Vec<TokenRow> =
                sqlx::query_as(concat!("SELECT ", token_columns!(), " FROM api_tokens ORDER BY id"))
                    .fetch_all(pool)
                    .await?;
            Ok(rows.into_iter().map(ApiToken::from).collect())
        })
    }

    pub(crate) async fn revoke_api_token(&self, name: &str) -> Result<ApiToken> {
        with_pool!(self, pool => {
            let row: Option<TokenRow> = sqlx::query_as(concat!(
                "UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL RETURNING ",
                token_columns!()
            ))
            .bind(name)
            .bind(now_ms())
            .fetch_optional(pool)
            .await?;
            row.map(ApiToken::from).ok_or_else(|| StoreError::NotFound { entity: "API token", key: name.to_owned() })
        })
    }

    pub(crate) async fn touch_api_token(&self, id: i64, at: Millis) -> Result<()> {
        with_pool!(self, pool => {
            sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1").bind(id).bind(at).execute(pool).await?;
            Ok(())
        })
    }
}
