//! Discord scheduled events: recurring community nights, each observed in every state it
//! passes through (scheduled, maybe rescheduled, then active and completed, or canceled).
//!
//! Attendance is real: the voice simulation sends each attendee into the event's channel
//! (any regular channel for external events) around the actual start and end, so that an
//! attendance builder comparing voice sessions to event windows finds them.

use rand::Rng;

use crate::config::CommunityConfig;
use crate::ids::snowflake;
use crate::members::{Member, BOTS};
use crate::rhythm::local_hour_to_utc;
use crate::rng::{poisson, stream_rng, Stream};
use crate::rows::ScheduledEventRow;
use crate::time::Ts;

/// One occurrence of a scheduled event, with its whole (planned) life.
#[derive(Clone, Debug)]
pub(crate) struct PlannedEvent {
    pub event_id: i64,
    pub name: &'static str,
    /// Voice or stage channel; `None` for external events.
    pub channel_id: Option<i64>,
    pub entity_type: &'static str,
    pub created_at: Ts,
    pub scheduled_start: Ts,
    pub scheduled_end: Ts,
    /// A reschedule: when it was observed and how far the start moved (seconds).
    pub reschedule: Option<(Ts, i64)>,
    pub canceled_at: Option<Ts>,
    pub actual_start: Ts,
    pub actual_end: Ts,
    pub creator_id: i64,
    pub interested: i32,
    /// Expected number of attendees (turned into a per-member probability).
    pub expected_attendees: f64,
}

impl PlannedEvent {
    /// Whether the event takes place (with attendees) inside the period.
    pub fn happens_before(&self, end: Ts) -> bool {
        self.canceled_at.is_none() && self.actual_start < end
    }

    /// Every observation time of this event (for keeping outages clear of them).
    pub fn observation_times(&self) -> impl Iterator<Item = Ts> + '_ {
        [
            Some(self.created_at),
            self.reschedule.map(|r| r.0),
            self.canceled_at,
            self.canceled_at.is_none().then_some(self.actual_start),
            self.canceled_at.is_none().then_some(self.actual_end),
        ]
        .into_iter()
        .flatten()
    }
}

/// A recurring series.
struct Series {
    name: &'static str,
    entity_type: &'static str,
    /// Local weekday (0 = Monday).
    weekday: u32,
    /// Every how many weeks.
    every_weeks: i64,
    local_hour: f64,
    hours: f64,
    attendees: f64,
}

const SERIES: [Series; 4] = [
    Series {
        name: "Game night",
        entity_type: "voice",
        weekday: 4,
        every_weeks: 1,
        local_hour: 20.0,
        hours: 3.0,
        attendees: 40.0,
    },
    Series {
        name: "ET:Legacy clan war",
        entity_type: "voice",
        weekday: 6,
        every_weeks: 1,
        local_hour: 19.5,
        hours: 2.0,
        attendees: 16.0,
    },
    Series {
        name: "Town hall",
        entity_type: "stage",
        weekday: 3,
        every_weeks: 4,
        local_hour: 20.0,
        hours: 1.0,
        attendees: 30.0,
    },
    Series {
        name: "Community cup (Twitch)",
        entity_type: "external",
        weekday: 5,
        every_weeks: 4,
        local_hour: 17.0,
        hours: 4.0,
        attendees: 20.0,
    },
];

