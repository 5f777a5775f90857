//! Voice activity: sessions per member-day, the voice-state events they produce, and the
//! ground truth to check the extension's sessionizer against.
//!
//! A session is join → (moves, mute/deaf/stream changes) → maybe an idle move to the AFK
//! channel → leave. A member's sessions never overlap (a carried `free_at` enforces it across
//! midnight), every timestamp of one member is distinct, and a ban ends an ongoing session.

use std::io;

use rand::Rng;

use crate::events::PlannedEvent;
use crate::members::Member;
use crate::rhythm::{draw_local_hour, local_hour_to_utc, weekday_factor};
use crate::rng::{lognormal, micros_between, poisson, weighted};
use crate::rows::{Row, VoiceEventRow, VoiceFlags};
use crate::sink::Sink;
use crate::time::Ts;

/// Why a ground-truth session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// The user left voice.
    Left,
    /// The user moved (or was moved, e.g. to AFK) to another channel at `end`.
    Moved,
    /// Still open when the period ends (`end` is `None`).
    Open,
    /// Only in [`crate::Community::observable_voice_truth`]: cut at the last heartbeat before
    /// a bot outage.
    Outage,
}

/// One stint of one user in one voice channel: the unit `voice_sessions` is made of.
///
/// In [`crate::Community::voice_truth`] this is what actually happened, outages included.
/// What the extension can know is narrower; see [`crate::Community::observable_voice_truth`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VoiceSession {
    pub guild_id: i64,
    pub user_id: i64,
    pub channel_id: i64,
    pub start: Ts,
    /// `None` while still open at the end of the period.
    pub end: Option<Ts>,
    /// The session is in the guild's AFK channel (never counts as active time).
    pub is_afk: bool,
    pub end_reason: EndReason,
}

impl VoiceSession {
    /// Length in seconds, counting an open session up to `until`.
    pub fn secs(&self, until: Ts) -> f64 {
        self.end.unwrap_or(until).secs_since(self.start)
    }
}

/// A bot outage: from `start` on the Discord ingester saw nothing until it reconnected at
/// `end` and took a snapshot of who was in voice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Outage {
    /// First instant the bot was gone (the last voice event it saw is before this).
    pub start: Ts,
    /// Reconnect: the snapshot's `taken_at` and the first heartbeat after the silence.
    pub end: Ts,
    /// The last heartbeat before the silence.
    pub last_beat: Ts,
}

impl Outage {
    pub fn contains(&self, t: Ts) -> bool {
        self.start <= t && t < self.end
    }
}

/// One voice-state change of one member (the row minus the ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ev {
    pub ts: Ts,
    pub channel: Option<i64>,
    pub flags: VoiceFlags,
}

/// A planned session: its events in time order (the last one leaves).
#[derive(Clone, Debug)]
pub(crate) struct PlannedSession {
    pub events: Vec<Ev>,
    /// Index of the scheduled event this session attends, if any.
    pub attends: Option<usize>,
}

impl PlannedSession {
    pub fn start(&self) -> Ts {
        self.events[0].ts
    }

    pub fn end(&self) -> Ts {
        self.events[self.events.len() - 1].ts
    }

    /// Seconds outside the AFK channel (what earns points and counts as activity).
    pub fn active_secs(&self, afk: i64, until: Ts) -> f64 {
        self.events
            .windows(2)
            .filter(|w| w[0].channel.is_some_and(|c| c != afk))
            .map(|w| w[1].ts.min(until).secs_since(w[0].ts).max(0.0))
            .sum()
    }

    /// The member's voice state at `t`, if in voice then.
    pub fn state_at(&self, t: Ts) -> Option<(i64, VoiceFlags)> {
        let i = self.events.partition_point(|e| e.ts <= t);
        let e = self.events[..i].last()?;
        e.channel.map(|c| (c, e.flags))
    }
}

