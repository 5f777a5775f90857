//! Hand-worked voice sessionizer cases, one per rule of the design's "Voice sessions".

use guildstats_engine::voice::{
    expand_snapshots, outages, sessionize_guild, sessionize_user, sessionize_users,
    snapshot_entries, EndReason, GuildTimeline, Observation, OpenSession, Outage, RawVoiceEvent,
    Session, SnapshotState, StartReason, UserState, VoiceConfig, VoiceFlags, VoiceSnapshot,
};

const S: i64 = 1_000_000;
const MIN: i64 = 60 * S;
const HOUR: i64 = 60 * MIN;
const USER: i64 = 42;
const A: i64 = 1;
const B: i64 = 2;
const C: i64 = 3;
const AFK: i64 = 99;
const IGNORED: i64 = 77;

fn cfg() -> VoiceConfig {
    VoiceConfig::new(12 * HOUR, 3 * MIN)
        .with_afk_channel(Some(AFK))
        .with_ignored_channels([IGNORED])
}

/// Seconds to microseconds, from an arbitrary base so nothing relies on the epoch.
fn t(secs: i64) -> i64 {
    1_700_000_000 * S + secs * S
}

fn join(secs: i64, ch: i64) -> Observation {
    Observation::event(t(secs), Some(ch), false, false)
}

fn flags(secs: i64, ch: i64, mute: bool, deaf: bool) -> Observation {
    Observation::event(t(secs), Some(ch), mute, deaf)
}

fn leave(secs: i64) -> Observation {
    Observation::event(t(secs), None, false, false)
}

struct Expect {
    ch: i64,
    start: i64,
    end: Option<i64>,
    sr: StartReason,
    er: Option<EndReason>,
    mute: i64,
    deaf: i64,
}

fn closed(ch: i64, start: i64, end: i64, sr: StartReason, er: EndReason) -> Expect {
    Expect {
        ch,
        start,
        end: Some(end),
        sr,
        er: Some(er),
        mute: 0,
        deaf: 0,
    }
}

fn open(ch: i64, start: i64, sr: StartReason) -> Expect {
    Expect {
        ch,
        start,
        end: None,
        sr,
        er: None,
        mute: 0,
        deaf: 0,
    }
}

impl Expect {
    fn muted(mut self, mute_secs: i64, deaf_secs: i64) -> Self {
        self.mute = mute_secs * S;
        self.deaf = deaf_secs * S;
        self
    }

    fn session(&self, user: i64) -> Session {
        Session {
            user_id: user,
            channel_id: self.ch,
            started_at: t(self.start),
            ended_at: self.end.map(t),
            start_reason: self.sr,
            end_reason: self.er,
            is_afk: self.ch == AFK,
            capped: self.er == Some(EndReason::Cap),
            self_mute_us: self.mute,
            self_deaf_us: self.deaf,
        }
    }
}

fn expect(user: i64, e: &[Expect]) -> Vec<Session> {
    e.iter().map(|x| x.session(user)).collect()
}

/// One user, no outages, horizon well after the input.
fn run(mut obs: Vec<Observation>) -> Vec<Session> {
    run_with(&mut obs, &[], &cfg(), t(100_000)).0
}

fn run_with(
    obs: &mut [Observation],
    outages: &[Outage],
    config: &VoiceConfig,
    horizon: i64,
) -> (Vec<Session>, UserState) {
    sessionize_user(USER, UserState::Unknown, obs, outages, config, horizon)
}

use EndReason as E;
use StartReason as R;

#[test]
fn join_then_leave() {
    let got = run(vec![join(10, A), leave(70)]);
    assert_eq!(got, expect(USER, &[closed(A, 10, 70, R::Join, E::Leave)]));
}

#[test]
fn moves_are_contiguous() {
    let got = run(vec![join(0, A), join(100, B), join(250, C), leave(400)]);
    assert_eq!(
        got,
        expect(
            USER,
            &[
                closed(A, 0, 100, R::Join, E::Move),
                closed(B, 100, 250, R::Move, E::Move),
                closed(C, 250, 400, R::Move, E::Leave),
            ]
        )
    );
}

fn flag_story() -> Vec<Observation> {
    vec![
        join(0, A),
        flags(10, A, true, false),  // muted 10..
        flags(30, A, true, true),   // deaf 30..
        flags(60, A, false, false), // both off 60..
        flags(100, A, true, true),  // both on 100..
        flags(120, B, true, true),  // move, still both on
        flags(135, B, false, true), // unmute 135..
        leave(150),
    ]
}

