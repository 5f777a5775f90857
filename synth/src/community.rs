//! The community as a whole: its fixed parts (guild, channels, members, scheduled events,
//! outages), drawn when it is created, and the day-by-day simulation that streams the rows.

use std::collections::BTreeMap;
use std::io;

use rand::Rng;

use crate::config::{CommunityConfig, REGULAR_VOICE_CHANNELS};
use crate::economy::{self, DayActivity, Wallet};
use crate::error::Error;
use crate::events::{self, PlannedEvent};
use crate::ids::{snowflake, snowflake_time};
use crate::members::{self, Member, BOTS};
use crate::messages::{self, MsgCtx, TextLayout};
use crate::rhythm::{local_hour_to_utc, local_weekday};
use crate::rng::{mix64, stream_rng, Stream};
use crate::rows::*;
use crate::servers;
use crate::sink::Sink;
use crate::time::Ts;
use crate::voice::{self, ArrivalBuffer, DayCtx, Outage, VoiceLayout, VoiceSession};

/// A channel of the guild as it is at the start of the period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelInfo {
    pub channel_id: i64,
    pub name: String,
    /// text, voice, stage, category, announcement or thread.
    pub kind: &'static str,
    pub parent_id: Option<i64>,
}

/// What the generator intends about one member (for tests and demos).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    pub user_id: i64,
    pub is_bot: bool,
    pub joined_at: Ts,
    /// When the member stops all activity (`None`: active to the end).
    pub quiet_at: Option<Ts>,
    /// When the member left the guild, if inside the period.
    pub left_at: Option<Ts>,
    pub banned: bool,
}

/// What one generation run produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Rows handed to the sink, per table (duplicates included).
    pub rows: BTreeMap<Table, u64>,
    /// Voice events emitted after rows that happened later than them.
    pub late_voice_events: u64,
    /// Voice events emitted a second time (identical rows).
    pub duplicate_voice_events: u64,
    /// Voice events that happened during an outage and were therefore never emitted.
    pub missed_voice_events: u64,
    /// Ground-truth sessions handed to the sink.
    pub truth_sessions: u64,
}

impl Report {
    /// Rows emitted for `table`.
    pub fn count(&self, table: Table) -> u64 {
        self.rows.get(&table).copied().unwrap_or(0)
    }
}

/// A generated community. Creating it draws the fixed parts; [`Community::generate`] streams
/// the rows and may be called any number of times with the same result.
#[derive(Clone, Debug)]
pub struct Community {
    config: CommunityConfig,
    channels: Vec<ChannelInfo>,
    voice: VoiceLayout,
    text: TextLayout,
    stage: i64,
    members: Vec<Member>,
    events: Vec<PlannedEvent>,
    outages: Vec<Outage>,
    total_event_weight: f64,
}

// Positions in the fixed channel list.
const CH_GENERAL: usize = 2;
const CH_LFG: usize = 3;
const CH_MEMES: usize = 4;
const CH_CLIPS: usize = 5;
const CH_ANNOUNCEMENTS: usize = 6;
const CH_LOBBY: usize = 7;
const CH_SQUAD1: usize = 8;
const CH_SQUAD2: usize = 9;
const CH_ET: usize = 10;
const CH_STAGE: usize = 12;
const CH_AFK: usize = 13;

/// How the members spread over a group of regular voice channels (Lobby, Squad 1, Squad 2,
/// ET:Legacy, Chill & Music in the demo).
const GROUP_WEIGHTS: [f64; REGULAR_VOICE_CHANNELS] = [0.3, 0.2, 0.15, 0.2, 0.15];

const CHANNELS: [(&str, &str, Option<usize>); 16] = [
    ("TEXT", "category", None),
    ("VOICE", "category", None),
    ("general", "text", Some(0)),
    ("lfg", "text", Some(0)),
    ("memes", "text", Some(0)),
    ("clips", "text", Some(0)),
    ("announcements", "announcement", Some(0)),
    ("Lobby", "voice", Some(1)),
    ("Squad 1", "voice", Some(1)),
    ("Squad 2", "voice", Some(1)),
    ("ET:Legacy", "voice", Some(1)),
    ("Chill & Music", "voice", Some(1)),
    ("Town Hall", "stage", Some(1)),
    ("AFK", "voice", Some(1)),
    ("patch-notes", "thread", Some(CH_GENERAL)),
    ("clan-war-lineup", "thread", Some(CH_LFG)),
];

