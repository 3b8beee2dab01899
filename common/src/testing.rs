//! Test support: each test gets its own database and its own Redis key prefix.
//!
//! PostgreSQL comes from `TEST_DATABASE_URL` (a server URL; a fresh database is
//! created per test and dropped afterwards), Redis from `TEST_REDIS_URL`. Where a
//! variable is unset, testcontainers starts the service if Docker is available; if
//! neither works the test fails and says how to provide the service.

use std::{any::Any, path::PathBuf};

use anyhow::Context as _;
use secrecy::SecretString;
use sqlx::{Connection, PgConnection};
use testcontainers_modules::{
    postgres::Postgres, redis::Redis, testcontainers::runners::AsyncRunner,
};

use crate::{
    db::Database,
    store::{RedisStore, SharedStore, SqlStore},
};

const HOW_TO: &str = "set TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test) and \
    TEST_REDIS_URL (e.g. redis://127.0.0.1:6379), or run where Docker is available";

/// A short unique name for databases and key prefixes.
pub fn unique_name(kind: &str) -> String {
    format!("{kind}_{}", uuid::Uuid::new_v4().simple())
}

/// A database that lives as long as this value.
pub struct TestDatabase {
    pub database: Database,
    cleanup: Cleanup,
    _container: Option<Box<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("database", &self.database)
            .finish()
    }
}

enum Cleanup {
    DropPostgres { server_url: String, name: String },
    RemoveFile(PathBuf),
}

impl TestDatabase {
    /// A fresh, empty PostgreSQL database.
    pub async fn postgres() -> anyhow::Result<Self> {
        let (server_url, container) = match std::env::var("TEST_DATABASE_URL") {
            Ok(url) => (url, None),
            Err(_) => {
                let container = Postgres::default()
                    .start()
                    .await
                    .with_context(|| format!("no PostgreSQL for tests: {HOW_TO}"))?;
                let port = container.get_host_port_ipv4(5432).await?;
                let url = format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres");
                (url, Some(Box::new(container) as Box<dyn Any + Send + Sync>))
            }
        };
        let name = unique_name("customs_test");
        let mut admin = PgConnection::connect(&server_url)
            .await
            .with_context(|| format!("connecting to {server_url}: {HOW_TO}"))?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await?;
        let url = with_database(&server_url, &name)?;
        let database = Database::connect_url(&url, 8).await?;
        Ok(Self {
            database,
            cleanup: Cleanup::DropPostgres { server_url, name },
            _container: container,
        })
    }

    /// A fresh SQLite database file in the temporary directory.
    pub async fn sqlite() -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("{}.db", unique_name("customs_test")));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let database = Database::connect_url(&url, 8).await?;
        Ok(Self {
            database,
            cleanup: Cleanup::RemoveFile(path),
            _container: None,
        })
    }

    /// The file of a SQLite test database; `None` for PostgreSQL.
    pub fn sqlite_file(&self) -> Option<&std::path::Path> {
        match &self.cleanup {
            Cleanup::RemoveFile(path) => Some(path),
            Cleanup::DropPostgres { .. } => None,
        }
    }

    /// The URL a server under test should be configured with.
    pub fn url(&self) -> String {
        match (&self.cleanup, &self.database) {
            (Cleanup::DropPostgres { server_url, name }, _) => {
                with_database(server_url, name).unwrap_or_default()
            }
            (Cleanup::RemoveFile(path), _) => format!("sqlite://{}?mode=rwc", path.display()),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::RemoveFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Cleanup::DropPostgres { server_url, name } => {
                let (server_url, name) = (server_url.clone(), name.clone());
                // Drop runs inside the test's runtime: use a thread with its own.
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(async move {
                        let mut admin = PgConnection::connect(&server_url).await?;
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        )))
                        .execute(&mut admin)
                        .await?;
                        anyhow::Ok(())
                    })
                })
                .join();
            }
        }
    }
}

fn with_database(server_url: &str, name: &str) -> anyhow::Result<String> {
    let mut url = url_parts(server_url)?;
    url.1 = name.to_owned();
    Ok(format!("{}/{}{}", url.0, url.1, url.2))
}

/// Splits `postgres://user@host:port/db?query` into base, database and query.
fn url_parts(url: &str) -> anyhow::Result<(String, String, String)> {
    let scheme_end = url.find("://").context("database URL has no scheme")? + 3;
    let (base, rest) = match url[scheme_end..].find('/') {
        Some(slash) => (&url[..scheme_end + slash], &url[scheme_end + slash + 1..]),
        None => (url, ""),
    };
    let (database, query) = match rest.find('?') {
        Some(q) => (&rest[..q], &rest[q..]),
        None => (rest, ""),
    };
    Ok((base.to_owned(), database.to_owned(), query.to_owned()))
}

/// A Redis URL and a key prefix of this test's own.
pub struct TestRedis {
    pub url: SecretString,
    pub prefix: String,
    _container: Option<Box<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for TestRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRedis")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl TestRedis {
    pub async fn start() -> anyhow::Result<Self> {
        let (url, container) = match std::env::var("TEST_REDIS_URL") {
            Ok(url) => (url, None),
            Err(_) => {
                let container = Redis::default()
                    .start()
                    .await
                    .with_context(|| format!("no Redis for tests: {HOW_TO}"))?;
                let port = container.get_host_port_ipv4(6379).await?;
                (
                    format!("redis://127.0.0.1:{port}"),
                    Some(Box::new(container) as Box<dyn Any + Send + Sync>),
                )
            }
        };
        Ok(Self {
            url: SecretString::from(url),
            prefix: unique_name("customs_test"),
            _container: container,
        })
    }