#[test]
fn mute_and_deaf_are_accounted_across_flag_changes_and_moves() {
    let got = run(flag_story());
    assert_eq!(
        got,
        expect(
            USER,
            &[
                // A: muted 10..60 and 100..120 = 70 s; deaf 30..60 and 100..120 = 50 s.
                closed(A, 0, 120, R::Join, E::Move).muted(70, 50),
                // B: muted 120..135 = 15 s; deaf 120..150 = 30 s.
                closed(B, 120, 150, R::Move, E::Leave).muted(15, 30),
            ]
        )
    );
}

#[test]
fn out_of_order_input_equals_sorted_input() {
    let mut shuffled = flag_story();
    shuffled.reverse();
    shuffled.swap(1, 5);
    assert_eq!(run(shuffled), run(flag_story()));
}

#[test]
fn afk_channel_sessions_are_flagged() {
    let got = run(vec![join(0, A), join(60, AFK), leave(200)]);
    let want = expect(
        USER,
        &[
            closed(A, 0, 60, R::Join, E::Move),
            closed(AFK, 60, 200, R::Move, E::Leave),
        ],
    );
    assert_eq!(got, want);
    assert!(!got[0].is_afk && got[1].is_afk);
}

#[test]
fn ignored_channel_in_the_middle_of_moves_produces_nothing() {
    let got = run(vec![
        join(0, A),
        join(50, IGNORED),               // closes A as a leave
        flags(60, IGNORED, true, false), // nothing
        join(80, B),                     // opens B as a join
        leave(100),
        join(200, IGNORED),
        leave(210), // leaving an ignored channel opens nothing
    ]);
    assert_eq!(
        got,
        expect(
            USER,
            &[
                closed(A, 0, 50, R::Join, E::Leave),
                closed(B, 80, 100, R::Join, E::Leave),
            ]
        )
    );
}

#[test]
fn duplicate_observations_change_nothing() {
    let once = run(vec![join(0, A), flags(20, A, true, false), leave(50)]);
    let twice = run(vec![
        join(0, A),
        join(0, A),
        flags(10, A, false, false), // same state again, later
        flags(20, A, true, false),
        flags(20, A, true, false),
        flags(30, A, true, false),
        leave(50),
        leave(50),
        leave(60), // a second leave while out of voice
    ]);
    assert_eq!(
        once,
        expect(USER, &[closed(A, 0, 50, R::Join, E::Leave).muted(30, 0)])
    );
    assert_eq!(twice, once);
}

/// Beats every minute from 0 to 600 s, a silence, then every minute from 3000 s on.
fn beats_with_gap(until: i64) -> Vec<i64> {
    (0..=10)
        .map(|m| t(m * 60))
        .chain((50..=until / 60).map(|m| t(m * 60)))
        .collect()
}

#[test]
fn outages_from_heartbeats() {
    let beats = beats_with_gap(3600);
    assert_eq!(
        outages(&beats, 3 * MIN, t(3600)),
        vec![Outage {
            last_beat: t(600),
            resumed_at: Some(t(3000)),
        }]
    );
    // Unsorted input gives the same.
    let mut rev = beats.clone();
    rev.reverse();
    assert_eq!(
        outages(&rev, 3 * MIN, t(3600)),
        outages(&beats, 3 * MIN, t(3600))
    );
    // A silence of exactly the threshold is not an outage; one microsecond more is.
    assert!(outages(&[t(0), t(180)], 3 * MIN, t(180)).is_empty());
    assert_eq!(outages(&[t(0), t(180) + 1], 3 * MIN, t(181)).len(), 1);
    // Ongoing at the horizon.
    assert_eq!(
        outages(&[t(0), t(60)], 3 * MIN, t(1000)),
        vec![Outage {
            last_beat: t(60),
            resumed_at: None,
        }]
    );
    assert!(outages(&[t(0), t(60)], 3 * MIN, t(240)).is_empty());
    // No heartbeats: no outage information, none invented.
    assert!(outages(&[], 3 * MIN, t(1_000_000)).is_empty());
}