impl Community {
    /// Validates `config` and draws the community's fixed parts.
    pub fn new(config: CommunityConfig) -> Result<Self, Error> {
        config.validate()?;
        let created = snowflake_time(config.guild_id);
        let mut ids = Vec::with_capacity(CHANNELS.len());
        for k in 0..CHANNELS.len() {
            ids.push(snowflake(created.add_secs(3600 * (k as i64 + 1)), k as u64));
        }
        let mut channels: Vec<ChannelInfo> = CHANNELS
            .iter()
            .enumerate()
            .map(|(k, (name, kind, parent))| ChannelInfo {
                channel_id: ids[k],
                name: (*name).to_owned(),
                kind,
                parent_id: parent.map(|p| ids[p]),
            })
            .collect();
        // A larger community's extra rooms, a minute apart after the fixed channels, in the
        // voice category; each group of five is crowded like the demo's five.
        let mut regular = ids[CH_LOBBY..CH_LOBBY + REGULAR_VOICE_CHANNELS].to_vec();
        for k in 0..config.regular_voice_channels() - REGULAR_VOICE_CHANNELS {
            let low = (CHANNELS.len() + k) as u64;
            let id = snowflake(
                created.add_secs(3600 * (CHANNELS.len() as i64 + 1) + 60 * k as i64),
                low,
            );
            channels.push(ChannelInfo {
                channel_id: id,
                name: format!("Room {}", k + 1),
                kind: "voice",
                parent_id: Some(ids[1]),
            });
            regular.push(id);
        }
        let weights = (0..regular.len())
            .map(|i| GROUP_WEIGHTS[i % REGULAR_VOICE_CHANNELS])
            .collect();
        let voice = VoiceLayout {
            regular,
            weights,
            afk: ids[CH_AFK],
        };
        let text = TextLayout {
            general: ids[CH_GENERAL],
            lfg: ids[CH_LFG],
            memes: ids[CH_MEMES],
            clips: ids[CH_CLIPS],
            announcements: ids[CH_ANNOUNCEMENTS],
            threads: vec![(ids[14], ids[CH_GENERAL]), (ids[15], ids[CH_LFG])],
        };
        let members = members::generate(&config, &voice.weights);
        let events = events::plan(&config, &members, |series| match series {
            "Game night" => Some(ids[CH_SQUAD1]),
            "ET:Legacy clan war" => Some(ids[CH_ET]),
            "Town hall" => Some(ids[CH_STAGE]),
            _ => None,
        });
        let total_event_weight = members
            .iter()
            .map(|m| m.event_weight)
            .sum::<f64>()
            .max(1e-9);
        let mut community = Community {
            stage: ids[CH_STAGE],
            config,
            channels,
            voice,
            text,
            members,
            events,
            outages: Vec::new(),
            total_event_weight,
        };
        community.outages = community.plan_outages();
        Ok(community)
    }

    /// The configuration this community was made from.
    pub fn config(&self) -> &CommunityConfig {
        &self.config
    }

    /// The channels as they are at the start of the period.
    pub fn channels(&self) -> &[ChannelInfo] {
        &self.channels
    }

    /// The guild's AFK channel.
    pub fn afk_channel_id(&self) -> i64 {
        self.voice.afk
    }

    /// Every voice channel sessions may use (regular ones, the stage, the AFK channel).
    pub fn voice_channel_ids(&self) -> Vec<i64> {
        let mut v = self.voice.regular.clone();
        v.push(self.stage);
        v.push(self.voice.afk);
        v
    }

    /// The bot outages, in time order.
    pub fn outages(&self) -> &[Outage] {
        &self.outages
    }

    /// The first instant after the period.
    pub fn end(&self) -> Ts {
        self.config.end()
    }

    /// The members, bots first.
    pub fn members(&self) -> Vec<MemberInfo> {
        let end = self.end();
        self.members
            .iter()
            .map(|m| MemberInfo {
                user_id: m.user_id,
                is_bot: m.is_bot,
                joined_at: m.joined_at,
                quiet_at: (m.quiet_at < end).then_some(m.quiet_at),
                left_at: m.departure.map(|d| d.at).filter(|t| *t < end),
                banned: m.departure.is_some_and(|d| d.banned && d.at < end),
            })
            .collect()
    }

    /// Streams every row the sink wants (and the ground truth if it wants that), table by
    /// table for the small tables and day by day for the activity tables. Memory use is
    /// bounded by one day of activity, not by the size of the run.
    pub fn generate(&self, sink: &mut dyn Sink) -> io::Result<Report> {
        let mut counted = Counted {
            inner: sink,
            report: Report::default(),
        };
        self.generate_dyn(&mut counted)?;
        Ok(counted.report)
    }

