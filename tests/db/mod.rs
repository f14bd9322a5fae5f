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
    let path: PathBuf = dir.join(format!("{}.db", unique("t")));
    format!("sqlite://{}", path.display())
}

/// A new empty schema on the real PostgreSQL, as a URL whose connections use it; None (with a
/// printed reason) when no server answers, a panic under CI=true.
pub async fn pg_url() -> Option<String> {
    use sqlx::Connection;
    let base = pg_base();
    match sqlx::PgConnection::connect(&base).await {
        Ok(mut c) => {
            let schema = unique("t");
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
