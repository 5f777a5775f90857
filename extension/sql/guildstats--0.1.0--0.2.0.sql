-- guildstats 0.1.0 -> 0.2.0
--
-- Run by `ALTER EXTENSION guildstats UPDATE`. Every schema change made since 0.1.0 is written
-- here as well as in sql/extension/*.sql; the upgrade test (tests/tests/upgrade.rs) proves that
-- an upgraded database has exactly the schema of a fresh install and keeps its rows.
\echo Use "ALTER EXTENSION guildstats UPDATE TO '0.2.0'" to load this file. \quit


-- ---------------------------------------------------------------------------------------------
-- ET:Legacy import (issue 10, items 9-11): files are imported by the builders, never by the
-- insert; per-file range errors and UTF-8 repair warnings; a bounded file name.
-- ---------------------------------------------------------------------------------------------

-- Inserting a file no longer imports it (build_all() / import_et_rounds() do), so that the
-- ingester's INSERT cannot time out or fail because of the file.
DROP TRIGGER raw_et_stats_files_import ON raw_et_stats_files;
DROP FUNCTION _et_import_on_insert();

ALTER TABLE raw_et_stats_files ADD COLUMN import_warning text;

-- A name longer than any file name used to fail on the btree index (the row was lost); now it
-- is a check violation the ingesters set aside with the reason. A row stored before with such a
-- name is kept: the constraint then covers new rows only (NOT VALID), and a warning says so.
DO $length$
DECLARE
    too_long bigint;
BEGIN
    SELECT count(*) INTO too_long FROM raw_et_stats_files WHERE octet_length(file_name) > 1024;
    IF too_long = 0 THEN
        ALTER TABLE raw_et_stats_files ADD CONSTRAINT raw_et_stats_files_file_name_length
            CHECK (octet_length(file_name) <= 1024);
    ELSE
        ALTER TABLE raw_et_stats_files ADD CONSTRAINT raw_et_stats_files_file_name_length
            CHECK (octet_length(file_name) <= 1024) NOT VALID;
        RAISE WARNING 'guildstats: % raw_et_stats_files row(s) have a file name longer than 1024 bytes; they are kept, and raw_et_stats_files_file_name_length checks new rows only', too_long;
    END IF;
END
$length$;

COMMENT ON TABLE raw_et_stats_files IS
    'ET:Legacy end-of-round stats files (c0rnp0rn format), byte for byte as fetched. The same content is stored once, whatever its name or source. import_et_rounds() (run by build_all(), which pg_cron runs every minute) parses them and records its outcome in imported_at / import_error / import_warning; the content always stays, and inserting a row never imports anything, so no file can make the insert fail or time out.';
COMMENT ON COLUMN raw_et_stats_files.file_name IS 'File name as on the game server, e.g. 2025-10-12-213000-supply-round-1.txt; it carries the round''s date, time, map and round number. At most 1024 bytes (a Linux file name has at most 255): a longer one is refused with a check violation (SQLSTATE 23514), which the ingesters set aside with the reason, instead of failing on the index.';
COMMENT ON COLUMN raw_et_stats_files.import_warning IS 'What the import had to repair to read the file, naming the file (bytes that were not UTF-8, replaced by U+FFFD); NULL for a clean file or one not imported yet.';

-- One file: parse, store the round and its players with the file's values, record what the
-- parser repaired. Raises on a bad file, with a message that names it (parse errors do; any
-- other error gets the name in front); import_et_rounds() runs it in a subtransaction.
CREATE OR REPLACE FUNCTION _et_import_file(raw_ingest_id bigint)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    raw record;
    doc jsonb;
    new_round_id bigint;
BEGIN
    SELECT r.ingest_id, r.file_name, r.source, r.content, r.sha256 INTO raw
    FROM @extschema@.raw_et_stats_files r WHERE r.ingest_id = raw_ingest_id;
    BEGIN
        doc := @extschema@.et_parse_round(raw.file_name, raw.content);
        INSERT INTO @extschema@.et_rounds (
            raw_ingest_id, sha256, file_name, source, saved_at, map, round_number, server_name,
            server_name_raw, config, defender_team, winner_team, time_limit_seconds,
            time_used_seconds, lua_fields, player_count)
        VALUES (
            raw.ingest_id, raw.sha256, raw.file_name, raw.source, (doc ->> 'saved_at')::timestamp,
            doc ->> 'map', (doc ->> 'round_number')::smallint, doc #>> '{header,server_name}',
            doc #>> '{header,server_name_raw}', doc #>> '{header,config}',
            (doc #>> '{header,defender_team}')::smallint, (doc #>> '{header,winner_team}')::smallint,
            (doc #>> '{header,time_limit_seconds}')::integer,
            (doc #>> '{header,time_used_seconds}')::integer, (doc ->> 'lua_fields')::smallint,
            jsonb_array_length(doc -> 'players'))
        RETURNING round_id INTO new_round_id;
        PERFORM @extschema@._et_store_players(
            @extschema@._et_player_rows(new_round_id, doc -> 'players', doc -> 'players'));
    EXCEPTION WHEN OTHERS THEN
        IF starts_with(SQLERRM, raw.file_name) THEN
            RAISE;
        END IF;
        RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = raw.file_name || ': ' || SQLERRM;
    END;
    UPDATE @extschema@.raw_et_stats_files
    SET import_warning = nullif(array_to_string(ARRAY(
            SELECT jsonb_array_elements_text(doc -> 'warnings')), E'\n'), '')
    WHERE ingest_id = raw.ingest_id;
    RETURN new_round_id;
END
$$;
COMMENT ON FUNCTION _et_import_file(bigint) IS
    'Internal: imports one raw ET:Legacy file and records its warnings in import_warning (raises on a malformed file).';
COMMENT ON FUNCTION et_parse_round(text, bytea) IS
    'Parses one ET:Legacy stats file (c0rnp0rn format, Lua versions with 33, 36, 37 or 38 extended fields) without writing anything: a jsonb document with the file name facts, the header, every player with weapons and named extended fields (absent fields are null, never 0), and warnings (bytes that were not UTF-8, replaced by U+FFFD). Raises an error naming the file, line and problem when the file is malformed, and also the player, field and value when a number lies outside its documented range (counts 0 to 2147483647, team 1 to 3, header round 1 or 2 and the file name''s, defender and winner 1 or 2). Example: SELECT guildstats.et_parse_round(file_name, content) -> ''header'' FROM guildstats.raw_et_stats_files;';

COMMENT ON FUNCTION _et_import_file(bigint) IS
    'Internal: imports one raw ET:Legacy file and records its warnings in import_warning (raises on a malformed file).';

-- Files imported by 0.1.0 are held to the 0.2.0 rules too, so that an upgraded database holds
-- what a fresh import of the same files gives: a file with a number outside its range (once
-- stored as NULL) loses its round and gets its error; a repaired one gets its warning; a byte
-- order mark leaves the server name. If any round went, every round is relinked by the next
-- import_et_rounds() (build_all() runs it within a minute), so that no pairing, match or
-- session names it for long: linking here would create its work table as an extension member.
DO $revalidate$
DECLARE
    f record;
    doc jsonb;
    dropped integer := 0;
BEGIN
    FOR f IN SELECT r.ingest_id, r.file_name, r.content
             FROM raw_et_stats_files r WHERE r.imported_at IS NOT NULL
             ORDER BY r.ingest_id
    LOOP
        BEGIN
            doc := et_parse_round(f.file_name, f.content);
            IF jsonb_array_length(doc -> 'warnings') > 0 THEN
                UPDATE raw_et_stats_files
                SET import_warning = array_to_string(ARRAY(
                        SELECT jsonb_array_elements_text(doc -> 'warnings')), E'\n')
                WHERE ingest_id = f.ingest_id;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            DELETE FROM et_rounds WHERE raw_ingest_id = f.ingest_id;
            UPDATE raw_et_stats_files SET imported_at = NULL, import_error = SQLERRM
            WHERE ingest_id = f.ingest_id;
            dropped := dropped + 1;
        END;
    END LOOP;
    UPDATE et_rounds
    SET server_name = substr(server_name, 2), server_name_raw = substr(server_name_raw, 2)
    WHERE starts_with(server_name_raw, U&'\FEFF');
    IF dropped > 0 THEN
        -- Rounds without a session are what the next import links; with no link state left it
        -- relinks every round from scratch (as after a change of et_session_gap).
        UPDATE et_rounds SET et_session_id = NULL;
        DELETE FROM et_link_state;
        RAISE WARNING 'guildstats: % imported ET:Legacy file(s) break the 0.2.0 range rules; their rounds were removed, import_error says why, and the next import_et_rounds() relinks every round', dropped;
    END IF;
END
$revalidate$;