/// The voice channels sessions can use.
#[derive(Clone, Debug)]
pub(crate) struct VoiceLayout {
    /// Regular channels (index 0 is the lobby, where external-event watchers gather).
    pub regular: Vec<i64>,
    pub weights: Vec<f64>,
    pub afk: i64,
}

impl VoiceLayout {
    /// The group of five channels (a category's crowd) that holds regular channel `index`:
    /// where its regulars go when not in their favourite, and move between. The demo has one.
    pub fn group(&self, index: usize) -> std::ops::Range<usize> {
        let size = crate::config::REGULAR_VOICE_CHANNELS;
        let start = (index / size * size).min(self.regular.len().saturating_sub(1));
        start..(start + size).min(self.regular.len())
    }

    /// A channel of `group`, drawn by the channels' weights.
    fn pick<R: Rng + ?Sized>(&self, group: &std::ops::Range<usize>, rng: &mut R) -> i64 {
        self.regular[group.start + weighted(rng, &self.weights[group.clone()])]
    }
}

/// Everything one member-day's planning needs besides the member.
pub(crate) struct DayCtx<'a> {
    pub layout: &'a VoiceLayout,
    pub zone: crate::time::LocalZone,
    pub day_start: Ts,
    pub weekday: u32,
    pub end: Ts,
    pub events: &'a [PlannedEvent],
    /// Indexes of events that start (actually) on this day.
    pub day_events: &'a [usize],
    /// Sum of `event_weight` over all members: turns expected attendees into probabilities.
    pub total_event_weight: f64,
}

struct Candidate {
    start: Ts,
    end: Ts,
    afk_at: Option<Ts>,
    channel: i64,
    /// The channels it may move between.
    group: std::ops::Range<usize>,
    attends: Option<usize>,
}

/// Minimum pause between two sessions of one member.
const GAP_US: i64 = 60_000_000;

/// Plans the sessions a member starts on one day. `free_at` carries the end of the member's
/// previous session (plus a gap) across days.
pub(crate) fn plan_day<R: Rng + ?Sized>(
    ctx: &DayCtx<'_>,
    m: &Member,
    free_at: &mut Ts,
    rng: &mut R,
) -> Vec<PlannedSession> {
    let mut cands: Vec<Candidate> = Vec::new();
    for &ei in ctx.day_events {
        let e = &ctx.events[ei];
        let p = (e.expected_attendees * m.event_weight / ctx.total_event_weight).min(0.95);
        if rng.gen::<f64>() >= p {
            continue;
        }
        let start = e
            .actual_start
            .add_micros(micros_between(rng, -900.0, 1200.0));
        let end = e
            .actual_end
            .add_micros(micros_between(rng, -2400.0, 1800.0));
        let end = end.max(start.add_secs(600));
        cands.push(Candidate {
            start,
            end,
            afk_at: None,
            channel: e.channel_id.unwrap_or(ctx.layout.regular[0]),
            group: ctx.layout.group(0),
            attends: Some(ei),
        });
    }
    let n = poisson(rng, m.voice_rate * weekday_factor(ctx.weekday));
    for _ in 0..n {
        let hour = draw_local_hour(rng, ctx.weekday, m.evening_peak);
        let start = local_hour_to_utc(ctx.zone, ctx.day_start, hour)
            .add_micros(micros_between(rng, 0.0, 60.0));
        let secs = lognormal(rng, 2700.0 * m.session_scale, 0.95).clamp(90.0, 8.0 * 3600.0);
        let mut end = start.add_micros((secs * 1e6) as i64);
        let mut afk_at = None;
        if rng.gen::<f64>() < 0.1 {
            afk_at = Some(end);
            end = end.add_micros(micros_between(rng, 300.0, 7200.0));
        }
        let fav = m.fav_voice.min(ctx.layout.regular.len() - 1);
        let group = ctx.layout.group(fav);
        let channel = if rng.gen::<f64>() < 0.7 {
            ctx.layout.regular[fav]
        } else {
            ctx.layout.pick(&group, rng)
        };
        cands.push(Candidate {
            start,
            end,
            afk_at,
            channel,
            group,
            attends: None,
        });
    }
    if cands.is_empty() {
        return Vec::new();
    }
    // Events first (people plan around them), then the rest in time order; anything that
    // would overlap an accepted session or the member's lifetime bounds is dropped.
    cands.sort_by_key(|c| (c.attends.is_none(), c.start));
    let hard_end = m.hard_end();
    let mut accepted: Vec<Candidate> = Vec::new();
    for mut c in cands {
        if c.start < *free_at
            || c.start < m.joined_at
            || c.start >= m.quiet_at
            || c.start >= ctx.end
            || c.start.add_secs(60) >= hard_end
        {
            continue;
        }
        if accepted.iter().any(|a| {
            c.start.micros() < a.end.micros() + GAP_US && a.start.micros() < c.end.micros() + GAP_US
        }) {
            continue;
        }
        if c.end >= hard_end {
            // Banned (or left) mid-session: Discord drops the user from voice right then.
            c.end = hard_end.add_micros(-1000);
            c.afk_at = c.afk_at.filter(|a| *a < c.end.add_secs(-2));
        }
        accepted.push(c);
    }
    accepted.sort_by_key(|c| c.start);
    if let Some(last) = accepted.iter().map(|c| c.end).max() {
        *free_at = last.add_micros(GAP_US);
    }
    accepted
        .into_iter()
        .map(|c| PlannedSession {
            events: expand(&c, ctx.layout, rng),
            attends: c.attends,
        })
        .collect()
}

