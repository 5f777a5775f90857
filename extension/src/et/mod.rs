//! ET:Legacy in SQL: the round parser, the round-2 differential and the linking of rounds
//! into matches and sessions. The algorithms are in `guildstats_engine::et`; this module
//! converts between them and SQL values. The import itself (`import_et_rounds()`) is SQL in
//! `sql/extension/et.sql`, which calls these functions.

mod columns;
mod import;
mod json;
pub(crate) mod link;

use crate::jsonb::JsonbBytes;
use guildstats_engine::et::{self as engine, color::strip_color_codes};
use pgrx::prelude::*;

use crate::error::raise;

/// `et_clean_name(name)`: the player name without ET:Legacy colour codes.
#[pg_extern(immutable, parallel_safe, strict)]
fn et_clean_name(name: &str) -> String {
    strip_color_codes(name)
}

/// `et_parse_round(file_name, content)`: the parsed file as one jsonb document, writing nothing.
/// A file that cannot be parsed raises an error naming the file, the line and the problem.
#[pg_extern(immutable, parallel_safe, strict)]
pub(crate) fn et_parse_round(file_name: &str, content: &[u8]) -> JsonbBytes {
    match engine::parse_round(file_name, content) {
        Ok(round) => encoded(file_name, json::round(&round)),
        Err(error) => raise(PgSqlErrorCode::ERRCODE_DATA_EXCEPTION, error.to_string()),
    }
}

/// The jsonb, or an error naming the file (a player name holding a NUL character, which jsonb
/// cannot store).
fn encoded(file_name: &str, jsonb: Result<JsonbBytes, String>) -> JsonbBytes {
    jsonb.unwrap_or_else(|error| {
        raise(
            PgSqlErrorCode::ERRCODE_UNTRANSLATABLE_CHARACTER,
            format!("{file_name}: {error}"),
        )
    })
}

/// `_et_round2_players(r1 name, r1 content, r2 name, r2 content)`: the round-2 players with this
/// round's values (the differential) and the file's own cumulative values, as jsonb.
#[pg_extern(immutable, parallel_safe, strict)]
pub(crate) fn _et_round2_players(
    r1_file_name: &str,
    r1_content: &[u8],
    r2_file_name: &str,
    r2_content: &[u8],
) -> JsonbBytes {
    let parse = |name: &str, content: &[u8]| {
        engine::parse_round(name, content).unwrap_or_else(|error| {
            raise(PgSqlErrorCode::ERRCODE_DATA_EXCEPTION, error.to_string())
        })
    };
    let r1 = parse(r1_file_name, r1_content);
    let r2 = parse(r2_file_name, r2_content);
    encoded(
        r2_file_name,
        json::round2_players(&engine::round2_differential(&r1, &r2)),
    )
}

extension_sql!(
    r#"
COMMENT ON FUNCTION et_clean_name(text) IS
    'The ET:Legacy name without colour codes: every ^ followed by another character than ^ is dropped with that character. Example: SELECT guildstats.et_clean_name(''^1Red^7Fox'') returns RedFox.';
COMMENT ON FUNCTION et_parse_round(text, bytea) IS
    'Parses one ET:Legacy stats file (c0rnp0rn format, Lua versions with 33, 36, 37 or 38 extended fields) without writing anything: a jsonb document with the file name facts, the header, every player with weapons and named extended fields (absent fields are null, never 0), and warnings (bytes that were not UTF-8, replaced by U+FFFD). Raises an error naming the file, line and problem when the file is malformed, and also the player, field and value when a number lies outside its documented range (counts 0 to 2147483647, team 1 to 3, header round 1 or 2 and the file name''s, defender and winner 1 or 2). Example: SELECT guildstats.et_parse_round(file_name, content) -> ''header'' FROM guildstats.raw_et_stats_files;';
COMMENT ON FUNCTION _et_round2_players(text, bytea, text, bytea) IS
    'Internal: the round-2 differential of a paired round 1 and round 2, as jsonb (players with this round''s values, and the file''s cumulative values).';
"#,
    name = "et_function_comments",
    requires = [et_clean_name, et_parse_round, _et_round2_players]
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn clean_name_strips_every_colour_code() {
        let clean =
            Spi::get_one::<String>("SELECT guildstats.et_clean_name('^D/^4/^?/^zM.^PDemonslayer')")
                .expect("SPI");
        assert_eq!(clean.as_deref(), Some("///M.Demonslayer"));
    }

    #[pg_test]
    fn header_only_file_parses_to_no_players() {
        let players = Spi::get_one::<i64>(
            "SELECT jsonb_array_length(guildstats.et_parse_round(
                 '2024-09-12-174949-supply-round-2.txt',
                 convert_to(E'^1srv\\\\supply\\\\legacy3\\\\2\\\\1\\\\1\\\\15:00\\\\15:00\\n', 'UTF8')) -> 'players')",
        )
        .expect("SPI");
        assert_eq!(players, Some(0));
    }

    const ROUND1: &str = "^1Demo ^7Server\\supply\\legacy3\\1\\1\\2\\10:00\\7:30
