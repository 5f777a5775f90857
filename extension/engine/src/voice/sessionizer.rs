//! The walk over one user's observations: a small state machine, linear in its input.

use std::borrow::Cow;

use super::config::VoiceConfig;
use super::observation::{Observation, ObservationKind, UserObservation, VoiceFlags};
use super::outage::Outage;
use super::session::{EndReason, Session, StartReason};
use super::state::{OpenSession, OutageCut, UserState};
use super::timeline::{GuildTimeline, Mark, MarkKind, OBSERVATION_RANK};

/// Anything that carries an [`Observation`]: lets the guild-level path walk slices of
/// [`UserObservation`]s without copying them out.
pub(crate) trait HasObservation: Ord + Clone {
    fn observation(&self) -> &Observation;
}

impl HasObservation for Observation {
    fn observation(&self) -> &Observation {
        self
    }
}

impl HasObservation for UserObservation {
    fn observation(&self) -> &Observation {
        &self.observation
    }
}

/// Sessionizes one user: sorts `observations`, walks them from `initial` together with the
/// `outages`, and returns the sessions (ordered by start) and the state at the end.
///
/// - `initial`: [`UserState::Unknown`] for a first build; for an incremental build, a state
///   saved from an earlier walk, with the observations from that point on (see
///   [`sessionize_user_with`] for what "from that point" means).
/// - `outages`: from [`outages`](super::outages), any order.
/// - `horizon`: the build's "now" (e.g. the latest heartbeat, or the transaction time). Open
///   sessions longer than the cap at the horizon are capped; an outage still going on closes
///   open sessions; outage boundaries after the horizon are ignored (not yet known).
///
/// Sessions still open at the end are returned with `ended_at: None`, and the state is
/// [`UserState::InChannel`]; a caller resuming from that state must drop those open sessions
/// (the resumed walk emits them again, complete).
pub fn sessionize_user(
    user_id: i64,
    initial: UserState,
    observations: &mut [Observation],
    outages: &[Outage],
    config: &VoiceConfig,
    horizon: i64,
) -> (Vec<Session>, UserState) {
    observations.sort_unstable();
    let timeline = GuildTimeline::from_outages(outages);
    let mut out = Vec::new();
    let state = sessionize_user_with(
        user_id,
        initial,
        observations,
        &timeline,
        config,
        horizon,
        &mut out,
    );
    (out, state)
}

/// The allocation-free form of [`sessionize_user`]: walks `observations` (sorted by their
/// `Ord`; an unsorted slice is sorted in a private copy) against a shared [`GuildTimeline`],
/// appends the sessions to `out` and returns the final state.
///
/// Resuming: pass the state saved at some instant `t` (after everything at or before `t` was
/// applied) and the observations from `t` on. Observations and marks older than an open
/// session's last change are stale and ignored, so an overlap at `t` is harmless. A state
/// saved while an outage was still going on (at the horizon) is not a sound resume point:
/// restart from before that outage's last heartbeat once it is over.
pub fn sessionize_user_with(
    user_id: i64,
    initial: UserState,
    observations: &[Observation],
    timeline: &GuildTimeline,
    config: &VoiceConfig,
    horizon: i64,
    out: &mut Vec<Session>,
) -> UserState {
    walk(
        user_id,
        initial,
        observations,
        timeline,
        config,
        horizon,
        out,
    )
}

/// The walk, generic over the observation carrier.
pub(crate) fn walk<T: HasObservation>(
    user_id: i64,
    initial: UserState,
    observations: &[T],
    timeline: &GuildTimeline,
    config: &VoiceConfig,
    horizon: i64,
    out: &mut Vec<Session>,
) -> UserState {
    // Callers normally pass sorted input; checking is one linear pass, sorting a copy is the
    // fallback that keeps the result independent of input order.
    let observations: Cow<'_, [T]> = if observations.windows(2).all(|w| w[0] <= w[1]) {
        Cow::Borrowed(observations)
    } else {
        let mut v = observations.to_vec();
        v.sort_unstable();
        Cow::Owned(v)
    };
    // Marks after the horizon have not happened as far as this build knows.
    let known = timeline.marks.partition_point(|m| m.ts <= horizon);
    let marks = &timeline.marks[..known];
    let ongoing = timeline.ongoing.filter(|&l| l <= horizon);

    let mut w = Walker {
        user_id,
        config,
        cap: config.effective_cap(),
        horizon,
        horizon_totals: None,
        state: initial,
        last_entry_ts: None,
        out,
    };
    let mut mi = 0;
    let mut oi = 0;
    loop {
        let next_ts = observations.get(oi).map(|o| o.observation().ts);
        // A mark goes first if it sorts before the next observation (see the module docs).
        let before_next = |m: &Mark| match next_ts {
            Some(t) => (m.ts, m.rank()) < (t, OBSERVATION_RANK),
            None => true,
        };
        if mi < marks.len() && before_next(&marks[mi]) {
            if w.in_channel() {
                w.apply_mark(marks[mi]);
                mi += 1;
            } else {
                // Idle users skip whole runs of marks at once: this keeps a guild build at
                // O(observations + users × log(marks)) instead of O(users × marks).
                let end = mi + marks[mi..].partition_point(before_next);
                w.skip_idle_marks(&marks[mi..end]);
                mi = end;
            }
            continue;
        }
        match observations.get(oi) {
            Some(o) => {
                w.apply_observation(o.observation());
                oi += 1;
            }
            None => break,
        }
    }
    w.finish(horizon, ongoing)
}

