//! Voice sessions: turning voice-state observations into stints of one user in one channel.
//!
//! The rules are the "Voice sessions" rules of the design: a session is one stint of one user in
//! one channel; a move closes one session and opens the next at the same instant; AFK-channel
//! sessions are flagged; ignored channels produce nothing; bot outages never add voice time
//! nobody can vouch for; over-long sessions are capped and flagged; open sessions stay open.
//!
//! Everything here is plain Rust on plain numbers so the pgrx layer can feed it straight from
//! the raw tables:
//!
//! - times are `i64` microseconds since the Unix epoch (PostgreSQL's `timestamptz` counts
//!   microseconds from 2000-01-01; the SQL-facing layer shifts by the constant difference);
//! - user and channel ids are `i64` (Discord snowflakes fit; PostgreSQL stores them as `bigint`);
//! - durations (cap, outage threshold, mute and deaf time) are `i64` microseconds too.
//!
//! # Pieces
//!
//! - [`Observation`]: one thing seen about one user (a voice event, or a reconnect snapshot
//!   that lists them or does not).
//! - [`outages`]: heartbeat silences, as [`Outage`]s.
//! - [`GuildTimeline`]: the guild-level marks (outages, snapshot times) every user's walk shares.
//! - [`UserState`]: what is known about a user at a point of the walk; a caller can save it and
//!   resume from it.
//! - [`sessionize_user`] / [`sessionize_user_with`]: the walk over one user's observations.
//! - [`sessionize_guild`] / [`sessionize_users`]: the whole-guild convenience (sort once, group
//!   by user, walk each).
//!
//! # Order of things at one instant
//!
//! Results never depend on input order: observations are sorted by `(ts, kind)`, where at equal
//! `ts` voice events come before snapshot entries, which come before snapshot absences (a
//! snapshot is the complete state *at* its time, so it is applied last and wins). Guild-level
//! marks are merged in as follows, at equal time:
//!
//! 1. the end of an outage (the first heartbeat after the silence): it closes what the bot
//!    could not follow before anything seen after the reconnect is applied;
//! 2. the user's observations (events, then snapshot entries, then explicit absences);
//! 3. implicit absences of a guild snapshot (the user is not listed);
//! 4. the start of an outage (the last heartbeat before the silence): the beat vouches for
//!    everything observed at its own instant.
//!
//! # Outages
//!
//! An outage is the silence between the last heartbeat before it (`last_beat`) and the first
//! one after it (`resumed_at`). The bot really disconnected at some unknown instant inside it,
//! after the last event it recorded. So:
//!
//! - a session whose end *was* observed before the silence ended (a leave, a move, a snapshot)
//!   keeps that end: the bot saw it;
//! - a session still open when the silence ends was open when the bot went away: it ends at
//!   `last_beat` (end reason [`EndReason::Outage`]), or is dropped entirely if it began after
//!   `last_beat` (nobody vouches for any of it);
//! - afterwards the user is [`UserState::Unknown`] until the next observation; the reconnect
//!   snapshot (or any later event) opens sessions normally.
//!
//! An outage still going on at the horizon (no heartbeat since `last_beat`) does the same at
//! the end of the walk. Without any heartbeats there is no outage information at all and no
//! outage is assumed.
//!
//! # Zero-length sessions
//!
//! A session that would end at the instant it started (a join and a contradicting snapshot at
//! the same microsecond, a join exactly at the last beat before an outage) carries no time and
//! is not emitted.

pub mod config;
pub mod guild;
pub mod observation;
pub mod outage;
pub mod session;
pub mod sessionizer;
pub mod snapshot;
pub mod state;
pub mod timeline;

pub use config::VoiceConfig;
pub use guild::{sessionize_guild, sessionize_users, UsersResult};
pub use observation::{Observation, ObservationKind, RawVoiceEvent, UserObservation, VoiceFlags};
pub use outage::{outages, Outage};
pub use session::{EndReason, Session, StartReason};
pub use sessionizer::{sessionize_user, sessionize_user_with};
pub use snapshot::{expand_snapshots, snapshot_entries, SnapshotState, VoiceSnapshot};
pub use state::{OpenSession, OutageCut, UserState};
pub use timeline::GuildTimeline;
