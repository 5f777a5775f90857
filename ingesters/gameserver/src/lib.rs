//! The game-server poller: our own small async clients for Source A2S and Quake 3 / ET:Legacy
//! `getstatus` (the published crates mis-handle split packets, SourceTV and Q3 players; see
//! design.md), and the mapping of each poll to raw rows.

pub mod a2s;
pub mod bytes;
pub mod cycle;
pub mod poll;
pub mod q3;
pub mod query;
pub mod servers;
