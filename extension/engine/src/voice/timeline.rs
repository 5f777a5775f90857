//! Guild-level marks shared by every user's walk: outage boundaries and snapshot times.

use super::outage::Outage;

/// One guild-level mark on the time line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Mark {
    pub ts: i64,
    pub kind: MarkKind,
}

/// The variant order is the order at equal times relative to each other; [`Mark::rank`] places
/// them relative to observations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum MarkKind {
    /// The first heartbeat after an outage: whatever is still open was never seen to end.
    Resume { last_beat: i64 },
    /// A snapshot was taken: users it does not list are not in voice.
    Absent,
    /// The last heartbeat before an outage.
    Silence,
}

/// Rank of a user's observations among marks at equal times.
pub(crate) const OBSERVATION_RANK: u8 = 1;

impl Mark {
    /// Order relative to observations at the same time (see the module docs of `voice`).
    pub(crate) fn rank(&self) -> u8 {
        match self.kind {
            MarkKind::Resume { .. } => 0,
            MarkKind::Absent => 2,
            MarkKind::Silence => 3,
        }
    }
}

/// The guild-level marks every user's walk merges with their own observations: outage
/// boundaries and, optionally, snapshot times (a user not listed by a snapshot at such a time
/// is absent from voice, without an explicit observation per user).
///
/// Built once per guild and shared by all users' walks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuildTimeline {
    pub(crate) marks: Vec<Mark>,
    pub(crate) ongoing: Option<i64>,
}

impl GuildTimeline {
    /// Outages only: snapshot absences come as explicit observations.
    pub fn from_outages(outages: &[Outage]) -> Self {
        Self::new(outages, std::iter::empty())
    }

    /// Outages plus the times of the guild's snapshots. With snapshot times here, pass each
    /// user's snapshot *entries* as observations (see [`snapshot_entries`]) and no absences:
    /// every snapshot time at which a user has no entry counts as an absence.
    ///
    /// An outage whose `resumed_at` is not after its `last_beat` (malformed) resumes at its
    /// last beat. If several outages are marked as ongoing, the earliest counts.
    ///
    /// [`snapshot_entries`]: super::snapshot_entries
    pub fn new(outages: &[Outage], snapshot_times: impl IntoIterator<Item = i64>) -> Self {
        let mut marks: Vec<Mark> = snapshot_times
            .into_iter()
            .map(|ts| Mark {
                ts,
                kind: MarkKind::Absent,
            })
            .collect();
        let mut ongoing: Option<i64> = None;
        for o in outages {
            marks.push(Mark {
                ts: o.last_beat,
                kind: MarkKind::Silence,
            });
            match o.resumed_at {
                Some(r) => marks.push(Mark {
                    ts: r.max(o.last_beat),
                    kind: MarkKind::Resume {
                        last_beat: o.last_beat,
                    },
                }),
                None => ongoing = Some(ongoing.map_or(o.last_beat, |x| x.min(o.last_beat))),
            }
        }
        marks.sort_unstable_by_key(|m| (m.ts, m.rank(), m.kind));
        marks.dedup();
        GuildTimeline { marks, ongoing }
    }

    /// The last heartbeat of an outage still going on at the horizon, if any.
    pub fn ongoing_outage(&self) -> Option<i64> {
        self.ongoing
    }
}