/// Turns a session into its voice-state events.
fn expand<R: Rng + ?Sized>(c: &Candidate, layout: &VoiceLayout, rng: &mut R) -> Vec<Ev> {
    let mut flags = VoiceFlags {
        self_mute: rng.gen::<f64>() < 0.25,
        self_video: rng.gen::<f64>() < 0.02,
        ..VoiceFlags::default()
    };
    flags.self_deaf = flags.self_mute && rng.gen::<f64>() < 0.12;
    let mut channel = c.channel;
    let mut evs = vec![Ev {
        ts: c.start,
        channel: Some(channel),
        flags,
    }];
    let active_end = c.afk_at.unwrap_or(c.end).micros();
    let lo = c.start.micros() + 1_000_000;
    let hi = active_end - 1_000_000;
    if hi > lo {
        let k = poisson(rng, (hi - lo) as f64 / 3.6e9 * 0.9).min(10);
        let mut times: Vec<i64> = (0..k).map(|_| rng.gen_range(lo..hi)).collect();
        times.sort_unstable();
        let mut last = c.start.micros();
        // Event sessions stay put: the attendance check should see one stint in the channel.
        let can_move = c.attends.is_none() && layout.regular.len() > 1;
        for t in times {
            let t = t.max(last + 1_000_000);
            if t >= hi {
                break;
            }
            last = t;
            match weighted(rng, &[0.3, 0.4, 0.1, 0.12, 0.05, 0.03]) {
                0 if can_move => {
                    let mut next = channel;
                    for _ in 0..8 {
                        next = layout.pick(&c.group, rng);
                        if next != channel {
                            break;
                        }
                    }
                    if next == channel {
                        continue;
                    }
                    channel = next;
                    flags.self_stream = false;
                }
                0 | 1 => {
                    flags.self_mute = !flags.self_mute;
                    if !flags.self_mute {
                        flags.self_deaf = false;
                    }
                }
                2 => {
                    // Deafening also mutes, as in the Discord client.
                    flags.self_deaf = !flags.self_deaf;
                    flags.self_mute |= flags.self_deaf;
                }
                3 => flags.self_stream = !flags.self_stream,
                4 => flags.self_video = !flags.self_video,
                _ => flags.server_mute = !flags.server_mute,
            }
            evs.push(Ev {
                ts: Ts::from_micros(t),
                channel: Some(channel),
                flags,
            });
        }
    }
    if let Some(afk_at) = c.afk_at {
        flags.self_stream = false;
        flags.self_video = false;
        evs.push(Ev {
            ts: afk_at,
            channel: Some(layout.afk),
            flags,
        });
    }
    evs.push(Ev {
        ts: c.end,
        channel: None,
        flags: VoiceFlags::default(),
    });
    evs
}

