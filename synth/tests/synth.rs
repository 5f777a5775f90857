//! Properties of the generated data, checked on small configs (fast in debug builds).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::sync::OnceLock;

use guildstats_synth::*;

fn tiny() -> &'static (Community, CollectSink, Report) {
    static TINY: OnceLock<(Community, CollectSink, Report)> = OnceLock::new();
    TINY.get_or_init(|| {
        let community = Community::new(CommunityConfig::tiny()).unwrap();
        let mut sink = CollectSink::new();
        let report = community.generate(&mut sink).unwrap();
        (community, sink, report)
    })
}

/// A medium community for the statistical shape (voice truth only, so still quick).
fn medium() -> &'static (Community, Vec<VoiceSession>) {
    static MEDIUM: OnceLock<(Community, Vec<VoiceSession>)> = OnceLock::new();
    MEDIUM.get_or_init(|| {
        let config = CommunityConfig::demo().with_members(400).with_days(28);
        let community = Community::new(config).unwrap();
        let truth = community.voice_truth().unwrap();
        (community, truth)
    })
}

fn memory(config: CommunityConfig) -> MemorySink {
    let mut sink = MemorySink::new();
    Community::new(config).unwrap().generate(&mut sink).unwrap();
    sink
}

#[test]
fn same_config_same_bytes_other_seed_other_bytes() {
    let a = memory(CommunityConfig::tiny());
    let b = memory(CommunityConfig::tiny());
    assert!(a == b, "two runs of one config differ");
    let c = memory(CommunityConfig::tiny().with_seed(43));
    for table in [
        Table::VoiceEvents,
        Table::Messages,
        Table::PointTransactions,
    ] {
        assert!(!a.copy_text(table).is_empty(), "{table:?} is empty");
        assert!(a.copy_text(table) != c.copy_text(table), "{table:?}");
    }
}

/// The database loader regenerates one table per COPY; that must give exactly the rows of
/// a single full pass.
#[test]
fn one_table_at_a_time_matches_a_full_pass() {
    struct Only(Table, MemorySink);
    impl Sink for Only {
        fn wants(&self, t: Table) -> bool {
            t == self.0
        }
        fn row(&mut self, row: Row<'_>) -> io::Result<()> {
            self.1.row(row)
        }
    }
    let community = Community::new(CommunityConfig::tiny()).unwrap();
    let mut full = MemorySink::new();
    community.generate(&mut full).unwrap();
    for table in Table::ALL {
        let mut only = Only(table, MemorySink::new());
        community.generate(&mut only).unwrap();
        assert!(
            only.1.copy_text(table) == full.copy_text(table),
            "{table:?} differs when generated alone"
        );
    }
}

#[test]
fn every_table_has_rows_and_well_formed_copy_lines() {
    let full = memory(CommunityConfig::tiny());
    for table in Table::ALL {
        let text = std::str::from_utf8(full.copy_text(table)).unwrap();
        assert!(!text.is_empty(), "{table:?} has no rows");
        for line in text.lines() {
            assert_eq!(
                line.split('\t').count(),
                table.columns().len(),
                "{table:?}: {line}"
            );
        }
    }
}

#[test]
fn voice_events_unique_after_dedup_and_duplicates_identical() {
    let (_, rows, report) = tiny();
    assert!(report.duplicate_voice_events > 0);
    assert!(report.late_voice_events > 0);
    let mut by_key: HashMap<(i64, i64, Ts), VoiceEventRow> = HashMap::new();
    let mut dups = 0;
    for r in &rows.voice_events {
        if let Some(prev) = by_key.insert((r.guild_id, r.user_id, r.event_ts), *r) {
            assert_eq!(prev, *r, "a duplicate differs from its original");
            dups += 1;
        }
    }
    assert_eq!(dups, report.duplicate_voice_events);
    // Late rows: some row arrives after a row that happened later.
    let mut max_seen = Ts::from_micros(i64::MIN);
    let mut out_of_order = 0;
    for r in &rows.voice_events {
        if r.event_ts < max_seen {
            out_of_order += 1;
        }
        max_seen = max_seen.max(r.event_ts);
    }
    assert!(out_of_order > 0);
}

