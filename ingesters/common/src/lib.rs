//! What every guildstats ingester shares.
//!
//! Ingesters only push raw rows; they never compute analytics, update or delete. This crate
//! holds the catalogue of raw tables they may write to, so that every ingester (and every test
//! of the ingest role) agrees on the same names, and the sink that writes those rows durably.

pub mod backoff;
pub mod check;
pub mod config;
pub mod heartbeat;
pub mod logging;
pub mod raw_tables;
pub mod row;
pub mod shutdown;
pub mod sink;
pub mod spool;
pub mod time;
pub mod tls;

pub use row::Row;
pub use sink::{Sink, SinkOptions};
