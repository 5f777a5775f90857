//! Deterministic synthetic data for guildstats: one gaming community (a Discord guild with
//! voice, chat, members, scheduled events and a point economy, plus two game servers) written
//! as rows of the extension's raw tables.
//!
//! It is the one generator behind the demo, the tests and the benchmark:
//!
//! ```no_run
//! use guildstats_synth::{Community, CommunityConfig, CountingSink, Table};
//!
//! let community = Community::new(CommunityConfig::tiny().with_seed(7))?;
//! let mut sink = CountingSink::new();
//! let report = community.generate(&mut sink)?;
//! assert!(report.count(Table::VoiceEvents) > 0);
//! let truth = community.observable_voice_truth()?; // what build_voice_sessions() should find
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Same config, same bytes: every random draw comes from a ChaCha8 stream keyed by the seed
//! and the coordinates of what is drawn (member, day, server, ...). Rows are streamed to a
//! [`Sink`] day by day, so a run of ten million voice events needs memory for one day only.

pub mod activity;
pub mod balances;
mod community;
mod config;
pub mod copy;
mod economy;
mod error;
pub mod et_names;
mod events;
pub mod ids;
mod members;
mod messages;
pub mod pg;
mod rhythm;
mod rng;
mod rows;
mod servers;
mod sink;
mod time;
mod voice;

pub use community::{ChannelInfo, Community, MemberInfo, Report};
pub use config::{CommunityConfig, MAX_MEMBERS};
pub use copy::CopyDirSink;
pub use error::Error;
pub use rhythm::local_hour;
pub use rows::*;
pub use sink::{CollectSink, CountingSink, MemorySink, Sink};
pub use time::{Civil, LocalZone, Ts};
pub use voice::{EndReason, Outage, VoiceSession};
