//! Group commit for the embedded database's one-step transactions.
//!
//! A transaction that the writer runs in a single hand-off ([`OneStep`]: its
//! statements and the `SELECT` of its answer, sent to the connection's thread as one
//! string) still held the one writer connection, when each ran on its own, for as long
//! as its Tokio task took to be scheduled, to hand the string over and to be woken
//! with the answer: under load, with every worker busy, two to three times SQLite's
//! own work (at the gate's ceiling about 370 µs a transaction for 140 µs of work, and
//! seventy-odd callers queued for the writer). Here the one-step transactions that are
//! waiting when the writer comes free go to it together, in one `BEGIN IMMEDIATE` …
//! `COMMIT`, each as its own statements inside a savepoint, handed over by a thread of
//! their own that nothing else runs on, so it is woken the moment each answer is
//! ready. Each caller gets the answer of its own statements.
//!
//! Each transaction's statements only guard themselves in SQL (a condition, or
//! `changes()` of the statement before), so running several one after the other in
//! one transaction gives each the result it would have had on its own, in the
//! writer's order either way. One whose statement fails is rolled back to its
//! savepoint, and fails alone. Each is sent as the same text whichever group it is
//! in, so SQLite's prepared statements (sqlx keeps them by text) are reused: one string
//! for a whole group would be new text every time, and preparing it again cost more
//! than the hand-offs saved.

use std::fmt::{Display, Write as _};

use sqlx::{
    Encode, Row as _, Sqlite, Type,
    encode::IsNull,
    error::BoxDynError,
    sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo},
};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use super::{Connection, Connections};

/// The most transactions one group carries.
const MAX_GROUP: usize = 64;

/// A value bound to a [`OneStep`]'s statement, encoded as sqlx encodes its own type.
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

impl Encode<'_, Sqlite> for Value {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        match self {
            Self::Null => Ok(IsNull::Yes),
            Self::Bool(value) => Encode::<Sqlite>::encode_by_ref(value, buf),
            Self::Int(value) => Encode::<Sqlite>::encode_by_ref(value, buf),
            Self::Text(value) => Encode::<Sqlite>::encode_by_ref(value, buf),
            Self::Blob(value) => Encode::<Sqlite>::encode_by_ref(value, buf),
            Self::Time(value) => Encode::<Sqlite>::encode_by_ref(value, buf),
        }
    }
}

impl Type<Sqlite> for Value {
    fn type_info() -> SqliteTypeInfo {
        <str as Type<Sqlite>>::type_info()
    }

    fn compatible(_: &SqliteTypeInfo) -> bool {
        true
    }
}

/// A parameter of a [`OneStep`], to be placed (again) with [`OneStep::push_param`].
#[derive(Debug, Clone, Copy)]
pub struct Param(usize);

/// One transaction for the writer, run in a single hand-off
/// ([`super::Sqlite::one_step`]): statements separated by `;`, the last of them a
/// `SELECT` of one integer, the transaction's answer; no other statement may return
/// rows. The statements cannot hand their results to Rust on the way, only to each
/// other in SQL (`changes()` is what the statement before changed).
///
/// Built as sqlx's `QueryBuilder` builds a query: SQL text pushed (ours, never a
/// caller's), values bound where they go; a value may be placed more than once.
#[derive(Debug, Default, Clone)]
pub struct OneStep {
    sql: String,
    values: Vec<Value>,
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

    /// The statements between `before` and `after`, with their values bound.
    fn query(
        &self,
        before: &str,
        after: &str,
    ) -> sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments> {
        // Text that this module and its callers wrote; every value is bound.
        let sql = format!("{before}{};\n{after}", self.sql);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in &self.values {
            query = query.bind(value.clone());
        }
        query
    }

    /// Run on its own: the whole transaction in one hand-off.
    fn alone(&self) -> sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments> {
        self.query("BEGIN IMMEDIATE;\n", "COMMIT")
    }

    /// Run in a group, inside the group's transaction.
    fn in_group(&self) -> sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments> {
        self.query("SAVEPOINT one_step;\n", "RELEASE one_step")
    }
}

type Reply = oneshot::Sender<Result<i64, sqlx::Error>>;