#[test]
fn outage_closes_at_last_beat_and_snapshot_reopens() {
    let config = cfg();
    let beats = beats_with_gap(4000);
    let horizon = t(4000);
    let ev = |user, secs, ch: Option<i64>, mute| RawVoiceEvent {
        user_id: user,
        ts: t(secs),
        channel_id: ch,
        self_mute: mute,
        self_deaf: false,
    };
    let events = vec![
        // 1: in A from before the silence, still there at the reconnect, leaves later.
        ev(1, 100, Some(A), false),
        ev(1, 3500, None, false),
        // 2: in B from before the silence, left unseen; the leave arrives after the reconnect
        //    (state unknown then: it adds nothing).
        ev(2, 200, Some(B), false),
        ev(2, 3100, None, false),
        // 3: moved from A to C after the last beat but before the bot really went away (seen),
        //    still in C at the reconnect.
        ev(3, 100, Some(A), false),
        ev(3, 650, Some(C), false),
        // 4: muted after the last beat, then the bot went away.
        ev(4, 100, Some(A), false),
        ev(4, 700, Some(A), true),
    ];
    let snapshot = VoiceSnapshot {
        taken_at: t(3000),
        states: vec![
            SnapshotState {
                user_id: 1,
                channel_id: A,
                self_mute: false,
                self_deaf: false,
            },
            SnapshotState {
                user_id: 3,
                channel_id: C,
                self_mute: false,
                self_deaf: false,
            },
        ],
    };
    let got = sessionize_guild(
        events,
        std::slice::from_ref(&snapshot),
        &beats,
        &config,
        horizon,
    );
    let mut want = expect(
        1,
        &[
            closed(A, 100, 600, R::Join, E::Outage),
            closed(A, 3000, 3500, R::Snapshot, E::Leave),
        ],
    );
    want.extend(expect(2, &[closed(B, 200, 600, R::Join, E::Outage)]));
    // 3: the A stint's end was seen, so A keeps it; C began after the last beat and was never
    //    seen to end before the silence: nobody vouches for any of it until the snapshot.
    want.extend(expect(
        3,
        &[
            closed(A, 100, 650, R::Join, E::Move),
            open(C, 3000, R::Snapshot),
        ],
    ));
    // 4: cut at the last beat; the mute seen after it does not count.
    want.extend(expect(4, &[closed(A, 100, 600, R::Join, E::Outage)]));
    assert_eq!(got, want);

    // No voice time is invented: nothing covers the silence.
    for s in &got {
        let end = s.ended_at.unwrap_or(horizon);
        assert!(!(s.started_at < t(3000) && end > t(3000)), "{s:?}");
    }

    // The explicit per-user path (absences expanded) agrees with the guild path.
    let found = outages(&beats, config.outage_after_us, horizon);
    let users = [1, 2, 3, 4];
    let expanded = expand_snapshots(&[snapshot], &users);
    let mut explicit = Vec::new();
    for &u in &users {
        let mut obs: Vec<Observation> = got_events(u)
            .into_iter()
            .chain(
                expanded
                    .iter()
                    .filter(|o| o.user_id == u)
                    .map(|o| o.observation),
            )
            .collect();
        explicit
            .extend(sessionize_user(u, UserState::Unknown, &mut obs, &found, &config, horizon).0);
    }
    assert_eq!(explicit, got);

    fn got_events(u: i64) -> Vec<Observation> {
        let e = |secs, ch: Option<i64>, mute| Observation::event(t(secs), ch, mute, false);
        match u {
            1 => vec![e(100, Some(A), false), e(3500, None, false)],
            2 => vec![e(200, Some(B), false), e(3100, None, false)],
            3 => vec![e(100, Some(A), false), e(650, Some(C), false)],
            _ => vec![e(100, Some(A), false), e(700, Some(A), true)],
        }
    }
}

#[test]
fn ongoing_outage_at_horizon_closes_at_last_beat() {
    let beats: Vec<i64> = (0..=10).map(|m| t(m * 60)).collect();
    let horizon = t(2000);
    let found = outages(&beats, 3 * MIN, horizon);
    assert_eq!(
        found,
        vec![Outage {
            last_beat: t(600),
            resumed_at: None,
        }]
    );
    let (got, state) = run_with(&mut [join(100, A)], &found, &cfg(), horizon);
    assert_eq!(
        got,
        expect(USER, &[closed(A, 100, 600, R::Join, E::Outage)])
    );
    assert_eq!(state, UserState::Unknown);

    // Opened after the last beat and never seen to end: dropped.
    let (got, _) = run_with(&mut [join(700, A)], &found, &cfg(), horizon);
    assert!(got.is_empty());

    // Opened and closed after the last beat, both seen: kept.
    let (got, _) = run_with(&mut [join(620, A), leave(640)], &found, &cfg(), horizon);
    assert_eq!(got, expect(USER, &[closed(A, 620, 640, R::Join, E::Leave)]));
}

