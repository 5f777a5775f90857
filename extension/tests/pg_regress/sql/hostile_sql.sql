-- Issue 10, second adversarial pass, over the SQL added after the first one: what a careless
-- game server or a hostile caller can hand the newer functions. Whatever writes runs in a
-- transaction that is rolled back, so later suites see none of these rows.
SET timezone = 'UTC'; SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres';
-- Earlier tests leave raw rows behind: build them first, so what follows is ours alone.
SELECT count(*) AS builders FROM guildstats.build_all();
BEGIN;

-- A game server that reports garbage connected times (A2S sends a float): infinite, NaN,
-- negative, centuries. Before, make_interval() overflowed and build_game_sessions failed on
-- every run for every server; a finite 950 years put a join in the 11th century and a negative
-- one put the join 31 years after the player was seen. Now each is "not reported": the session
-- starts at its first sighting, and a sane value next to them still back-dates.
INSERT INTO guildstats.raw_server_polls (server, polled_at, ok)
SELECT 'hostile:27960', t, true
  FROM generate_series(timestamptz '2026-05-01 10:00', '2026-05-01 10:03', interval '1 minute') t;
INSERT INTO guildstats.raw_server_players (server, polled_at, player_index, name, connected_seconds) VALUES
    ('hostile:27960', '2026-05-01 10:00', 0, 'inf', 'Infinity'),
    ('hostile:27960', '2026-05-01 10:01', 0, 'inf', 'Infinity'),
    ('hostile:27960', '2026-05-01 10:00', 1, 'minus_inf', '-Infinity'),
    ('hostile:27960', '2026-05-01 10:00', 2, 'nan', 'NaN'),
    ('hostile:27960', '2026-05-01 10:00', 3, 'centuries', 3e10),
    ('hostile:27960', '2026-05-01 10:00', 4, 'max_real', 3.4e38),
    ('hostile:27960', '2026-05-01 10:00', 5, 'negative', -1e9),
    -- A week and a second is past the limit; exactly a week is honoured.
    ('hostile:27960', '2026-05-01 10:00', 6, 'week_and_a_second', 604801),
    ('hostile:27960', '2026-05-01 10:00', 7, 'a_week', 604800),
    -- Honest: 30 s at 10:01, after the 10:00 poll that did not list them.
    ('hostile:27960', '2026-05-01 10:01', 8, 'honest', 30),
    ('hostile:27960', '2026-05-01 10:02', 8, 'honest', 90);
SELECT builder, status FROM guildstats.build_all() WHERE builder = 'build_game_sessions';
SELECT player_name, joined_at, left_at, first_seen, end_reason
  FROM guildstats.game_sessions WHERE server = 'hostile:27960' ORDER BY player_name;
SELECT count(*) AS hourly_rows FROM guildstats.game_server_hourly WHERE server = 'hostile:27960';
ROLLBACK;

-- et_balance_teams() searches swaps at n^2 per swap: 100,000 GUIDs ran for hours. It takes
-- at most 64 (a full server), and says so before any work.
SELECT * FROM guildstats.et_balance_teams(ARRAY(SELECT 'G' || g FROM generate_series(1, 100000) g));
SELECT * FROM guildstats.et_balance_teams(ARRAY(SELECT 'G' || g FROM generate_series(1, 65) g));
SELECT method, cardinality(team_a) AS a, cardinality(team_b) AS b
  FROM guildstats.et_balance_teams(ARRAY(SELECT 'G' || g FROM generate_series(1, 64) g));
SELECT * FROM guildstats.et_balance_teams(ARRAY['G1', 'G1']);

-- activity_daily() makes one row per day of the range it is given: '-infinity' to 'infinity'
-- filled 1 GB of temp files before anything stopped it, and command_community(as_of =>
-- 'infinity') asked for that day. Infinite days and ranges over 100 years are refused, naming
-- the function; the first day with data counts in the span, since the series starts there.
BEGIN;
INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at) VALUES
    (4242, 1, 7, 424201, '2026-01-05 12:00+00'), (4242, 1, 8, 424202, '2026-01-07 12:00+00');
SAVEPOINT refused;
SELECT count(*) FROM guildstats.activity_daily(4242, '-infinity', 'infinity');
ROLLBACK TO refused;
SELECT count(*) FROM guildstats.activity_daily(4242, '2026-01-01', 'infinity');
ROLLBACK TO refused;
SELECT count(*) FROM guildstats.activity_daily(4242, '2000-01-01', '2200-12-31');
ROLLBACK TO refused;
-- No from_day: the series starts at the first day with data, 2026-01-05; 36,600 days on is the
-- last day allowed.
SELECT count(*) AS longest FROM guildstats.activity_daily(4242, NULL, date '2026-01-05' + 36600);
SELECT count(*) FROM guildstats.activity_daily(4242, NULL, date '2026-01-05' + 36601);
ROLLBACK TO refused;
SELECT guildstats.command_community(4242, as_of => 'infinity');
ROLLBACK TO refused;
-- The other commands that count periods back from as_of refuse it the same way.
SELECT guildstats.command_voice(4242, 1, as_of => '-infinity');
ROLLBACK TO refused;
SELECT guildstats.command_top(4242, 'kills', 'week', as_of => 'infinity');
ROLLBACK TO refused;
SELECT guildstats.command_stats(4242, player => 'x', as_of => 'infinity');
ROLLBACK TO refused;
-- A hundred years is fine (the days before the data count nobody), and so are the defaults; a
-- guild without activity gets the days asked for, all zero.
SELECT count(*) AS century, sum(dau) AS dau FROM guildstats.activity_daily(4242, '2000-01-01', '2100-01-01');
SELECT count(*) AS days_with_data, sum(dau) AS dau FROM guildstats.activity_daily(4242);
SELECT count(*) AS no_activity FROM guildstats.activity_daily(-1, '2000-01-01', '2100-01-01');
ROLLBACK;

