//! Group commit for the embedded database's one-step transactions.
//!
//! A one-step transaction ([`OneStep`]: its statements and the `SELECT` of its answer)
//! is run by a thread of its own with a connection of its own to the database file
//! (through rusqlite), while it holds the writer's lock: the sqlx connection that
//! writes everything else stays idle meanwhile, so there is still one writer at a
//! time. The one-step transactions that are waiting when the writer comes free go
//! together, in one `BEGIN IMMEDIATE` … `COMMIT`, each inside a savepoint, and each
//! caller gets the answer of its own statements.
//!
//! Through sqlx, every statement went to the connection's own thread and its result
//! came back through a channel, a thread switch each way: at the gate's ceiling a
//! group's hand-offs were some 40 % of that thread's time (and before groups, a
//! transaction held the writer two to three times as long as SQLite worked on it).
//! Here the thread that takes the writer runs SQLite itself, and the only hand-offs
//! left are the callers' (docs/benchmarks.md, twentieth session).
//!
//! Each transaction's statements only guard themselves in SQL (a condition, or
//! `changes()` of the statement before), so running several one after the other in
//! one transaction gives each the result it would have had on its own, in the
//! writer's order either way. One whose statement fails is rolled back to its
//! savepoint, and fails alone. Each statement is prepared once and kept by its text
//! (a transaction's text is the same every time it has the same shape).

use std::{
    borrow::Cow,
    fmt::{Display, Write as _},
    path::Path,
};

use rusqlite::{
    OpenFlags, ffi,
    types::{ToSqlOutput, ValueRef},
};
use sqlx::error::{DatabaseError, ErrorKind};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use tokio::sync::{mpsc, oneshot};

use super::Connections;

/// The most transactions one group carries.
const MAX_GROUP: usize = 64;

/// A value bound to a [`OneStep`]'s statement, bound as sqlx binds its own type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
    Time(OffsetDateTime),
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<i32> for Value {
    fn from(value: i32) -> Self {
        Self::Int(value.into())
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl From<&String> for Value {
    fn from(value: &String) -> Self {
        Self::Text(value.clone())
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<&[u8]> for Value {
    fn from(value: &[u8]) -> Self {
        Self::Blob(value.to_vec())
    }
}

impl From<OffsetDateTime> for Value {
    fn from(value: OffsetDateTime) -> Self {
        Self::Time(value)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Null, Into::into)
    }
}

impl rusqlite::ToSql for Value {
    /// As sqlx binds the same Rust type, so that a value written here reads and
    /// compares as one written through sqlx: a bool as 0 or 1, a time as RFC 3339 text.
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Self::Null => ToSqlOutput::Owned(rusqlite::types::Value::Null),
            Self::Bool(value) => {
                ToSqlOutput::Owned(rusqlite::types::Value::Integer((*value).into()))
            }
            Self::Int(value) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(*value)),
            Self::Text(value) => ToSqlOutput::Borrowed(ValueRef::Text(value.as_bytes())),
            Self::Blob(value) => ToSqlOutput::Borrowed(ValueRef::Blob(value)),
            Self::Time(value) => ToSqlOutput::Owned(rusqlite::types::Value::Text(
                value
                    .format(&Rfc3339)
                    .map_err(|error| rusqlite::Error::ToSqlConversionFailure(error.into()))?,
            )),
        })
    }
}

/// A parameter of a [`OneStep`], to be placed (again) with [`OneStep::push_param`].
#[derive(Debug, Clone, Copy)]
pub struct Param(usize);

/// One transaction for the writer, run whole by the one-step thread
/// ([`super::Sqlite::one_step`]): statements separated by `;`, whose rows (of
/// `SELECT`s and `RETURNING`s) are the transaction's answer, an integer each, the
/// first column: for `one_step`, one row, which the last statement usually selects;
/// for `one_step_rows`, every row in order. The statements cannot hand their results
/// to Rust on the way, only to each other in SQL (`changes()` is what the statement
/// before changed).
///
/// Built as sqlx's `QueryBuilder` builds a query: SQL text pushed (ours, never a
/// caller's), values bound where they go; a value may be placed more than once.
#[derive(Debug, Default, Clone)]
pub struct OneStep {
    sql: String,
    values: Vec<Value>,
    /// Answers with every row (`one_step_rows`), not exactly one.
    pub(super) every_row: bool,
}

