//! The risk platform's repositories over PostgreSQL and SQLite.

pub mod risk;

use customs_common::db::Migrations;

pub fn migrations() -> Option<Migrations> {
    Some(Migrations {
        platform: "risk",
        postgres: sqlx::migrate!("./migrations/postgres"),
        sqlite: sqlx::migrate!("./migrations/sqlite"),
    })
}
