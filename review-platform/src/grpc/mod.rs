//! The review platform's gRPC services.

pub mod post_review;
pub mod review;
pub mod routing;
pub mod ruling;
