//! The algorithms behind guildstats, in plain Rust.
//!
//! Nothing here knows about PostgreSQL: the `guildstats` pgrx crate adapts these functions to
//! SQL. Keeping them apart means they build and test with plain `cargo test`, and can be fuzzed.

pub mod economy;
pub mod et;
pub mod gini;
pub mod rating;
pub mod retention;
pub mod voice;
