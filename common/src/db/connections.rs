//! The embedded database's connections, handed out without sqlx's pool.
//!
//! sqlx's pool takes a connection back by spawning a task that pings it (for SQLite a
//! round trip to the connection's thread) and only then lets the next caller have it.
//! On the one connection that writes, every statement paid for that task and that
//! round trip while every other writer waited, and on every connection the ping was
//! two more thread switches per statement. Here each connection sits behind a fair
//! async mutex: callers take it in the order they asked, and it is free again the
//! moment its user lets go. A transaction left without a commit (an error, or a caller
//! that stopped waiting) is rolled back before anyone else can use its connection.

use std::{
    ops::{Deref, DerefMut},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use futures::{
    FutureExt as _, StreamExt as _, TryFutureExt as _, TryStreamExt as _, future::BoxFuture,
    stream::BoxStream,
};
use sqlx::{
    ConnectOptions as _, Either, Execute, Executor, SqlSafeStr, SqlStr, Sqlite,
    sqlite::{
        SqliteConnectOptions, SqliteConnection, SqliteQueryResult, SqliteRow, SqliteStatement,
        SqliteTypeInfo,
    },
};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// A connection taken from [`Connections`]; it goes back when dropped.
pub type Connection = OwnedMutexGuard<SqliteConnection>;

#[derive(Debug)]
struct Slot {
    connection: Arc<Mutex<SqliteConnection>>,
    /// A transaction was dropped on this connection and not yet rolled back: whoever
    /// takes the connection next rolls it back first.
    left_open: AtomicBool,
}

/// A fixed set of connections to one SQLite database: one for the connection that
/// writes, a few for the readers. Clones share them. `&Connections` runs a query as
/// a pool does (on whichever connection is free first, or the next in turn).
#[derive(Debug, Clone)]
pub struct Connections {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    connections: Vec<Slot>,
    /// Where a caller that finds every connection busy queues next.
    next: AtomicUsize,
    /// To open a connection again in place of one that could not roll back.
    options: SqliteConnectOptions,
    /// How a transaction begins: `BEGIN IMMEDIATE` for the writer, so that it never
    /// has to upgrade a read lock; `BEGIN` for readers, which may not write.
    begin: &'static str,
    closed: AtomicBool,
}

impl Connections {
    /// Opens `count` connections with `options`; transactions begin with `begin`.
    pub(super) async fn open(
        options: SqliteConnectOptions,
        count: usize,
        begin: &'static str,
    ) -> Result<Self, sqlx::Error> {
        let mut connections = Vec::with_capacity(count);
        for _ in 0..count.max(1) {
            connections.push(Slot {
                connection: Arc::new(Mutex::new(options.connect().await?)),
                left_open: AtomicBool::new(false),
            });
        }
        Ok(Self {
            inner: Arc::new(Inner {
                connections,
                next: AtomicUsize::new(0),
                options,
                begin,
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// A connection of its own until the returned guard is dropped: a free one if
    /// there is one, else the next in turn, once its present users are done.
    pub async fn acquire(&self) -> Result<Connection, sqlx::Error> {
        Ok(self.acquire_slot().await?.1)
    }

    async fn acquire_slot(&self) -> Result<(usize, Connection), sqlx::Error> {
        if self.is_closed() {
            return Err(sqlx::Error::PoolClosed);
        }
        let slots = &self.inner.connections;
        let free = slots
            .iter()
            .enumerate()
            .find_map(|(i, slot)| Some((i, Arc::clone(&slot.connection).try_lock_owned().ok()?)));
        let (i, connection) = match free {
            Some(free) => free,
            None => {
                let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % slots.len();
                (i, self.lock(i).await)
            }
        };
        Ok((i, self.tidied(i, connection).await))
    }

    async fn lock(&self, i: usize) -> Connection {
        Arc::clone(&self.inner.connections[i].connection)
            .lock_owned()
            .await
    }

    /// `connection` (the `i`th), with any transaction dropped on it rolled back.
    async fn tidied(&self, i: usize, mut connection: Connection) -> Connection {
        let left_open = &self.inner.connections[i].left_open;
        if left_open.load(Ordering::Acquire) {
            self.roll_back(&mut connection).await;
            // Only now: a caller that gave up on the way leaves it to the next one.
            left_open.store(false, Ordering::Release);
        }
        connection
    }

    /// Begins a transaction on a connection of its own; see [`Transaction`].
    pub async fn begin(&self) -> Result<Transaction, sqlx::Error> {
        self.begin_with(self.inner.begin).await
    }

    /// As `begin`, with `statement` (a `BEGIN` of some kind) instead of the usual one.
    pub async fn begin_with(&self, statement: impl SqlSafeStr) -> Result<Transaction, sqlx::Error> {
        let (slot, mut connection) = self.acquire_slot().await?;
        sqlx::raw_sql(statement).execute(&mut *connection).await?;
        Ok(Transaction {
            connection: Some(connection),
            slot,
            connections: self.clone(),
        })
    }

    /// Rolls back whatever `connection` has open, for the next user. When `ROLLBACK`
    /// fails, a `BEGIN` tells whether anything is still open (it fails if so): a
    /// connection that cannot roll back is opened again in its place, and closing
    /// the old one rolls it back.
    pub(super) async fn roll_back(&self, connection: &mut Connection) {
        let Err(error) = sqlx::raw_sql("ROLLBACK").execute(&mut **connection).await else {
            return;
        };
        if sqlx::raw_sql("BEGIN; ROLLBACK")
            .execute(&mut **connection)
            .await
            .is_ok()
        {
            // Nothing was open (a `BEGIN` that had failed, or a `COMMIT` that ran).
            return;
        }
        match self.inner.options.connect().await {
            Ok(fresh) => {
                tracing::warn!(%error, "an SQLite connection could not roll back; opened it again");
                **connection = fresh;
            }
            Err(reopen) => {
                tracing::error!(%error, %reopen, "an SQLite connection could not roll back, nor be opened again");
            }
        }
    }

    /// No connection is handed out after this; it returns once those in use are
    /// back. The files close when the last handle is dropped.
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        for slot in &self.inner.connections {
            drop(slot.connection.lock().await);
        }
    }

    /// How many connections there are.
    pub fn size(&self) -> usize {
        self.inner.connections.len()
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }
}

/// A transaction on a connection of its own, which it keeps until `commit` or
/// `rollback`. Dropped without either, it is rolled back before anyone else uses the
/// connection: by a task of its own at once, or by whoever takes the connection
/// first, so no one ever sees it half-done.
#[derive(Debug)]
pub struct Transaction {
    connection: Option<Connection>,
    slot: usize,
    connections: Connections,
}

impl Transaction {
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        if let Some(connection) = self.connection.as_mut() {
            sqlx::raw_sql("COMMIT").execute(&mut **connection).await?;
        }
        // Committed: the connection goes back as it is.
        self.connection = None;
        Ok(())
    }

    pub async fn rollback(mut self) -> Result<(), sqlx::Error> {
        if let Some(mut connection) = self.connection.take() {
            self.connections.roll_back(&mut connection).await;
        }
        Ok(())
    }
}

impl Deref for Transaction {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        match &self.connection {
            Some(connection) => connection,
            None => unreachable!("a transaction holds its connection until it ends"),
        }
    }
}

impl DerefMut for Transaction {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match &mut self.connection {
            Some(connection) => connection,
            None => unreachable!("a transaction holds its connection until it ends"),
        }
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            // Marked before the connection goes back, so that its next user cannot
            // miss it; the task below rolls back at once, whoever comes first.
            self.connections.inner.connections[self.slot]
                .left_open
                .store(true, Ordering::Release);
            drop(connection);
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let (connections, slot) = (self.connections.clone(), self.slot);
                runtime.spawn(async move {
                    let connection = connections.lock(slot).await;
                    drop(connections.tidied(slot, connection).await);
                });
            }
        }
    }
}

impl<'c> Executor<'c> for &'c Connections {
    type Database = Sqlite;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<SqliteQueryResult, SqliteRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        // The results are gathered while the connection is held, then handed out:
        // nothing here streams more than a page of rows.
        async move {
            let mut connection = self.acquire().await?;
            connection.fetch_many(query).try_collect::<Vec<_>>().await
        }
        .map_ok(|results| futures::stream::iter(results.into_iter().map(Ok)))
        .try_flatten_stream()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<SqliteRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        async move { self.acquire().await?.fetch_optional(query).await }.boxed()
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [SqliteTypeInfo],
    ) -> BoxFuture<'e, Result<SqliteStatement, sqlx::Error>>
    where
        'c: 'e,
    {
        async move { self.acquire().await?.prepare_with(sql, parameters).await }.boxed()
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<sqlx::Describe<Sqlite>, sqlx::Error>>
    where
        'c: 'e,
    {
        async move { self.acquire().await?.describe(sql).await }.boxed()
    }
}