AAAA0001\\^1Fox\\0\\2\\16 30 100 5 3 2 \t1200\t900\t0\t0\t2\t0\t0\t0\t90.0\t40\t3\t1\t1\t0\t1\t0\t0\t0\t0\t0\t100\t0.0\t7.5\t0.0\t10.0\t0.8\t1.7\t2\t30\t1\t0\t0\t0\t0\t0\t0\t0\t0
BBBB0002\\^4O^7wl\\0\\1\\32 20 80 3 5 1 \t800\t1100\t0\t0\t1\t0\t0\t0\t85.0\t30\t2\t1\t1\t0\t1\t0\t0\t0\t0\t0\t80\t0.0\t7.5\t0.0\t10.0\t1.2\t0.6\t2\t30\t1\t0\t0\t0\t0\t0\t0\t0\t0
";
    const ROUND2: &str = "^1Demo ^7Server\\supply\\legacy3\\2\\1\\1\\7:30\\7:30
AAAA0001\\^1Fox\\1\\1\\16 55 180 9 6 4 \t2100\t1700\t0\t0\t3\t0\t0\t0\t88.0\t35\t2\t1\t1\t0\t1\t0\t0\t0\t0\t0\t180\t0.0\t15.0\t0.0\t10.0\t1.8\t1.5\t2\t30\t1\t0\t0\t0\t0\t0\t0\t0\t0
BBBB0002\\^4O^7wl\\1\\2\\32 45 170 7 9 2 \t1700\t2000\t0\t0\t2\t0\t0\t0\t80.0\t25\t2\t1\t1\t0\t1\t0\t0\t0\t0\t0\t170\t0.0\t15.0\t0.0\t10.0\t2.5\t0.8\t2\t30\t1\t0\t0\t0\t0\t0\t0\t0\t0
";

    #[pg_test]
    fn parsed_rounds_are_the_jsonb_that_jsonb_in_makes_of_their_text() {
        let r1_name = "2026-03-06-210500-supply-round-1.txt";
        let r2_name = "2026-03-06-211400-supply-round-2.txt";
        let r1 = super::et_parse_round(r1_name, ROUND1.as_bytes());
        assert!(r1.is_what_jsonb_in_makes());
        assert!(super::et_parse_round(r2_name, ROUND2.as_bytes()).is_what_jsonb_in_makes());
        let r2 = super::_et_round2_players(r1_name, ROUND1.as_bytes(), r2_name, ROUND2.as_bytes());
        assert!(r2.is_what_jsonb_in_makes());
        let dpm = Spi::get_one_with_args::<String>(
            "SELECT ($1 #>> '{players,0,dpm}') || ' ' || ($1 #>> '{players,0,kills}')",
            &[r1.into()],
        )
        .expect("SPI");
        assert_eq!(dpm.as_deref(), Some("160.0 5"));
    }

    #[pg_test]
    fn replaced_bytes_are_listed_as_warnings() {
        let warnings = Spi::get_one::<String>(
            "SELECT guildstats.et_parse_round('2024-09-12-174949-supply-round-2.txt',
                 '\\x73e9'::bytea || convert_to(E'\\\\supply\\\\legacy3\\\\2\\\\1\\\\1\\\\15:00\\\\15:00\\n', 'UTF8'))
             ->> 'warnings'",
        )
        .expect("SPI");
        assert_eq!(
            warnings.as_deref(),
            Some("[\"2024-09-12-174949-supply-round-2.txt: not valid UTF-8: 1 invalid byte sequence(s) replaced by U+FFFD, the first on line 1\"]")
        );
    }

    #[pg_test(
        error = "2026-03-06-210500-supply-round-1.txt line 1: header winner team 7 is out of range (1 to 2)"
    )]
    fn a_number_out_of_range_is_an_error_naming_it() {
        Spi::run(
            "SELECT guildstats.et_parse_round('2026-03-06-210500-supply-round-1.txt',
                 convert_to(E's\\\\supply\\\\legacy3\\\\1\\\\1\\\\7\\\\10:00\\\\7:30\\n', 'UTF8'))",
        )
        .expect("SPI");
    }

    #[pg_test(error = "not-a-stats-file.txt: bad file name: expected '-round-<N>' before .txt")]
    fn a_bad_file_name_is_an_error_naming_the_file() {
        Spi::run("SELECT guildstats.et_parse_round('not-a-stats-file.txt', 'x'::bytea)")
            .expect("SPI");
    }

    // The ~50 columns of et_player_rounds are written in three places besides the table: the
    // batch import's positional INSERT (columns.rs), the file-by-file path's jsonb_to_recordset
    // (_et_store_players in et.sql) and the parser's jsonb keys (json.rs). These tests hold each
    // to the table as installed, so that a column added, moved or retyped in one place only
    // fails here instead of storing values in the wrong column.

    /// (name, type, oid of the array type) of each column, in table order.
    fn table_columns(table: &str) -> Vec<(String, String, pg_sys::Oid)> {
        Spi::connect(|client| -> Result<Vec<_>, pgrx::spi::Error> {
            client
                .select(
                    &format!(
                        "SELECT a.attname::text, format_type(a.atttypid, NULL), t.typarray
                         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                         WHERE a.attrelid = 'guildstats.{table}'::regclass
                           AND a.attnum > 0 AND NOT a.attisdropped
                         ORDER BY a.attnum"
                    ),
                    None,
                    &[],
                )?
                .map(|row| {
                    Ok((
                        row.get::<String>(1)?.unwrap_or_default(),
                        row.get::<String>(2)?.unwrap_or_default(),
                        row.get::<pg_sys::Oid>(3)?.unwrap_or(pg_sys::InvalidOid),
                    ))
                })
                .collect()
        })
        .expect("SPI")
    }

    /// The element types of `unnest($n::type[])`, in order.
    fn unnest_casts(sql: &str) -> Vec<String> {
        sql.split("unnest($")
            .skip(1)
            .filter_map(|s| {
                let cast = &s[s.find("::")? + 2..];
                Some(cast[..cast.find("[]")?].to_string())
            })
            .collect()
    }

    fn check_positional_insert(
        table: &str,
        (sql, args): (&str, Vec<pgrx::datum::DatumWithOid<'static>>),
    ) {
        let columns = table_columns(table);
        let casts = unnest_casts(sql);
        assert_eq!(casts.len(), columns.len(), "{table}: one unnest per column");
        assert_eq!(
            args.len(),
            columns.len(),
            "{table}: one argument per column"
        );
        for (i, ((name, sql_type, array_oid), cast)) in columns.iter().zip(&casts).enumerate() {
            assert_eq!(
                cast,
                sql_type,
                "{table}.{name} (${}) is cast to {cast}",
                i + 1
            );
            assert_eq!(
                args[i].oid(),
                *array_oid,
                "{table}.{name} (${}): the Rust column is not a {sql_type} array",
                i + 1
            );
        }
    }

    #[pg_test]
    fn the_batch_insert_matches_the_tables_column_by_column() {
        check_positional_insert(
            "et_player_rounds",
            super::columns::PlayerColumns::default().insert(),
        );
        check_positional_insert(
            "et_weapon_rounds",
            super::columns::WeaponColumns::default().insert(),
        );
    }

    /// `(name type, ...)` after `marker` in `text`, split at top-level commas.
    fn column_definitions(text: &str, marker: &str) -> Vec<(String, String)> {
        let start = text.find(marker).expect("marker") + marker.len();
        let end = start + text[start..].find(')').expect("closing parenthesis");
        text[start..end]
            .split(',')
            .map(|d| {
                let d = d.split_whitespace().collect::<Vec<_>>().join(" ");
                let (name, sql_type) = d.split_once(' ').expect("name and type");
                (name.trim_matches('"').to_string(), sql_type.to_string())
            })
            .collect()
    }

    /// The names `_et_store_players` reads from each player's jsonb, with their types, in the
    /// order it stores them.
    fn store_players_record() -> Vec<(String, String)> {
        let body = Spi::get_one::<String>(
            "SELECT prosrc FROM pg_proc
             WHERE oid = 'guildstats._et_store_players(jsonb)'::regprocedure",
        )
        .expect("SPI")
        .expect("_et_store_players");
        let record = column_definitions(&body, "jsonb_to_recordset(players) AS p(");
        let select = &body[body.find("SELECT p.").expect("select list") + "SELECT".len()
            ..body.find("FROM jsonb_to_recordset(players)").expect("from")];
        let stored: Vec<String> = select
            .split(',')
            .map(|c| {
                c.trim()
                    .trim_start_matches("p.")
                    .trim_matches('"')
                    .to_string()
            })
            .collect();
        let declared: Vec<String> = record.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(
            stored, declared,
            "_et_store_players stores what it declares, in order"
        );
        record
    }

    #[pg_test]
    fn the_file_path_stores_every_column_with_its_type() {
        let record = store_players_record();
        let columns = table_columns("et_player_rounds");
        assert_eq!(
            record.len(),
            columns.len(),
            "one record column per table column"
        );
        for ((key, key_type), (name, sql_type, _)) in record.iter().zip(&columns) {
            // The parser calls the values' basis "values", like the file format does.
            let expected = if name == "values_basis" {
                "values"
            } else {
                name
            };
            assert_eq!(key, expected, "_et_store_players reads {key} into {name}");
            assert_eq!(key_type, sql_type, "{name}: read as {key_type}");
        }
    }

    #[pg_test]
    fn the_parser_writes_every_key_the_file_path_reads() {
        let round =
            super::et_parse_round("2026-03-06-210500-supply-round-1.txt", ROUND1.as_bytes());
        let keys = Spi::get_one_with_args::<Vec<String>>(
            "SELECT array_agg(k) FROM jsonb_object_keys($1 #> '{players,0}') k",
            &[round.into()],
        )
        .expect("SPI")
        .unwrap_or_default();
        // round_id and file_stats are added by _et_player_rows, not the parser.
        let missing: Vec<String> = store_players_record()
            .into_iter()
            .map(|(name, _)| name)
            .filter(|n| n != "round_id" && n != "file_stats" && !keys.contains(n))
            .collect();
        assert!(
            missing.is_empty(),
            "keys the parser does not write: {missing:?}"
        );
    }
}
