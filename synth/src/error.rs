//! The crate's error type.

use std::fmt;
use std::io;

/// What can go wrong while generating or loading.
#[derive(Debug)]
pub enum Error {
    /// The configuration cannot be generated (the message says which field and why).
    Config(String),
    /// Writing rows failed.
    Io(io::Error),
    /// The database refused a statement or the connection failed.
    Postgres(postgres::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(msg) => write!(f, "invalid configuration: {msg}"),
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::Postgres(e) => write!(f, "postgres error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(_) => None,
            Error::Io(e) => Some(e),
            Error::Postgres(e) => Some(e),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        Error::Postgres(e)
    }
}
