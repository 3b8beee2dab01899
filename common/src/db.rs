//! Database connections: PostgreSQL for production, an embedded SQLite file by default.
//!
//! Each platform keeps its own tables and its own migrations history table
//! (`_sqlx_migrations_<platform>`), so the four can share one database, as in the
//! one-process default, or each have their own.

use std::{fmt::Write as _, str::FromStr, sync::Arc, time::Duration};

use anyhow::Context as _;
use secrecy::ExposeSecret;
use sqlx::{
    ConnectOptions as _, Connection as _, PgPool,
    migrate::Migrator,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
};

use time::OffsetDateTime;

use crate::config::DatabaseSettings;

mod connections;
mod direct;
mod one_step;

pub use connections::{Connection, Connections, Transaction};
pub use direct::DirectReader;
use one_step::OneSteps;
pub use one_step::{OneStep, Param, Value, WriterError};
pub use rusqlite;

/// Runs `$body` with `$pool` bound to whichever native pool `$database` holds, so a
/// repository writes its SQL once (in the dialect both accept: `$n` placeholders,
/// `ON CONFLICT`, `RETURNING`) and it is compiled for each backend. On SQLite this is
/// the one connection that writes.
#[macro_export]
macro_rules! on_pool {
    ($database:expr, $pool:ident => $body:expr) => {
        match $database {
            $crate::db::Database::Postgres($pool) => $body,
            $crate::db::Database::Sqlite($crate::db::Sqlite { writer: $pool, .. }) => $body,
        }
    };
}

/// As [`on_pool!`], for a read that stands alone (not part of a transaction, and not
/// a read that a write must not overtake): on SQLite it goes to the readers, which
/// read side by side with the writer. A read that starts after a commit sees it.
#[macro_export]
macro_rules! on_reader {
    ($database:expr, $pool:ident => $body:expr) => {
        match $database {
            $crate::db::Database::Postgres($pool) => $body,
            $crate::db::Database::Sqlite($crate::db::Sqlite { readers: $pool, .. }) => $body,
        }
    };
}

/// A pool on one of the two supported backends.
#[derive(Debug, Clone)]
pub enum Database {
    Postgres(PgPool),
    Sqlite(Sqlite),
}

/// The embedded database: one connection that writes, and a few that only read.
#[derive(Debug, Clone)]
pub struct Sqlite {
    pub writer: Connections,
    /// Read-only connections (`query_only`); the writer itself for an in-memory
    /// database, which has no write-ahead log to read beside a writer (the one-step
    /// connection reaches it through sqlx's shared cache, and only while it holds the
    /// writer).
    pub readers: Connections,
    /// One-step transactions waiting for the writer, run in groups.
    one_steps: OneSteps,
    /// Reads run on the caller's thread; none for an in-memory database, which only
    /// the writer reaches.
    direct: Option<Arc<DirectReader>>,
}

impl Sqlite {
    /// Runs `step` as one transaction on the writer, together with the other one-step
    /// transactions waiting for the writer meanwhile (each in a savepoint of one `BEGIN
    /// IMMEDIATE` … `COMMIT`), and returns its answer. They are run by a thread of their
    /// own, on a connection of their own, while it holds the writer's lock (see
    /// [`OneStep`] and `db/one_step.rs`): a transaction of separate statements through
    /// sqlx holds the one writer across a round trip to a Tokio task between each two
    /// of them, which under load waits for a busy worker, and each statement is a
    /// hand-off to sqlx's connection thread and back; this one holds it only while
    /// SQLite works. (SQLite's count of rows changed is no answer: it reports each
    /// `BEGIN` and `COMMIT` with the count of whichever statement changed rows last,
    /// on this or an earlier transaction.)
    ///
    /// It runs to its end even if the caller stops waiting: a transaction cut off
    /// between its statements would stay open on the writer. When a statement fails,
    /// what the ones before it did is rolled back (to its savepoint) before the error
    /// is returned, as sqlx would return SQLite's (a [`WriterError`]), and the other
    /// transactions of its group keep what they did.
    pub async fn one_step(&self, step: OneStep) -> Result<i64, sqlx::Error> {
        let answers = self.one_steps.run(step).await?;
        // The one-step thread answers with exactly one row, or fails the step.
        answers
            .first()
            .copied()
            .ok_or_else(|| sqlx::Error::Protocol("a one-step transaction answered no row".into()))
    }

