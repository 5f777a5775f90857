//! `gini(x)`, `gini_agg(x)`, `rollup(gini_state)` and the accessors of `gini_state`.
//!
//! The maths is `guildstats_engine::gini`; this module gives its step and final logic, and
//! [`state_aggregate!`] declares the rest: the type with its text form
//! `{"version":1,"values":[[value,count],...]}`, the combine function, the aggregates and their
//! SQL. The state is a concrete, versioned type (not internal), so the aggregates run in
//! parallel with a combine function alone (EXPLAIN shows Partial and Finalize Aggregate),
//! states can be stored in tables and re-aggregated, and Citus can push partial aggregation
//! down to its workers.

use crate::aggregate::{
    arg, float_result, state_aggregate, transition, with_state, AggregateState,
};
use crate::error::raise;
use guildstats_engine::gini::{GiniState, ValueError};
use guildstats_macros::pg_v1;
use pgrx::fcinfo::{pg_getarg_datum, pg_return_null};
use pgrx::pg_sys;
use pgrx::prelude::*;

impl AggregateState for GiniState {
    const SQL_TYPE: &'static str = "gini_state";
    fn to_text(&self) -> String {
        GiniState::to_text(self)
    }
    fn binary_from_text(text: &[u8]) -> Result<Vec<u8>, String> {
        let text = std::str::from_utf8(text).map_err(|e| e.to_string())?;
        GiniState::from_text(text)
            .map(|state| state.encode())
            .map_err(|e| e.to_string())
    }
    fn merge_from(&mut self, other: &Self) -> Result<(), (PgSqlErrorCode, String)> {
        self.merge(other).map_err(value_error)
    }
}

state_aggregate! {
    state: GiniState,
    sql_type: "gini_state",
    section: "gini",
    requires: ["settings"],
    comment: "A multiset of non-negative values (distinct value -> count), built by gini_agg(x) and read by gini(state), top_share(state, fraction) and median(state); rollup(state) merges states. Versioned binary form (first byte: version 1); text form {\"version\":1,\"values\":[[value,count],...]}.",
    input: gs_gini_state_in, "Input function of gini_state: reads {\"version\":1,\"values\":[[value,count],...]}.",
    output: gs_gini_state_out, "Output function of gini_state: {\"version\":1,\"values\":[[value,count],...]}, values ascending.",
    receive: gs_gini_state_recv, "Binary input function of gini_state (COPY BINARY, binary protocol); the bytes are checked.",
    send: gs_gini_state_send, "Binary output function of gini_state: the versioned binary form.",
    combine: "gini_combine" = gs_gini_combine, "Internal: merges two gini states (counts add up). Combine function of the gini aggregates (parallel plans) and transition function of rollup(gini_state).",
    rollup: "Merges gini states (for example daily states into a month) into one, exactly: gini(rollup(s)) equals gini over all the underlying values.",
    functions: [
        "gini_trans"("gini_state, bigint") -> "gini_state" = gs_gini_trans_int8, "IMMUTABLE PARALLEL SAFE",
            "Internal: transition function of gini(bigint) and gini_agg(bigint). Errors on negative values; skips NULL.";
        "gini_trans"("gini_state, double precision") -> "gini_state" = gs_gini_trans_float8, "IMMUTABLE PARALLEL SAFE",
            "Internal: transition function of gini(double precision) and gini_agg(double precision). Errors on negative, NaN or infinite values; skips NULL.";
        "gini_trans"("gini_state, numeric") -> "gini_state" = gs_gini_trans_numeric, "IMMUTABLE PARALLEL SAFE",
            "Internal: transition function of gini(numeric) and gini_agg(numeric); values are read as double precision (whole numbers up to 2^53 stay exact). Errors on negative or NaN values; skips NULL.";
        "gini"("gini_state") -> "double precision" = gs_gini_final, "IMMUTABLE STRICT PARALLEL SAFE",
            "Gini coefficient of the values in the state: sum over pairs of |x_i - x_j| divided by 2 n^2 mean (0 = all equal, (n-1)/n = one holder of everything). NULL when the state is empty or its values sum to 0. Example: SELECT guildstats.gini(guildstats.gini_agg(balance)) FROM balances;";
        "top_share"("gini_state, fraction double precision") -> "double precision" = gs_gini_top_share, "IMMUTABLE STRICT PARALLEL SAFE",
            "Share of the total held by the largest ceil(fraction * n) values, fraction between 0 and 1 (top_share(s, 0.01): what the top 1 % hold). NULL when the values sum to 0.";
        "median"("gini_state") -> "double precision" = gs_gini_median, "IMMUTABLE STRICT PARALLEL SAFE",
            "Median of the values in the state (mean of the two middle values for an even count, like percentile_cont(0.5)). NULL when the state is empty.";
    ],
    aggregates: [
        "gini"("bigint") = "gini_trans" ["gini"],
            "Exact Gini coefficient of non-negative values (0 = perfect equality, towards 1 = one holder has everything). NULLs are skipped; no values or an all-zero total give NULL; a negative value is an error. Runs in parallel. Example: SELECT guildstats.gini(balance) FROM balances;";
        "gini"("double precision") = "gini_trans" ["gini"],
            "Exact Gini coefficient of non-negative finite values; see gini(bigint). Whole values up to 2^53 are counted exactly.";
        "gini"("numeric") = "gini_trans" ["gini"],
            "Gini coefficient of non-negative values; see gini(bigint). Values are read as double precision (whole numbers up to 2^53 exactly).";
        "gini_agg"("bigint") = "gini_trans",
            "The values as a gini_state, for several accessors over one scan (gini, top_share, median) or for storing and re-aggregating with rollup(). NULL when every value is NULL.";
        "gini_agg"("double precision") = "gini_trans",
            "The values as a gini_state; see gini_agg(bigint).";
        "gini_agg"("numeric") = "gini_trans",
            "The values as a gini_state (read as double precision); see gini_agg(bigint).";
    ],
}

