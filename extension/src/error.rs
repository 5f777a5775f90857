//! One way to raise an SQL error from Rust, for every module of the extension.

use pgrx::prelude::*;

/// Raises a PostgreSQL error: the statement fails with this SQLSTATE and message. Never
/// returns (ereport at ERROR level unwinds to PostgreSQL's error handler).
pub(crate) fn raise(code: PgSqlErrorCode, message: impl Into<String>) -> ! {
    ereport!(PgLogLevel::ERROR, code, message.into());
    unreachable!("ereport(ERROR) returned")
}

/// Raises the error of a failed SPI call (a query the extension itself runs): an internal
/// error, since it means the schema or the query is wrong, not the caller's input. `context`
/// names the function and what it was doing.
pub(crate) fn spi_error(context: &str, error: pgrx::spi::SpiError) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("{context}: {error}"),
    )
}