    /// As [`one_step`](Self::one_step), answering with the first column of every row
    /// that the step's statements return (their `SELECT`s and `RETURNING`s), in order.
    pub async fn one_step_rows(&self, mut step: OneStep) -> Result<Vec<i64>, sqlx::Error> {
        step.every_row = true;
        self.one_steps.run(step).await
    }
}

/// Connections that only read, beside the one that writes. WAL lets them read while
/// it writes; more than the cores would only wait for each other.
const SQLITE_READERS: usize = 4;

/// A platform's migrations for both backends, embedded with `sqlx::migrate!`.
#[derive(Debug)]
pub struct Migrations {
    /// Names the migrations history table: `_sqlx_migrations_<platform>`.
    pub platform: &'static str,
    pub postgres: Migrator,
    pub sqlite: Migrator,
}

/// Numbered placeholders for `count` values from `$first` on, separated by commas
/// (`$2, $3, $4`): a list for `IN (…)` written once for both backends.
pub fn placeholders(first: usize, count: usize) -> String {
    let mut list = String::with_capacity(count * 5);
    for k in first..first + count {
        if k > first {
            list.push_str(", ");
        }
        let _ = write!(list, "${k}");
    }
    list
}

/// Now, to the microsecond: what PostgreSQL keeps of a timestamp, so a time written
/// and kept in memory equals the one read back later (on either backend).
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

/// SQLite runs a checkpoint (copying the write-ahead log back into the database file,
/// with its fsyncs) inside whichever commit grows the log past 1,000 pages, and that
/// request waits milliseconds for it. A connection of its own does it a hundred times
/// a second instead, PASSIVE (it neither waits for nor blocks the writer). The log only
/// starts over once it is wholly copied when a transaction begins, which under steady
/// writes seldom happens: a commit still checkpoints past this many pages (40 MiB), a
/// backstop that keeps the file bounded, and it then finds at most a hundredth of a
/// second's pages left to copy. The writer's commits still stall while a checkpoint
/// syncs the file (the filesystem's journal), for longer the more it copies, so the
/// shorter the interval the shorter the stalls: at an offered 2,500 gate checks a
/// second the p99 was 27 ms checkpointing every second, 18–24 ms every 300 ms,
/// 7.8–8.7 ms every 100 ms, 4.1–4.7 ms every 50 ms and 2.8–3.4 ms every 25 ms; at
/// 3,000 a second, 5.7–8.0 ms every 25 ms and 3.2–4.0 ms every 10 ms
/// (docs/benchmarks.md, seventeenth session). An idle log costs a check that finds
/// nothing to copy.
const WAL_CHECKPOINT_BACKSTOP_PAGES: &str = "10000";
const CHECKPOINT_EVERY: Duration = Duration::from_millis(10);

/// The writer's page cache, in KiB as SQLite's negative `cache_size` takes it: four
/// times SQLite's default, and an eighth of the 64 MiB it was until the nineteenth
/// session. Splitting a b-tree page in the middle of an index (request ids, job keys:
/// most inserts) parks a page under a temporary number, the page of the 1 GiB lock
/// byte (262,145), while SQLite puts the new siblings in order; the cache then holds
/// that as the highest page number it has seen, and the commit, dropping cached pages
/// past the end of the file, scans its whole hash table instead of the slots past the
/// end. At 64 MiB (16,384 slots, some 9,000 pages) that scan was 10–15 % of the writer
/// thread's samples under load; at 8 MiB it is 4 %, for a few more reads of pages the
/// cache no longer holds (docs/benchmarks.md, nineteenth session). Readers keep
/// SQLite's default: they empty theirs at every read after a commit anyway.
const WRITER_CACHE_KIB: &str = "-8192";