fn value_error(e: ValueError) -> (PgSqlErrorCode, String) {
    let code = match e {
        ValueError::TooMany => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        _ => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
    };
    (code, e.to_string())
}

fn add(result: Result<(), ValueError>) {
    if let Err(e) = result {
        let (code, message) = value_error(e);
        raise(code, message)
    }
}

/// A NULL value before any other keeps the state NULL, so that `gini_agg` over only NULLs is
/// NULL (as its comment says, and as `sum` is) rather than an empty state.
unsafe fn nothing_yet(fcinfo: pg_sys::FunctionCallInfo) -> bool {
    pg_getarg_datum(fcinfo, 0).is_none() && pg_getarg_datum(fcinfo, 1).is_none()
}

/// `gini_trans(gini_state, bigint)`.
#[pg_v1]
pub unsafe extern "C-unwind" fn gs_gini_trans_int8(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    if nothing_yet(fcinfo) {
        return pg_return_null(fcinfo);
    }
    let value = pg_getarg_datum(fcinfo, 1).map(|d| d.value() as i64);
    transition(fcinfo, "gini_trans", |state: &mut GiniState| {
        if let Some(v) = value {
            add(state.add_i64(v));
        }
    })
}

/// `gini_trans(gini_state, double precision)`.
#[pg_v1]
pub unsafe extern "C-unwind" fn gs_gini_trans_float8(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    if nothing_yet(fcinfo) {
        return pg_return_null(fcinfo);
    }
    let value = pg_getarg_datum(fcinfo, 1).map(|d| f64::from_bits(d.value() as u64));
    transition(fcinfo, "gini_trans", |state: &mut GiniState| {
        if let Some(v) = value {
            add(state.add_f64(v));
        }
    })
}

/// `gini_trans(gini_state, numeric)`: numeric values are read as double precision (exact for
/// whole numbers up to 2^53).
#[pg_v1]
pub unsafe extern "C-unwind" fn gs_gini_trans_numeric(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    if nothing_yet(fcinfo) {
        return pg_return_null(fcinfo);
    }
    let value = pg_getarg_datum(fcinfo, 1).map(|d| {
        pgrx::fcinfo::direct_function_call::<f64>(pg_sys::numeric_float8, &[Some(d)])
            .unwrap_or(f64::NAN)
    });
    transition(fcinfo, "gini_trans", |state: &mut GiniState| {
        if let Some(v) = value {
            add(state.add_f64(v));
        }
    })
}

