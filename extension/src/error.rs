//! One way to raise an SQL error from Rust, for every module of the extension.

use pgrx::prelude::*;

/// Raises a PostgreSQL error: the statement fails with this SQLSTATE and message. Never
/// returns (ereport at ERROR level unwinds to PostgreSQL's error handler).
pub(crate) fn raise(code: PgSqlErrorCode, message: impl Into<String>) -> ! {
    ereport!(PgLogLevel::ERROR, code, message.into());
    unreachable!("ereport(ERROR) returned")
}
