//! What the four gd-customs platforms share: configuration, telemetry, errors and
//! their mapping to gRPC statuses, JWT authentication, database connections, the
//! shared store of guarantee balances, and the server start-up.

pub mod auth;
pub mod background;
pub mod clients;
pub mod codes;
pub mod config;
pub mod credit;
pub mod day;
pub mod db;
pub mod error;
pub mod money;
pub mod outbox;
pub mod paging;
pub mod rulings;
pub mod sampling;
pub mod server;
pub mod store;
pub mod telemetry;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

pub use error::{Error, Result, Violations};
