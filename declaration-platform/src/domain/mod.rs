//! The declaration platform's rules, free of gRPC and SQL.

pub mod enterprise;
pub mod lifecycle;
pub mod manifest;