impl OneStep {
    pub fn new(sql: impl Display) -> Self {
        let mut step = Self::default();
        step.push(sql);
        step
    }

    /// Appends SQL text: ours, never anything a caller sent.
    pub fn push(&mut self, sql: impl Display) -> &mut Self {
        let _ = write!(self.sql, "{sql}");
        self
    }

    /// Binds `value` without placing it; place it with `push_param`, once or more.
    pub fn bind(&mut self, value: impl Into<Value>) -> Param {
        self.values.push(value.into());
        Param(self.values.len() - 1)
    }

    /// A placeholder for a value bound before.
    pub fn push_param(&mut self, param: Param) -> &mut Self {
        let _ = write!(self.sql, "${}", param.0 + 1);
        self
    }

    /// A placeholder for `value`.
    pub fn push_bind(&mut self, value: impl Into<Value>) -> &mut Self {
        let param = self.bind(value);
        self.push_param(param)
    }

    /// Appends `sql`, SQL text of ours written for sqlx with numbered placeholders
    /// (`$1`, `$2`, …), each placeholder `$k` taking the value of `params[k - 1]`: so
    /// that a statement that other paths run through sqlx is written once.
    ///
    /// # Panics
    /// When `sql` has a placeholder beyond `params`: a statement and its caller that
    /// disagree, which its first run shows.
    pub fn push_numbered(&mut self, sql: &str, params: &[Param]) -> &mut Self {
        let mut rest = sql;
        while let Some(at) = rest.find('$') {
            let digits = rest[at + 1..]
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len() - at - 1);
            self.push(&rest[..at]);
            if digits == 0 {
                self.push("$");
            } else {
                let k: usize = rest[at + 1..at + 1 + digits]
                    .parse()
                    .expect("a placeholder's digits");
                let param = *k
                    .checked_sub(1)
                    .and_then(|i| params.get(i))
                    .unwrap_or_else(|| panic!("placeholder ${k} of {} parameters", params.len()));
                self.push_param(param);
            }
            rest = &rest[at + 1 + digits..];
        }
        self.push(rest)
    }

    /// Placeholders for `values`, separated by commas.
    pub fn push_binds<V: Into<Value>>(&mut self, values: impl IntoIterator<Item = V>) -> &mut Self {
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push_bind(value);
        }
        self
    }
}

type Reply = oneshot::Sender<Result<Vec<i64>, sqlx::Error>>;

/// Statements kept prepared on the one-step connection, by their text: each kind of
/// transaction at each size it comes in (a gate's containers, a declaration's items).
const PREPARED_STATEMENTS: usize = 512;

/// The writer's settings that the one-step connection takes from it, so that the two
/// write alike.
const WRITER_PRAGMAS: [&str; 6] = [
    "foreign_keys",
    "synchronous",
    "busy_timeout",
    "cache_size",
    "temp_store",
    "wal_autocheckpoint",
];

/// The queue of one-step transactions in front of the writer.
#[derive(Debug, Clone)]
pub(super) struct OneSteps {
    sender: mpsc::Sender<(OneStep, Reply)>,
}

