//! What is known about one user at a point of the walk; saved and passed back to resume.

use super::observation::VoiceFlags;
use super::session::StartReason;

/// The accounting of an open session frozen at an outage's last heartbeat, kept in case the
/// session turns out to be cut there (flag changes seen after the beat must not count then).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OutageCut {
    /// The outage's last heartbeat.
    pub last_beat: i64,
    /// Self-muted microseconds from the session start up to `last_beat`.
    pub self_mute_us: i64,
    /// Self-deafened microseconds from the session start up to `last_beat`.
    pub self_deaf_us: i64,
}

/// A session being walked: everything needed to close it later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpenSession {
    /// The channel.
    pub channel: i64,
    /// When the session started.
    pub since: i64,
    /// Why it started.
    pub start_reason: StartReason,
    /// The current flags.
    pub flags: VoiceFlags,
    /// When the current flags were set (the last change of this state). While a session is
    /// open, input older than this is stale and ignored.
    pub flags_since: i64,
    /// Self-muted microseconds from `since` up to `flags_since`.
    pub self_mute_us: i64,
    /// Self-deafened microseconds from `since` up to `flags_since`.
    pub self_deaf_us: i64,
    /// Set when an outage's silence began while this session was open.
    pub outage_cut: Option<OutageCut>,
}

impl OpenSession {
    /// A session that starts at `since` with `flags`.
    pub fn new(channel: i64, since: i64, start_reason: StartReason, flags: VoiceFlags) -> Self {
        OpenSession {
            channel,
            since,
            start_reason,
            flags,
            flags_since: since,
            self_mute_us: 0,
            self_deaf_us: 0,
            outage_cut: None,
        }
    }

    /// Muted and deafened microseconds from the start up to `t` (`t` before the last change
    /// counts as the last change).
    pub fn totals_at(&self, t: i64) -> (i64, i64) {
        let d = t.saturating_sub(self.flags_since).max(0);
        let add = |base: i64, on: bool| if on { base.saturating_add(d) } else { base };
        (
            add(self.self_mute_us, self.flags.self_mute),
            add(self.self_deaf_us, self.flags.self_deaf),
        )
    }

    /// Changes the flags at `t`, accounting the time under the old ones.
    pub(crate) fn set_flags(&mut self, t: i64, flags: VoiceFlags) {
        let (mute, deaf) = self.totals_at(t);
        self.self_mute_us = mute;
        self.self_deaf_us = deaf;
        self.flags = flags;
        self.flags_since = self.flags_since.max(t);
    }
}

/// What is known about one user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum UserState {
    /// Nothing is known (never observed, or after an outage or a cap). Behaves like
    /// [`UserState::OutOfVoice`] for every observation; differs only in what it claims.
    #[default]
    Unknown,
    /// Not in any counted channel: out of voice, or in an ignored channel.
    OutOfVoice,
    /// In a session.
    InChannel(OpenSession),
}

impl UserState {
    /// The open session, if any.
    pub fn open_session(&self) -> Option<&OpenSession> {
        match self {
            UserState::InChannel(open) => Some(open),
            _ => None,
        }
    }
}