/// The ground-truth stints of one planned session, clipped to the period.
pub(crate) fn stints(
    s: &PlannedSession,
    guild_id: i64,
    user_id: i64,
    afk: i64,
    end: Ts,
    mut f: impl FnMut(VoiceSession) -> io::Result<()>,
) -> io::Result<()> {
    let mut open: Option<(i64, Ts)> = None;
    for e in &s.events {
        if e.ts >= end {
            break;
        }
        match (open, e.channel) {
            (Some((c, _)), Some(n)) if c == n => continue,
            _ => {}
        }
        if let Some((c, start)) = open.take() {
            f(VoiceSession {
                guild_id,
                user_id,
                channel_id: c,
                start,
                end: Some(e.ts),
                is_afk: c == afk,
                end_reason: if e.channel.is_some() {
                    EndReason::Moved
                } else {
                    EndReason::Left
                },
            })?;
        }
        open = e.channel.map(|c| (c, e.ts));
    }
    if let Some((c, start)) = open {
        f(VoiceSession {
            guild_id,
            user_id,
            channel_id: c,
            start,
            end: None,
            is_afk: c == afk,
            end_reason: EndReason::Open,
        })?;
    }
    Ok(())
}

/// What the extension can know of the truth, given the outages: a stint open when the bot
/// went silent ends at the last heartbeat before the silence (dropped if it began after that
/// beat); a stint still running at reconnect reappears from the snapshot on; stints wholly
/// inside an outage are invisible.
pub(crate) fn observable(truth: &[VoiceSession], outages: &[Outage]) -> Vec<VoiceSession> {
    let mut out = Vec::with_capacity(truth.len());
    for s in truth {
        let mut pieces = vec![*s];
        for o in outages {
            let mut next = Vec::with_capacity(pieces.len() + 1);
            for p in pieces {
                let p_end = p.end.unwrap_or(Ts::from_micros(i64::MAX));
                if p_end <= o.start || p.start >= o.end {
                    next.push(p);
                    continue;
                }
                if p.start < o.start && o.last_beat > p.start {
                    next.push(VoiceSession {
                        end: Some(o.last_beat),
                        end_reason: EndReason::Outage,
                        ..p
                    });
                }
                if p_end > o.end {
                    next.push(VoiceSession { start: o.end, ..p });
                }
            }
            pieces = next;
        }
        out.extend(pieces);
    }
    out
}

/// Holds voice events until their arrival time has passed, so that the stream is in arrival
/// order: by event time, except for late rows (arrival after their time) and duplicates.
#[derive(Default)]
pub(crate) struct ArrivalBuffer {
    pending: Vec<(i64, u64, VoiceEventRow)>,
    seq: u64,
}

impl ArrivalBuffer {
    /// Queues `row` to arrive `delay_us` after it happened.
    pub fn push(&mut self, row: VoiceEventRow, delay_us: i64) {
        self.seq += 1;
        self.pending
            .push((row.event_ts.micros() + delay_us, self.seq, row));
    }

    /// Emits, in arrival order, every row that arrives before `until` (everything if `None`).
    pub fn flush(&mut self, until: Option<Ts>, sink: &mut dyn Sink) -> io::Result<()> {
        self.pending
            .sort_unstable_by_key(|(key, seq, _)| (*key, *seq));
        let n = match until {
            Some(t) => self
                .pending
                .partition_point(|(key, _, _)| *key < t.micros()),
            None => self.pending.len(),
        };
        for (_, _, row) in self.pending.drain(..n) {
            sink.row(Row::VoiceEvent(&row))?;
        }
        Ok(())
    }
}