    /// The ground-truth voice sessions (what actually happened, outages included), ordered
    /// by user and start. Open sessions at the end of the period have `end == None`.
    pub fn voice_truth(&self) -> io::Result<Vec<VoiceSession>> {
        struct TruthOnly(Vec<VoiceSession>);
        impl Sink for TruthOnly {
            fn wants(&self, _: Table) -> bool {
                false
            }
            fn row(&mut self, _: Row<'_>) -> io::Result<()> {
                Ok(())
            }
            fn wants_truth(&self) -> bool {
                true
            }
            fn truth(&mut self, s: &VoiceSession) -> io::Result<()> {
                self.0.push(*s);
                Ok(())
            }
        }
        let mut sink = TruthOnly(Vec::new());
        self.generate(&mut sink)?;
        let mut v = sink.0;
        v.sort_by_key(|s| (s.user_id, s.start));
        Ok(v)
    }

    /// The sessions the extension can know about, which is what `build_voice_sessions()`
    /// should produce from the raw rows: the truth, except that a session open when an outage
    /// began ends at the outage's last heartbeat (`EndReason::Outage`; dropped if it began
    /// after that beat), a session still running at reconnect restarts at the snapshot
    /// (`Outage::end`), and sessions wholly inside an outage are missing. No session is
    /// longer than 12 hours, so the open-session cap never applies.
    pub fn observable_voice_truth(&self) -> io::Result<Vec<VoiceSession>> {
        let mut v = voice::observable(&self.voice_truth()?, &self.outages);
        v.sort_by_key(|s| (s.user_id, s.start));
        Ok(v)
    }

    fn generate_dyn(&self, sink: &mut Counted<'_>) -> io::Result<()> {
        let c = &self.config;
        if sink.wants(Table::Guilds) {
            let mut at = vec![c.start];
            at.extend(self.outages.iter().map(|o| o.end));
            for t in at {
                let row = GuildRow {
                    guild_id: c.guild_id,
                    observed_at: t,
                    name: c.guild_name.clone(),
                    afk_channel_id: Some(self.voice.afk),
                    afk_timeout_s: Some(300),
                    member_count: Some(self.member_count_at(t)),
                };
                sink.row(Row::Guild(&row))?;
            }
        }
        if sink.wants(Table::Channels) {
            for row in self.channel_rows() {
                sink.row(Row::Channel(&row))?;
            }
        }
        if sink.wants(Table::MemberEvents) {
            for e in members::member_events(c, &self.members) {
                let row = members::member_event_row(c, &self.members, e);
                sink.row(Row::MemberEvent(&row))?;
            }
        }
        if sink.wants(Table::ScheduledEvents) {
            for e in &self.events {
                for row in events::rows(c, e, |t| self.seen_at(t)) {
                    sink.row(Row::ScheduledEvent(&row))?;
                }
            }
        }
        if sink.wants(Table::Heartbeats) {
            self.heartbeats(sink)?;
        }
        if sink.wants(Table::ServerPolls) || sink.wants(Table::ServerPlayers) {
            servers::generate(c, sink)?;
        }
        self.simulate(sink)
    }

    fn member_count_at(&self, t: Ts) -> i32 {
        let n = self
            .members
            .iter()
            .filter(|m| m.joined_at <= t && m.departure.is_none_or(|d| d.at > t))
            .count();
        i32::try_from(n).unwrap_or(i32::MAX)
    }

    fn channel_rows(&self) -> Vec<ChannelRow> {
        let c = &self.config;
        let row = |ch: &ChannelInfo, at: Ts| ChannelRow {
            guild_id: c.guild_id,
            channel_id: ch.channel_id,
            observed_at: at,
            name: ch.name.to_owned(),
            kind: ch.kind,
            parent_id: ch.parent_id,
            is_deleted: false,
        };
        let mut rows: Vec<ChannelRow> = self.channels.iter().map(|ch| row(ch, c.start)).collect();
        // A rename and a short-lived channel, so "latest state per channel" has work to do.
        let day = |f: f64| {
            c.start
                .add_secs((f64::from(c.days) * f) as i64 * 86_400 + 11 * 3600)
        };
        let mut renamed = row(&self.channels[CH_SQUAD2], day(0.33));
        renamed.name = "Squad 2 | CS2".to_owned();
        rows.push(renamed);
        let created = day(0.5);
        let signups = ChannelInfo {
            channel_id: snowflake(created, 99),
            name: "event-signups".to_owned(),
            kind: "text",
            parent_id: Some(self.channels[0].channel_id),
        };
        rows.push(row(&signups, created));
        let mut deleted = row(&signups, day(0.75).add_secs(3600));
        deleted.is_deleted = true;
        rows.push(deleted);
        let end = self.end();
        rows.retain(|r| r.observed_at < end);
        rows
    }

