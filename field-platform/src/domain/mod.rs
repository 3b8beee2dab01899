//! The field platform's rules, free of gRPC and SQL.

pub mod guarantee;
