//! Runs a contract test against a fresh store of each backend, and reads table shapes out of migration files.
//! (A directory module so Cargo does not build it as a test crate of its own.)

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use switchboard_storage::{Store, open};

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// What a contract test gets: a store, and the URL to reopen it with.
pub struct Ctx {
    pub store: Arc<dyn Store>,
    url: String,
}

impl Ctx {
    /// The database URL, for tests that must reach under the store (e.g. to plant a corrupt row).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the store (its pool closes) and opens the same URL again, as a daemon restart would.
    pub async fn reopen(self) -> Ctx {
        let Ctx { store, url } = self;
        drop(store);
        Ctx { store: open_or_panic(&url).await, url }
    }
}

async fn open_or_panic(url: &str) -> Arc<dyn Store> {
    match open(url).await {
        Ok(store) => store,
        Err(e) => panic!("opening {} failed: {e}", redact(url)),
    }
}

/// Runs `test` on a store in a new SQLite file (under a parent directory that does not exist yet).
pub async fn run_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/data/switchboard.db", dir.path().display());
    let store = open_or_panic(&url).await;
    test(Ctx { store, url }).await;
}

/// Runs `test` on a store in a new PostgreSQL database, dropped afterwards whether the test passes or panics.
pub async fn run_postgres<F, Fut>(test: F)
where
    F: FnOnce(Ctx) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin_url = std::env::var("SWITCHBOARD_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned());
    let mut admin = match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&admin_url)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return unreachable(&admin_url, &e.to_string()),
        Err(_) => return unreachable(&admin_url, "connect timed out after 5 s"),
    };
    let name = fresh_database_name();
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));

    let url = with_database(&admin_url, &name);
    // In its own task so a panic comes back as a value and the database still gets dropped.
    let outcome = tokio::spawn(async move {
        let store = open_or_panic(&url).await;
        test(Ctx { store, url }).await;
    })
    .await;

    // FORCE: the test's pool may still hold connections.
    let dropped =
        sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&mut admin).await;
    admin.close().await.ok();
    if let Err(join_error) = outcome {
        std::panic::resume_unwind(join_error.into_panic());
    }
    if let Err(e) = dropped {
        panic!("DROP DATABASE {name}: {e}");
    }
}

/// Without PostgreSQL the suite still runs on SQLite locally, but CI must not silently lose half its coverage.
fn unreachable(url: &str, error: &str) {
    let url = redact(url);
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "PostgreSQL unreachable at {url}: {error}. CI=true, so the PostgreSQL contract tests must run: \
             start PostgreSQL or point SWITCHBOARD_TEST_PG_URL at one."
        );
    }
    // Straight to the stderr handle, not `eprintln!`: the test harness captures the macro's output of passing tests.
    let line = format!(
        "\n!!!!!!!! SKIPPED: PostgreSQL unreachable at {url}: {error} (set SWITCHBOARD_TEST_PG_URL) !!!!!!!!\n"
    );
    std::io::stderr().write_all(line.as_bytes()).ok();
}

/// `sb_<pid>_<counter>_<nanos>`: unique across parallel tests in this process and across concurrent runs.
fn fresh_database_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("sb_{}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed), nanos)
}

/// `url` with its database name replaced by `name`, keeping any `?params`.
fn with_database(url: &str, name: &str) -> String {
    let (base, params) = match url.split_once('?') {
        Some((base, params)) => (base, format!("?{params}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    format!("{}/{name}{params}", &base[..path_start])
}

/// `url` without a password, fit for test output.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let Some(at) = url[scheme_end..].find('@').map(|i| scheme_end + i) else {
        return url.to_owned();
    };
    match url[scheme_end..at].find(':') {
        Some(colon) => format!("{}:***{}", &url[..scheme_end + colon], &url[at..]),
        None => url.to_owned(),
    }
}

/// Table name -> column names (in order) that a migration file creates: every column of each `CREATE TABLE`, and
/// each column an `ALTER TABLE ... ADD [COLUMN]` adds (under that table's name). Table constraints (`CONSTRAINT`,
/// `PRIMARY KEY (...)`, `UNIQUE (...)`, `FOREIGN KEY`, `CHECK`) are not columns.
pub fn schema_of(sql: &str) -> BTreeMap<String, Vec<String>> {
    let mut tables = BTreeMap::new();
    apply_schema(&mut tables, sql);
    tables
}

/// Applies a migration file's `CREATE TABLE` and `ALTER TABLE ... ADD [COLUMN]` statements to `tables`, so that
/// applying every file in order gives the final columns of each table.
pub fn apply_schema(tables: &mut BTreeMap<String, Vec<String>>, sql: &str) {
    let uncommented: String = sql.lines().map(|l| l.split("--").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    for statement in uncommented.split(';') {
        let words: Vec<&str> = statement.split_whitespace().collect();
        let lower: Vec<String> = words.iter().take(5).map(|w| w.to_lowercase()).collect();
        let starts = |prefix: &[&str]| lower.len() >= prefix.len() && lower.iter().zip(prefix).all(|(w, p)| w == p);
        if starts(&["alter", "table"]) && lower.get(3).is_some_and(|w| w == "add") {
            let name = words[2].trim_matches('"').to_lowercase();
            let column_at = if lower.get(4).is_some_and(|w| w == "column") { 5 } else { 4 };
            let column = words.get(column_at).expect("ALTER TABLE ADD without a column").trim_matches('"');
            tables.entry(name).or_default().push(column.to_lowercase());
            continue;
        }
        if !starts(&["create", "table"]) || words.len() <= 2 {
            continue;
        }
        let mut name_at = 2;
        if words[2].eq_ignore_ascii_case("if") {
            name_at = 5; // IF NOT EXISTS
        }
        let name = words[name_at].trim_end_matches('(').trim_matches('"').to_lowercase();
        let open = statement.find('(').expect("CREATE TABLE without a column list");
        let close = statement.rfind(')').expect("CREATE TABLE without a closing parenthesis");
        let columns = split_top_level(&statement[open + 1..close])
            .into_iter()
            .filter_map(|item| item.split_whitespace().next().map(|w| w.trim_matches('"').to_lowercase()))
            .filter(|first| !["constraint", "primary", "unique", "foreign", "check"].contains(&first.as_str()))
            .collect();
        tables.insert(name, columns);
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(list: &str) -> Vec<&str> {
    let (mut items, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in list.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&list[start..]);
    items.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

#[test]
fn schema_of_reads_created_and_added_columns() {
    let sql = "
        -- a comment; with a semicolon
        CREATE TABLE t (
            id BIGINT PRIMARY KEY,
            x TEXT CHECK (x IN ('a', 'b')),
            CONSTRAINT t_x_key UNIQUE (x)
        );
        ALTER TABLE t ADD COLUMN y TEXT;
        alter table u add z BIGINT;
        CREATE INDEX t_y_idx ON t (y);
    ";
    let tables = schema_of(sql);
    assert_eq!(tables["t"], ["id", "x", "y"]);
    assert_eq!(tables["u"], ["z"]);
    assert_eq!(tables.len(), 2);
}

#[test]
fn url_helpers() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/test", "sb_1"),
        "postgres://postgres@127.0.0.1:5432/sb_1"
    );
    assert_eq!(with_database("postgresql://u:p@h/test?sslmode=disable", "x"), "postgresql://u:p@h/x?sslmode=disable");
    assert_eq!(with_database("postgres://h:5432", "x"), "postgres://h:5432/x");
    assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
    assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
}
