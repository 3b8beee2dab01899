//! The declaration platform's gRPC services: validate, convert, call the domain,
//! convert back.

pub mod declaration;
pub mod enterprise;
pub mod manifest;

use customs_common::{Error, error::FieldViolation};

/// The value of `result`, or `None` with its violation collected.
pub(crate) fn keep<T>(
    violations: &mut customs_common::Violations,
    result: Result<T, FieldViolation>,
) -> Option<T> {
    result
        .map_err(|violation| violations.extend([violation]))
        .ok()
}

pub(crate) fn missing_field() -> Error {
    Error::internal(anyhow::anyhow!("validation passed with a field missing"))
}