    /// When the ingester could see something that happened at `t`: at once, or on reconnect
    /// if the bot was down.
    fn seen_at(&self, t: Ts) -> Ts {
        self.outages
            .iter()
            .find(|o| o.contains(t))
            .map_or(t, |o| o.end)
    }

    fn in_outage(&self, t: Ts) -> bool {
        self.outages.iter().any(|o| o.contains(t))
    }

    /// Grid beat `k`, with a small deterministic jitter like a real timer's.
    fn beat_at(&self, k: i64) -> Ts {
        let interval = i64::from(self.config.heartbeat_interval_s) * 1_000_000;
        let jitter = (mix64(self.config.seed ^ 0xBEA7 ^ (k as u64)) % 250_000) as i64;
        self.config.start.add_micros(k * interval + jitter)
    }

    fn last_beat_before(&self, t: Ts) -> Ts {
        let interval = i64::from(self.config.heartbeat_interval_s) * 1_000_000;
        let mut k = (t.micros() - self.config.start.micros()) / interval;
        while k > 0 && self.beat_at(k) >= t {
            k -= 1;
        }
        self.beat_at(k)
    }

    fn heartbeats(&self, sink: &mut dyn Sink) -> io::Result<()> {
        let end = self.end();
        let mut reconnects = self.outages.iter().map(|o| o.end).peekable();
        let row = |beat_at| HeartbeatRow {
            source: "discord",
            guild_id: Some(self.config.guild_id),
            beat_at,
        };
        let mut k = 0;
        loop {
            let t = self.beat_at(k);
            if t >= end {
                break;
            }
            while let Some(r) = reconnects.next_if(|r| *r <= t) {
                sink.row(Row::Heartbeat(&row(r)))?;
            }
            if !self.in_outage(t) && !self.outages.iter().any(|o| o.end == t) {
                sink.row(Row::Heartbeat(&row(t)))?;
            }
            k += 1;
        }
        for r in reconnects.filter(|r| *r < end) {
            sink.row(Row::Heartbeat(&row(r)))?;
        }
        Ok(())
    }

    /// Outages in the evening (people are in voice, so sessions get cut), kept clear of
    /// scheduled-event observations so the event history stays simple.
    fn plan_outages(&self) -> Vec<Outage> {
        let c = &self.config;
        if c.days < 4 || c.outages == 0 {
            return Vec::new();
        }
        let mut rng = stream_rng(c.seed, Stream::Outages, 0, 0);
        let n = c.outages.min(c.days / 4);
        let seg = f64::from(c.days - 3) / f64::from(n);
        let mut out: Vec<Outage> = Vec::new();
        for i in 0..n {
            let mut chosen = None;
            for attempt in 0..40 {
                let day = 2 + (f64::from(i) * seg + rng.gen::<f64>() * seg) as i64;
                let day = day.min(i64::from(c.days) - 2);
                let day_start = c.start.add_secs(day * 86_400);
                let start = local_hour_to_utc(c.zone, day_start, rng.gen_range(17.0..21.5))
                    .add_micros(rng.gen_range(0..60_000_000));
                let end = start.add_micros(rng.gen_range(20 * 60..150 * 60) * 1_000_000);
                let margin = 1800 * 1_000_000;
                let clear = self.events.iter().all(|e| {
                    let busy = e.canceled_at.is_none()
                        && e.actual_start.micros() < end.micros() + margin
                        && start.micros() < e.actual_end.micros() + margin;
                    !busy
                        && e.observation_times().all(|t| {
                            t.micros() < start.micros() - margin
                                || t.micros() > end.micros() + margin
                        })
                });
                if clear || attempt == 39 {
                    chosen = Some((start, end));
                    if clear {
                        break;
                    }
                }
            }
            if let Some((start, end)) = chosen {
                out.push(Outage {
                    start,
                    end,
                    last_beat: self.last_beat_before(start),
                });
            }
        }
        out.sort_by_key(|o| o.start);
        out
    }

