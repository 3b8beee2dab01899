//! The error type every platform returns, and its single mapping to `tonic::Status`.
//!
//! Every status carries a `google.rpc.ErrorInfo` with a stable `reason` and the domain
//! [`ERROR_DOMAIN`]; validation failures also carry every violated field as
//! `google.rpc.BadRequest` details, so a gateway can show the enterprise what to fix.

use std::{borrow::Cow, fmt};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub const ERROR_DOMAIN: &str = "customs.gd";

/// One violated field: `items[2].hs_code`, a stable reason and a readable description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    /// Ours, or one another platform gave (passed on as it came).
    pub reason: Cow<'static, str>,
    pub description: String,
}

impl FieldViolation {
    pub fn new(
        field: impl Into<String>,
        reason: impl Into<Cow<'static, str>>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
            description: description.into(),
        }
    }
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.field, self.description, self.reason)
    }
}

/// A collector for violations: validate everything, then fail once with all of them.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(
        &mut self,
        field: impl Into<String>,
        reason: &'static str,
        description: impl Into<String>,
    ) {
        self.0.push(FieldViolation::new(field, reason, description));
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = FieldViolation>) {
        self.0.extend(other);
    }

    /// The value of a field's parse, or `None` with its violation collected.
    pub fn keep<T>(&mut self, parsed: Result<T, FieldViolation>) -> Option<T> {
        parsed.map_err(|violation| self.0.push(violation)).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<FieldViolation> {
        self.0
    }

    /// `Ok(())` when nothing was violated, else an `INVALID_ARGUMENT` error with them all.
    pub fn into_result(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidArgument(self.0))
        }
    }
}

/// The errors a platform answers with. The variants are the gRPC codes the platforms use;
/// `reason` is the stable, machine-readable `ErrorInfo.reason`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid argument: {}", join(.0))]
    InvalidArgument(Vec<FieldViolation>),
    #[error("{message}")]
    NotFound {
        reason: &'static str,
        message: String,
    },
    #[error("{message}")]
    AlreadyExists {
        reason: &'static str,
        message: String,
    },
    #[error("{message}")]
    FailedPrecondition {
        reason: &'static str,
        message: String,
    },
    #[error("{message}")]
    PermissionDenied {
        reason: &'static str,
        message: String,
    },
    #[error("{message}")]
    Unauthenticated {
        reason: &'static str,
        message: String,
    },
    #[error("{message}")]
    Unavailable {
        reason: &'static str,
        message: String,
    },
    /// Anything unexpected: logged with its cause chain, answered as a bare `INTERNAL`.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn join(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    pub fn invalid(
        field: impl Into<String>,
        reason: &'static str,
        description: impl Into<String>,
    ) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, reason, description)])
    }

    pub fn not_found(reason: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound {
            reason,
            message: message.into(),
        }
    }

    pub fn already_exists(reason: &'static str, message: impl Into<String>) -> Self {
        Self::AlreadyExists {
            reason,
            message: message.into(),
        }
    }

    pub fn failed_precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Self::FailedPrecondition {
            reason,
            message: message.into(),
        }
    }

    pub fn permission_denied(reason: &'static str, message: impl Into<String>) -> Self {
        Self::PermissionDenied {
            reason,
            message: message.into(),
        }
    }

    pub fn unauthenticated(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Unauthenticated {
            reason,
            message: message.into(),
        }
    }

    pub fn unavailable(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Unavailable {
            reason,
            message: message.into(),
        }
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }

    /// The stable reason a client sees in `ErrorInfo`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidArgument(_) => "INVALID_ARGUMENT",
            Self::NotFound { reason, .. }
            | Self::AlreadyExists { reason, .. }
            | Self::FailedPrecondition { reason, .. }
            | Self::PermissionDenied { reason, .. }
            | Self::Unauthenticated { reason, .. }
            | Self::Unavailable { reason, .. } => reason,
            Self::Internal(_) => "INTERNAL",
        }
    }
}

