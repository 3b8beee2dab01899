//! The field platform's repositories over PostgreSQL and SQLite.
//!
//! One repository type per aggregate, an enum over the two native pools; the SQL is
//! written once in the dialect both accept (`$n` placeholders, `ON CONFLICT`,
//! `RETURNING`) and the [`on_pool!`] macro instantiates it for each backend.

pub mod guarantees;
pub mod ledger_writer;

use customs_common::db::Migrations;

/// Runs `$body` with `$pool` bound to whichever native pool `$database` holds.
macro_rules! on_pool {
    ($database:expr, $pool:ident => $body:expr) => {
        match $database {
            customs_common::db::Database::Postgres($pool) => $body,
            customs_common::db::Database::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

pub fn migrations() -> Option<Migrations> {
    Some(Migrations {
        platform: "field",
        postgres: sqlx::migrate!("./migrations/postgres"),
        sqlite: sqlx::migrate!("./migrations/sqlite"),
    })
}