-- Point amounts: one transaction of -2^63 (its negation is no bigint), or two of 2^63 - 1 on a
-- member's day, stopped build_rollups for every guild on every run ("bigint out of range").
-- The raw table refuses amounts beyond 10^15 either way, with the constraint's name; at the
-- limit, the rollups add up. (Terse: the failing row's detail holds its arrival time.)
\set VERBOSITY terse
INSERT INTO guildstats.raw_point_transactions (guild_id, user_id, amount, tx_ts, tx_key)
VALUES (4343, 1, -9223372036854775808, '2026-01-01 10:00+00', 'hostile-min');
INSERT INTO guildstats.raw_point_transactions (guild_id, user_id, amount, tx_ts, tx_key)
VALUES (4343, 1, 1000000000000001, '2026-01-01 10:00+00', 'hostile-over');
-- The reason is a key of member_points_daily: 3 KB that do not compress exceeded its index
-- and stopped build_rollups the same way. At most 1024 bytes; the limit itself is fine.
INSERT INTO guildstats.raw_point_transactions (guild_id, user_id, amount, reason, tx_ts, tx_key)
VALUES (4343, 1, 10, (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 100) g),
        '2026-01-01 10:00+00', 'hostile-reason');
\set VERBOSITY default
BEGIN;
INSERT INTO guildstats.raw_point_transactions (guild_id, user_id, amount, tx_ts, tx_key) VALUES
    (4343, 1, 1000000000000000, '2026-01-01 10:00+00', 'hostile-max-1'),
    (4343, 1, 1000000000000000, '2026-01-01 11:00+00', 'hostile-max-2'),
    (4343, 2, -1000000000000000, '2026-01-01 11:00+00', 'hostile-min-1');
INSERT INTO guildstats.raw_point_transactions (guild_id, user_id, amount, reason, tx_ts, tx_key)
VALUES (4343, 3, 10, (SELECT left(string_agg(md5(g::text), ''), 1024) FROM generate_series(1, 40) g),
        '2026-01-01 10:00+00', 'hostile-reason-1024');
SELECT builder, status FROM guildstats.build_all() WHERE builder = 'build_rollups';
SELECT user_id, earned, spent, transactions, octet_length(reason) AS reason_bytes FROM guildstats.member_points_daily
 WHERE guild_id = 4343 ORDER BY user_id;
ROLLBACK;

-- NULL and negative limits of the retention functions: retention(max_offset => NULL) answered
-- an empty table (retention_rows() is strict) and retention_dn() a row for day NULL or day -1,
-- where voice_hours_retention() says what is wrong. Now each is an error naming the argument.
SELECT count(*) FROM guildstats.retention(1, 'day', max_offset => NULL);
SELECT * FROM guildstats.retention_dn(1, NULL);
SELECT * FROM guildstats.retention_dn(1, '{1,NULL}');
SELECT * FROM guildstats.retention_dn(1, '{-1}');
SELECT * FROM guildstats.retention_dn(1, '{36526}');
SELECT * FROM guildstats.voice_hours_retention(1, 'week', NULL);
-- Still fine: day 0 and the largest day.
SELECT day_offset, eligible_users FROM guildstats.retention_dn(-1, '{0,36525}');

-- Every SECURITY DEFINER function pins its search_path (a caller's temporary objects or schema
-- must never stand in for the extension's): the list of those that do not is empty.
SELECT p.oid::regprocedure AS unpinned_security_definer
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname IN ('guildstats', 'guildstats_mart') AND p.prosecdef
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\_path=%');

-- voice_top_partners(max_rows => NULL) answered no partner (greatest() skips a NULL); it
-- means no limit now. 0 and negative limits give none, a huge one all.
BEGIN;
INSERT INTO guildstats.voice_copresence_daily (guild_id, day, user_a, user_b, shared_seconds) VALUES
    (4444, '2026-01-01', 1, 2, 600), (4444, '2026-01-01', 1, 3, 300), (4444, '2026-01-02', 0, 1, 60);
SELECT count(*) AS null_limit FROM guildstats.voice_top_partners(4444, 1, max_rows => NULL);
SELECT count(*) AS zero FROM guildstats.voice_top_partners(4444, 1, max_rows => 0);
SELECT count(*) AS negative FROM guildstats.voice_top_partners(4444, 1, max_rows => -1);
SELECT partner_id, shared_minutes, days_together
  FROM guildstats.voice_top_partners(4444, 1, max_rows => 2147483647);
ROLLBACK;
