//! The show-up funnel on a synthetic community: the generator gives events, attendance and game
//! servers but no interest and no names shared with the servers, so this test adds both (a set
//! rule, no randomness), then holds every (event, member) row of `event_funnel_members` to plain
//! SQL written another way: interest by a NOT EXISTS on later actions, voice from the sessions
//! (not from event_attendance), the server from the sessions with open-coded overlap and names,
//! ambiguity by a window count.

use guildstats_e2e::{Cluster, TestDb};
use guildstats_synth::{pg, Community, CommunityConfig, Table};

const SETUP: &str = "
-- Three in four attendees had said they would come; every 7th member says so for every event
-- (and mostly does not come); every 11th takes it back an hour before the start.
INSERT INTO guildstats.raw_scheduled_event_users (guild_id, event_id, user_id, action, observed_at)
SELECT a.guild_id, a.event_id, a.user_id, 'add', e.actual_start - interval '1 day'
  FROM guildstats.event_attendance a JOIN guildstats.events e USING (event_id)
 WHERE a.user_id % 4 <> 0;
INSERT INTO guildstats.raw_scheduled_event_users (guild_id, event_id, user_id, action, observed_at)
SELECT e.guild_id, e.event_id, m.user_id, 'add', coalesce(e.actual_start, e.scheduled_start, e.first_observed_at) - interval '2 days'
  FROM guildstats.events e JOIN guildstats.members m ON m.guild_id = e.guild_id AND m.user_id % 7 = 0
ON CONFLICT DO NOTHING;
INSERT INTO guildstats.raw_scheduled_event_users (guild_id, event_id, user_id, action, observed_at)
SELECT u.guild_id, u.event_id, u.user_id, 'remove', coalesce(e.actual_start, e.scheduled_start) - interval '1 hour'
  FROM guildstats.raw_scheduled_event_users u JOIN guildstats.events e USING (event_id)
 WHERE u.user_id % 11 = 0
ON CONFLICT DO NOTHING;
-- Attendees take the names of the players on the servers, in order; two of them share one.
WITH names AS (SELECT name, row_number() OVER (ORDER BY name) AS i
                 FROM (SELECT DISTINCT player_name AS name FROM guildstats.game_sessions) x),
     people AS (SELECT user_id, guild_id, row_number() OVER (ORDER BY user_id) AS i
                  FROM (SELECT DISTINCT guild_id, user_id FROM guildstats.event_attendance) a)
INSERT INTO guildstats.raw_member_events (guild_id, user_id, event_type, event_ts, display_name)
SELECT p.guild_id, p.user_id, 'update', now() - interval '1 minute', n.name
  FROM people p JOIN names n ON n.i = CASE WHEN p.i = 2 THEN 1 ELSE p.i END;
SELECT count(*) FROM guildstats.build_all();
";

const BY_HAND: &str = "
WITH ev AS (
    SELECT e.event_id, e.guild_id, e.channel_id, e.actual_start AS s,
           CASE WHEN e.actual_end IS NOT NULL THEN e.actual_end
                ELSE (SELECT b.horizon FROM guildstats.voice_build_guilds b WHERE b.guild_id = e.guild_id) END AS e
      FROM guildstats.events e WHERE e.actual_start IS NOT NULL
), interested AS (
    SELECT DISTINCT ev.event_id, u.user_id
      FROM ev JOIN guildstats.raw_scheduled_event_users u ON u.event_id = ev.event_id AND u.observed_at <= ev.e
     WHERE u.action = 'add'
       AND NOT EXISTS (SELECT 1 FROM guildstats.raw_scheduled_event_users v
                        WHERE v.event_id = u.event_id AND v.user_id = u.user_id
                          AND v.observed_at <= ev.e
                          AND (v.observed_at, v.ingest_id) > (u.observed_at, u.ingest_id))
), voice AS (
    SELECT ev.event_id, v.user_id
      FROM ev JOIN guildstats.voice_sessions v
        ON v.guild_id = ev.guild_id AND NOT v.is_afk
       AND (ev.channel_id IS NULL OR v.channel_id = ev.channel_id)
       AND v.started_at < ev.e AND coalesce(v.ended_at, ev.e) > ev.s
     GROUP BY ev.event_id, v.user_id
), latest_name AS (
    SELECT DISTINCT ON (x.guild_id, x.user_id) x.guild_id, x.user_id,
           lower(trim(regexp_replace(x.display_name, '\\^.', '', 'g'))) AS k
      FROM guildstats.raw_member_events x WHERE x.display_name IS NOT NULL AND NOT x.is_bot
     ORDER BY x.guild_id, x.user_id, x.event_ts DESC, x.ingest_id DESC
), unique_name AS (
    SELECT guild_id, user_id, k FROM (
        SELECT l.*, count(*) OVER (PARTITION BY l.guild_id, l.k) AS holders FROM latest_name l WHERE l.k <> '') z
     WHERE holders = 1
), server AS (
    SELECT DISTINCT ev.event_id, n.user_id
      FROM ev JOIN guildstats.game_sessions g
        ON g.joined_at < ev.e AND coalesce(g.left_at, g.last_seen) >= ev.s
      JOIN unique_name n ON n.guild_id = ev.guild_id AND n.k = lower(trim(regexp_replace(g.player_name, '\\^.', '', 'g')))
), pairs AS (
    SELECT event_id, user_id FROM interested UNION SELECT event_id, user_id FROM voice
)
SELECT p.event_id, p.user_id,
       EXISTS (SELECT 1 FROM interested i WHERE (i.event_id, i.user_id) = (p.event_id, p.user_id)) AS interested,
       EXISTS (SELECT 1 FROM voice v WHERE (v.event_id, v.user_id) = (p.event_id, p.user_id)) AS in_voice,
       EXISTS (SELECT 1 FROM server s WHERE (s.event_id, s.user_id) = (p.event_id, p.user_id)) AS on_server
  FROM pairs p";