/// A PostgreSQL connection idle longer than this is pinged before it is used.
const PG_TEST_IDLE_AFTER: Duration = Duration::from_secs(30);

fn spawn_checkpointer(options: SqliteConnectOptions, writer: Connections) {
    tokio::spawn(async move {
        let mut connection = match options.connect().await {
            Ok(connection) => connection,
            Err(error) => {
                tracing::warn!(%error, "no connection for background WAL checkpoints; commits will checkpoint");
                return;
            }
        };
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if writer.is_closed() {
                break;
            }
            let checkpoint = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&mut connection)
                .await;
            match checkpoint {
                Ok((_, log_pages, copied)) if log_pages > copied => {
                    tracing::debug!(log_pages, copied, "WAL checkpoint behind the writer");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "WAL checkpoint failed; trying again"),
            }
        }
    });
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
                // sqlx pings a connection when it goes back to the pool; pinging it
                // again when it is taken out doubled the round trips of every
                // statement. Only a connection left idle a while is tested first.
                .test_before_acquire(false)
                .before_acquire(|connection, meta| {
                    Box::pin(async move {
                        if meta.idle_for > PG_TEST_IDLE_AFTER {
                            connection.ping().await?;
                        }
                        Ok(true)
                    })
                })
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
                .pragma("cache_size", WRITER_CACHE_KIB)
                .foreign_keys(true);
            // SQLite lets one connection write at a time and makes the others sleep and
            // retry (1, 2, 5, 10 … 100 ms), which under load turns into tail latencies of
            // a hundred milliseconds. One connection instead queues every statement in
            // arrival order; reads are microseconds here, and WAL keeps the file
            // readable by other processes meanwhile.
            let writer = Connections::open(
                options
                    .clone()
                    .pragma("wal_autocheckpoint", WAL_CHECKPOINT_BACKSTOP_PAGES)
                    // A statement inside a transaction keeps the pages it changes in a
                    // statement journal, so that it can be undone alone; past 64 KiB (a
                    // batch of submissions, say) SQLite spills that journal to a fresh
                    // file in /var/tmp, created, written, deleted and closed on the
                    // writer's thread each time. In memory instead: it never outlives
                    // its statement.
                    .pragma("temp_store", "MEMORY"),
                1,
                "BEGIN IMMEDIATE",
            )
            .await
            .context("opening the SQLite database")?;
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            let one_steps = OneSteps::spawn(writer.clone(), options.get_filename(), in_memory)
                .await
                .context("opening the SQLite database for one-step transactions")?;
            // An in-memory database has no log to copy, nor any other connection.
            if in_memory {
                return Ok(Self::Sqlite(Sqlite {
                    readers: writer.clone(),
                    one_steps,
                    writer,
                    direct: None,
                }));
            }
            let readers = Connections::open(
                // SQLite's default page cache: a reader empties its cache whenever
                // another connection has committed since its last read (here, nearly
                // always), and emptying costs a scan of the whole cache.
                options
                    .clone()
                    .pragma("query_only", "ON")
                    .pragma("cache_size", "-2000"),
                SQLITE_READERS,
                "BEGIN",
            )
            .await
            .context("opening the SQLite database for reading")?;
            let direct = Some(Arc::new(DirectReader::new(options.get_filename())));
            spawn_checkpointer(options, writer.clone());
            Ok(Self::Sqlite(Sqlite {
                writer,
                readers,
                one_steps,
                direct,
            }))
        } else {
            anyhow::bail!("database url must start with postgres:// or sqlite:")
        }
    }

    /// Runs a platform's migrations against its own history table.
    pub async fn migrate(&self, migrations: &mut Migrations) -> anyhow::Result<()> {
        self.migrate_to(migrations, i64::MAX).await
    }

    /// Runs a platform's migrations up to and including `version`: the database as a
    /// build of that version left it, for tests of an upgrade.
    pub async fn migrate_to(
        &self,
        migrations: &mut Migrations,
        version: i64,
    ) -> anyhow::Result<()> {
        let table = format!("_sqlx_migrations_{}", migrations.platform);
        match self {
            Self::Postgres(pool) => {
                migrations.postgres.dangerous_set_table_name(table);
                migrations.postgres.run_to(version, pool).await
            }
            Self::Sqlite(sqlite) => {
                migrations.sqlite.dangerous_set_table_name(table);
                migrations
                    .sqlite
                    .run_to(version, &mut *sqlite.writer.acquire().await?)
                    .await
            }
        }
        .with_context(|| format!("running the {} migrations", migrations.platform))
    }

    /// Where a short read by key can run at once on the calling thread (see
    /// [`DirectReader`]): an embedded database in a file. Elsewhere, read with
    /// [`on_reader!`].
    pub fn direct_reader(&self) -> Option<&DirectReader> {
        match self {
            Self::Sqlite(Sqlite {
                direct: Some(direct),
                ..
            }) => Some(direct),
            _ => None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
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
            Self::Sqlite(sqlite) => {
                if let Some(direct) = &sqlite.direct {
                    direct.close();
                }
                sqlite.readers.close().await;
                sqlite.writer.close().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory embedded database holding one table, created by `table`.
    async fn in_memory_with(table: &'static str) -> (Database, Sqlite) {
        let database = Database::connect_url("sqlite::memory:", 1).await.unwrap();
        let Database::Sqlite(sqlite) = &database else {
            panic!("an SQLite URL opens SQLite")
        };
        let sqlite = sqlite.clone();
        sqlx::query(table).execute(&sqlite.writer).await.unwrap();
        (database, sqlite)
    }

    /// A one-step transaction keeps all its statements or, when one fails, none of
    /// them, and leaves the writer outside any transaction either way; it runs to its
    /// end even when its caller stops waiting for it.
    #[tokio::test]
    async fn a_one_step_transaction_is_all_or_nothing() {
        let (database, sqlite) =
            in_memory_with("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)").await;
        let ids = || async {
            sqlx::query_scalar::<_, i64>("SELECT id FROM t ORDER BY id")
                .fetch_all(&sqlite.writer)
                .await
                .unwrap()
        };

        // A value placed twice; `changes()` is the count of the statement before.
        let mut step = OneStep::new("INSERT INTO t VALUES (");
        let id = step.bind(1_i64);
        step.push_param(id).push(", ").push_bind("a");
        step.push(");\nINSERT INTO t SELECT ").push_param(id);
        step.push(" + 1, 'b' WHERE changes() = 1;\nINSERT INTO t SELECT ")
            .push_param(id)
            .push(" + 2, 'c' WHERE changes() = 0;\nSELECT count(*) FROM t");
        assert_eq!(sqlite.one_step(step).await.unwrap(), 2);
        assert_eq!(ids().await, [1, 2]);

        // The second statement fails (a duplicate key): the first one's row goes too.
        let failed = sqlite
            .one_step(OneStep::new(
                "INSERT INTO t VALUES (3, 'c'); INSERT INTO t VALUES (1, 'again'); SELECT 0",
            ))
            .await;
        assert!(failed.is_err());
        assert_eq!(ids().await, [1, 2]);
        let mut tx = sqlite
            .writer
            .begin()
            .await
            .expect("no transaction left open");
        sqlx::query("INSERT INTO t VALUES (4, 'd')")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();

        // A caller that gives up at once: its future dropped after the first poll
        // (the writer held meanwhile, so the transaction has not run by then: the
        // one-step thread runs it the moment the writer is free).
        let held = sqlite.writer.acquire().await.unwrap();
        let abandoned = tokio::select! {
            biased;
            _ = sqlite.one_step(OneStep::new(
                "INSERT INTO t VALUES (5, 'e'); INSERT INTO t VALUES (6, 'f'); SELECT 0",
            )) => false,
            () = std::future::ready(()) => true,
        };
        assert!(abandoned, "the caller stopped waiting");
        drop(held);
        let mut kept = Vec::new();
        for _ in 0..50 {
            kept = ids().await;
            if kept.len() == 5 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(kept, [1, 2, 4, 5, 6]);
        database.close().await;
    }

    #[test]
    fn placeholders_are_numbered_from_the_first() {
        assert_eq!(placeholders(2, 3), "$2, $3, $4");
        assert_eq!(placeholders(1, 1), "$1");
        assert_eq!(placeholders(1, 0), "");
    }

    /// `one_step_rows` answers with every row its statements return, `RETURNING`s
    /// between them included; `one_step` with exactly one, and a step that answers
    /// otherwise keeps nothing.
    #[tokio::test]
    async fn a_one_step_transaction_answers_with_its_rows() {
        let (database, sqlite) =
            in_memory_with("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)").await;
        let mut step = OneStep::new("INSERT INTO t (id, v) VALUES (");
        step.push_bind(1_i64)
            .push(", 'a'), (2, 'b') RETURNING id;\n");
        step.push("UPDATE t SET v = 'c' WHERE id = 2;\nSELECT count(*) * 10 FROM t");
        assert_eq!(
            sqlite.one_step_rows(step.clone()).await.unwrap(),
            [1, 2, 20]
        );

        let mut two = OneStep::new("INSERT INTO t (id, v) VALUES (3, 'd') RETURNING id;\n");
        two.push("SELECT count(*) FROM t");
        let error = sqlite.one_step(two).await.unwrap_err();
        assert!(error.to_string().contains("2 rows, not one"), "{error}");
        let none = sqlite
            .one_step(OneStep::new("DELETE FROM t"))
            .await
            .unwrap_err();
        assert!(none.to_string().contains("0 rows, not one"), "{none}");
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM t ORDER BY id")
            .fetch_all(&sqlite.writer)
            .await
            .unwrap();
        assert_eq!(ids, [1, 2], "a step answered amiss keeps nothing");
        database.close().await;
    }

    /// One-step transactions waiting together run as one group, each with its own
    /// answer; one that fails fails alone, and the others keep what they wrote.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_step_transactions_waiting_together_commit_together_and_fail_alone() {
        let (database, sqlite) =
            in_memory_with("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)").await;
        let insert = |id: i64| {
            let mut step = OneStep::new("INSERT INTO t VALUES (");
            step.push_bind(id).push(", ").push_bind(format!("v{id}"));
            step.push(");\nSELECT ").push_bind(id * 10);
            step
        };
        sqlx::query("INSERT INTO t VALUES (99, 'before')")
            .execute(&sqlite.writer)
            .await
            .unwrap();
        // The writer held, so that all of them queue behind it and go as one group.
        let held = sqlite.writer.acquire().await.unwrap();
        let mut steps = Vec::new();
        for id in 1..=20_i64 {
            // 99 again: its duplicate key fails it, and it alone.
            let step = insert(if id == 14 { 99 } else { id });
            let sqlite = sqlite.clone();
            steps.push(tokio::spawn(async move { sqlite.one_step(step).await }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        let mut answers = Vec::new();
        for step in steps {
            answers.push(step.await.unwrap().ok());
        }
        let expected: Vec<Option<i64>> = (1..=20).map(|id| (id != 14).then_some(id * 10)).collect();
        assert_eq!(answers, expected);
        let stored: Vec<(i64, String)> = sqlx::query_as("SELECT id, v FROM t ORDER BY id")
            .fetch_all(&sqlite.writer)
            .await
            .unwrap();
        let mut kept: Vec<(i64, String)> = (1..=20)
            .filter(|id| *id != 14)
            .map(|id| (id, format!("v{id}")))
            .collect();
        kept.push((99, "before".into()));
        assert_eq!(stored, kept);
        database.close().await;
    }

    /// A transaction dropped without a commit (an error, or a caller that gave up) is
    /// rolled back before anyone else uses its connection, also by a caller already
    /// waiting for it; one that commits keeps its rows.
    #[tokio::test]
    async fn a_dropped_transaction_is_rolled_back_before_the_next_user() {
        let (database, sqlite) = in_memory_with("CREATE TABLE t (id INTEGER PRIMARY KEY)").await;
        let insert = |id: i64| sqlx::query("INSERT INTO t VALUES ($1)").bind(id);

        let mut committed = sqlite.writer.begin().await.unwrap();
        insert(1).execute(&mut *committed).await.unwrap();
        committed.commit().await.unwrap();

        // Dropped, with a caller already queued for the connection.
        let mut dropped = sqlite.writer.begin().await.unwrap();
        insert(2).execute(&mut *dropped).await.unwrap();
        let writer = sqlite.writer.clone();
        let waiting = tokio::spawn(async move {
            // Its own transaction: it would fail inside one left open.
            let mut next = writer.begin().await.unwrap();
            insert(3).execute(&mut *next).await.unwrap();
            next.commit().await.unwrap();
        });
        tokio::task::yield_now().await;
        drop(dropped);
        waiting.await.unwrap();

        // Dropped with no one waiting: the next statement outside a transaction
        // commits on its own, so it did not join the one left open.
        let mut dropped = sqlite.writer.begin().await.unwrap();
        insert(4).execute(&mut *dropped).await.unwrap();
        drop(dropped);
        insert(5).execute(&sqlite.writer).await.unwrap();
        let mut rolled_back = sqlite.writer.begin().await.unwrap();
        insert(6).execute(&mut *rolled_back).await.unwrap();
        rolled_back.rollback().await.unwrap();

        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM t ORDER BY id")
            .fetch_all(&sqlite.readers)
            .await
            .unwrap();
        assert_eq!(ids, [1, 3, 5]);
        database.close().await;
    }

    /// The embedded database's settings that the gate's and submissions' latencies
    /// rest on: one connection, a large page cache, statement journals in memory, the
    /// build's SQLite options, commits that leave checkpoints to the background
    /// connection, which copies the log back into the file.
    #[tokio::test]
    async fn sqlite_checkpoints_in_the_background() {
        // Removed with its log and shared-memory files when dropped.
        let test = crate::testing::TestDatabase::sqlite().await.unwrap();
        let (database, path) = (&test.database, test.sqlite_file().expect("a file"));
        let Database::Sqlite(Sqlite {
            writer: pool,
            readers,
            ..
        }) = &database
        else {
            panic!("an SQLite URL opens SQLite")
        };
        assert_eq!(pool.size(), 1);
        assert_eq!(readers.size(), SQLITE_READERS);
        assert!(
            sqlx::query("CREATE TABLE r (x INTEGER)")
                .execute(readers)
                .await
                .is_err(),
            "the readers do not write"
        );
        let pragma = |name: &'static str| async move {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("PRAGMA {name}")))
                .fetch_one(pool)
                .await
                .unwrap()
        };
        assert_eq!(pragma("cache_size").await, -8_192);
        assert_eq!(pragma("wal_autocheckpoint").await, 10_000);
        assert_eq!(
            pragma("temp_store").await,
            2,
            "statement journals in memory"
        );
        // The build's SQLite options (`.cargo/config.toml`).
        let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
            .fetch_all(pool)
            .await
            .unwrap();
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "one page cache per connection, not one behind a global mutex: {options:?}"
        );
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(options.iter().any(|o| o == "USE_ALLOCA"), "{options:?}");

        // Two MiB committed land in the log; the commit does not copy them (the
        // backstop is far), the background connection does within a tick or two.
        sqlx::query("CREATE TABLE t (b BLOB)")
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t VALUES (zeroblob(2097152))")
            .execute(pool)
            .await
            .unwrap();
        let file_len = || std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let mut caught_up = false;
        for _ in 0..40 {
            if file_len() >= 2_097_152 {
                caught_up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        database.close().await;
        assert!(
            caught_up,
            "the background checkpoint copied the log into the file"
        );
    }
}
