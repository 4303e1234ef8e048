//! Opening a store: URL parsing, connection settings, embedded migrations, and the one-body-two-drivers
//! dispatch that lets every query be written once for both SQLite and PostgreSQL.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Transaction;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions, Postgres};
use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::{Millis, Result, Store, StoreError};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

/// SQLite allows one writer at a time (WAL lets readers run alongside), so a few connections are plenty.
const SQLITE_MAX_CONNECTIONS: u32 = 4;
const POSTGRES_MAX_CONNECTIONS: u32 = 8;
/// How long a SQLite writer waits for another writer before giving up with SQLITE_BUSY.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens (creating if needed) the database at `url` and brings its schema up to date.
///
/// - `sqlite://PATH` or `sqlite:PATH` (`sqlite:///abs/path` for an absolute path): parent directories and the file
///   are created; WAL journal, `synchronous=NORMAL`, 5 s busy timeout, foreign keys on. In-memory databases are
///   refused because every pooled connection would see its own, empty, database.
/// - `postgres://...` or `postgresql://...`: any URL the PostgreSQL driver accepts.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    let backend = if let Some(path) = sqlite_path(url) {
        Backend::Sqlite(open_sqlite(path).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Backend::Postgres(open_postgres(url).await?)
    } else {
        return Err(StoreError::BadUrl(url.to_owned()));
    };
    Ok(Arc::new(SqlStore { backend }))
}

/// The file path of a SQLite URL, or `None` if `url` is not a usable SQLite URL.
fn sqlite_path(url: &str) -> Option<&str> {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    // Query parameters (`?mode=...`) would end up in the file name; the settings are ours to choose anyway.
    let usable = !path.is_empty() && !path.contains('?') && !path.contains(":memory:");
    usable.then_some(path)
}

async fn open_sqlite(path: &str) -> Result<SqlitePool> {
    if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(parent).await.map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new().max_connections(SQLITE_MAX_CONNECTIONS).connect_with(options).await?;
    SQLITE_MIGRATIONS.run(&pool).await?;
    tracing::info!(path, "opened SQLite store");
    Ok(pool)
}

async fn open_postgres(url: &str) -> Result<PgPool> {
    let pool = PgPoolOptions::new().max_connections(POSTGRES_MAX_CONNECTIONS).connect(url).await?;
    POSTGRES_MIGRATIONS.run(&pool).await?;
    // Not the URL: it may carry a password.
    tracing::info!("opened PostgreSQL store");
    Ok(pool)
}

/// The SQL implementation of [`Store`] for both backends.
#[derive(Debug)]
pub(crate) struct SqlStore {
    pub(crate) backend: Backend,
}

#[derive(Debug)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Expands `$body` once per backend with `$pool` bound to that backend's pool.
///
/// The SQL is shared (`$n` placeholders, `ON CONFLICT`, `RETURNING` work on both), so each method's body is
/// written once and type-checked against both drivers, without generic bounds over `sqlx::Database`.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            $crate::backend::Backend::Sqlite($pool) => $body,
            $crate::backend::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// How each backend starts a write transaction.
pub(crate) trait WritePool {
    type Db: sqlx::Database;

    /// A transaction that holds the write lock from its first statement.
    ///
    /// SQLite: `BEGIN IMMEDIATE`, so a read-then-write transaction waits for the busy timeout instead of failing
    /// with `SQLITE_BUSY` when it tries to upgrade its lock. PostgreSQL: a plain `BEGIN` (row locks suffice).
    async fn begin_write(&self) -> sqlx::Result<Transaction<'static, Self::Db>>;

    /// A write transaction that will append to the change log.
    ///
    /// Such transactions are serialised so that change-log seqs become visible in commit order: otherwise a poller
    /// of [`Store::changes_since`] could see seq 6 commit before seq 5, move its cursor past 5, and miss it.
    /// SQLite's `BEGIN IMMEDIATE` already serialises writers; PostgreSQL takes a transaction-scoped advisory lock.
    async fn begin_logged(&self) -> sqlx::Result<Transaction<'static, Self::Db>>;
}

impl WritePool for SqlitePool {
    type Db = Sqlite;

    async fn begin_write(&self) -> sqlx::Result<Transaction<'static, Sqlite>> {
        self.begin_with("BEGIN IMMEDIATE").await
    }

    async fn begin_logged(&self) -> sqlx::Result<Transaction<'static, Sqlite>> {
        self.begin_write().await
    }
}

impl WritePool for PgPool {
    type Db = Postgres;

    async fn begin_write(&self) -> sqlx::Result<Transaction<'static, Postgres>> {
        self.begin().await
    }

    async fn begin_logged(&self) -> sqlx::Result<Transaction<'static, Postgres>> {
        let mut tx = self.begin().await?;
        // An arbitrary key reserved for "change log writer"; released at commit or rollback.
        sqlx::query("SELECT pg_advisory_xact_lock(7305915240372207713)").execute(&mut *tx).await?;
        Ok(tx)
    }
}

/// Appends a change-log row inside the transaction `$tx` (a `Transaction`), propagating errors with `?`.
macro_rules! log_change {
    ($tx:ident, $entity:expr, $entity_id:expr, $at:expr) => {
        sqlx::query("INSERT INTO change_log (entity, entity_id, at) VALUES ($1, $2, $3)")
            .bind($crate::rows::entity_str($entity))
            .bind($entity_id)
            .bind($at)
            .execute(&mut *$tx)
            .await?
    };
}
pub(crate) use log_change;

/// The current time in Unix milliseconds.
pub(crate) fn now_ms() -> Millis {
    switchboard_model::date::now_ms()
}

#[cfg(test)]
mod tests {
    use super::sqlite_path;

    #[test]
    fn sqlite_urls() {
        assert_eq!(sqlite_path("sqlite://data/sb.db"), Some("data/sb.db"));
        assert_eq!(sqlite_path("sqlite:///var/lib/sb.db"), Some("/var/lib/sb.db"));
        assert_eq!(sqlite_path("sqlite:sb.db"), Some("sb.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("sqlite://"), None);
        assert_eq!(sqlite_path("sqlite://x.db?mode=ro"), None);
        assert_eq!(sqlite_path("postgres://localhost/x"), None);
    }
}
