//! Settings of the voice sessionizer (resolved from `settings_for(guild_id)` by the SQL layer).

/// Microseconds in one second.
pub const MICROS_PER_SECOND: i64 = 1_000_000;

/// Built-in session cap: 12 hours, as in `settings_for()`.
pub const DEFAULT_SESSION_CAP_US: i64 = 12 * 3600 * MICROS_PER_SECOND;

/// Built-in outage threshold: three missed beats of the ingesters' 60-second heartbeat.
pub const DEFAULT_OUTAGE_AFTER_US: i64 = 180 * MICROS_PER_SECOND;

/// How one guild's voice sessions are built.
///
/// The ignored channels are kept sorted and deduplicated (hence private, set through
/// [`VoiceConfig::with_ignored_channels`]) so that the per-observation lookup is a binary search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoiceConfig {
    /// The guild's AFK channel: sessions there are flagged `is_afk` (they are still sessions).
    pub afk_channel: Option<i64>,
    /// A session open longer than this is closed at `started_at + session_cap_us` and flagged
    /// `capped`. Zero or negative disables the cap (the SQL settings table forbids those).
    pub session_cap_us: i64,
    /// A silence between heartbeats longer than this is an outage. Negative counts as zero.
    pub outage_after_us: i64,
    ignored_channels: Vec<i64>,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        VoiceConfig::new(DEFAULT_SESSION_CAP_US, DEFAULT_OUTAGE_AFTER_US)
    }
}

impl VoiceConfig {
    /// A configuration without AFK or ignored channels.
    pub fn new(session_cap_us: i64, outage_after_us: i64) -> Self {
        VoiceConfig {
            afk_channel: None,
            session_cap_us,
            outage_after_us,
            ignored_channels: Vec::new(),
        }
    }

    /// Sets the AFK channel.
    pub fn with_afk_channel(mut self, channel: Option<i64>) -> Self {
        self.afk_channel = channel;
        self
    }

    /// Sets the ignored channels (any order, duplicates allowed).
    pub fn with_ignored_channels(mut self, channels: impl IntoIterator<Item = i64>) -> Self {
        let mut v: Vec<i64> = channels.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        self.ignored_channels = v;
        self
    }

    /// The ignored channels, sorted and deduplicated.
    pub fn ignored_channels(&self) -> &[i64] {
        &self.ignored_channels
    }

    /// Whether time in `channel` produces no session at all. An ignored channel that is also
    /// the AFK channel is ignored.
    pub fn is_ignored(&self, channel: i64) -> bool {
        self.ignored_channels.binary_search(&channel).is_ok()
    }

    /// Whether `channel` is the AFK channel.
    pub fn is_afk(&self, channel: i64) -> bool {
        self.afk_channel == Some(channel)
    }

    /// The cap in force: `i64::MAX` when disabled.
    pub(crate) fn effective_cap(&self) -> i64 {
        if self.session_cap_us > 0 {
            self.session_cap_us
        } else {
            i64::MAX
        }
    }
}
