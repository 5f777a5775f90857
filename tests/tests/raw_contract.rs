//! One definition of the raw contract: the raw tables of sql/extension/raw_tables.sql, as
//! installed. The other descriptions of them, the ingesters' catalogue
//! (ingesters/common/src/raw_tables.rs) and the synthetic generator's tables (synth/src/rows.rs),
//! are held to it here column by column, and so are the ingest role's INSERT rights
//! (sql/ops/roles.sql), so that a contract change is one edit (plus its upgrade script) or a
//! failing test.
//!
//! Types have one definition already: the ingesters cast each value to the column's type read
//! from the catalog (ingesters/common/src/sink.rs), and the generator stages its COPY in a table
//! made from the real one (synth/src/copy.rs), so a value of the wrong kind fails there
//! (synthetic_load.rs, the ingester tests). What can drift is which columns exist, which are
//! required, and which ones each side writes: that is what this file checks.

use guildstats_e2e::{apply_roles_script, Cluster, TestDb};
use guildstats_ingest::raw_tables;
use guildstats_synth::Table;
use std::collections::{BTreeMap, BTreeSet};

/// Raw tables the generator does not fill, and why. A new raw table fails the test until the
/// generator fills it or it is listed here.
const NOT_SYNTHESISED: [(&str, &str); 2] = [
    (
        "raw_et_stats_files",
        "real files from ../shared are loaded instead (synth load-et-files)",
    ),
    (
        "raw_scheduled_event_users",
        "the generator does not model interest in events yet",
    ),
];

#[derive(Debug)]
struct Column {
    name: String,
    sql_type: String,
    /// An INSERT must name it: NOT NULL, no default, not computed.
    required: bool,
    /// Filled by the database, never by a client: arrival order, receipt time, hashes.
    assigned: bool,
    has_default: bool,
}

fn installed_raw_tables(client: &mut postgres::Client) -> BTreeMap<String, Vec<Column>> {
    let mut tables: BTreeMap<String, Vec<Column>> = BTreeMap::new();
    for row in client
        .query(
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod),
                    a.attnotnull, a.atthasdef, a.attidentity <> '', a.attgenerated <> ''
             FROM pg_class c
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE c.relnamespace = 'guildstats'::regnamespace AND c.relkind = 'r'
               AND c.relname LIKE 'raw\\_%'
             ORDER BY c.relname, a.attnum",
            &[],
        )
        .expect("catalog")
    {
        let name: String = row.get(1);
        let (not_null, has_default, identity, generated): (bool, bool, bool, bool) =
            (row.get(3), row.get(4), row.get(5), row.get(6));
        let assigned = identity || generated || name == "received_at";
        tables.entry(row.get(0)).or_default().push(Column {
            required: not_null && !has_default && !assigned,
            assigned,
            has_default,
            sql_type: row.get(2),
            name,
        });
    }
    tables
}

/// What is wrong with a list of columns one side writes into `table`.
fn check_written(
    who: &str,
    table: &str,
    columns: &[Column],
    written: &[&str],
    problems: &mut Vec<String>,
) {
    let mut seen = BTreeSet::new();
    for name in written {
        if !seen.insert(*name) {
            problems.push(format!("{who}: {table}.{name} is listed twice"));
        }
        match columns.iter().find(|c| c.name == *name) {
            None => problems.push(format!(
                "{who}: {table}.{name} does not exist in sql/extension/raw_tables.sql"
            )),
            Some(c) if c.assigned => problems.push(format!(
                "{who}: {table}.{name} ({}) is filled by the database, a client must not write it",
                c.sql_type
            )),
            Some(_) => {}
        }
    }
    for c in columns.iter().filter(|c| c.required) {
        if !seen.contains(c.name.as_str()) {
            problems.push(format!(
                "{who}: {table}.{} ({}, NOT NULL without a default) is missing: every INSERT must name it",
                c.name, c.sql_type
            ));
        }
    }
}