#[test]
fn snapshot_absence_closes_and_snapshot_elsewhere_moves() {
    let got = run(vec![
        join(0, A),
        Observation::snapshot_absent(t(100)),
        leave(150),
    ]);
    assert_eq!(
        got,
        expect(USER, &[closed(A, 0, 100, R::Join, E::Snapshot)])
    );

    let got = run(vec![
        join(0, A),
        Observation::snapshot_entry(t(100), B, false, false),
        leave(150),
    ]);
    assert_eq!(
        got,
        expect(
            USER,
            &[
                closed(A, 0, 100, R::Join, E::Snapshot),
                closed(B, 100, 150, R::Snapshot, E::Leave),
            ]
        )
    );

    // A snapshot that agrees with the state changes nothing; one that brings new flags
    // accounts them.
    let got = run(vec![
        join(0, A),
        Observation::snapshot_entry(t(50), A, false, false),
        Observation::snapshot_entry(t(60), A, true, false),
        leave(100),
    ]);
    assert_eq!(
        got,
        expect(USER, &[closed(A, 0, 100, R::Join, E::Leave).muted(40, 0)])
    );
}

#[test]
fn cap_closes_and_flags_and_later_leave_adds_nothing() {
    let config = VoiceConfig::new(HOUR, 3 * MIN).with_afk_channel(Some(AFK));
    let (got, state) = run_with(
        &mut [
            join(0, A),
            flags(1800, A, true, false),
            leave(7200), // two hours in: the cap closed the session at one hour
            join(3 * 3600, B),
            leave(3 * 3600 + 1800),
        ],
        &[],
        &config,
        t(100_000),
    );
    assert_eq!(
        got,
        expect(
            USER,
            &[
                closed(A, 0, 3600, R::Join, E::Cap).muted(1800, 0),
                closed(B, 3 * 3600, 3 * 3600 + 1800, R::Join, E::Leave),
            ]
        )
    );
    assert!(got[0].capped && !got[1].capped);
    assert_eq!(state, UserState::OutOfVoice);

    // A move after the cap opens a new session (as a join: nothing was open).
    let (got, _) = run_with(&mut [join(0, A), join(7200, B)], &[], &config, t(7300));
    assert_eq!(
        got,
        expect(
            USER,
            &[closed(A, 0, 3600, R::Join, E::Cap), open(B, 7200, R::Join),]
        )
    );

    // Capped relative to the horizon.
    let (got, state) = run_with(&mut [join(0, A)], &[], &config, t(5 * 3600));
    assert_eq!(got, expect(USER, &[closed(A, 0, 3600, R::Join, E::Cap)]));
    assert_eq!(state, UserState::Unknown);

    // Exactly the cap is not longer than the cap.
    let (got, _) = run_with(&mut [join(0, A), leave(3600)], &[], &config, t(5 * 3600));
    assert_eq!(got, expect(USER, &[closed(A, 0, 3600, R::Join, E::Leave)]));
}

#[test]
fn open_session_stays_open() {
    let (got, state) = run_with(
        &mut [join(0, A), flags(40, A, false, true)],
        &[],
        &cfg(),
        t(100),
    );
    // Deaf time of an open session counts up to the horizon.
    assert_eq!(got, expect(USER, &[open(A, 0, R::Join).muted(0, 60)]));
    assert_eq!(
        state,
        UserState::InChannel(OpenSession {
            channel: A,
            since: t(0),
            start_reason: R::Join,
            flags: VoiceFlags::new(false, true),
            flags_since: t(40),
            self_mute_us: 0,
            self_deaf_us: 0,
            outage_cut: None,
        })
    );

    // Resuming from that state with the rest of the story completes the session.
    let (rest, _) = sessionize_user(USER, state, &mut [leave(200)], &[], &cfg(), t(300));
    assert_eq!(
        rest,
        expect(USER, &[closed(A, 0, 200, R::Join, E::Leave).muted(0, 160)])
    );
}

#[test]
fn midnight_is_nothing_special() {
    // 2024-03-09 23:30 UTC to 2024-03-10 00:45 UTC.
    let midnight = 1_710_028_800 * S;
    let mut obs = [
        Observation::event(midnight - 30 * MIN, Some(A), false, false),
        Observation::event(midnight + 45 * MIN, None, false, false),
    ];
    let (got, _) = run_with(&mut obs, &[], &cfg(), midnight + 2 * HOUR);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].started_at, midnight - 30 * MIN);
    assert_eq!(got[0].ended_at, Some(midnight + 45 * MIN));
    assert_eq!(got[0].duration_us(0), 75 * MIN);
}

