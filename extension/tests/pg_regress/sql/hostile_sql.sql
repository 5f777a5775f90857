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
