//! Reads of the embedded database run at once on the calling thread.
//!
//! A read through sqlx's SQLite connections is a hand-off to that connection's own
//! thread and back, a thread switch each way, woken through the kernel: under load on
//! the gate, the readers' threads were some 30 % of the server's time, much of it
//! waking and sleeping, for reads that SQLite answers in microseconds
//! (docs/benchmarks.md, twenty-first session). [`DirectReader`] keeps read-only
//! connections of its own (through rusqlite) and runs a read on whichever thread asks,
//! with no hand-off: so it is for short reads by key (a declaration by its number, the
//! gate's release records), never for a scan whose length a caller decides, which
//! would hold a Tokio worker meanwhile.

use std::{
    path::{Path, PathBuf},
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use rusqlite::{OpenFlags, Row, ToSql};

use super::one_step::{bind_numbered, database_error};

/// The read-only connections kept between reads: one per core is all that can read
/// at once; another is opened when more are asked for, and closed after.
const KEPT: usize = 4;

/// Statements kept prepared on each connection, by their text.
const PREPARED_STATEMENTS: usize = 64;

/// Read-only connections to the embedded database file, for reads run at once on the
/// caller's thread. Each read sees what was committed before it began.
#[derive(Debug)]
pub struct DirectReader {
    file: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
    closed: AtomicBool,
}

impl DirectReader {
    pub(super) fn new(file: &Path) -> Self {
        Self {
            file: file.to_owned(),
            idle: Mutex::new(Vec::with_capacity(KEPT)),
            closed: AtomicBool::new(false),
        }
    }

    /// The rows that `sql` (SQL text of ours, with numbered placeholders `$1`, `$2`,
    /// … as on the other paths, `$k` taking `params[k - 1]`) answers, each made by
    /// `row` (a tuple of `FromSql` types converts with `TryFrom`; times read as
    /// `time::OffsetDateTime` from the RFC 3339 text they are stored as).
    pub fn query<T>(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
        mut row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, sqlx::Error> {
        let connection = self.take()?;
        let rows = (|| {
            let mut statement = connection.prepare_cached(sql)?;
            bind_numbered(&mut statement, sql, params)?;
            let mut rows = statement.raw_query();
            let mut found = Vec::new();
            while let Some(next) = rows.next()? {
                found.push(row(next)?);
            }
            Ok(found)
        })()
        .map_err(database_error);
        self.put_back(connection);
        rows
    }

    /// As [`query`](Self::query), for at most one row.
    pub fn query_optional<T>(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
        row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, sqlx::Error> {
        Ok(self.query(sql, params, row)?.into_iter().next())
    }

    fn take(&self) -> Result<rusqlite::Connection, sqlx::Error> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(sqlx::Error::PoolClosed);
        }
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(connection) => Ok(connection),
            None => self.open().map_err(database_error),
        }
    }

    fn put_back(&self, connection: rusqlite::Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < KEPT && !self.closed.load(Ordering::Relaxed) {
            idle.push(connection);
        }
    }

    /// A connection as the sqlx readers are opened: it may not write, and keeps
    /// SQLite's default page cache (emptied at every read after a commit anyway).
    fn open(&self) -> rusqlite::Result<rusqlite::Connection> {
        let connection = rusqlite::Connection::open_with_flags(
            &self.file,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.pragma_update(None, "query_only", true)?;
        // Only while the log is being recovered does a reader in WAL mode wait.
        connection.busy_timeout(std::time::Duration::from_secs(10))?;
        connection.set_prepared_statement_cache_capacity(PREPARED_STATEMENTS);
        Ok(connection)
    }

    /// Closes the idle connections; one in use is closed when its read ends.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Makes a struct of named columns readable from a rusqlite row (by column name), as
/// `#[derive(sqlx::FromRow)]` makes it from sqlx's: wrap the struct's definition in
/// it, and it derives both.
#[macro_export]
macro_rules! columns {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($field_vis:vis $field:ident : $type:ty),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(sqlx::FromRow)]
        $vis struct $name {
            $($field_vis $field: $type),*
        }

        impl ::std::convert::TryFrom<&$crate::db::rusqlite::Row<'_>> for $name {
            type Error = $crate::db::rusqlite::Error;

            fn try_from(row: &$crate::db::rusqlite::Row<'_>) -> ::std::result::Result<Self, Self::Error> {
                Ok(Self {
                    $($field: row.get(stringify!($field))?),*
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use crate::{
        db::{Database, OneStep, Value},
        testing::TestDatabase,
    };

    crate::columns! {
        #[derive(Debug, PartialEq)]
        struct Stored {
            id: i64,
            flag: bool,
            at: OffsetDateTime,
            bytes: Vec<u8>,
            note: Option<String>,
        }
    }

    /// A direct read gives what sqlx and the one-step connection stored, as sqlx reads
    /// it back; it sees every commit made before it; it may not write; and it has
    /// ended once the database is closed.
    #[tokio::test]
    async fn a_direct_read_reads_what_the_writer_committed() {
        let test = TestDatabase::sqlite().await.unwrap();
        let Database::Sqlite(sqlite) = &test.database else {
            panic!("an SQLite URL opens SQLite")
        };
        let direct = test
            .database
            .direct_reader()
            .expect("a database file is read directly");
        sqlx::query(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, flag BOOLEAN NOT NULL, at TEXT NOT NULL,
                 bytes BLOB NOT NULL, note TEXT)",
        )
        .execute(&sqlite.writer)
        .await
        .unwrap();
        let at = crate::db::now();
        sqlx::query("INSERT INTO t VALUES (1, $1, $2, $3, NULL)")
            .bind(true)
            .bind(at)
            .bind(vec![0_u8, 1])
            .execute(&sqlite.writer)
            .await
            .unwrap();
        let read = |id: i64| {
            direct
                .query(
                    "SELECT id, flag, at, bytes, note FROM t WHERE id >= $1 ORDER BY id",
                    &[&id],
                    |row| Stored::try_from(row),
                )
                .unwrap()
        };
        let first = Stored {
            id: 1,
            flag: true,
            at,
            bytes: vec![0, 1],
            note: None,
        };
        assert_eq!(read(1), [first]);

        // Written by the one-step connection, committed after the read before (on the
        // same connection, kept between reads).
        let later = at + time::Duration::milliseconds(1_500);
        let mut step = OneStep::new("INSERT INTO t VALUES (2, ");
        step.push_binds([
            Value::Bool(false),
            Value::Time(later),
            Value::Blob(vec![]),
            Value::Text("second".into()),
        ]);
        step.push("); SELECT changes()");
        assert_eq!(sqlite.one_step(step).await.unwrap(), 1);
        let second = Stored {
            id: 2,
            flag: false,
            at: later,
            bytes: vec![],
            note: Some("second".into()),
        };
        assert_eq!(read(2), [second]);
        assert_eq!(
            direct
                .query_optional("SELECT id FROM t WHERE id = $1", &[&3_i64], |row| row
                    .get::<_, i64>(0))
                .unwrap(),
            None
        );

        let write = direct
            .query("DELETE FROM t RETURNING id", &[], |row| {
                row.get::<_, i64>(0)
            })
            .unwrap_err();
        assert!(
            write.to_string().contains("readonly") || write.to_string().contains("read-only"),
            "{write}"
        );
        let unbound = direct
            .query("SELECT id FROM t WHERE id = $2", &[&1_i64], |row| {
                row.get::<_, i64>(0)
            })
            .unwrap_err();
        assert!(unbound.to_string().contains("$2"), "{unbound}");
        assert_eq!(read(1).len(), 2, "a failed read leaves the others be");

        test.database.close().await;
        assert!(matches!(
            direct.query("SELECT 1", &[], |row| row.get::<_, i64>(0)),
            Err(sqlx::Error::PoolClosed)
        ));
    }

    #[tokio::test]
    async fn an_in_memory_database_has_no_direct_reads() {
        let database = Database::connect_url("sqlite::memory:", 1).await.unwrap();
        assert!(database.direct_reader().is_none());
        database.close().await;
    }
}