#[test]
fn sessions_do_not_overlap_and_every_join_ends() {
    let (community, rows, _) = tiny();
    let end = community.end();
    let mut per_user: BTreeMap<i64, Vec<&VoiceSession>> = BTreeMap::new();
    for s in &rows.truth {
        per_user.entry(s.user_id).or_default().push(s);
    }
    assert!(per_user.len() > 5);
    let events: HashSet<(i64, Ts)> = rows
        .voice_events
        .iter()
        .map(|r| (r.user_id, r.event_ts))
        .collect();
    let in_outage = |t: Ts| community.outages().iter().any(|o| o.contains(t));
    for sessions in per_user.values_mut() {
        sessions.sort_by_key(|s| s.start);
        for w in sessions.windows(2) {
            let prev_end = w[0].end.expect("only the last session may be open");
            assert!(w[1].start >= prev_end, "overlap: {:?} {:?}", w[0], w[1]);
        }
        for s in sessions.iter() {
            assert!(s.start < end);
            match s.end {
                Some(t) => {
                    assert!(t > s.start);
                    assert!(t.secs_since(s.start) < 12.0 * 3600.0);
                    // The leave (or move) that ends it is in the stream unless the bot was down.
                    assert!(in_outage(t) || events.contains(&(s.user_id, t)), "{s:?}");
                    assert!(matches!(s.end_reason, EndReason::Left | EndReason::Moved));
                }
                None => assert_eq!(s.end_reason, EndReason::Open),
            }
        }
    }
    // Per user, in time order, the events never leave twice in a row, unless the join in
    // between happened while the bot was down (the reconnect snapshot covers it then).
    let mut sorted = rows.voice_events.clone();
    sorted.sort_by_key(|r| (r.user_id, r.event_ts));
    sorted.dedup();
    for w in sorted.windows(2) {
        if w[0].user_id == w[1].user_id {
            assert!(w[0].event_ts < w[1].event_ts);
            let outage_between = community
                .outages()
                .iter()
                .any(|o| w[0].event_ts < o.end && o.start < w[1].event_ts);
            assert!(w[0].channel_id.is_some() || w[1].channel_id.is_some() || outage_between);
        }
    }
}

#[test]
fn afk_channel_is_used_and_flagged() {
    let (community, rows, _) = tiny();
    let afk = community.afk_channel_id();
    assert_eq!(rows.guilds[0].afk_channel_id, Some(afk));
    assert!(rows.voice_events.iter().any(|r| r.channel_id == Some(afk)));
    assert!(rows.truth.iter().any(|s| s.is_afk));
    assert!(rows.truth.iter().all(|s| s.is_afk == (s.channel_id == afk)));
}

#[test]
fn outages_silence_voice_and_heartbeats_and_end_with_a_snapshot() {
    let (community, rows, report) = tiny();
    let outages = community.outages();
    assert_eq!(outages.len(), 1);
    assert!(report.missed_voice_events > 0 || !rows.truth.is_empty());
    for o in outages {
        assert!(o.last_beat < o.start && o.start < o.end);
        assert!(!rows.voice_events.iter().any(|r| o.contains(r.event_ts)));
        assert!(!rows.heartbeats.iter().any(|h| o.contains(h.beat_at)));
        assert!(!rows.messages.iter().any(|m| o.contains(m.sent_at)));
        assert!(rows.heartbeats.iter().any(|h| h.beat_at == o.last_beat));
        assert!(rows.heartbeats.iter().any(|h| h.beat_at == o.end));
        let snap = rows
            .voice_snapshots
            .iter()
            .find(|s| s.taken_at == o.end)
            .expect("reconnect snapshot");
        let listed: Vec<serde_json::Value> = serde_json::from_str(&snap.voice_states).unwrap();
        let mut listed: Vec<(i64, i64)> = listed
            .iter()
            .map(|v| {
                let id = |k: &str| v[k].as_str().unwrap().parse::<i64>().unwrap();
                (id("user_id"), id("channel_id"))
            })
            .collect();
        listed.sort();
        let mut expected: Vec<(i64, i64)> = rows
            .truth
            .iter()
            .filter(|s| s.start <= o.end && s.end.is_none_or(|e| e > o.end))
            .map(|s| (s.user_id, s.channel_id))
            .collect();
        expected.sort();
        assert_eq!(listed, expected);
    }
    // Heartbeats outside outages are never further apart than the interval (plus jitter).
    let interval = f64::from(community.config().heartbeat_interval_s);
    let mut beats: Vec<Ts> = rows.heartbeats.iter().map(|h| h.beat_at).collect();
    beats.sort();
    for w in beats.windows(2) {
        let gap = w[1].secs_since(w[0]);
        let silent = outages.iter().any(|o| w[0] == o.last_beat);
        assert!(silent || gap <= interval + 1.0, "gap {gap} at {}", w[0]);
    }
    assert_eq!(rows.voice_snapshots[0].voice_states, "[]");
}