/// Plans every occurrence from the start of the period to two weeks past its end (the ones
/// past the end are only announced).
pub(crate) fn plan(
    config: &CommunityConfig,
    members: &[Member],
    channel_for: impl Fn(&str) -> Option<i64>,
) -> Vec<PlannedEvent> {
    let mut rng = stream_rng(config.seed, Stream::Events, 0, 0);
    let start = config.start;
    let horizon_days = i64::from(config.days) + 14;
    // Creators: the most active human members.
    let mut regulars: Vec<usize> = (BOTS..members.len()).collect();
    regulars.sort_by(|a, b| members[*b].voice_rate.total_cmp(&members[*a].voice_rate));
    regulars.truncate(5.max(members.len() / 100));
    let mut out = Vec::new();
    for (si, s) in SERIES.iter().enumerate() {
        let channel_id = channel_for(s.name);
        let mut occurrence = 0i64;
        for day in 0..horizon_days {
            let day_start = start.add_secs(day * 86_400);
            if crate::rhythm::local_weekday(config.zone, day_start) != s.weekday {
                continue;
            }
            occurrence += 1;
            if (occurrence - 1) % s.every_weeks != 0 {
                continue;
            }
            let scheduled_start = local_hour_to_utc(config.zone, day_start, s.local_hour);
            let scheduled_end = scheduled_start.add_micros((s.hours * 3.6e9) as i64);
            let created_at =
                scheduled_start.add_micros(-(rng.gen_range(3.0..10.0) * 86_400e6) as i64);
            let reschedule = (rng.gen::<f64>() < 0.15).then(|| {
                let at = created_at.add_micros(
                    (rng.gen_range(0.2..0.8) * scheduled_start.secs_since(created_at) * 1e6) as i64,
                );
                (at, if rng.gen::<bool>() { 1800 } else { -1800 })
            });
            let canceled_at = (rng.gen::<f64>() < 0.08)
                .then(|| scheduled_start.add_micros(-(rng.gen_range(2.0..48.0) * 3.6e9) as i64));
            let actual_start = scheduled_start.add_micros(rng.gen_range(0..480_000_000));
            let actual_end =
                scheduled_end.add_micros(rng.gen_range(-1_200_000_000i64..2_400_000_000));
            let creator = regulars[rng.gen_range(0..regulars.len())];
            let interested = poisson(&mut rng, s.attendees * 1.3) as i32;
            out.push(PlannedEvent {
                event_id: snowflake(created_at, (si as u64) << 16 | occurrence as u64),
                name: s.name,
                channel_id,
                entity_type: s.entity_type,
                created_at,
                scheduled_start,
                scheduled_end,
                reschedule,
                canceled_at,
                actual_start,
                actual_end,
                creator_id: members[creator].user_id,
                interested,
                expected_attendees: s.attendees,
            });
        }
    }
    out.sort_by_key(|e| (e.scheduled_start, e.event_id));
    out
}

/// The observed states of one event inside the period. Observations before the period are
/// seen when the ingester first connects (`config.start`); observations during an outage
/// are seen on reconnect (`shift` maps a time to when the ingester could see it).
pub(crate) fn rows(
    config: &CommunityConfig,
    e: &PlannedEvent,
    shift: impl Fn(Ts) -> Ts,
) -> Vec<ScheduledEventRow> {
    let end = config.end();
    let row = |observed_at: Ts, status: &'static str, start_shift: i64| ScheduledEventRow {
        guild_id: config.guild_id,
        event_id: e.event_id,
        observed_at,
        name: e.name.to_owned(),
        channel_id: e.channel_id,
        entity_type: e.entity_type,
        status,
        scheduled_start: Some(e.scheduled_start.add_secs(-start_shift)),
        scheduled_end: Some(e.scheduled_end.add_secs(-start_shift)),
        creator_id: Some(e.creator_id),
        user_count: Some(e.interested),
    };
    let original_shift = e.reschedule.map_or(0, |r| r.1);
    let mut out = vec![row(
        e.created_at.max(config.start),
        "scheduled",
        original_shift,
    )];
    if let Some((at, _)) = e.reschedule {
        out.push(row(at, "scheduled", 0));
    }
    if let Some(at) = e.canceled_at {
        out.push(row(at, "canceled", 0));
    } else {
        out.push(row(e.actual_start, "active", 0));
        out.push(row(e.actual_end, "completed", 0));
    }
    let mut last = Ts::from_micros(i64::MIN);
    out.retain_mut(|r| {
        r.observed_at = shift(r.observed_at).max(last.add_micros(1000));
        last = r.observed_at;
        r.observed_at < end
    });
    out
}
