//! The field platform's repositories over PostgreSQL and SQLite.
//!
//! One repository type per aggregate over either native pool; the SQL is written once
//! and `customs_common::on_pool!` compiles it for each backend.

pub mod guarantees;
pub mod ledger_writer;
pub mod operations;
pub mod transits;

use customs_common::db::Migrations;

pub fn migrations() -> Option<Migrations> {
    Some(Migrations {
        platform: "field",
        postgres: sqlx::migrate!("./migrations/postgres"),
        sqlite: sqlx::migrate!("./migrations/sqlite"),
    })
}