/// The queue of one-step transactions in front of the writer.
#[derive(Debug, Clone)]
pub(super) struct OneSteps {
    sender: mpsc::Sender<(OneStep, Reply)>,
}

impl OneSteps {
    /// Starts the thread that runs them; it ends when every handle is dropped.
    pub(super) fn spawn(writer: Connections) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel(4 * MAX_GROUP);
        // A runtime of its own on a thread of its own: woken at once when the writer
        // answers, not when a busy worker of the server's runtime gets round to it.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("sqlite-one-steps".into())
            .spawn(move || runtime.block_on(run_groups(writer, receiver)))?;
        Ok(Self { sender })
    }

    pub(super) async fn run(&self, step: OneStep) -> Result<i64, sqlx::Error> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send((step, reply))
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        answer.await.map_err(|_| sqlx::Error::WorkerCrashed)?
    }
}

/// Waits for a transaction, then for the writer, then takes whatever else has queued
/// meanwhile, up to a group's worth, and runs them as one transaction. A caller that
/// stopped waiting still has its transaction run to the end: one cut off between its
/// statements would stay open on the writer.
async fn run_groups(writer: Connections, mut receiver: mpsc::Receiver<(OneStep, Reply)>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = receiver.recv().await {
        let connection = writer.acquire().await;
        group.push(first);
        while group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        match connection {
            Ok(mut connection) => run_group(&writer, &mut connection, &mut group).await,
            Err(error) => fail_all(&mut group, &error.to_string()),
        }
    }
}

fn fail_all(group: &mut Vec<(OneStep, Reply)>, message: &str) {
    for (_, reply) in group.drain(..) {
        let _ = reply.send(Err(sqlx::Error::Protocol(message.to_owned())));
    }
}

/// The one answer row of a step's statements.
fn answer(rows: &[sqlx::sqlite::SqliteRow]) -> Result<i64, sqlx::Error> {
    match rows {
        [row] => row.try_get(0),
        rows => Err(sqlx::Error::Protocol(format!(
            "a one-step transaction answered {} rows, not one",
            rows.len()
        ))),
    }
}

async fn run_group(
    writer: &Connections,
    connection: &mut Connection,
    group: &mut Vec<(OneStep, Reply)>,
) {
    if let [(step, _)] = &group[..] {
        let answer = match step.alone().fetch_all(&mut **connection).await {
            Ok(rows) => answer(&rows),
            Err(error) => {
                writer.roll_back(connection).await;
                Err(error)
            }
        };
        if let Some((_, reply)) = group.pop() {
            let _ = reply.send(answer);
        }
        return;
    }
    if let Err(error) = sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut **connection)
        .await
    {
        fail_all(group, &error.to_string());
        return;
    }
    let mut answers = Vec::with_capacity(group.len());
    for (step, _) in group.iter() {
        // Every row, so that every statement runs (a fetch of one row stops at it).
        let outcome = step.in_group().fetch_all(&mut **connection).await;
        let answer = outcome.and_then(|rows| answer(&rows));
        if answer.is_err() {
            // This step alone: what it did goes, and the savepoint with it.
            let undone = sqlx::raw_sql("ROLLBACK TO one_step; RELEASE one_step")
                .execute(&mut **connection)
                .await;
            if let Err(error) = undone {
                // The savepoint could not be undone: nothing of the group is kept.
                writer.roll_back(connection).await;
                fail_all(group, &format!("a one-step group was rolled back: {error}"));
                return;
            }
        }
        answers.push(answer);
    }
    match sqlx::raw_sql("COMMIT").execute(&mut **connection).await {
        Ok(_) => {
            for ((_, reply), answer) in group.drain(..).zip(answers) {
                let _ = reply.send(answer);
            }
        }
        Err(error) => {
            writer.roll_back(connection).await;
            fail_all(
                group,
                &format!("a one-step group could not commit: {error}"),
            );
        }
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
            sqlx::Execute::sql(step.alone()).as_str(),
            "BEGIN IMMEDIATE;\nINSERT INTO t VALUES ($1, $2);\nDELETE FROM t WHERE id IN ($3, $4);\n\
             UPDATE t SET v = $5 WHERE id = $1 OR v = $5; SELECT $1;\nCOMMIT"
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
}