#[test]
fn observable_truth_respects_outages() {
    let (community, rows, _) = tiny();
    let observable = community.observable_voice_truth().unwrap();
    for o in community.outages() {
        for s in &observable {
            let end = s.end.unwrap_or(Ts::from_micros(i64::MAX));
            // Nothing is claimed between the last heartbeat and the reconnect.
            assert!(
                end <= o.last_beat || s.start >= o.end || end <= o.start,
                "{s:?}"
            );
        }
        let cut = observable
            .iter()
            .filter(|s| s.end_reason == EndReason::Outage)
            .count();
        let open_at_start = rows
            .truth
            .iter()
            .filter(|s| s.start < o.last_beat && s.end.is_none_or(|e| e > o.start))
            .count();
        assert_eq!(cut, open_at_start);
    }
}

fn voice_secs_by_user(truth: &[VoiceSession], end: Ts) -> HashMap<i64, f64> {
    let mut m = HashMap::new();
    for s in truth.iter().filter(|s| !s.is_afk) {
        *m.entry(s.user_id).or_insert(0.0) += s.secs(end);
    }
    m
}

#[test]
fn activity_is_heavy_tailed() {
    let (community, truth) = medium();
    let by_user = voice_secs_by_user(truth, community.end());
    let humans = community.members().iter().filter(|m| !m.is_bot).count();
    let mut secs: Vec<f64> = by_user.values().copied().collect();
    secs.sort_by(|a, b| b.total_cmp(a));
    let total: f64 = secs.iter().sum();
    let top: f64 = secs.iter().take(humans / 10).sum();
    assert!(top / total > 0.4, "top 10% share {}", top / total);
}

#[test]
fn evenings_and_weekends_are_busier_than_weekday_mornings() {
    let (community, truth) = medium();
    let zone = community.config().zone;
    let (mut busy, mut morning) = (0usize, 0usize);
    for s in truth.iter().filter(|s| !s.is_afk) {
        let h = local_hour(zone, s.start);
        let weekday = zone.to_local(s.start).weekday();
        if weekday >= 5 || (18.0..24.0).contains(&h) {
            busy += 1;
        } else if (6.0..12.0).contains(&h) {
            morning += 1;
        }
    }
    // Busy covers 2 whole days + 5 evenings = 78 hours a week; mornings 30 hours.
    let busy_rate = busy as f64 / 78.0;
    let morning_rate = morning as f64 / 30.0;
    assert!(
        busy_rate > 2.0 * morning_rate,
        "{busy_rate} vs {morning_rate}"
    );
}

#[test]
fn churn_shows_up_as_member_events() {
    let (community, rows, _) = tiny();
    let members = community.members();
    let events: HashSet<(i64, &str)> = rows
        .member_events
        .iter()
        .map(|e| (e.user_id, e.event_type))
        .collect();
    for m in &members {
        assert!(events.contains(&(m.user_id, "join")));
        if m.left_at.is_some() {
            assert!(events.contains(&(m.user_id, "leave")), "{m:?}");
        }
        if m.banned {
            assert!(events.contains(&(m.user_id, "ban")));
        }
    }
    // Over a longer period some members leave, some are banned, some rename.
    let demo = Community::new(CommunityConfig::demo().with_members(600).with_days(60)).unwrap();
    let mut sink = CollectSink::new();
    struct MemberOnly<'a>(&'a mut CollectSink);
    impl Sink for MemberOnly<'_> {
        fn wants(&self, t: Table) -> bool {
            t == Table::MemberEvents
        }
        fn row(&mut self, row: Row<'_>) -> io::Result<()> {
            self.0.row(row)
        }
    }
    demo.generate(&mut MemberOnly(&mut sink)).unwrap();
    for kind in ["join", "leave", "ban", "update"] {
        assert!(
            sink.member_events.iter().any(|e| e.event_type == kind),
            "no {kind}"
        );
    }
    assert!(demo.members().iter().any(|m| m.left_at.is_some()));
}