impl OneSteps {
    /// Opens the one-step connection to the database that `writer` writes (`file` as
    /// sqlx names it; for an in-memory database, sqlx's shared in-memory database of
    /// that name, as `sqlite::memory:` opens it: one with a private cache is out of
    /// reach of any other connection), with the writer's settings, and starts the
    /// thread that runs the transactions; it ends when every handle is dropped.
    pub(super) async fn spawn(
        writer: Connections,
        file: &Path,
        in_memory: bool,
    ) -> Result<Self, sqlx::Error> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if in_memory {
            flags |= OpenFlags::SQLITE_OPEN_MEMORY | OpenFlags::SQLITE_OPEN_SHARED_CACHE;
        }
        let connection =
            rusqlite::Connection::open_with_flags(file, flags).map_err(database_error)?;
        connection.set_prepared_statement_cache_capacity(PREPARED_STATEMENTS);
        {
            let mut source = writer.acquire().await?;
            for pragma in WRITER_PRAGMAS {
                let value: i64 =
                    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("PRAGMA {pragma}")))
                        .fetch_one(&mut *source)
                        .await?;
                connection
                    .pragma_update(None, pragma, value)
                    .map_err(database_error)?;
            }
        }
        let (sender, receiver) = mpsc::channel(4 * MAX_GROUP);
        // A runtime of its own on a thread of its own, which waits for nothing but
        // the queue and the writer's lock: woken at once, not when a busy worker of
        // the server's runtime gets round to it.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("sqlite-one-steps".into())
            .spawn(move || runtime.block_on(run_groups(writer, connection, receiver)))?;
        Ok(Self { sender })
    }

    /// The first column of every row that the step's statements return, in order.
    pub(super) async fn run(&self, step: OneStep) -> Result<Vec<i64>, sqlx::Error> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send((step, reply))
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        answer.await.map_err(|_| sqlx::Error::WorkerCrashed)?
    }
}

/// Waits for a transaction, then for the writer's lock, then takes whatever else has
/// queued meanwhile, up to a group's worth, and runs them as one transaction. A caller
/// that stopped waiting still has its transaction run to the end.
async fn run_groups(
    writer: Connections,
    connection: rusqlite::Connection,
    mut receiver: mpsc::Receiver<(OneStep, Reply)>,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = receiver.recv().await {
        // Nothing else writes while this is held; the sqlx connection behind it
        // stays idle meanwhile.
        let lock = writer.acquire().await;
        group.push(first);
        while group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        match lock {
            Ok(_lock) => run_group(&connection, &mut group),
            Err(error) => fail_all(&mut group, &error.to_string()),
        }
    }
}

fn fail_all(group: &mut Vec<(OneStep, Reply)>, message: &str) {
    for (_, reply) in group.drain(..) {
        let _ = reply.send(Err(sqlx::Error::Protocol(message.to_owned())));
    }
}

/// Runs `group` as one transaction, each step in a savepoint, and answers each caller.
fn run_group(connection: &rusqlite::Connection, group: &mut Vec<(OneStep, Reply)>) {
    // A group before this one whose ROLLBACK failed left its transaction open: end it
    // now, or every group after it would fail to begin.
    roll_back(connection);
    if let Err(error) = execute(connection, "BEGIN IMMEDIATE") {
        fail_all(group, &error.to_string());
        return;
    }
    let mut answers = Vec::with_capacity(group.len());
    for (step, _) in group.iter() {
        let answer = execute(connection, "SAVEPOINT one_step")
            .map_err(database_error)
            .and_then(|()| step.run(connection));
        let ended = if answer.is_ok() {
            execute(connection, "RELEASE one_step")
        } else {
            // This step alone: what it did goes, and the savepoint with it.
            execute(connection, "ROLLBACK TO one_step")
                .and_then(|()| execute(connection, "RELEASE one_step"))
        };
        if let Err(error) = ended {
            // The savepoint could not be ended: nothing of the group is kept.
            roll_back(connection);
            fail_all(group, &format!("a one-step group was rolled back: {error}"));
            return;
        }
        answers.push(answer);
    }
    match execute(connection, "COMMIT") {
        Ok(()) => {
            for ((_, reply), answer) in group.drain(..).zip(answers) {
                let _ = reply.send(answer);
            }
        }
        Err(error) => {
            roll_back(connection);
            fail_all(
                group,
                &format!("a one-step group could not commit: {error}"),
            );
        }
    }
}

/// Ends the transaction that `connection` is in, keeping nothing of it.
fn roll_back(connection: &rusqlite::Connection) {
    if connection.is_autocommit() {
        return;
    }
    if let Err(error) = execute(connection, "ROLLBACK") {
        tracing::error!(%error, "the one-step connection could not roll back");
    }
}

/// Runs one statement that returns no rows, prepared once.
fn execute(connection: &rusqlite::Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.raw_execute().map(drop)
}