    pub async fn store(&self) -> anyhow::Result<RedisStore> {
        RedisStore::connect(&self.url, &self.prefix).await
    }

    /// Deletes every key under this test's prefix (a "Redis lost its data" event).
    pub async fn flush_prefix(&self) -> anyhow::Result<()> {
        use secrecy::ExposeSecret;
        let client = redis::Client::open(self.url.expose_secret())?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query_async(&mut connection)
            .await?;
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut connection)
                .await?;
        }
        Ok(())
    }
}

/// The shared store on the embedded SQL backend, over a fresh SQLite database.
pub async fn sql_store(database: &TestDatabase) -> anyhow::Result<SharedStore> {
    match &database.database {
        Database::Sqlite(sqlite) => Ok(SharedStore::Sql(
            SqlStore::new(sqlite.writer.clone()).await?,
        )),
        Database::Postgres(_) => anyhow::bail!("the SQL shared store runs on SQLite"),
    }
}

/// For a test of an upgrade that rebuilds an embedded (SQLite) database's tables
/// without `AUTOINCREMENT`: given a database that an older build wrote, in which each
/// of the `counted` tables is declared `AUTOINCREMENT` and has its ids counted in
/// `sqlite_sequence`, runs `migrations` to the end and checks that every table kept its
/// rows and that no table is declared so or has its ids counted there any more.
pub async fn upgrade_without_autoincrement(
    database: &TestDatabase,
    mut migrations: crate::db::Migrations,
    counted: &[&str],
) {
    let rows = sqlite_table_rows(database).await.unwrap();
    let before = sqlite_autoincrement(database).await.unwrap();
    for table in counted {
        assert_eq!(
            before.iter().filter(|name| name == table).count(),
            2,
            "the build before declared {table} AUTOINCREMENT and counted its ids"
        );
    }
    database.database.migrate(&mut migrations).await.unwrap();
    assert_eq!(
        sqlite_table_rows(database).await.unwrap(),
        rows,
        "every table kept its rows"
    );
    assert_eq!(
        sqlite_autoincrement(database).await.unwrap(),
        Vec::<String>::new()
    );
}

/// Each table of an embedded (SQLite) database, by name, with its number of rows.
async fn sqlite_table_rows(database: &TestDatabase) -> anyhow::Result<Vec<(String, i64)>> {
    let Database::Sqlite(sqlite) = &database.database else {
        anyhow::bail!("not an embedded database");
    };
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_schema
         WHERE type = 'table' AND name NOT GLOB 'sqlite_*' AND name NOT GLOB '_sqlx_*'
         ORDER BY name",
    )
    .fetch_all(&sqlite.writer)
    .await?;
    let mut rows = Vec::with_capacity(names.len());
    for name in names {
        // A name SQLite gave: nothing a caller sent.
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM \"{name}\""
        )))
        .fetch_one(&sqlite.writer)
        .await?;
        rows.push((name, count));
    }
    Ok(rows)
}

/// The tables of an embedded (SQLite) database declared `AUTOINCREMENT`, whose ids
/// SQLite counts in `sqlite_sequence` besides, and the names it counts there.
async fn sqlite_autoincrement(database: &TestDatabase) -> anyhow::Result<Vec<String>> {
    let Database::Sqlite(sqlite) = &database.database else {
        anyhow::bail!("not an embedded database");
    };
    let mut names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND sql LIKE '%AUTOINCREMENT%'",
    )
    .fetch_all(&sqlite.writer)
    .await?;
    let counted: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence')",
    )
    .fetch_one(&sqlite.writer)
    .await?;
    if counted {
        names.extend(
            sqlx::query_scalar::<_, String>("SELECT name FROM sqlite_sequence")
                .fetch_all(&sqlite.writer)
                .await?,
        );
    }
    Ok(names)
}

/// Runs every listed suite function against a fresh SQLite database and a fresh
/// PostgreSQL database: one repository suite, both native backends.
///
/// `$setup` is an `async fn(&TestDatabase) -> R` (migrate, build the repository);
/// each `$name` is an `async fn(R)`.
#[macro_export]
macro_rules! database_suite {
    ($setup:path; $($name:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let database = $crate::testing::TestDatabase::sqlite().await.unwrap();
                    assert!(matches!(database.database, $crate::db::Database::Sqlite(_)));
                    super::$name($setup(&database).await).await;
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let database = $crate::testing::TestDatabase::postgres().await.unwrap();
                    assert!(matches!(database.database, $crate::db::Database::Postgres(_)));
                    super::$name($setup(&database).await).await;
                }
            )*
        }
    };
}

/// A class for test schemes: its code stands for its names.
pub fn credit_class(code: &str, summary_tax_payment: bool) -> crate::credit::CreditClassSetting {
    crate::credit::CreditClassSetting {
        code: code.into(),
        name_zh: code.into(),
        name_en: code.into(),
        summary_tax_payment,
    }
}

/// A scheme after the 2018 default, like the 2021 one: from 1 November 2021 it drops
/// GENERAL_CERTIFIED, whose enterprises hold GENERAL_CREDIT from then on.
pub fn credit_scheme_2021() -> crate::credit::CreditSchemeSetting {
    crate::credit::CreditSchemeSetting {
        name: "2021".into(),
        effective_from: "2021-11-01".into(),
        classes: vec![
            credit_class("ADVANCED_CERTIFIED", true),
            credit_class("GENERAL_CREDIT", true),
            credit_class("DISCREDITED", false),
        ],
        carried_over: [("GENERAL_CERTIFIED".into(), "GENERAL_CREDIT".into())].into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_swapped_in_the_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "y").unwrap(),
            "postgres://u:p@h/y?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:1", "z").unwrap(),
            "postgres://h:1/z"
        );
    }
}
