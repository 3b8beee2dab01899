//! The declaration platform's repositories over PostgreSQL and SQLite; the SQL is
//! written once and `customs_common::on_pool!` compiles it for each backend.

pub mod changes;
pub mod declarations;
pub mod enterprises;
pub mod manifests;
pub mod submission_writer;

use customs_common::db::Migrations;

pub fn migrations() -> Option<Migrations> {
    Some(Migrations {
        platform: "declaration",
        postgres: sqlx::migrate!("./migrations/postgres"),
        sqlite: sqlx::migrate!("./migrations/sqlite"),
    })
}
