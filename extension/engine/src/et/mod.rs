//! ET:Legacy end-of-round stats files (the c0rnp0rn format).
//!
//! - [`parse_round`] reads one file into a [`ParsedRound`].
//! - [`round2_differential`] turns a round-2 file's cumulative numbers into round-2-only ones.
//! - [`pair_rounds`], [`stopwatch_result`], [`group_sessions`] and [`detect_restarts`] work on
//!   lists of [`RoundDescriptor`]s: which rounds form a map, who won, which rounds form an
//!   evening's session, and which rounds were restarted.
//!
//! The format is described in `shared/et-stats-format.md`; section numbers (§) refer to it.

pub mod color;
pub mod differential;
pub mod error;
pub mod extended;
pub mod file_name;
pub mod header;
pub mod pairing;
pub mod player;
pub mod round;
pub mod weapons;

pub use differential::{round2_differential, DiffStatus, Round2Player, Round2Result};
pub use error::{EtParseError, EtParseErrorKind};
pub use extended::{ExtendedStats, LuaVersion};
pub use file_name::{parse_file_name, FileNameInfo, LocalDateTime};
pub use header::{Header, Team};
pub use pairing::{
    detect_restarts, group_sessions, linking_reach, pair_rounds, stopwatch_result, MapOutcome,
    Pairing, RestartKind, RestartMark, RoundDescriptor, RoundPair, Session, StopwatchResult,
    RESTART_WINDOW, ROUND_MATCH_WINDOW, SESSION_GAP,
};
pub use player::{bot_guid, Player, OMNIBOT_GUID};
pub use round::{parse_round, ParsedRound};
pub use weapons::{WeaponStats, WEAPON_COUNT, WEAPON_NAMES};