/// `gini(gini_state)`: also the final function of `gini(x)`.
#[pg_v1]
pub unsafe extern "C-unwind" fn gs_gini_final(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let g = with_state(arg(fcinfo, 0), |s: &GiniState| s.gini());
    float_result(fcinfo, g)
}

/// `top_share(gini_state, fraction)`.
#[pg_v1]
pub unsafe extern "C-unwind" fn gs_gini_top_share(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let fraction = f64::from_bits(arg(fcinfo, 1).value() as u64);
    let share = with_state(arg(fcinfo, 0), |s: &GiniState| s.top_share(fraction));
    match share {
        Ok(v) => float_result(fcinfo, v),
        Err(e) => raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, e),
    }
}

/// `median(gini_state)`.
#[pg_v1]
pub unsafe extern "C-unwind" fn gs_gini_median(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let m = with_state(arg(fcinfo, 0), |s: &GiniState| s.median());
    float_result(fcinfo, m)
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn one(sql: &str) -> Option<f64> {
        Spi::get_one::<f64>(sql).expect("SPI")
    }

    #[pg_test]
    fn hand_worked_values() {
        assert_eq!(
            one("SELECT guildstats.gini(x) FROM (VALUES (5::bigint), (5), (5)) v(x)"),
            Some(0.0)
        );
        assert_eq!(
            one("SELECT guildstats.gini(x) FROM (VALUES (0::bigint), (0), (0), (100)) v(x)"),
            Some(0.75)
        );
        assert_eq!(
            one("SELECT guildstats.gini(x) FROM (VALUES (1.0::float8), (3.0)) v(x)"),
            Some(0.25)
        );
        assert_eq!(
            one("SELECT guildstats.gini(x) FROM (VALUES (0::numeric), (0), (1), (1)) v(x)"),
            Some(0.5)
        );
        assert_eq!(
            one("SELECT guildstats.gini(x) FROM (VALUES (NULL::bigint), (0)) v(x)"),
            None
        );
        assert_eq!(
            one("SELECT guildstats.gini(x) FROM (VALUES (NULL::bigint)) v(x)"),
            None
        );
    }

    #[pg_test(
        error = "gini is undefined for negative values (got -3); filter them out or map them to 0 first"
    )]
    fn negative_values_are_an_error() {
        let _ = one("SELECT guildstats.gini(x) FROM (VALUES (1::bigint), (-3)) v(x)");
    }

    #[pg_test]
    fn state_accessors_and_rollup() {
        let row = Spi::get_three::<f64, f64, f64>(
            "WITH parts AS (
                 SELECT guildstats.gini_agg(x) AS s FROM generate_series(0, 99) x GROUP BY x % 3)
             SELECT guildstats.gini(guildstats.rollup(s)),
                    guildstats.median(guildstats.rollup(s)),
                    guildstats.top_share(guildstats.rollup(s), 0.5)
             FROM parts",
        )
        .expect("SPI");
        let direct = one("SELECT guildstats.gini(x::bigint) FROM generate_series(0, 99) x");
        assert_eq!(row.0, direct);
        assert_eq!(row.1, Some(49.5));
        // top half: 50..99 sum 3725 of 4950
        assert_eq!(row.2, Some(3725.0 / 4950.0));
    }

    #[pg_test]
    fn states_survive_a_table_and_text() {
        Spi::run(
            "CREATE TEMP TABLE gs (s guildstats.gini_state);
             INSERT INTO gs SELECT guildstats.gini_agg(x) FROM generate_series(1, 1000) x;
             INSERT INTO gs SELECT guildstats.gini_agg(x * 0.5::float8) FROM generate_series(1, 10) x;",
        )
        .expect("store");
        let same = Spi::get_one::<bool>(
            "SELECT bool_and(s::text::guildstats.gini_state::text = s::text) FROM gs",
        )
        .expect("SPI");
        assert_eq!(same, Some(true));
        let text = Spi::get_one::<String>(
            "SELECT guildstats.gini_agg(x)::text FROM (VALUES (0::bigint), (0), (7)) v(x)",
        )
        .expect("SPI");
        assert_eq!(
            text.as_deref(),
            Some("{\"version\":1,\"values\":[[0,2],[7,1]]}")
        );
    }
}
