//! The raw-table contract of design.md, checked against a real database with the extension.

use guildstats_e2e::{db_message, sample_insert, Cluster, TestDb};
use guildstats_ingest::raw_tables;

#[test]
fn every_raw_table_accepts_its_contract_columns_and_ignores_replays() {
    let Some(cluster) = Cluster::from_env("raw_table_contract") else {
        return;
    };
    let db = TestDb::create(&cluster, "contract");
    let mut client = db.connect();
    for table in raw_tables::ALL {
        let insert = sample_insert(&table);
        let first = client
            .execute(&insert, &[])
            .unwrap_or_else(|e| panic!("{}: {insert}: {e}", table.name));
        let replay = client
            .execute(&insert, &[])
            .unwrap_or_else(|e| panic!("{}: replay: {e}", table.name));
        assert_eq!(
            (first, replay),
            (1, 0),
            "{}: first insert, then replay",
            table.name
        );
        let rows: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {}", table.qualified_name()),
                &[],
            )
            .expect("count")
            .get(0);
        assert_eq!(rows, 1, "{} keeps one row after a replay", table.name);
    }
}

#[test]
fn the_schema_has_exactly_the_raw_tables_of_the_catalogue() {
    let Some(cluster) = Cluster::from_env("raw_table_catalogue") else {
        return;
    };
    let db = TestDb::create(&cluster, "catalogue");
    let mut client = db.connect();
    let in_db: Vec<String> = client
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'guildstats' AND c.relkind = 'r' AND c.relname LIKE 'raw\\_%'
             ORDER BY 1",
            &[],
        )
        .expect("list tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut catalogue: Vec<String> = raw_tables::ALL.iter().map(|t| t.name.to_string()).collect();
    catalogue.sort();
    assert_eq!(in_db, catalogue);
}

#[test]
fn every_table_view_column_and_function_is_documented() {
    let Some(cluster) = Cluster::from_env("comments") else {
        return;
    };
    let db = TestDb::create(&cluster, "comments");
    let mut client = db.connect();
    let undocumented: Vec<String> = client
        .query(
            "SELECT c.relname || coalesce('.' || a.attname, '')
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                                      AND (c.relkind = 'r' OR n.nspname = 'guildstats_mart')
             WHERE n.nspname IN ('guildstats', 'guildstats_mart') AND c.relkind IN ('r', 'v', 'm')
               AND col_description(c.oid, coalesce(a.attnum, 0)) IS NULL
               AND (a.attnum IS NOT NULL OR obj_description(c.oid, 'pg_class') IS NULL)
             UNION ALL
             SELECT p.oid::regprocedure::text
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname IN ('guildstats', 'guildstats_mart') AND obj_description(p.oid, 'pg_proc') IS NULL
             UNION ALL
             -- The BI schema itself: what Metabase and Superset show as its description.
             SELECT 'schema guildstats_mart'
             WHERE obj_description('guildstats_mart'::regnamespace, 'pg_namespace') IS NULL
             ORDER BY 1",
            &[],
        )
        .expect("catalog query")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        undocumented.is_empty(),
        "objects without COMMENT ON: {undocumented:?}"
    );
}

#[test]
fn no_column_can_hold_message_text() {
    let Some(cluster) = Cluster::from_env("no_message_content") else {
        return;
    };
    let db = TestDb::create(&cluster, "privacy");
    let mut client = db.connect();
    // Text-typed columns of the message table may only hold identifiers of our own making.
    let text_columns: Vec<String> = client
        .query(
            "SELECT column_name FROM information_schema.columns
             WHERE table_schema = 'guildstats' AND table_name = 'raw_messages'
               AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'bytea')
             ORDER BY 1",
            &[],
        )
        .expect("columns")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(text_columns, vec!["source".to_string()]);
    let suspicious: Vec<String> = client
        .query(
            "SELECT table_name || '.' || column_name FROM information_schema.columns
             WHERE table_schema = 'guildstats'
               AND column_name ~ '(^|_)(content|body|message_text|text)$'
               AND NOT (table_name = 'raw_et_stats_files' AND column_name = 'content')",
            &[],
        )
        .expect("columns")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        suspicious.is_empty(),
        "columns that could hold message text: {suspicious:?}"
    );
}

#[test]
fn et_file_hash_cannot_be_supplied_by_the_client() {
    let Some(cluster) = Cluster::from_env("et_sha256_generated") else {
        return;
    };
    let db = TestDb::create(&cluster, "sha");
    let mut client = db.connect();
    let err = client
        .execute(
            "INSERT INTO guildstats.raw_et_stats_files (file_name, content, sha256)
             VALUES ('x-round-1.txt', 'abc', '\\x00')",
            &[],
        )
        .expect_err("a client-supplied sha256 must be refused");
    assert!(db_message(&err).contains("sha256"), "{}", db_message(&err));
    // The same bytes under another name are the same file.
    client
        .batch_execute(
            "INSERT INTO guildstats.raw_et_stats_files (file_name, content) VALUES ('a-round-1.txt', 'abc') ON CONFLICT DO NOTHING;
             INSERT INTO guildstats.raw_et_stats_files (file_name, content) VALUES ('b-round-1.txt', 'abc') ON CONFLICT DO NOTHING;",
        )
        .expect("insert");
    let (rows, hash_ok): (i64, bool) = {
        let row = client
            .query_one(
                "SELECT count(*), bool_and(sha256 = sha256('abc'::bytea) AND size_bytes = 3)
                 FROM guildstats.raw_et_stats_files",
                &[],
            )
            .expect("query");
        (row.get(0), row.get(1))
    };
    assert_eq!((rows, hash_ok), (1, true));
}
