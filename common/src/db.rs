//! Database connections: PostgreSQL for production, an embedded SQLite file by default.
//!
//! Each platform keeps its own tables and its own migrations history table
//! (`_sqlx_migrations_<platform>`), so the four can share one database, as in the
//! one-process default, or each have their own.

use std::{str::FromStr, time::Duration};

use anyhow::Context as _;
use secrecy::ExposeSecret;
use sqlx::{
    PgPool, SqlitePool,
    migrate::Migrator,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use crate::config::DatabaseSettings;

/// Runs `$body` with `$pool` bound to whichever native pool `$database` holds, so a
/// repository writes its SQL once (in the dialect both accept: `$n` placeholders,
/// `ON CONFLICT`, `RETURNING`) and it is compiled for each backend.
#[macro_export]
macro_rules! on_pool {
    ($database:expr, $pool:ident => $body:expr) => {
        match $database {
            $crate::db::Database::Postgres($pool) => $body,
            $crate::db::Database::Sqlite($pool) => $body,
        }
    };
}

/// A pool on one of the two supported backends.
#[derive(Debug, Clone)]
pub enum Database {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// A platform's migrations for both backends, embedded with `sqlx::migrate!`.
#[derive(Debug)]
pub struct Migrations {
    /// Names the migrations history table: `_sqlx_migrations_<platform>`.
    pub platform: &'static str,
    pub postgres: Migrator,
    pub sqlite: Migrator,
}

impl Database {
    pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<Self> {
        Self::connect_url(settings.url.expose_secret(), settings.max_connections).await
    }

    /// `max_connections` sizes the PostgreSQL pool; an SQLite database always gets one
    /// connection (see below).
    pub async fn connect_url(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .context("connecting to PostgreSQL")?;
            Ok(Self::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .context("parsing the SQLite URL")?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                // 64 MiB of page cache (the default is 2 MiB): the one connection keeps
                // the B-tree interior pages of every table in memory.
                .pragma("cache_size", "-65536")
                .foreign_keys(true);
            // SQLite lets one connection write at a time and makes the others sleep and
            // retry (1, 2, 5, 10 … 100 ms), which under load turns into tail latencies of
            // a hundred milliseconds. One connection instead queues every statement in
            // arrival order; reads are microseconds here, and WAL keeps the file
            // readable by other processes meanwhile.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                // A local file does not drop like a network connection: no ping (a round
                // trip to the connection's thread) before every statement.
                .test_before_acquire(false)
                .connect_with(options)
                .await
                .context("opening the SQLite database")?;
            Ok(Self::Sqlite(pool))
        } else {
            anyhow::bail!("database url must start with postgres:// or sqlite:")
        }
    }

    /// Runs a platform's migrations against its own history table.
    pub async fn migrate(&self, migrations: &mut Migrations) -> anyhow::Result<()> {
        let table = format!("_sqlx_migrations_{}", migrations.platform);
        match self {
            Self::Postgres(pool) => {
                migrations.postgres.dangerous_set_table_name(table);
                migrations.postgres.run(pool).await
            }
            Self::Sqlite(pool) => {
                migrations.sqlite.dangerous_set_table_name(table);
                migrations.sqlite.run(pool).await
            }
        }
        .with_context(|| format!("running the {} migrations", migrations.platform))
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }

    pub async fn close(&self) {
        match self {
            Self::Postgres(pool) => pool.close().await,
            Self::Sqlite(pool) => pool.close().await,
        }
    }
}