impl From<FieldViolation> for Error {
    fn from(violation: FieldViolation) -> Self {
        Self::InvalidArgument(vec![violation])
    }
}

/// A database error that says nothing about the request: the database could not be
/// reached in time, or the statement lost to a concurrent one (a deadlock, a lock or
/// serialization conflict, SQLite busy). The same call, retried, may well succeed, so
/// the caller is told `UNAVAILABLE` rather than `INTERNAL`.
fn transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(database) => {
            if let Some(postgres) = database.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                let code = postgres.code();
                // Serialization failure, deadlock, lock not available; a connection
                // lost or the server shutting down or starting.
                matches!(
                    code,
                    "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03"
                ) || code.starts_with("08")
            } else if database
                .try_downcast_ref::<sqlx::sqlite::SqliteError>()
                .is_some()
                || database
                    .try_downcast_ref::<crate::db::WriterError>()
                    .is_some()
            {
                // SQLITE_BUSY and SQLITE_LOCKED, with any of their extended codes.
                database
                    .code()
                    .and_then(|code| code.parse::<i32>().ok())
                    .is_some_and(|code| matches!(code & 0xff, 5 | 6))
            } else {
                false
            }
        }
        _ => false,
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        if transient(&error) {
            tracing::warn!(%error, "database busy or unreachable; the caller may retry");
            return Self::unavailable(
                "DATABASE_UNAVAILABLE",
                "the database is busy or unreachable; retry",
            );
        }
        Self::Internal(error.into())
    }
}