#[test]
fn ids_and_keys_are_unique() {
    let (_, rows, _) = tiny();
    let ids: HashSet<i64> = rows.messages.iter().map(|m| m.message_id).collect();
    assert_eq!(ids.len(), rows.messages.len());
    let keys: HashSet<&str> = rows
        .point_transactions
        .iter()
        .map(|t| t.tx_key.as_str())
        .collect();
    assert_eq!(keys.len(), rows.point_transactions.len());
    for t in &rows.point_transactions {
        assert_ne!(t.amount, 0);
        if t.amount < 0 {
            assert!(t.reason == "shop" || t.reason == "transfer", "{t:?}");
        }
    }
    assert!(rows.point_transactions.iter().any(|t| t.amount < 0));
    let channel_keys: HashSet<(i64, Ts)> = rows
        .channels
        .iter()
        .map(|c| (c.channel_id, c.observed_at))
        .collect();
    assert_eq!(channel_keys.len(), rows.channels.len());
    let event_keys: HashSet<(i64, Ts)> = rows
        .scheduled_events
        .iter()
        .map(|e| (e.event_id, e.observed_at))
        .collect();
    assert_eq!(event_keys.len(), rows.scheduled_events.len());
    let player_keys: HashSet<(&str, Ts, i32)> = rows
        .server_players
        .iter()
        .map(|p| (p.server.as_str(), p.polled_at, p.player_index))
        .collect();
    assert_eq!(player_keys.len(), rows.server_players.len());
}

#[test]
fn attendees_are_in_the_event_channel() {
    let (_, rows, _) = tiny();
    let mut checked = 0;
    let mut statuses: HashSet<&str> = HashSet::new();
    let mut by_event: BTreeMap<i64, Vec<&ScheduledEventRow>> = BTreeMap::new();
    for e in &rows.scheduled_events {
        statuses.insert(e.status);
        by_event.entry(e.event_id).or_default().push(e);
    }
    assert!(statuses.contains("scheduled") && statuses.contains("active"));
    assert!(statuses.contains("completed"));
    assert!(rows.scheduled_events.iter().any(|e| e.channel_id.is_none()));
    for states in by_event.values() {
        let active = states.iter().find(|e| e.status == "active");
        let done = states.iter().find(|e| e.status == "completed");
        let (Some(a), Some(d)) = (active, done) else {
            continue;
        };
        let Some(channel) = a.channel_id else {
            continue;
        };
        let present = rows.truth.iter().any(|s| {
            s.channel_id == channel
                && s.start < d.observed_at
                && s.end.is_none_or(|e| e > a.observed_at)
        });
        if present {
            checked += 1;
        }
    }
    assert!(checked >= 2, "only {checked} events had attendees");
}

#[test]
fn game_servers_look_like_the_pollers_output() {
    let (_, rows, _) = tiny();
    assert!(rows.server_polls.iter().any(|p| !p.ok && p.error.is_some()));
    assert!(rows.server_polls.iter().all(|p| p.ok == p.error.is_none()));
    let protocols: HashSet<&str> = rows.server_polls.iter().map(|p| p.protocol).collect();
    assert_eq!(protocols, HashSet::from(["a2s", "q3"]));
    let q3: HashSet<&str> = rows
        .server_polls
        .iter()
        .filter(|p| p.protocol == "q3")
        .map(|p| p.server.as_str())
        .collect();
    for p in &rows.server_players {
        if q3.contains(p.server.as_str()) {
            assert!(p.connected_seconds.is_none() && p.ping_ms.is_some());
        } else {
            assert!(p.connected_seconds.is_some() && p.ping_ms.is_none());
        }
    }
    let mut names: HashMap<(&str, Ts), HashSet<&str>> = HashMap::new();
    let mut dup_polls = 0;
    for p in &rows.server_players {
        if !names
            .entry((p.server.as_str(), p.polled_at))
            .or_default()
            .insert(p.name.as_str())
        {
            dup_polls += 1;
        }
    }
    assert!(dup_polls > 0, "no poll lists a name twice");
}

#[test]
fn row_counts_scale_with_config() {
    let count = |config: CommunityConfig| {
        let mut sink =
            CountingSink::only(&[Table::VoiceEvents, Table::Heartbeats, Table::Messages]);
        Community::new(config).unwrap().generate(&mut sink).unwrap();
        sink
    };
    let base = CommunityConfig::tiny().with_members(200);
    let small = count(base.clone());
    let double = count(base.clone().with_members(400));
    let longer = count(base.with_days(28));
    let ratio = double.count(Table::VoiceEvents) as f64 / small.count(Table::VoiceEvents) as f64;
    assert!(
        (1.5..2.6).contains(&ratio),
        "members x2 gave voice x{ratio}"
    );
    let ratio = double.count(Table::Messages) as f64 / small.count(Table::Messages) as f64;
    assert!(
        (1.5..2.6).contains(&ratio),
        "members x2 gave messages x{ratio}"
    );
    let beats = longer.count(Table::Heartbeats) as f64 / small.count(Table::Heartbeats) as f64;
    assert!(
        (1.9..2.1).contains(&beats),
        "days x2 gave heartbeats x{beats}"
    );
}