#[test]
fn the_funnel_equals_plain_sql_on_a_synthetic_community() {
    let Some(cluster) = Cluster::from_env("event_funnel") else {
        return;
    };
    let db = TestDb::create(&cluster, "event_funnel");
    let mut client = db.connect();
    let community = Community::new(CommunityConfig::tiny().with_seed(11)).expect("valid config");
    pg::load(&mut client, &community, &Table::ALL).expect("load");
    client
        .batch_execute("SELECT count(*) FROM guildstats.build_all();")
        .expect("build_all");
    client.batch_execute(SETUP).expect("interest and names");

    let view = "SELECT event_id, user_id, interested, in_voice, on_server FROM guildstats.event_funnel_members";
    let mismatches: i64 = client
        .query_one(
            &format!(
                "WITH by_hand AS ({BY_HAND}), funnel AS ({view})
                 SELECT count(*) FROM ((TABLE funnel EXCEPT TABLE by_hand)
                                       UNION ALL (TABLE by_hand EXCEPT TABLE funnel)) d"
            ),
            &[],
        )
        .expect("compare")
        .get(0);
    assert_eq!(mismatches, 0, "event_funnel_members differs from plain SQL");

    // The comparison means something: every stage and both kinds of no-stage occur.
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE interested), count(*) FILTER (WHERE interested AND in_voice),
                    count(*) FILTER (WHERE interested AND NOT in_voice), count(*) FILTER (WHERE in_voice AND NOT interested),
                    count(*) FILTER (WHERE on_server), count(*) FILTER (WHERE in_voice AND NOT on_server)
             FROM guildstats.event_funnel_members",
            &[],
        )
        .expect("stages");
    for (i, what) in [
        "interested",
        "interested and in voice",
        "no-shows",
        "walk-ins",
        "on a server",
        "in voice, not on a server",
    ]
    .iter()
    .enumerate()
    {
        assert!(row.get::<_, i64>(i) > 0, "no member {what}");
    }

    // The per-event and per-member views add up to the member rows.
    let totals = client
        .query_one(
            "SELECT (SELECT sum(interested) FROM guildstats.event_funnel)::bigint,
                    (SELECT sum(events_interested) FROM guildstats.member_event_funnel)::bigint,
                    (SELECT count(*) FILTER (WHERE interested) FROM guildstats.event_funnel_members),
                    (SELECT sum(interested - in_voice) FROM guildstats.event_funnel)::bigint,
                    (SELECT sum(no_shows) FROM guildstats.member_event_funnel)::bigint",
            &[],
        )
        .expect("totals");
    let interested: i64 = totals.get(2);
    assert_eq!(
        totals.get::<_, i64>(0),
        interested,
        "event_funnel.interested"
    );
    assert_eq!(
        totals.get::<_, i64>(1),
        interested,
        "member_event_funnel.events_interested"
    );
    assert_eq!(
        totals.get::<_, i64>(3),
        totals.get::<_, i64>(4),
        "no-shows per event and per member"
    );
}
