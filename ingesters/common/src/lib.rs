//! What every guildstats ingester shares.
//!
//! Ingesters only push raw rows; they never compute analytics, update or delete. This crate
//! holds the catalogue of raw tables they may write to, so that every ingester (and every test
//! of the ingest role) agrees on the same names.

pub mod raw_tables;