struct Walker<'a> {
    user_id: i64,
    config: &'a VoiceConfig,
    cap: i64,
    horizon: i64,
    /// Muted and deafened time of the open session (identified by its start) at the horizon,
    /// recorded when a flag change after the horizon reached it: an open session counts only
    /// up to the horizon, like its length, even when later flag changes are already known.
    horizon_totals: Option<(i64, i64, i64)>,
    state: UserState,
    /// Time of the last snapshot entry applied: a guild snapshot mark at that time lists this
    /// user, so it is not an absence.
    last_entry_ts: Option<i64>,
    out: &'a mut Vec<Session>,
}

impl Walker<'_> {
    fn in_channel(&self) -> bool {
        matches!(self.state, UserState::InChannel(_))
    }

    fn open(&self) -> Option<&OpenSession> {
        self.state.open_session()
    }

    fn apply_observation(&mut self, o: &Observation) {
        if self.open().is_some_and(|open| o.ts < open.flags_since) {
            return;
        }
        self.cap_check(o.ts);
        match o.kind {
            ObservationKind::Event { channel: None, .. } => self.leave(o.ts, EndReason::Leave),
            ObservationKind::Event {
                channel: Some(channel),
                flags,
            } => self.enter(o.ts, channel, flags, false),
            ObservationKind::SnapshotEntry { channel, flags } => {
                self.last_entry_ts = Some(o.ts);
                self.enter(o.ts, channel, flags, true);
            }
            ObservationKind::SnapshotAbsent => self.leave(o.ts, EndReason::Snapshot),
        }
    }

    /// The user is in `channel` with `flags` from `t` on.
    fn enter(&mut self, t: i64, channel: i64, flags: VoiceFlags, via_snapshot: bool) {
        let ignored = self.config.is_ignored(channel);
        if let UserState::InChannel(open) = &mut self.state {
            if open.channel == channel && !ignored {
                // Same stint: a flag change is accounted, a duplicate changes nothing.
                if open.flags != flags {
                    if t > self.horizon && open.flags_since <= self.horizon {
                        let (mute, deaf) = open.totals_at(self.horizon);
                        self.horizon_totals = Some((open.since, mute, deaf));
                    }
                    open.set_flags(t, flags);
                }
                return;
            }
        }
        let end_reason = if via_snapshot {
            EndReason::Snapshot
        } else if ignored {
            // An ignored channel counts as out of voice, so entering it is a leave.
            EndReason::Leave
        } else {
            EndReason::Move
        };
        let was_open = self.close_open(t, end_reason);
        self.state = if ignored {
            UserState::OutOfVoice
        } else {
            let start_reason = if via_snapshot {
                StartReason::Snapshot
            } else if was_open {
                StartReason::Move
            } else {
                StartReason::Join
            };
            UserState::InChannel(OpenSession::new(channel, t, start_reason, flags))
        };
    }

    /// The user is not in voice from `t` on.
    fn leave(&mut self, t: i64, reason: EndReason) {
        self.close_open(t, reason);
        self.state = UserState::OutOfVoice;
    }

    /// A guild-level mark while a session is open.
    fn apply_mark(&mut self, m: Mark) {
        let Some(open) = self.open() else {
            return;
        };
        match m.kind {
            MarkKind::Resume { last_beat } => {
                // Observations at the resume instant come after it, so an open session whose
                // last change is at or after it comes from a state saved later: stale.
                if m.ts > open.flags_since {
                    self.cut_for_outage(last_beat);
                }
            }
            MarkKind::Absent => {
                if m.ts < open.flags_since || self.last_entry_ts == Some(m.ts) {
                    return;
                }
                if self.cap_check(m.ts) {
                    self.close_open(m.ts, EndReason::Snapshot);
                }
                self.state = UserState::OutOfVoice;
            }
            MarkKind::Silence => {
                if m.ts < open.flags_since || !self.cap_check(m.ts) {
                    return;
                }
                if let UserState::InChannel(open) = &mut self.state {
                    if open.since < m.ts {
                        let (mute, deaf) = open.totals_at(m.ts);
                        open.outage_cut = Some(OutageCut {
                            last_beat: m.ts,
                            self_mute_us: mute,
                            self_deaf_us: deaf,
                        });
                    }
                }
            }
        }
    }

    /// Applies a run of marks to a user who is not in a session. Each mark then sets the state
    /// to a constant (an absence: out of voice; an outage's end: unknown; an outage's start:
    /// nothing), so only the last effective one matters.
    fn skip_idle_marks(&mut self, marks: &[Mark]) {
        for m in marks.iter().rev() {
            match m.kind {
                MarkKind::Silence => {}
                MarkKind::Absent if self.last_entry_ts == Some(m.ts) => {}
                MarkKind::Absent => {
                    self.state = UserState::OutOfVoice;
                    return;
                }
                MarkKind::Resume { .. } => {
                    self.state = UserState::Unknown;
                    return;
                }
            }
        }
    }

    /// The session open when an outage's silence ended (or at the end of the walk, for an
    /// ongoing outage) was never seen to end: it ends at the last beat, or is dropped if it
    /// began after it. The user is unknown afterwards.
    fn cut_for_outage(&mut self, last_beat: i64) {
        if let UserState::InChannel(open) = self.state {
            if open.since < last_beat {
                let (mute, deaf) = if open.flags_since <= last_beat {
                    open.totals_at(last_beat)
                } else if let Some(cut) = open.outage_cut.filter(|c| c.last_beat == last_beat) {
                    // Flags changed after the beat: use the accounting frozen at the beat.
                    (cut.self_mute_us, cut.self_deaf_us)
                } else {
                    // Only reachable from an inconsistent resumed state; the clamp in `emit`
                    // keeps the numbers within the session.
                    (open.self_mute_us, open.self_deaf_us)
                };
                self.emit(&open, last_beat, EndReason::Outage, mute, deaf);
            }
        }
        self.state = UserState::Unknown;
    }

    /// Closes the open session at `since + cap` if it has run longer than the cap by `t`.
    /// Returns whether a session is still open.
    fn cap_check(&mut self, t: i64) -> bool {
        let UserState::InChannel(open) = self.state else {
            return false;
        };
        if t.saturating_sub(open.since) <= self.cap {
            return true;
        }
        let end = open.since.saturating_add(self.cap);
        let (mute, deaf) = open.totals_at(end);
        self.emit(&open, end, EndReason::Cap, mute, deaf);
        // The user may have left unseen: their later leave adds nothing.
        self.state = UserState::Unknown;
        false
    }

    /// Closes the open session (if any) at `t`; returns whether one was open.
    fn close_open(&mut self, t: i64, reason: EndReason) -> bool {
        let UserState::InChannel(open) = self.state else {
            return false;
        };
        let (mute, deaf) = open.totals_at(t);
        self.emit(&open, t, reason, mute, deaf);
        true
    }

    /// Pushes a session closed at `end`; zero-length (or, from inconsistent input, negative)
    /// sessions carry no time and are dropped.
    fn emit(&mut self, open: &OpenSession, end: i64, reason: EndReason, mute: i64, deaf: i64) {
        if end <= open.since {
            return;
        }
        let length = end.saturating_sub(open.since);
        self.out.push(Session {
            user_id: self.user_id,
            channel_id: open.channel,
            started_at: open.since,
            ended_at: Some(end),
            start_reason: open.start_reason,
            end_reason: Some(reason),
            is_afk: self.config.is_afk(open.channel),
            capped: reason == EndReason::Cap,
            self_mute_us: mute.clamp(0, length),
            self_deaf_us: deaf.clamp(0, length),
        });
    }

    /// End of input: an ongoing outage closes what is open; otherwise the cap applies at the
    /// horizon; what is still open is emitted open.
    fn finish(mut self, horizon: i64, ongoing: Option<i64>) -> UserState {
        match ongoing {
            Some(last_beat) => self.cut_for_outage(last_beat),
            None => {
                self.cap_check(horizon);
            }
        }
        if let UserState::InChannel(open) = self.state {
            let (mute, deaf) = match self.horizon_totals {
                Some((since, mute, deaf)) if since == open.since => (mute, deaf),
                _ => open.totals_at(horizon.max(open.flags_since)),
            };
            let length = horizon.saturating_sub(open.since).max(0);
            self.out.push(Session {
                user_id: self.user_id,
                channel_id: open.channel,
                started_at: open.since,
                ended_at: None,
                start_reason: open.start_reason,
                end_reason: None,
                is_afk: self.config.is_afk(open.channel),
                capped: false,
                self_mute_us: mute.clamp(0, length),
                self_deaf_us: deaf.clamp(0, length),
            });
        }
        self.state
    }
}