    /// The day-by-day activity simulation: voice, snapshots, messages, points.
    fn simulate(&self, sink: &mut Counted<'_>) -> io::Result<()> {
        let want_voice = sink.wants(Table::VoiceEvents);
        let want_snap = sink.wants(Table::VoiceSnapshots);
        let want_msgs = sink.wants(Table::Messages);
        let want_points = sink.wants(Table::PointTransactions);
        let want_truth = sink.wants_truth();
        let need_msgs = want_msgs || want_points;
        // Voice is always simulated: messages depend on it (people chat more on voice days).
        if !(want_voice || want_snap || want_truth || need_msgs) {
            return Ok(());
        }
        let c = &self.config;
        let end = self.end();
        let afk = self.voice.afk;

        #[derive(Clone, Copy)]
        struct State {
            free_at: Ts,
            last_ms: i64,
            wallet: Wallet,
        }
        let mut states = vec![
            State {
                free_at: Ts::from_micros(i64::MIN / 2),
                last_ms: i64::MIN / 2,
                wallet: Wallet::default(),
            };
            self.members.len()
        ];
        let mut arrivals = ArrivalBuffer::default();
        let mut snapshots: Vec<Vec<(i64, i64, VoiceFlags)>> = vec![Vec::new(); self.outages.len()];
        if want_snap {
            let row = VoiceSnapshotRow {
                guild_id: c.guild_id,
                taken_at: c.start,
                voice_states: "[]".to_owned(),
            };
            sink.row(Row::VoiceSnapshot(&row))?;
        }
        let in_outage = |t: Ts| self.in_outage(t);
        let mut txs: Vec<PointTxRow> = Vec::new();
        for day in 0..c.days {
            let day_start = c.start.add_secs(i64::from(day) * 86_400);
            let day_end = day_start.add_secs(86_400);
            let weekday = local_weekday(c.zone, day_start);
            let day_events: Vec<usize> = (0..self.events.len())
                .filter(|&i| {
                    let e = &self.events[i];
                    e.happens_before(end) && e.actual_start >= day_start && e.actual_start < day_end
                })
                .collect();
            let vctx = DayCtx {
                layout: &self.voice,
                zone: c.zone,
                day_start,
                weekday,
                end,
                events: &self.events,
                day_events: &day_events,
                total_event_weight: self.total_event_weight,
            };
            let mctx = MsgCtx {
                guild_id: c.guild_id,
                layout: &self.text,
                zone: c.zone,
                day_start,
                weekday,
                end,
                in_outage: &in_outage,
            };
            // Activity of a day may run until about 05:00 local the next morning.
            let window_end = day_start.add_secs(30 * 3600);
            for (idx, m) in self.members.iter().enumerate() {
                if !m.active_during(day_start, window_end) {
                    continue;
                }
                let st = &mut states[idx];
                let sessions = if m.voice_rate > 0.0 {
                    let mut rng = stream_rng(c.seed, Stream::Voice, idx as u64, u64::from(day));
                    voice::plan_day(&vctx, m, &mut st.free_at, &mut rng)
                } else {
                    Vec::new()
                };
                if want_voice && !sessions.is_empty() {
                    let mut rng = stream_rng(c.seed, Stream::Late, idx as u64, u64::from(day));
                    for s in &sessions {
                        for e in &s.events {
                            let late = rng.gen::<f64>() < c.late_fraction;
                            let dup = rng.gen::<f64>() < c.duplicate_fraction;
                            let delay = rng.gen_range(60_000_000..3 * 3_600_000_000i64);
                            let dup_delay = rng.gen_range(1_000..3_600_000_000i64);
                            if e.ts >= end {
                                continue;
                            }
                            if in_outage(e.ts) {
                                sink.report.missed_voice_events += 1;
                                continue;
                            }
                            let row = VoiceEventRow {
                                guild_id: c.guild_id,
                                user_id: m.user_id,
                                channel_id: e.channel,
                                event_ts: e.ts,
                                flags: e.flags,
                            };
                            arrivals.push(row, if late { delay } else { 0 });
                            if late {
                                sink.report.late_voice_events += 1;
                            }
                            if dup {
                                arrivals.push(row, dup_delay);
                                sink.report.duplicate_voice_events += 1;
                            }
                        }
                    }
                }
                if want_truth {
                    for s in &sessions {
                        voice::stints(s, c.guild_id, m.user_id, afk, end, |v| sink.truth(&v))?;
                    }
                }
                if want_snap {
                    for (k, o) in self.outages.iter().enumerate() {
                        for s in &sessions {
                            if let Some((ch, flags)) = s.state_at(o.end) {
                                snapshots[k].push((m.user_id, ch, flags));
                            }
                        }
                    }
                }
                let msgs = if need_msgs && m.msg_rate > 0.0 {
                    let mut rng = stream_rng(c.seed, Stream::Messages, idx as u64, u64::from(day));
                    let voiced = !sessions.is_empty();
                    messages::plan_day(&mctx, m, idx, voiced, &mut st.last_ms, &mut rng)
                } else {
                    Vec::new()
                };
                if want_msgs {
                    for row in &msgs {
                        sink.row(Row::Message(row))?;
                    }
                }
                if want_points {
                    let attended: Vec<(i64, Ts)> = sessions
                        .iter()
                        .filter_map(|s| s.attends.map(|i| &self.events[i]))
                        .map(|e| (e.event_id, e.actual_end))
                        .collect();
                    let voice_secs: f64 = sessions.iter().map(|s| s.active_secs(afk, end)).sum();
                    let first_active = sessions
                        .first()
                        .map(|s| s.start())
                        .into_iter()
                        .chain(msgs.first().map(|m| m.sent_at))
                        .min();
                    let act = DayActivity {
                        day,
                        day_start,
                        voice_secs,
                        first_active,
                        last_voice_end: sessions.iter().map(|s| s.end()).max(),
                        messages: msgs.len() as u32,
                        last_message: msgs.last().map(|m| m.sent_at),
                        attended: &attended,
                    };
                    let mut rng = stream_rng(c.seed, Stream::Economy, idx as u64, u64::from(day));
                    let members = &self.members;
                    let mut recipient = |rng: &mut rand_chacha::ChaCha8Rng| {
                        (0..10).find_map(|_| {
                            let j = rng.gen_range(BOTS..members.len());
                            (j != idx && members[j].active_during(day_start, day_end))
                                .then(|| (j, members[j].user_id))
                        })
                    };
                    txs.clear();
                    let transfer = economy::plan_day(
                        c.guild_id,
                        m,
                        &mut st.wallet,
                        &act,
                        c.start,
                        end,
                        &mut recipient,
                        &mut rng,
                        &mut txs,
                    );
                    if let Some(t) = transfer {
                        states[t.to].wallet.balance += t.amount;
                    }
                    for row in &txs {
                        sink.row(Row::PointTransaction(row))?;
                    }
                }
            }
            if want_snap {
                for (k, o) in self.outages.iter().enumerate() {
                    if o.end >= day_start && o.end < day_end {
                        let row = snapshot_row(c.guild_id, o.end, &mut snapshots[k]);
                        sink.row(Row::VoiceSnapshot(&row))?;
                    }
                }
            }
            if want_voice {
                arrivals.flush(Some(day_end), sink)?;
            }
        }
        if want_voice {
            arrivals.flush(None, sink)?;
        }
        Ok(())
    }
}

