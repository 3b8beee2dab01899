//! The risk platform's rules, free of gRPC and SQL.

pub mod checks;
pub mod screening;
