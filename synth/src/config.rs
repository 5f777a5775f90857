//! What to generate: size, period, seed and the knobs of realism.

use crate::error::Error;
use crate::rows::Table;
use crate::sink::CountingSink;
use crate::time::{LocalZone, Ts};
use crate::Community;

/// Largest member count: member indexes fill the low 22 bits of generated snowflakes
/// (message ids), which keeps every id unique without bookkeeping.
pub const MAX_MEMBERS: u32 = (1 << 22) - 1;

/// Regular voice channels of the demo layout (and of every group of channels a larger
/// community gets).
pub const REGULAR_VOICE_CHANNELS: usize = 5;

/// Parameters of one synthetic community. Same config, same bytes: everything random is
/// drawn from ChaCha8 streams keyed by `seed`.
#[derive(Clone, Debug, PartialEq)]
pub struct CommunityConfig {
    /// Seed of every random stream.
    pub seed: u64,
    /// Members over the whole period (bots included; some are there at the start, the rest
    /// join during the period).
    pub members: u32,
    /// Length of the period in days.
    pub days: u32,
    /// First instant of the period; midnight UTC of a date in practice.
    pub start: Ts,
    /// The guild's snowflake.
    pub guild_id: i64,
    /// The guild's name.
    pub guild_name: String,
    /// Where the members live: evenings and weekends are local.
    pub zone: LocalZone,
    /// Share of voice events emitted late (after events that happened later than them).
    pub late_fraction: f64,
    /// Share of voice events emitted twice (identical rows; the second copy is dropped by
    /// `ON CONFLICT DO NOTHING`).
    pub duplicate_fraction: f64,
    /// Number of bot outages (no voice events, messages or heartbeats while the bot is down;
    /// a snapshot on reconnect). Periods shorter than 4 days get none.
    pub outages: u32,
    /// Seconds between heartbeats of the Discord ingester.
    pub heartbeat_interval_s: u32,
    /// Seconds between polls of each game server; 0 turns the game servers off.
    pub poll_interval_s: u32,
    /// Multiplier on every member's voice-session rate (1.0 = the calibrated community).
    pub voice_activity: f64,
    /// Share of members already in the guild when the period starts.
    pub initial_member_share: f64,
    /// Members per regular voice channel: 0 keeps the five channels of the demo whatever the
    /// size; N gives a community of M members about M / N of them (never fewer than five), in
    /// groups of five that share a category's crowd. Without it a large community crowds into
    /// five rooms and pairs of co-present members grow with the square of the member count,
    /// which no real guild of that size shows.
    pub members_per_voice_channel: u32,
}

impl Default for CommunityConfig {
    fn default() -> Self {
        Self::demo()
    }
}

impl CommunityConfig {
    /// The demo community: about 3000 members over 120 days (crossing the March DST switch).
    pub fn demo() -> Self {
        CommunityConfig {
            seed: 42,
            members: 3000,
            days: 120,
            start: Ts::from_micros(1_767_571_200_000_000), // 2026-01-05 00:00:00 UTC, a Monday
            guild_id: 824_215_638_301_851_648,
            guild_name: "Nordlicht Gaming".to_owned(),
            zone: LocalZone::EuropeBerlin,
            late_fraction: 0.01,
            duplicate_fraction: 0.002,
            outages: 2,
            heartbeat_interval_s: 60,
            poll_interval_s: 60,
            voice_activity: 1.0,
            initial_member_share: 0.55,
            members_per_voice_channel: 0,
        }
    }

    /// A small community for tests: 50 members over 14 days, one outage, polls every 5 min
    /// (fast even in debug builds).
    pub fn tiny() -> Self {
        CommunityConfig {
            members: 50,
            days: 14,
            outages: 1,
            poll_interval_s: 300,
            // A handful of members must still yield enough sessions to test the shape.
            voice_activity: 2.0,
            late_fraction: 0.03,
            duplicate_fraction: 0.01,
            ..Self::demo()
        }
    }

    /// Same config with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Same config with `members` members.
    pub fn with_members(mut self, members: u32) -> Self {
        self.members = members;
        self
    }