impl OneStep {
    /// Runs the statements on `connection`, in whatever transaction it is in, and
    /// returns the first column of every row they answer with.
    fn run(&self, connection: &rusqlite::Connection) -> Result<Vec<i64>, sqlx::Error> {
        let mut answers = Vec::with_capacity(1);
        for sql in statements(&self.sql) {
            let mut statement = connection.prepare_cached(sql).map_err(database_error)?;
            bind_numbered(&mut statement, sql, &self.values).map_err(database_error)?;
            let mut rows = statement.raw_query();
            while let Some(row) = rows.next().map_err(database_error)? {
                answers.push(row.get::<_, i64>(0).map_err(database_error)?);
            }
        }
        if !self.every_row && answers.len() != 1 {
            // Rolled back with the step: a transaction whose answer is not understood
            // keeps nothing.
            return Err(sqlx::Error::Protocol(format!(
                "a one-step transaction answered {} rows, not one",
                answers.len()
            )));
        }
        Ok(answers)
    }
}

/// Binds each placeholder `$k` of `statement` (prepared from `sql`) to `values[k - 1]`.
pub(super) fn bind_numbered(
    statement: &mut rusqlite::Statement<'_>,
    sql: &str,
    values: &[impl rusqlite::ToSql],
) -> rusqlite::Result<()> {
    for i in 1..=statement.parameter_count() {
        let value = statement
            .parameter_name(i)
            .and_then(|name| name.strip_prefix('$')?.parse::<usize>().ok())
            .and_then(|k| values.get(k.checked_sub(1)?))
            .ok_or_else(|| {
                rusqlite::Error::InvalidParameterName(format!(
                    "parameter {i} of `{sql}` is not one of its {} values",
                    values.len()
                ))
            })?;
        statement.raw_bind_parameter(i, value)?;
    }
    Ok(())
}

/// The statements of `sql`: split at each `;` outside quotes and comments, leaving
/// out those with nothing but blanks and comments. (SQLite prepares one statement at
/// a time; sqlx split a string of them by preparing each in turn, which rusqlite
/// does only without keeping them prepared.)
fn statements(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut found = Vec::new();
    let (mut start, mut i, mut content) = (0, 0, false);
    // Where the text from `from` on first has `end`, past it; else the text's end.
    let past = |from: usize, end: &[u8]| {
        bytes[from..]
            .windows(end.len())
            .position(|w| w == end)
            .map_or(bytes.len(), |at| from + at + end.len())
    };
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                i = past(i + 1, &[quote]);
                content = true;
            }
            b'[' => {
                i = past(i + 1, b"]");
                content = true;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => i = past(i + 2, b"\n"),
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = past(i + 2, b"*/"),
            b';' => {
                if content {
                    found.push(&sql[start..i]);
                }
                (start, i, content) = (i + 1, i + 1, false);
            }
            b if b.is_ascii_whitespace() => i += 1,
            _ => {
                content = true;
                i += 1;
            }
        }
    }
    if content {
        found.push(&sql[start..]);
    }
    found
}

/// An error of SQLite's on the one-step connection, as sqlx's `SqliteError` reports
/// one of its own connections': SQLite's extended result code and its message.
#[derive(Debug)]
pub struct WriterError {
    code: i32,
    message: String,
}

impl std::fmt::Display for WriterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for WriterError {}

