//! The review platform's rules, free of gRPC and SQL.

pub mod post_review;
pub mod quality;
pub mod routing;
pub mod ruling;
pub mod task;
