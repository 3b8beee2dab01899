//! The review platform's gRPC services: validate, convert, call the domain, convert back.

pub mod ruling;
