//! The field platform's gRPC services: validate, convert, call the domain, convert back.

pub mod guarantee;
pub mod operations;
