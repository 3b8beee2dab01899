//! The declaration platform's gRPC services: validate, convert, call the domain,
//! convert back.

pub mod declaration;
pub mod enterprise;
pub mod manifest;

use customs_common::Error;

pub(crate) fn missing_field() -> Error {
    Error::internal(anyhow::anyhow!("validation passed with a field missing"))
}