#[test]
fn empty_input() {
    let (got, state) = run_with(&mut [], &[], &cfg(), t(0));
    assert!(got.is_empty());
    assert_eq!(state, UserState::Unknown);
    assert!(sessionize_guild(Vec::new(), &[], &[], &cfg(), t(0)).is_empty());
    let r = sessionize_users(Vec::new(), &[], &GuildTimeline::default(), &cfg(), t(0));
    assert!(r.sessions.is_empty() && r.states.is_empty());
}

#[test]
fn equal_timestamps_events_before_snapshots() {
    // The event at 100 moves the user to B; the snapshot taken at the same instant lists them
    // in A and, applied last, wins. The zero-length B stint is not emitted.
    let got = run(vec![
        join(0, A),
        join(100, B),
        Observation::snapshot_entry(t(100), A, false, false),
        leave(200),
    ]);
    assert_eq!(
        got,
        expect(
            USER,
            &[
                closed(A, 0, 100, R::Join, E::Move),
                closed(A, 100, 200, R::Snapshot, E::Leave),
            ]
        )
    );
    // A join and an absence at the same instant: the absence wins, nothing is emitted.
    assert!(run(vec![join(100, A), Observation::snapshot_absent(t(100))]).is_empty());
}

#[test]
fn snapshot_helpers() {
    let snaps = [
        VoiceSnapshot {
            taken_at: t(10),
            states: vec![SnapshotState {
                user_id: 5,
                channel_id: A,
                self_mute: true,
                self_deaf: false,
            }],
        },
        VoiceSnapshot {
            taken_at: t(20),
            states: vec![],
        },
    ];
    assert_eq!(snapshot_entries(&snaps).len(), 1);
    let obs: Vec<(i64, Observation)> = expand_snapshots(&snaps, &[6, 5, 5])
        .into_iter()
        .map(|o| (o.user_id, o.observation))
        .collect();
    assert_eq!(
        obs,
        vec![
            (5, Observation::snapshot_entry(t(10), A, true, false)),
            (5, Observation::snapshot_absent(t(20))),
            (6, Observation::snapshot_absent(t(10))),
            (6, Observation::snapshot_absent(t(20))),
        ]
    );
}

#[test]
fn resumed_users_without_observations_are_still_closed() {
    let state = UserState::InChannel(OpenSession::new(A, t(0), R::Join, VoiceFlags::default()));
    let timeline = GuildTimeline::new(&[], [t(50)]);
    let r = sessionize_users(Vec::new(), &[(USER, state)], &timeline, &cfg(), t(100));
    assert_eq!(
        r.sessions,
        expect(USER, &[closed(A, 0, 50, R::Join, E::Snapshot)])
    );
    assert_eq!(r.states, vec![(USER, UserState::OutOfVoice)]);
}

#[test]
fn sql_names() {
    let ends = [E::Leave, E::Move, E::Outage, E::Snapshot, E::Cap].map(E::as_str);
    assert_eq!(ends, ["leave", "move", "outage", "snapshot", "cap"]);
    let starts = [R::Join, R::Move, R::Snapshot].map(R::as_str);
    assert_eq!(starts, ["join", "move", "snapshot"]);
}

#[test]
fn an_open_session_counts_flags_only_up_to_the_horizon() {
    // Muted from the join; the unmute is already known but lies after the horizon (an event
    // the bot saw after its last heartbeat). The open session counts up to the horizon, its
    // muted time too.
    let (got, _) = run_with(
        &mut [flags(0, A, true, false), flags(150, A, false, false)],
        &[],
        &cfg(),
        t(100),
    );
    assert_eq!(got, expect(USER, &[open(A, 0, R::Join).muted(100, 0)]));

    // Two changes after the horizon: still the state at the horizon.
    let (got, _) = run_with(
        &mut [
            flags(0, A, false, true),
            flags(110, A, true, false),
            flags(120, A, false, false),
        ],
        &[],
        &cfg(),
        t(100),
    );
    assert_eq!(got, expect(USER, &[open(A, 0, R::Join).muted(0, 100)]));

    // A session that closes after the horizon keeps all of its muted time.
    let (got, _) = run_with(
        &mut [
            flags(0, A, true, false),
            flags(150, A, false, false),
            leave(160),
        ],
        &[],
        &cfg(),
        t(100),
    );
    assert_eq!(
        got,
        expect(USER, &[closed(A, 0, 160, R::Join, E::Leave).muted(150, 0)])
    );
}
