//! The review platform's rules, free of gRPC and SQL.

pub mod ruling;
