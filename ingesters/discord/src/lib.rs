//! guildstats-discord: a serenity bot that turns gateway events into raw rows.
//!
//! The mapping from Discord's models to rows (`rows`) is pure and holds every rule of what is
//! written; the handler only stamps the receipt time, looks up what the payload lacks in
//! serenity's cache, and hands the rows to the sink. Message content is never stored: only its
//! length and shape.

pub mod check;
pub mod clock;
pub mod commands;
pub mod config;
pub mod handler;
pub mod heartbeats;
pub mod opt_out;
pub mod rows;
