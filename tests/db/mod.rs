//! Databases for tests: a fresh SQLite file, or a fresh schema on the real PostgreSQL.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

static N: AtomicUsize = AtomicUsize::new(0);

/// The PostgreSQL server the tests use (`PRIORAUTH_TEST_PG`, default the local `test` db).
pub fn pg_base() -> String {
    std::env::var("PRIORAUTH_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A new empty SQLite database file.
pub fn sqlite_url() -> String {
    let dir = std::env::temp_dir().join("priorauth-store-tests");
    std::fs::create_dir_all(&dir).unwrap();
    // Files of earlier runs (older than an hour) go.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600);
            if old {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let path: PathBuf = dir.join(format!("{}.db", unique("t")));
    format!("sqlite://{}", path.display())
}

/// Test schemas are named `pa_store_<pid>_<n>_<nanos>`.
const SCHEMA_PREFIX: &str = "pa_store";

/// Drops the test schemas of test processes that are gone (the server is shared).
async fn drop_stale_schemas(c: &mut sqlx::PgConnection) {
    use sqlx::Row;
    if !std::path::Path::new("/proc/self").exists() {
        return; // no way to tell which processes are alive
    }
    let rows = sqlx::query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'pa\\_store\\_%'")
        .fetch_all(&mut *c)
        .await
        .unwrap_or_default();
    for r in rows {
        let name: String = r.get(0);
        let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE"
            )))
            .execute(&mut *c)
            .await;
        }
    }
}

/// A new empty schema on the real PostgreSQL, as a URL whose connections use it; None (with a
/// printed reason) when no server answers, a panic under CI=true.
pub async fn pg_url() -> Option<String> {
    use sqlx::Connection;
    let base = pg_base();
    match sqlx::PgConnection::connect(&base).await {
        Ok(mut c) => {
            drop_stale_schemas(&mut c).await;
            let schema = unique(SCHEMA_PREFIX);
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&mut c)
                .await
                .unwrap();
            let _ = c.close().await;
            let sep = if base.contains('?') { '&' } else { '?' };
            Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
        }
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("CI=true but PostgreSQL is not reachable at {base}: {e}");
            }
            eprintln!("SKIPPED (PostgreSQL): not reachable at {base}: {e}");
            None
        }
    }
}

/// Both backends: SQLite always, PostgreSQL when reachable.
pub async fn both() -> Vec<String> {
    let mut v = vec![sqlite_url()];
    if let Some(pg) = pg_url().await {
        v.push(pg);
    }
    v
}
