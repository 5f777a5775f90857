//! What the sessionizer is fed: observations of one user's voice state.

/// The self-mute and self-deaf flags of a voice state.
///
/// Server mute/deaf, streaming and video are not tracked: the views count "listening" time
/// from what the user chose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VoiceFlags {
    /// The user muted their own microphone.
    pub self_mute: bool,
    /// The user deafened themselves (hears nothing).
    pub self_deaf: bool,
}

impl VoiceFlags {
    /// Flags from the two raw columns.
    pub const fn new(self_mute: bool, self_deaf: bool) -> Self {
        VoiceFlags {
            self_mute,
            self_deaf,
        }
    }
}

/// What one observation says about the user at its time.
///
/// The variant order is the tie-break at equal timestamps (see the module docs): events, then
/// snapshot entries, then snapshot absences. The derived `Ord` relies on it; do not reorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObservationKind {
    /// A `raw_voice_events` row: from its time on the user is in `channel` (`None`: out of
    /// voice). Joins, leaves, moves and flag changes all have this shape.
    Event {
        /// The channel from now on, or `None` for "left voice".
        channel: Option<i64>,
        /// The user's flags from now on (meaningless when `channel` is `None`).
        flags: VoiceFlags,
    },
    /// A reconnect snapshot lists the user in `channel`.
    SnapshotEntry {
        /// The channel the snapshot lists the user in.
        channel: i64,
        /// The user's flags as listed.
        flags: VoiceFlags,
    },
    /// A reconnect snapshot does not list the user: they are not in voice at its time.
    SnapshotAbsent,
}

/// One observation of one user (the user is implied by whose list it is in).
///
/// Ordered by `(ts, kind)`: the walk's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Observation {
    /// Microseconds since the Unix epoch.
    pub ts: i64,
    /// What was observed.
    pub kind: ObservationKind,
}

impl Observation {
    /// A voice event: from `ts` on the user is in `channel` (`None`: out of voice).
    pub const fn event(ts: i64, channel: Option<i64>, self_mute: bool, self_deaf: bool) -> Self {
        Observation {
            ts,
            kind: ObservationKind::Event {
                channel,
                flags: VoiceFlags::new(self_mute, self_deaf),
            },
        }
    }

    /// A snapshot taken at `ts` lists the user in `channel`.
    pub const fn snapshot_entry(ts: i64, channel: i64, self_mute: bool, self_deaf: bool) -> Self {
        Observation {
            ts,
            kind: ObservationKind::SnapshotEntry {
                channel,
                flags: VoiceFlags::new(self_mute, self_deaf),
            },
        }
    }

    /// A snapshot taken at `ts` does not list the user.
    pub const fn snapshot_absent(ts: i64) -> Self {
        Observation {
            ts,
            kind: ObservationKind::SnapshotAbsent,
        }
    }
}

/// An observation together with its user: the element of a guild-wide list.
///
/// Ordered by `(user_id, observation)`, so one sort groups by user and orders each group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserObservation {
    /// Discord user id.
    pub user_id: i64,
    /// What was observed about that user.
    pub observation: Observation,
}

/// One `raw_voice_events` row, reduced to what sessions need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RawVoiceEvent {
    /// `user_id`.
    pub user_id: i64,
    /// `event_ts`, microseconds since the Unix epoch.
    pub ts: i64,
    /// `channel_id` (`None`: out of voice).
    pub channel_id: Option<i64>,
    /// `self_mute`.
    pub self_mute: bool,
    /// `self_deaf`.
    pub self_deaf: bool,
}

impl From<RawVoiceEvent> for UserObservation {
    fn from(e: RawVoiceEvent) -> Self {
        UserObservation {
            user_id: e.user_id,
            observation: Observation::event(e.ts, e.channel_id, e.self_mute, e.self_deaf),
        }
    }
}
