//! The field platform's rules, free of gRPC and SQL.

pub mod calendar;
pub mod gate;
pub mod guarantee;
pub mod inspection;
pub mod tax;
pub mod transit;
pub mod transport;