impl DatabaseError for WriterError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(self.code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

/// rusqlite's error as sqlx reports the same from SQLite.
pub(super) fn database_error(error: rusqlite::Error) -> sqlx::Error {
    match error {
        rusqlite::Error::SqliteFailure(failure, message) => {
            sqlx::Error::Database(Box::new(WriterError {
                code: failure.extended_code,
                message: message.unwrap_or_else(|| failure.to_string()),
            }))
        }
        rusqlite::Error::ToSqlConversionFailure(error) => sqlx::Error::Encode(error),
        error @ (rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)) => sqlx::Error::Decode(error.into()),
        error => sqlx::Error::Protocol(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_places_its_values_where_they_go() {
        let mut step = OneStep::new("INSERT INTO t VALUES (");
        let id = step.bind(1_i64);
        step.push_param(id).push(", ").push_bind("a");
        step.push(");\nDELETE FROM t WHERE id IN (")
            .push_binds([2_i64, 3]);
        let params = [step.bind("x"), id];
        step.push_numbered(
            ");\nUPDATE t SET v = $1 WHERE id = $2 OR v = $1; SELECT $2",
            &params,
        );
        assert_eq!(
            statements(&step.sql),
            [
                "INSERT INTO t VALUES ($1, $2)",
                "\nDELETE FROM t WHERE id IN ($3, $4)",
                "\nUPDATE t SET v = $5 WHERE id = $1 OR v = $5",
                " SELECT $1"
            ]
        );
        assert_eq!(
            step.values,
            [
                Value::Int(1),
                Value::Text("a".into()),
                Value::Int(2),
                Value::Int(3),
                Value::Text("x".into())
            ]
        );
    }

    /// Statements end at a `;` outside quotes, identifiers and comments; a piece with
    /// nothing but blanks and comments is none.
    #[test]
    fn a_step_is_split_into_its_statements() {
        let sql = "INSERT INTO \"a;b\" VALUES ('x;''y', [c;d], `e;f`); -- no; end\n\
                   /* nor; here */ SELECT 1 ;; \n -- only a comment;\n ; SELECT '/*;' /* ; */";
        assert_eq!(
            statements(sql),
            [
                "INSERT INTO \"a;b\" VALUES ('x;''y', [c;d], `e;f`)",
                " -- no; end\n/* nor; here */ SELECT 1 ",
                " SELECT '/*;' /* ; */"
            ]
        );
        assert!(statements(" -- nothing;\n").is_empty());
        assert_eq!(statements("SELECT 'unclosed;"), ["SELECT 'unclosed;"]);
    }

    /// The one-step connection writes as the writer does: with the writer's settings,
    /// its values stored as sqlx stores the same Rust values, its errors reported as
    /// sqlx reports SQLite's own.
    #[tokio::test]
    async fn the_one_step_connection_writes_as_the_writer_does() {
        let test = crate::testing::TestDatabase::sqlite().await.unwrap();
        let path = test.sqlite_file().expect("an SQLite file");
        let crate::db::Database::Sqlite(sqlite) = &test.database else {
            panic!("an SQLite URL opens SQLite")
        };
        for pragma in WRITER_PRAGMAS {
            let writer: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("PRAGMA {pragma}")))
                .fetch_one(&sqlite.writer)
                .await
                .unwrap();
            let one_step = sqlite
                .one_step(OneStep::new(format_args!("PRAGMA {pragma}")))
                .await
                .unwrap();
            assert_eq!(one_step, writer, "{pragma}");
        }

        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, flag BOOLEAN, at TEXT, b BLOB)")
            .execute(&sqlite.writer)
            .await
            .unwrap();
        let at = crate::db::now();
        let mut step = OneStep::new("INSERT INTO t VALUES (1, ");
        step.push_binds([Value::Bool(true), Value::Time(at), Value::Blob(vec![0, 1])]);
        step.push("); SELECT changes()");
        assert_eq!(sqlite.one_step(step).await.unwrap(), 1);
        let stored: (bool, OffsetDateTime, Vec<u8>, bool) =
            sqlx::query_as("SELECT flag, at, b, at = $1 FROM t WHERE id = 1")
                .bind(at)
                .fetch_one(&sqlite.readers)
                .await
                .unwrap();
        assert_eq!(stored, (true, at, vec![0, 1], true));

        let again = sqlite
            .one_step(OneStep::new("INSERT INTO t (id) VALUES (1); SELECT 1"))
            .await
            .unwrap_err();
        let error = again.as_database_error().expect("a database error");
        assert!(error.is_unique_violation(), "{error}");
        assert_eq!(error.code().as_deref(), Some("1555"));

        // SQLite busy, from this connection, is the same transient error as from sqlx's.
        let holder = rusqlite::Connection::open(path).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let blocked = rusqlite::Connection::open(path).unwrap();
        blocked.busy_timeout(std::time::Duration::ZERO).unwrap();
        let busy = blocked
            .execute_batch("INSERT INTO t (id) VALUES (2)")
            .unwrap_err();
        assert_eq!(
            crate::error::Error::from(database_error(busy)).reason(),
            "DATABASE_UNAVAILABLE"
        );
        holder.execute_batch("ROLLBACK").unwrap();
        drop((holder, blocked));
        test.database.close().await;
    }
}
