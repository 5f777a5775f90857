//! The real ET:Legacy files (../shared/fixtures/et/real, never copied into the repository) and
//! what importing them produced, described without generated ids so that two databases can be
//! compared.

use crate::{db_message, repo_root, skip_or_fail, Cluster};
use postgres::Client;
use std::path::{Path, PathBuf};

pub fn fixtures_dir(test: &str) -> Option<PathBuf> {
    let root = std::env::var("GUILDSTATS_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("../shared/fixtures"));
    let dir = root.join("et/real");
    if dir.is_dir() {
        Some(dir)
    } else {
        skip_or_fail(test, &format!("no ET fixtures at {}", dir.display()));
        None
    }
}

/// The test cluster and the real fixtures, or `None` (after skip_or_fail said why).
pub fn cluster_and_fixtures(test: &str) -> Option<(Cluster, PathBuf)> {
    let cluster = Cluster::from_env(test)?;
    Some((cluster, fixtures_dir(test)?))
}

pub fn fixture_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read fixtures")
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".txt"))
        .collect();
    names.sort();
    names
}

/// Imports what is pending, as build_all() does every minute; panics unless it ran.
pub fn import_pending(client: &mut Client) {
    let status: String = client
        .query_one("SELECT status FROM guildstats.import_et_rounds()", &[])
        .unwrap_or_else(|e| panic!("import_et_rounds: {}", db_message(&e)))
        .get(0);
    assert_eq!(status, "ok");
}

/// Inserts files the way an ingester does. Inserting imports nothing: call
/// [`import_pending`] (or `import_et_rounds()`) next.
pub fn insert_files(client: &mut Client, dir: &Path, names: &[String]) {
    for name in names {
        let content = std::fs::read(dir.join(name)).expect("read fixture");
        client
            .execute(
                "INSERT INTO guildstats.raw_et_stats_files (file_name, source, content)
                 VALUES ($1, 'test', $2) ON CONFLICT DO NOTHING",
                &[name, &content],
            )
            .unwrap_or_else(|e| panic!("insert {name}: {}", db_message(&e)));
    }
}

/// Everything imported, described by file names instead of generated ids.
pub fn fingerprint(client: &mut Client) -> String {
    client
        .query_one(
            "SELECT md5(string_agg(line, E'\\n' ORDER BY line)) FROM (
               SELECT concat_ws('|', 'round', r.file_name, r.is_orphan, pr.file_name, r.match_id,
                                s.file_name, r.restart_kind, r.time_used_seconds, r.player_count,
                                r.lua_fields) AS line
               FROM guildstats.et_rounds r
               LEFT JOIN guildstats.et_rounds pr ON pr.round_id = r.paired_round_id
               LEFT JOIN guildstats.et_rounds s ON s.round_id = r.et_session_id
               UNION ALL
               SELECT concat_ws('|', 'player', r.file_name, (to_jsonb(p) - 'round_id')::text)
               FROM guildstats.et_player_rounds p JOIN guildstats.et_rounds r USING (round_id)
               UNION ALL
               SELECT concat_ws('|', 'weapon', r.file_name, (to_jsonb(w) - 'round_id')::text)
               FROM guildstats.et_weapon_rounds w JOIN guildstats.et_rounds r USING (round_id)
               UNION ALL
               SELECT concat_ws('|', 'match', m.match_id, r1.file_name, r2.file_name, m.outcome,
                                m.time_to_beat_seconds, s.file_name)
               FROM guildstats.et_matches m
               JOIN guildstats.et_rounds r1 ON r1.round_id = m.round1_id
               LEFT JOIN guildstats.et_rounds r2 ON r2.round_id = m.round2_id
               LEFT JOIN guildstats.et_rounds s ON s.round_id = m.et_session_id
               UNION ALL
               SELECT concat_ws('|', 'session', r.file_name, e.rounds, e.maps::text, e.players)
               FROM guildstats.et_sessions e JOIN guildstats.et_rounds r ON r.round_id = e.et_session_id
             ) lines",
            &[],
        )
        .expect("fingerprint")
        .get(0)
}