    /// Same config over `days` days.
    pub fn with_days(mut self, days: u32) -> Self {
        self.days = days;
        self
    }

    /// Same config with one regular voice channel per `members` members (see
    /// [`CommunityConfig::members_per_voice_channel`]).
    pub fn with_members_per_voice_channel(mut self, members: u32) -> Self {
        self.members_per_voice_channel = members;
        self
    }

    /// How many regular voice channels the community has.
    pub fn regular_voice_channels(&self) -> usize {
        match self.members_per_voice_channel {
            0 => REGULAR_VOICE_CHANNELS,
            per => ((f64::from(self.members) / f64::from(per)).round() as usize)
                .max(REGULAR_VOICE_CHANNELS),
        }
    }

    /// Scales the member count so that about `n` voice events are produced (the period and
    /// everything else stay). Two small pilots (500 and 1500 members) give a first guess,
    /// one voice-only pass at that size corrects it; expect the result within a few percent
    /// of `n`. An invalid config is returned unchanged
    /// (`Community::new` reports the problem).
    pub fn with_target_voice_events(self, n: u64) -> Self {
        // Voice events grow linearly with members plus a fixed part (scheduled events draw
        // a set number of attendees whatever the size), so two pilots give both.
        let count = |members: u32| -> Option<f64> {
            let community = Community::new(self.clone().with_members(members)).ok()?;
            let mut sink = CountingSink::only(&[Table::VoiceEvents]);
            community.generate(&mut sink).ok()?;
            Some(sink.count(Table::VoiceEvents) as f64)
        };
        let (small, large) = (500, 1500);
        let (Some(a), Some(b)) = (count(small), count(large)) else {
            return self;
        };
        let per_member = (b - a) / f64::from(large - small);
        let fixed = (a - per_member * f64::from(small)).max(0.0);
        if per_member <= 0.0 {
            return self;
        }
        let guess = ((n as f64 - fixed) / per_member).clamp(10.0, f64::from(MAX_MEMBERS));
        // The pilots are small samples of a heavy-tailed population; one pass at the guessed
        // size corrects the estimate (it costs a few seconds at ten million events).
        let guess = guess.round() as u32;
        let members = match count(guess) {
            Some(got) if got > fixed => {
                f64::from(guess) * (n as f64 - fixed).max(0.0) / (got - fixed)
            }
            _ => f64::from(guess),
        };
        self.with_members(members.round().clamp(10.0, f64::from(MAX_MEMBERS)) as u32)
    }

    /// The first instant after the period.
    pub fn end(&self) -> Ts {
        self.start.add_secs(i64::from(self.days) * 86_400)
    }

    /// Checks that the config can be generated.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |msg: String| Err(Error::Config(msg));
        if self.members < 10 || self.members > MAX_MEMBERS {
            return bad(format!(
                "members must be between 10 and {MAX_MEMBERS}, got {}",
                self.members
            ));
        }
        if self.days == 0 || self.days > 3660 {
            return bad(format!(
                "days must be between 1 and 3660, got {}",
                self.days
            ));
        }
        for (name, v) in [
            ("late_fraction", self.late_fraction),
            ("duplicate_fraction", self.duplicate_fraction),
            ("initial_member_share", self.initial_member_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("{name} must be between 0 and 1, got {v}"));
            }
        }
        if !(self.voice_activity >= 0.0 && self.voice_activity <= 100.0) {
            return bad(format!(
                "voice_activity must be between 0 and 100, got {}",
                self.voice_activity
            ));
        }
        if self.heartbeat_interval_s == 0 {
            return bad("heartbeat_interval_s must be positive".to_owned());
        }
        if self.guild_id <= 0 {
            return bad(format!(
                "guild_id must be a positive snowflake, got {}",
                self.guild_id
            ));
        }
        if let LocalZone::Fixed { offset_minutes } = self.zone {
            if !(-14 * 60..=14 * 60).contains(&offset_minutes) {
                return bad(format!("UTC offset out of range: {offset_minutes} minutes"));
            }
        }
        Ok(())
    }
}
