//! The output: voice sessions, one stint of one user in one channel.

/// Why a session started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StartReason {
    /// A voice event put the user in the channel while no session of theirs was open (a join,
    /// or the first event seen after an outage, a cap or a stint in an ignored channel).
    Join,
    /// A voice event moved the user here from another session's channel; that session ended
    /// with [`EndReason::Move`] at the same instant.
    Move,
    /// A reconnect snapshot listed the user in the channel and no session of theirs was open
    /// there.
    Snapshot,
}

impl StartReason {
    /// The name stored in SQL (`voice_sessions.start_reason`).
    pub const fn as_str(self) -> &'static str {
        match self {
            StartReason::Join => "join",
            StartReason::Move => "move",
            StartReason::Snapshot => "snapshot",
        }
    }
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EndReason {
    /// The user left voice, or went into an ignored channel (which counts as leaving).
    Leave,
    /// The user moved to another counted channel; the next session starts at the same instant
    /// with [`StartReason::Move`].
    Move,
    /// The bot went silent while the session was open: it ends at the last heartbeat before
    /// the silence.
    Outage,
    /// A snapshot did not list the user, or listed them in another channel.
    Snapshot,
    /// The session ran longer than the cap and was closed at `started_at + cap`.
    Cap,
}

impl EndReason {
    /// The name stored in SQL (`voice_sessions.end_reason`).
    pub const fn as_str(self) -> &'static str {
        match self {
            EndReason::Leave => "leave",
            EndReason::Move => "move",
            EndReason::Outage => "outage",
            EndReason::Snapshot => "snapshot",
            EndReason::Cap => "cap",
        }
    }
}

/// One stint of one user in one channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Session {
    /// Discord user id.
    pub user_id: i64,
    /// The voice channel.
    pub channel_id: i64,
    /// Microseconds since the Unix epoch.
    pub started_at: i64,
    /// Microseconds since the Unix epoch; `None` while the session is open.
    pub ended_at: Option<i64>,
    /// Why it started.
    pub start_reason: StartReason,
    /// Why it ended; `None` while open.
    pub end_reason: Option<EndReason>,
    /// The channel is the guild's AFK channel (never counts as active time).
    pub is_afk: bool,
    /// Closed by the session cap (`end_reason == Some(EndReason::Cap)`).
    pub capped: bool,
    /// Microseconds of the session during which the user was self-muted. For an open session,
    /// counted up to the horizon with the current flags (the next build recomputes it).
    pub self_mute_us: i64,
    /// Microseconds of the session during which the user was self-deafened (hearing nothing).
    /// "Listening" time is the session's length minus this.
    pub self_deaf_us: i64,
}

impl Session {
    /// Length in microseconds; an open session counts up to `now` (never negative).
    pub fn duration_us(&self, now: i64) -> i64 {
        self.ended_at
            .unwrap_or(now)
            .saturating_sub(self.started_at)
            .max(0)
    }

    /// Whether the session is still open.
    pub fn is_open(&self) -> bool {
        self.ended_at.is_none()
    }
}