#[test]
fn the_ingesters_catalogue_and_the_generator_match_the_installed_raw_tables() {
    let Some(cluster) = Cluster::from_env("raw_contract") else {
        return;
    };
    let db = TestDb::create(&cluster, "raw_contract");
    let tables = installed_raw_tables(&mut db.connect());
    assert!(tables.len() >= 13, "raw tables found: {:?}", tables.keys());
    let mut problems = Vec::new();

    let catalogue: BTreeSet<&str> = raw_tables::ALL.iter().map(|t| t.name).collect();
    for name in tables.keys() {
        if !catalogue.contains(name.as_str()) {
            problems.push(format!(
                "ingesters/common raw_tables::ALL lacks {name}, which raw_tables.sql creates"
            ));
        }
    }
    for table in raw_tables::ALL {
        match tables.get(table.name) {
            None => problems.push(format!(
                "ingesters/common: {} is not a raw table of raw_tables.sql",
                table.name
            )),
            Some(columns) => check_written(
                "ingesters/common contract_columns",
                table.name,
                columns,
                table.contract_columns,
                &mut problems,
            ),
        }
    }

    let synthesised: BTreeMap<&str, Table> = Table::ALL.iter().map(|t| (t.name(), *t)).collect();
    for (name, columns) in &tables {
        let Some(table) = synthesised.get(name.as_str()) else {
            if !NOT_SYNTHESISED.iter().any(|(n, _)| n == name) {
                problems.push(format!(
                    "synth: no generator for {name}; add one to synth/src/rows.rs or list it in NOT_SYNTHESISED"
                ));
            }
            continue;
        };
        let written = table.columns();
        check_written(
            "synth Table::columns",
            name,
            columns,
            written,
            &mut problems,
        );
        // The generator stands in for the ingesters: it writes every column a client may
        // write, except `source`, whose default names the ingester it imitates.
        for c in columns.iter().filter(|c| !c.assigned) {
            let left_to_default = c.name == "source" && c.has_default;
            if !left_to_default && !written.contains(&c.name.as_str()) {
                problems.push(format!(
                    "synth Table::columns: {name}.{} ({}) is never generated",
                    c.name, c.sql_type
                ));
            }
        }
        if let Some(ingested) = raw_tables::ALL.iter().find(|t| t.name == name.as_str()) {
            for c in ingested.contract_columns {
                if !written.contains(c) && *c != "source" {
                    problems.push(format!(
                        "synth Table::columns: {name}.{c} is in the ingesters' contract but not generated"
                    ));
                }
            }
        }
    }
    // The ingest role may write everything the ingesters and the generator write, whether
    // sql/ops/roles.sql grants INSERT on whole tables or column by column.
    apply_roles_script(&cluster, &db);
    let mut client = db.connect();
    let written = raw_tables::ALL
        .iter()
        .flat_map(|t| t.contract_columns.iter().map(move |c| (t.name, *c)))
        .chain(
            Table::ALL
                .iter()
                .flat_map(|t| t.columns().iter().map(move |c| (t.name(), *c))),
        )
        .collect::<BTreeSet<_>>();
    for (table, column) in written {
        let granted: Option<bool> = client
            .query_one(
                "SELECT has_column_privilege('guildstats_ingest', to_regclass('guildstats.' || $1), $2, 'INSERT')",
                &[&table, &column],
            )
            .map(|r| r.get(0))
            .unwrap_or(None);
        if granted != Some(true) {
            problems.push(format!(
                "sql/ops/roles.sql: guildstats_ingest may not INSERT {table}.{column}, which ingesters write"
            ));
        }
    }
    for (name, _) in NOT_SYNTHESISED {
        if synthesised.contains_key(name) || !tables.contains_key(name) {
            problems.push(format!(
                "NOT_SYNTHESISED lists {name}, which is generated or not a raw table"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the raw contract has drifted from sql/extension/raw_tables.sql:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_contract_check_sees_drift() {
    // The checks above must be able to fail: a made-up column, a database-filled column and a
    // missing required column are each reported.
    let column = |name: &str, required: bool, assigned: bool| Column {
        name: name.into(),
        sql_type: "bigint".into(),
        required,
        assigned,
        has_default: !required,
    };
    let columns = [
        column("ingest_id", false, true),
        column("guild_id", true, false),
        column("beat_at", true, false),
    ];
    let mut problems = Vec::new();
    check_written(
        "test",
        "raw_x",
        &columns,
        &["guild_id", "ingest_id", "no_such"],
        &mut problems,
    );
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].contains("raw_x.ingest_id (bigint) is filled by the database"));
    assert!(problems[1].contains("raw_x.no_such does not exist"));
    assert!(problems[2].contains("raw_x.beat_at (bigint, NOT NULL without a default)"));
}