impl From<redis::RedisError> for Error {
    fn from(error: redis::RedisError) -> Self {
        Self::Internal(error.into())
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let reason = error.reason();
        let mut details = ErrorDetails::new();
        details.set_error_info(reason, ERROR_DOMAIN, []);
        let (code, message) = match error {
            Error::InvalidArgument(violations) => {
                let message = format!(
                    "{} field(s) invalid: {}",
                    violations.len(),
                    join(&violations)
                );
                for violation in violations {
                    details.add_bad_request_violation(
                        violation.field,
                        format!("{} ({})", violation.description, violation.reason),
                    );
                }
                (Code::InvalidArgument, message)
            }
            Error::NotFound { message, .. } => (Code::NotFound, message),
            Error::AlreadyExists { message, .. } => (Code::AlreadyExists, message),
            Error::FailedPrecondition { message, .. } => (Code::FailedPrecondition, message),
            Error::PermissionDenied { message, .. } => (Code::PermissionDenied, message),
            Error::Unauthenticated { message, .. } => (Code::Unauthenticated, message),
            Error::Unavailable { message, .. } => (Code::Unavailable, message),
            Error::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                (Code::Internal, "internal error".to_owned())
            }
        };
        Status::with_error_details(code, message, details)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The field violations a status of another platform carries (an `InvalidArgument` as
/// `From<Error> for Status` sent it), each with its reason; `None` for any other status.
pub fn violations_of(status: &Status) -> Option<Vec<FieldViolation>> {
    if status.code() != Code::InvalidArgument {
        return None;
    }
    let bad_request = status.get_details_bad_request()?;
    Some(
        bad_request
            .field_violations
            .into_iter()
            .map(|violation| {
                match violation
                    .description
                    .strip_suffix(')')
                    .and_then(|rest| rest.rsplit_once(" ("))
                {
                    Some((description, reason)) => {
                        FieldViolation::new(violation.field, reason.to_owned(), description)
                    }
                    None => FieldViolation::new(violation.field, "INVALID", violation.description),
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_error_carries_every_violation_and_a_reason() {
        let mut violations = Violations::new();
        violations.push("items[0].hs_code", "HS_CODE_FORMAT", "must be 10 digits");
        violations.push(
            "total_value",
            "TOTAL_MISMATCH",
            "must equal the sum of items",
        );
        let status = Status::from(violations.into_result().unwrap_err());
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad_request = details.bad_request().unwrap();
        assert_eq!(bad_request.field_violations.len(), 2);
        assert_eq!(bad_request.field_violations[0].field, "items[0].hs_code");
        let info = details.error_info().unwrap();
        assert_eq!(info.reason, "INVALID_ARGUMENT");
        assert_eq!(info.domain, ERROR_DOMAIN);
    }

    #[test]
    fn violations_read_back_from_a_status_as_they_were_sent() {
        let sent = vec![
            FieldViolation::new(
                "items[0].hs_code",
                "HS_CODE_FORMAT",
                "must be 10 digits (or 8)",
            ),
            FieldViolation::new("bill_of_lading", "MANIFEST_NOT_FOUND", "no such manifest"),
        ];
        let status = Status::from(Error::InvalidArgument(sent.clone()));
        assert_eq!(violations_of(&status), Some(sent));
        let status = Status::from(Error::not_found("X", "none"));
        assert_eq!(violations_of(&status), None);
    }

    #[test]
    fn internal_error_hides_its_cause() {
        let error = Error::internal(anyhow::anyhow!("relation \"secret_table\" does not exist"));
        let status = Status::from(error);
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret_table"));
    }

    #[test]
    fn a_database_out_of_reach_is_unavailable_and_a_broken_query_internal() {
        let status = Status::from(Error::from(sqlx::Error::PoolTimedOut));
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.get_error_details().error_info().unwrap().reason,
            "DATABASE_UNAVAILABLE"
        );
        let status = Status::from(Error::from(sqlx::Error::RowNotFound));
        assert_eq!(status.code(), Code::Internal);
    }

    /// A statement that loses a lock to another transaction (here: gives up waiting)
    /// is answered `UNAVAILABLE`, on PostgreSQL and on SQLite alike.
    #[tokio::test]
    async fn a_statement_that_loses_a_lock_is_unavailable() {
        use sqlx::{Connection as _, Executor as _};
        let postgres = crate::testing::TestDatabase::postgres().await.unwrap();
        let crate::db::Database::Postgres(pool) = &postgres.database else {
            panic!("a PostgreSQL database")
        };
        pool.execute("CREATE TABLE held (id INT PRIMARY KEY); INSERT INTO held VALUES (1)")
            .await
            .unwrap();
        let mut holder = pool.begin().await.unwrap();
        sqlx::query("UPDATE held SET id = 1 WHERE id = 1")
            .execute(&mut *holder)
            .await
            .unwrap();
        let mut waiter = pool.acquire().await.unwrap();
        waiter.execute("SET lock_timeout = '50ms'").await.unwrap();
        let lost = sqlx::query("UPDATE held SET id = 1 WHERE id = 1")
            .execute(&mut *waiter)
            .await
            .unwrap_err();
        assert_eq!(Error::from(lost).reason(), "DATABASE_UNAVAILABLE");
        holder.rollback().await.unwrap();

        let path = std::env::temp_dir().join(format!("customs_busy_{}.db", uuid::Uuid::new_v4()));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let mut first = sqlx::SqliteConnection::connect(&url).await.unwrap();
        first
            .execute("CREATE TABLE held (id INTEGER)")
            .await
            .unwrap();
        first.execute("BEGIN IMMEDIATE").await.unwrap();
        let mut second = sqlx::SqliteConnection::connect(&url).await.unwrap();
        second.execute("PRAGMA busy_timeout = 0").await.unwrap();
        let busy = second
            .execute("INSERT INTO held VALUES (1)")
            .await
            .unwrap_err();
        assert_eq!(Error::from(busy).reason(), "DATABASE_UNAVAILABLE");
        first.execute("ROLLBACK").await.unwrap();
        drop((first, second));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn domain_reason_reaches_the_client() {
        let status = Status::from(Error::failed_precondition(
            "GUARANTEE_INSUFFICIENT_HEADROOM",
            "only 10.00 CNY left",
        ));
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(
            status.get_error_details().error_info().unwrap().reason,
            "GUARANTEE_INSUFFICIENT_HEADROOM"
        );
    }
}