#[test]
fn target_voice_events_is_roughly_met() {
    let target = 20_000;
    let config = CommunityConfig::tiny().with_target_voice_events(target);
    let mut sink = CountingSink::only(&[Table::VoiceEvents]);
    Community::new(config).unwrap().generate(&mut sink).unwrap();
    let got = sink.count(Table::VoiceEvents) as f64;
    assert!(
        (got / target as f64 - 1.0).abs() < 0.2,
        "asked {target}, got {got}"
    );
}

#[test]
fn invalid_configs_are_errors_not_panics() {
    assert!(Community::new(CommunityConfig::tiny().with_members(0)).is_err());
    assert!(Community::new(CommunityConfig::tiny().with_days(0)).is_err());
    let mut c = CommunityConfig::tiny();
    c.late_fraction = 1.5;
    assert!(Community::new(c).is_err());
    // Very short periods work (no outages then).
    let c = Community::new(CommunityConfig::tiny().with_days(1)).unwrap();
    assert!(c.outages().is_empty());
    c.generate(&mut CountingSink::new()).unwrap();
}

#[test]
fn default_start_is_2026_01_05() {
    assert_eq!(
        CommunityConfig::demo().start,
        Ts::from_ymd(2026, 1, 5).unwrap()
    );
}

/// Shared seconds summed over every pair of sessions in one channel at once (AFK aside), and
/// the most sessions one channel ever held at once.
fn crowding(truth: &[VoiceSession], until: Ts) -> (f64, usize) {
    let mut by_channel: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
    for s in truth.iter().filter(|s| !s.is_afk) {
        let end = s.end.unwrap_or(until).micros();
        by_channel
            .entry(s.channel_id)
            .or_default()
            .push((s.start.micros(), end));
    }
    let (mut shared, mut peak) = (0.0, 0);
    for spans in by_channel.values_mut() {
        spans.sort_unstable();
        let mut open: Vec<i64> = Vec::new();
        for &(start, end) in spans.iter() {
            open.retain(|&e| e > start);
            for &e in &open {
                shared += (e.min(end) - start) as f64 / 1e6;
            }
            open.push(end);
            peak = peak.max(open.len());
        }
    }
    (shared, peak)
}

#[test]
fn voice_channels_grow_with_members_only_when_asked() {
    let config = CommunityConfig::demo().with_members(1500).with_days(14);
    let fixed = Community::new(config.clone()).unwrap();
    // The demo layout: five regular channels, the stage and the AFK channel, at any size.
    assert_eq!(config.regular_voice_channels(), 5);
    assert_eq!(fixed.voice_channel_ids().len(), 7);
    let grown = Community::new(config.clone().with_members_per_voice_channel(100)).unwrap();
    assert_eq!(grown.config().regular_voice_channels(), 15);
    assert_eq!(grown.voice_channel_ids().len(), 17);
    // The first channels, and the other kinds, are the demo's.
    assert_eq!(
        &grown.channels()[..fixed.channels().len()],
        fixed.channels()
    );
    let rooms: Vec<&ChannelInfo> = grown.channels()[fixed.channels().len()..].iter().collect();
    assert_eq!(rooms.len(), 10);
    let voice_category = fixed.channels()[1].channel_id;
    assert!(rooms
        .iter()
        .all(|c| c.kind == "voice" && c.parent_id == Some(voice_category)));
    // A small community never gets fewer than the demo's five.
    let small = CommunityConfig::tiny().with_members_per_voice_channel(100);
    assert_eq!(small.regular_voice_channels(), 5);

    // Every room is used, by the same people-hours, and crowds thin out: co-presence no
    // longer grows with the square of the members.
    let until = config.end();
    let fixed_truth = fixed.voice_truth().unwrap();
    let grown_truth = grown.voice_truth().unwrap();
    let used: HashSet<i64> = grown_truth.iter().map(|s| s.channel_id).collect();
    assert!(grown.voice_channel_ids().iter().all(|c| used.contains(c)));
    let hours = |t: &[VoiceSession]| t.iter().map(|s| s.secs(until)).sum::<f64>() / 3600.0;
    let ratio = hours(&grown_truth) / hours(&fixed_truth);
    assert!((0.9..1.1).contains(&ratio), "voice hours x{ratio}");
    let (fixed_shared, fixed_peak) = crowding(&fixed_truth, until);
    let (grown_shared, grown_peak) = crowding(&grown_truth, until);
    assert!(
        grown_shared < fixed_shared / 2.0,
        "shared seconds {grown_shared} with rooms, {fixed_shared} without"
    );
    assert!(
        grown_peak < fixed_peak,
        "peak occupancy {grown_peak} with rooms, {fixed_peak} without"
    );
}
