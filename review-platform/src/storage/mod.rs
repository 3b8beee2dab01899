//! The review platform's repositories over PostgreSQL and SQLite; the SQL is written
//! once and `customs_common::on_pool!` compiles it for each backend.

pub mod post_review;
pub mod routing;
pub mod rulings;
pub mod tasks;

use customs_common::db::Migrations;

pub fn migrations() -> Option<Migrations> {
    Some(Migrations {
        platform: "review",
        postgres: sqlx::migrate!("./migrations/postgres"),
        sqlite: sqlx::migrate!("./migrations/sqlite"),
    })
}