fn snapshot_row(
    guild_id: i64,
    taken_at: Ts,
    states: &mut [(i64, i64, VoiceFlags)],
) -> VoiceSnapshotRow {
    states.sort_by_key(|s| s.0);
    let list: Vec<serde_json::Value> = states
        .iter()
        .map(|(user, channel, flags)| {
            // Discord sends snowflakes as strings; the extension accepts both forms.
            serde_json::json!({
                "user_id": user.to_string(),
                "channel_id": channel.to_string(),
                "self_mute": flags.self_mute,
                "self_deaf": flags.self_deaf,
            })
        })
        .collect();
    VoiceSnapshotRow {
        guild_id,
        taken_at,
        voice_states: serde_json::Value::Array(list).to_string(),
    }
}

/// Wraps the caller's sink to count rows into a [`Report`].
struct Counted<'a> {
    inner: &'a mut dyn Sink,
    report: Report,
}

impl Sink for Counted<'_> {
    fn wants(&self, table: Table) -> bool {
        self.inner.wants(table)
    }
    fn row(&mut self, row: Row<'_>) -> io::Result<()> {
        *self.report.rows.entry(row.table()).or_insert(0) += 1;
        self.inner.row(row)
    }
    fn wants_truth(&self) -> bool {
        self.inner.wants_truth()
    }
    fn truth(&mut self, session: &VoiceSession) -> io::Result<()> {
        self.report.truth_sessions += 1;
        self.inner.truth(session)
    }
}
