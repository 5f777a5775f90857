//! Property tests of the voice sessionizer: generated true timelines, and arbitrary input.

use guildstats_engine::voice::{
    expand_snapshots, outages, sessionize_guild, sessionize_user, sessionize_users,
    snapshot_entries, EndReason, GuildTimeline, Observation, Outage, RawVoiceEvent, Session,
    SnapshotState, StartReason, UserObservation, UserState, VoiceConfig, VoiceSnapshot,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const AFK: i64 = 5;
const IGNORED: i64 = 4;
const NO_CAP: i64 = i64::MAX;

/// One stint of a generated true timeline.
#[derive(Clone, Debug)]
struct StintSpec {
    contiguous: bool,
    gap: i64,
    len: i64,
    channel: i64,
    flags: (bool, bool),
    changes: Vec<(i64, bool, bool)>,
}

fn stint_spec() -> impl Strategy<Value = StintSpec> {
    (
        any::<bool>(),
        1i64..500,
        1i64..2000,
        1i64..=5,
        any::<(bool, bool)>(),
        prop::collection::vec((1i64..2000, any::<bool>(), any::<bool>()), 0..4),
    )
        .prop_map(
            |(contiguous, gap, len, channel, flags, changes)| StintSpec {
                contiguous,
                gap,
                len,
                channel,
                flags,
                changes,
            },
        )
}

/// One true stint: `[start, end)` in `channel`; `segs` are `(from, mute, deaf)`, the first at
/// `start`.
#[derive(Clone, Debug)]
struct Stint {
    channel: i64,
    start: i64,
    end: i64,
    segs: Vec<(i64, bool, bool)>,
}

/// A user's true timeline: stints in order, the last one possibly still running.
#[derive(Clone, Debug)]
struct Truth {
    user: i64,
    stints: Vec<Stint>,
    last_open: bool,
}

fn truth(user: i64) -> impl Strategy<Value = Truth> {
    (
        prop::collection::vec(stint_spec(), 0..10),
        any::<bool>(),
        0i64..1000,
    )
        .prop_map(move |(specs, last_open, offset)| {
            let mut stints = Vec::new();
            let mut t = offset;
            let mut prev: Option<(i64, i64)> = None; // channel, end
            for s in specs {
                let contiguous = s.contiguous && prev.is_some();
                let mut channel = s.channel;
                if contiguous && prev.map(|p| p.0) == Some(channel) {
                    channel = channel % 5 + 1;
                }
                let start = if contiguous { t } else { t + s.gap };
                let end = start + s.len;
                // Flag segments: (from, mute, deaf), first at the start.
                let mut segs = vec![(start, s.flags.0, s.flags.1)];
                let mut changes: Vec<(i64, bool, bool)> = s
                    .changes
                    .iter()
                    .map(|&(off, m, d)| (start + off % s.len, m, d))
                    .filter(|&(at, _, _)| at > start)
                    .collect();
                changes.sort_by_key(|c| c.0);
                changes.dedup_by_key(|c| c.0);
                segs.extend(changes);
                stints.push(Stint {
                    channel,
                    start,
                    end,
                    segs,
                });
                prev = Some((channel, end));
                t = end;
            }
            Truth {
                user,
                stints,
                last_open,
            }
        })
}

impl Truth {
    fn events(&self) -> Vec<RawVoiceEvent> {
        let mut out = Vec::new();
        let ev = |ts, ch, (m, d): (bool, bool)| RawVoiceEvent {
            user_id: self.user,
            ts,
            channel_id: ch,
            self_mute: m,
            self_deaf: d,
        };
        for (i, st) in self.stints.iter().enumerate() {
            for &(at, m, d) in &st.segs {
                out.push(ev(at, Some(st.channel), (m, d)));
            }
            let next_start = self.stints.get(i + 1).map(|s| s.start);
            let is_last = i + 1 == self.stints.len();
            if next_start != Some(st.end) && !(is_last && self.last_open) {
                out.push(ev(st.end, None, (false, false)));
            }
        }
        out
    }

    fn end(&self) -> i64 {
        self.stints.last().map_or(0, |s| s.end)
    }

    /// The in-channel state (channel, flags) from `t` on, if any.
    fn state_at(&self, t: i64) -> Option<(i64, bool, bool)> {
        for (i, st) in self.stints.iter().enumerate() {
            let open_end = i + 1 == self.stints.len() && self.last_open;
            if st.start <= t && (t < st.end || open_end) {
                let seg = st
                    .segs
                    .iter()
                    .rev()
                    .find(|s| s.0 <= t)
                    .expect("first seg at start");
                return Some((st.channel, seg.1, seg.2));
            }
        }
        None
    }

    fn expected(&self, horizon: i64) -> Vec<Session> {
        let mut out = Vec::new();
        for (i, st) in self.stints.iter().enumerate() {
            let (ch, start, end, segs) = (&st.channel, &st.start, &st.end, &st.segs);
            let is_last = i + 1 == self.stints.len();
            let open = is_last && self.last_open;
            let stop = if open { horizon } else { *end };
            let (mut mute, mut deaf) = (0, 0);
            for (k, &(from, m, d)) in segs.iter().enumerate() {
                let to = segs.get(k + 1).map_or(stop, |s| s.0);
                if m {
                    mute += to - from;
                }
                if d {
                    deaf += to - from;
                }
            }
            let moved_in = i > 0 && self.stints[i - 1].end == *start;
            let moved_out = self.stints.get(i + 1).map(|s| s.start) == Some(*end);
            out.push(Session {
                user_id: self.user,
                channel_id: *ch,
                started_at: *start,
                ended_at: (!open).then_some(*end),
                start_reason: if moved_in {
                    StartReason::Move
                } else {
                    StartReason::Join
                },
                end_reason: (!open).then_some(if moved_out {
                    EndReason::Move
                } else {
                    EndReason::Leave
                }),
                is_afk: *ch == AFK,
                capped: false,
                self_mute_us: mute,
                self_deaf_us: deaf,
            });
        }
        out
    }
}

fn truths() -> impl Strategy<Value = Vec<Truth>> {
    (1usize..4).prop_flat_map(|n| (0..n as i64).map(truth).collect::<Vec<_>>())
}

fn plain_config() -> VoiceConfig {
    VoiceConfig::new(NO_CAP, 100).with_afk_channel(Some(AFK))
}

/// A deterministic shuffle plus duplicates, driven by `seed`.
fn scramble<T: Clone>(v: &[T], seed: u64, dups: &[usize]) -> Vec<T> {
    let mut out: Vec<T> = v.to_vec();
    for &d in dups {
        if !v.is_empty() {
            out.push(v[d % v.len()].clone());
        }
    }
    let mut x = seed | 1;
    for i in (1..out.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.swap(i, (x % (i as u64 + 1)) as usize);
    }
    out
}

/// With no outages, caps or ignored channels the sessions are exactly the true stints: same
/// channels, instants, reasons, and mute/deaf time (so total time matches too). Arrival order
/// and duplicates do not matter.
fn check_truth(ts: &[Truth], seed: u64, dups: &[usize]) -> Result<(), TestCaseError> {
    let horizon = ts.iter().map(Truth::end).max().unwrap_or(0) + 500;
    let events: Vec<RawVoiceEvent> = ts.iter().flat_map(Truth::events).collect();
    let want: Vec<Session> = ts.iter().flat_map(|t| t.expected(horizon)).collect();
    let got = sessionize_guild(events.clone(), &[], &[], &plain_config(), horizon);
    prop_assert_eq!(&got, &want);
    let total = |v: &[Session]| v.iter().map(|s| s.duration_us(horizon)).sum::<i64>();
    let true_total: i64 = ts.iter().map(|t| total(&t.expected(horizon))).sum();
    prop_assert_eq!(total(&got), true_total);

    let scrambled = scramble(&events, seed, dups);
    let again = sessionize_guild(scrambled, &[], &[], &plain_config(), horizon);
    prop_assert_eq!(again, want);
    Ok(())
}

/// Snapshots that agree with the truth change nothing, wherever they are taken.
fn check_consistent_snapshots(ts: &[Truth], at: &[i64]) -> Result<(), TestCaseError> {
    let horizon = ts.iter().map(Truth::end).max().unwrap_or(0) + 500;
    let events: Vec<RawVoiceEvent> = ts.iter().flat_map(Truth::events).collect();
    let listed = |taken_at: i64| -> Vec<SnapshotState> {
        ts.iter()
            .filter_map(|t| {
                let (ch, m, d) = t.state_at(taken_at)?;
                Some(SnapshotState {
                    user_id: t.user,
                    channel_id: ch,
                    self_mute: m,
                    self_deaf: d,
                })
            })
            .collect()
    };
    let snapshots: Vec<VoiceSnapshot> = at
        .iter()
        .map(|&taken_at| VoiceSnapshot {
            taken_at,
            states: listed(taken_at),
        })
        .collect();
    let want = sessionize_guild(events.clone(), &[], &[], &plain_config(), horizon);
    let got = sessionize_guild(events, &snapshots, &[], &plain_config(), horizon);
    prop_assert_eq!(got, want);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sessions_equal_the_truth(
        ts in truths(),
        seed in any::<u64>(),
        dups in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        check_truth(&ts, seed, &dups)?;
    }

    #[test]
    fn consistent_snapshots_change_nothing(
        ts in truths(),
        at in prop::collection::vec(0i64..30_000, 0..4),
    ) {
        check_consistent_snapshots(&ts, &at)?;
    }
}

/// Arbitrary (not necessarily consistent) input for one guild.
#[derive(Clone, Debug)]
struct Chaos {
    events: Vec<RawVoiceEvent>,
    snapshots: Vec<VoiceSnapshot>,
    beats: Vec<i64>,
    config: VoiceConfig,
    horizon: i64,
}

fn chaos() -> impl Strategy<Value = Chaos> {
    let event = (
        0i64..3,
        0i64..3000,
        prop::option::weighted(0.8, 1i64..=5),
        any::<(bool, bool)>(),
    )
        .prop_map(
            |(user_id, ts, channel_id, (self_mute, self_deaf))| RawVoiceEvent {
                user_id,
                ts,
                channel_id,
                self_mute,
                self_deaf,
            },
        );
    let state =
        (0i64..3, 1i64..=5, any::<(bool, bool)>()).prop_map(|(user_id, channel_id, (m, d))| {
            SnapshotState {
                user_id,
                channel_id,
                self_mute: m,
                self_deaf: d,
            }
        });
    let snapshot = (0i64..3000, prop::collection::vec(state, 0..4))
        .prop_map(|(taken_at, states)| VoiceSnapshot { taken_at, states });
    (
        prop::collection::vec(event, 0..40),
        prop::collection::vec(snapshot, 0..3),
        prop::collection::vec(0i64..3200, 0..25),
        prop::option::of(1i64..1500),
        1i64..400,
        any::<bool>(),
        0i64..800,
    )
        .prop_map(
            |(events, snapshots, beats, cap, outage_after, ignore, extra)| {
                let horizon = 3000 + extra;
                let mut config =
                    VoiceConfig::new(cap.unwrap_or(0), outage_after).with_afk_channel(Some(AFK));
                if ignore {
                    config = config.with_ignored_channels([IGNORED]);
                }
                Chaos {
                    events,
                    snapshots,
                    beats,
                    config,
                    horizon,
                }
            },
        )
}

impl Chaos {
    fn outages(&self) -> Vec<Outage> {
        outages(&self.beats, self.config.outage_after_us, self.horizon)
    }

    fn users(&self) -> Vec<i64> {
        let mut u: Vec<i64> = self
            .events
            .iter()
            .map(|e| e.user_id)
            .chain(
                self.snapshots
                    .iter()
                    .flat_map(|s| s.states.iter().map(|x| x.user_id)),
            )
            .collect();
        u.sort_unstable();
        u.dedup();
        u
    }

    /// One user's explicit observations: their events plus expanded snapshots.
    fn observations(&self, user: i64) -> Vec<Observation> {
        let users = self.users();
        self.events
            .iter()
            .filter(|e| e.user_id == user)
            .map(|e| Observation::event(e.ts, e.channel_id, e.self_mute, e.self_deaf))
            .chain(
                expand_snapshots(&self.snapshots, &users)
                    .into_iter()
                    .filter(|o| o.user_id == user)
                    .map(|o| o.observation),
            )
            .collect()
    }
}

/// Whatever the input: sessions are well-formed, one user's never overlap and are sorted,
/// ignored channels never appear, the cap holds, and nothing spans an outage's end.
fn check_invariants(c: &Chaos) -> Result<(), TestCaseError> {
    let got = sessionize_guild(
        c.events.clone(),
        &c.snapshots,
        &c.beats,
        &c.config,
        c.horizon,
    );
    let found = c.outages();
    for w in got.windows(2) {
        if w[0].user_id == w[1].user_id {
            let end = w[0].ended_at;
            prop_assert!(end.is_some(), "only the last session may be open");
            prop_assert!(end.unwrap() <= w[1].started_at, "overlap: {:?}", w);
        } else {
            prop_assert!(w[0].user_id < w[1].user_id);
        }
    }
    for s in &got {
        let len = s.duration_us(c.horizon);
        if let Some(end) = s.ended_at {
            prop_assert!(end > s.started_at, "{:?}", s);
        }
        prop_assert!((0..=len).contains(&s.self_mute_us));
        prop_assert!((0..=len).contains(&s.self_deaf_us));
        prop_assert!(!c.config.is_ignored(s.channel_id));
        prop_assert_eq!(s.is_afk, s.channel_id == AFK);
        prop_assert_eq!(s.capped, s.end_reason == Some(EndReason::Cap));
        prop_assert_eq!(s.ended_at.is_none(), s.end_reason.is_none());
        if c.config.session_cap_us > 0 {
            let closed_len = s.ended_at.unwrap_or(s.started_at) - s.started_at;
            prop_assert!(closed_len <= c.config.session_cap_us);
        }
        if s.end_reason == Some(EndReason::Outage) {
            prop_assert!(found.iter().any(|o| Some(o.last_beat) == s.ended_at));
        }
        for o in &found {
            // Nothing is open across a reconnect, or at the horizon of an ongoing outage.
            let resumed = o.resumed_at.unwrap_or(c.horizon);
            let spans = s.started_at < resumed && s.ended_at.is_none_or(|e| e > resumed);
            prop_assert!(!spans, "{:?} spans {:?}", s, o);
        }
    }
    Ok(())
}

/// Explicit absences (`expand_snapshots` + `sessionize_user`) and the guild path's implied
/// absences agree; input order and duplicates do not matter.
fn check_paths_agree(c: &Chaos, seed: u64, dups: &[usize]) -> Result<(), TestCaseError> {
    let got = sessionize_guild(
        c.events.clone(),
        &c.snapshots,
        &c.beats,
        &c.config,
        c.horizon,
    );
    let found = c.outages();
    let mut explicit = Vec::new();
    for u in c.users() {
        let mut obs = c.observations(u);
        let (sessions, _) = sessionize_user(
            u,
            UserState::Unknown,
            &mut obs,
            &found,
            &c.config,
            c.horizon,
        );
        explicit.extend(sessions);
    }
    prop_assert_eq!(&explicit, &got);

    let scrambled = scramble(&c.events, seed, dups);
    let mut snaps = c.snapshots.clone();
    snaps.reverse();
    let mut beats = c.beats.clone();
    beats.reverse();
    let again = sessionize_guild(scrambled, &snaps, &beats, &c.config, c.horizon);
    prop_assert_eq!(again, got);
    Ok(())
}

/// Splitting a user's observations anywhere, running the first part (horizon: the split
/// instant, outages as known then), then the rest from the returned state, gives the same
/// sessions as one run, once the first part's still-open sessions are dropped.
fn check_resume(c: &Chaos, user: i64, split: usize) -> Result<(), TestCaseError> {
    let found = c.outages();
    let mut all = c.observations(user);
    all.sort_unstable();
    let run = |obs: &[Observation], initial, outages: &[Outage], horizon| {
        let mut obs = obs.to_vec();
        sessionize_user(user, initial, &mut obs, outages, &c.config, horizon)
    };
    let (whole, _) = run(&all, UserState::Unknown, &found, c.horizon);
    if all.is_empty() {
        return Ok(());
    }
    let k = split % all.len();
    let s = all[k].ts;
    // At the split instant, an outage whose silence had begun but not ended is not over yet.
    let known_then: Vec<Outage> = found
        .iter()
        .filter_map(|o| match o.resumed_at {
            Some(r) if r <= s => Some(*o),
            _ if o.last_beat < s => Some(Outage {
                last_beat: o.last_beat,
                resumed_at: Some(i64::MAX),
            }),
            _ => None,
        })
        .collect();
    let (first, state) = run(&all[..k], UserState::Unknown, &known_then, s);
    let (rest, _) = run(&all[k..], state, &found, c.horizon);
    let joined: Vec<Session> = first
        .into_iter()
        .filter(|x| x.ended_at.is_some())
        .chain(rest)
        .collect();
    prop_assert_eq!(joined, whole);
    Ok(())
}

/// What the incremental SQL builder relies on: after any leave event at `a`, a user is out of
/// voice whatever came before, so their sessions that start before `a`, followed by a walk from
/// an unknown state over their observations from `a` on (against the whole guild timeline),
/// are exactly the sessions of one run.
fn check_restart_from_a_leave(c: &Chaos, pick: usize) -> Result<(), TestCaseError> {
    let leaves: Vec<RawVoiceEvent> = c
        .events
        .iter()
        .filter(|e| e.channel_id.is_none())
        .copied()
        .collect();
    if leaves.is_empty() {
        return Ok(());
    }
    let leave = leaves[pick % leaves.len()];
    let (user, a) = (leave.user_id, leave.ts);
    let whole: Vec<Session> = sessionize_guild(
        c.events.clone(),
        &c.snapshots,
        &c.beats,
        &c.config,
        c.horizon,
    )
    .into_iter()
    .filter(|s| s.user_id == user)
    .collect();
    let timeline = GuildTimeline::new(&c.outages(), c.snapshots.iter().map(|s| s.taken_at));
    let mut observations: Vec<UserObservation> = c.events.iter().copied().map(Into::into).collect();
    observations.extend(snapshot_entries(&c.snapshots));
    observations.retain(|o| o.user_id == user && o.observation.ts >= a);
    let rest = sessionize_users(observations, &[], &timeline, &c.config, c.horizon).sessions;
    let joined: Vec<Session> = whole
        .iter()
        .filter(|s| s.started_at < a)
        .copied()
        .chain(rest)
        .collect();
    prop_assert_eq!(joined, whole);
    Ok(())
}

/// Extreme numbers never panic (overflow checks are on in test builds).
fn check_extremes(
    ts: &[i64],
    chans: &[Option<i64>],
    beats: &[i64],
    cap: i64,
    after: i64,
    horizon: i64,
) {
    let events: Vec<RawVoiceEvent> = ts
        .iter()
        .zip(chans)
        .map(|(&ts, &ch)| RawVoiceEvent {
            user_id: ts % 3,
            ts,
            channel_id: ch,
            self_mute: ts % 2 == 0,
            self_deaf: ts % 5 == 0,
        })
        .collect();
    let snaps = vec![VoiceSnapshot {
        taken_at: horizon,
        states: vec![SnapshotState {
            user_id: 0,
            channel_id: cap,
            self_mute: true,
            self_deaf: true,
        }],
    }];
    let config = VoiceConfig::new(cap, after).with_afk_channel(chans[0]);
    let _ = sessionize_guild(events, &snaps, beats, &config, horizon);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn invariants_hold_on_arbitrary_input(c in chaos()) {
        check_invariants(&c)?;
    }

    #[test]
    fn guild_path_equals_per_user_path(
        c in chaos(),
        seed in any::<u64>(),
        dups in prop::collection::vec(any::<usize>(), 0..5),
    ) {
        check_paths_agree(&c, seed, &dups)?;
    }

    #[test]
    fn resuming_at_any_split_equals_one_run(
        c in chaos(),
        user in 0i64..3,
        split in any::<usize>(),
    ) {
        check_resume(&c, user, split)?;
    }

    #[test]
    fn restarting_a_user_at_any_leave_equals_one_run(c in chaos(), pick in any::<usize>()) {
        check_restart_from_a_leave(&c, pick)?;
    }

    #[test]
    fn extreme_values_do_not_panic(
        ts in prop::collection::vec(any::<i64>(), 0..12),
        chans in prop::collection::vec(prop::option::of(any::<i64>()), 12),
        beats in prop::collection::vec(any::<i64>(), 0..6),
        cap in any::<i64>(),
        after in any::<i64>(),
        horizon in any::<i64>(),
    ) {
        check_extremes(&ts, &chans, &beats, cap, after, horizon);
    }
}
