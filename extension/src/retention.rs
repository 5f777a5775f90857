//! `retention_agg(user_id, cohort_at, activity_at, period)` -> `retention_state`,
//! `rollup(retention_state)`, `retention_rows(state, max_offset)`, and the guild-level `retention(...)` /
//! `retention_dn(...)` functions of `sql/extension/retention.sql`.
//!
//! The maths is `guildstats_engine::retention`. Like `gini_state`, the state is a concrete
//! type declared by [`state_aggregate!`]: its text form is `\x` and the binary form in hex
//! (like bytea), and its binary form is also castable to bytea.

use crate::aggregate::{state_aggregate, transition, AggregateState};
use crate::error::raise;
use guildstats_engine::retention::{Period, RetentionState, RowsError, DEFAULT_MAX_OFFSET};
use guildstats_macros::pg_v1;
use pgrx::datum::Date;
use pgrx::fcinfo::pg_getarg_datum;
use pgrx::pg_sys;
use pgrx::prelude::*;

extension_sql_file!(
    "../../sql/extension/retention.sql",
    name = "retention",
    // retention() also reads the voice rollup and the ET:Legacy rounds and GUID links.
    requires = [
        "retention_state",
        _retention_rows_bounded,
        "rollups",
        "et_reports"
    ]
);

impl AggregateState for RetentionState {
    const SQL_TYPE: &'static str = "retention_state";
    fn merge_from(&mut self, other: &Self) -> Result<(), (PgSqlErrorCode, String)> {
        self.merge(other)
            .map_err(|e| (PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, e))
    }
}

state_aggregate! {
    state: RetentionState,
    sql_type: "retention_state",
    section: "retention_state",
    requires: ["gini"],
    comment: "Users with their cohort period and the periods they were active in (day, week or month), built by retention_agg() and read by retention_rows(); rollup() merges states. Versioned binary form (first byte: version 1).",
    input: gs_retention_state_in, "Input function of retention_state: \\x and the versioned binary form in hex; checked.",
    output: gs_retention_state_out, "Output function of retention_state: \\x and the versioned binary form in hex.",
    receive: gs_retention_state_recv, "Binary input function of retention_state; the bytes are checked.",
    send: gs_retention_state_send, "Binary output function of retention_state: the versioned binary form.",
    cast_to_bytea: "bytea",
    combine: "retention_combine" = gs_retention_combine, "Internal: merges two retention states (union of users and periods). Combine function of retention_agg() and transition function of rollup(retention_state).",
    rollup: "Merges retention states (for example one per activity source or per month of input) into one, exactly.",
    functions: [
        "retention_trans"("retention_state, bigint, timestamp, timestamp, text") -> "retention_state" = gs_retention_trans, "IMMUTABLE PARALLEL SAFE",
            "Internal: transition function of retention_agg().";
    ],
    aggregates: [
        "retention_agg"("user_id bigint, cohort_at timestamp, activity_at timestamp, period text") = "retention_trans",
            "Retention cohorts from (user, cohort time, activity time) rows, times as local timestamps (use AT TIME ZONE). A user''s cohort period is the earliest non-NULL cohort_at, else the period of their first activity; a row with activity_at NULL only places the user in a cohort. period: day, week (Monday first) or month. Read with retention_rows(). Example: SELECT r.* FROM (SELECT guildstats.retention_agg(user_id, NULL, activity_at AT TIME ZONE ''UTC'', ''week'') s FROM guildstats.activity_events) a, guildstats.retention_rows(a.s) r;";
    ],
}

/// A `timestamp` argument as microseconds since 2000-01-01; NULL and infinities are `None`.
unsafe fn timestamp_arg(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> Option<i64> {
    pg_getarg_datum(fcinfo, n)
        .map(|d| d.value() as i64)
        .filter(|&us| us != i64::MIN && us != i64::MAX)
}

/// `retention_trans(state, user_id, cohort_at, activity_at, period)`.
#[pg_v1]
pub unsafe extern "C-unwind" fn gs_retention_trans(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let user = pg_getarg_datum(fcinfo, 1).map(|d| d.value() as i64);
    let cohort = timestamp_arg(fcinfo, 2);
    let activity = timestamp_arg(fcinfo, 3);
    let Some(period) = pg_getarg_datum(fcinfo, 4) else {
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "retention_agg: period must not be NULL",
        )
    };
    let text = pg_sys::pg_detoast_datum_packed(period.cast_mut_ptr());
    let period = pgrx::varlena::text_to_rust_str(text)
        .map_err(|e| e.to_string())
        .and_then(Period::parse)
        .unwrap_or_else(|e| raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, e));
    transition(fcinfo, "retention_trans", |state: &mut RetentionState| {
        if let Some(user) = user {
            if let Err(e) = state.add(user, cohort, activity, period) {
                raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, e)
            }
        }
    })
}

/// One row of `retention_rows` (the `#[pg_extern]`s spell out the same tuple with names).
type CohortRow = (Date, i64, i32, i64, f64, i64, f64);

/// The rows of a state given as bytes: every error (a forged state, a `max_offset` out of
/// range, a table past `MAX_ROWS`) is raised before the first row.
fn cohort_rows(state: &[u8], max_offset: i32) -> TableIterator<'static, CohortRow> {
    let state = RetentionState::decode(state)
        .unwrap_or_else(|e| raise(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, e));
    let rows = state.rows(max_offset).unwrap_or_else(|e| {
        let code = match e {
            RowsError::MaxOffset(_) => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            RowsError::TooManyRows(_) => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        };
        raise(code, e.to_string())
    });
    TableIterator::new(rows.map(|r| {
        (
            // SAFETY: decoding keeps periods within the range of timestamps, whose days are
            // valid dates.
            unsafe { Date::from_pg_epoch_days(r.cohort_start_day as i32) },
            r.cohort_size as i64,
            r.period_offset,
            r.retained as i64,
            r.rate(),
            r.retained_or_later as i64,
            r.rate_or_later(),
        )
    }))
}

/// Internal: the cohort table of a state (given as its bytes), offsets up to `max_offset`; see
/// `retention_rows`.
#[pg_extern(immutable, strict, parallel_safe, name = "_retention_rows")]
#[allow(clippy::type_complexity)]
fn _retention_rows_bounded(
    state: &[u8],
    max_offset: i32,
) -> TableIterator<
    'static,
    (
        name!(cohort_start, Date),
        name!(cohort_size, i64),
        name!(period_offset, i32),
        name!(retained, i64),
        name!(rate, f64),
        name!(retained_or_later, i64),
        name!(rate_or_later, f64),
    ),
> {
    cohort_rows(state, max_offset)
}

/// 0.1.0's `_retention_rows(bytea)`: not in the 0.2.0 schema, but its C symbol must stay while
/// a database still runs 0.1.0's SQL against this library (before `ALTER EXTENSION UPDATE`).
#[pg_extern(immutable, strict, parallel_safe, sql = false)]
#[allow(clippy::type_complexity)]
fn _retention_rows(
    state: &[u8],
) -> TableIterator<
    'static,
    (
        name!(cohort_start, Date),
        name!(cohort_size, i64),
        name!(period_offset, i32),
        name!(retained, i64),
        name!(rate, f64),
        name!(retained_or_later, i64),
        name!(rate_or_later, f64),
    ),
> {
    cohort_rows(state, DEFAULT_MAX_OFFSET)
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::pg_sys;
    use pgrx::prelude::*;

    #[pg_test]
    fn cohort_table_from_triples() {
        let cells = Spi::get_one::<String>(
            "SELECT string_agg(format('%s/%s/%s/%s/%s', cohort_start, cohort_size, period_offset, retained, retained_or_later), ' ' ORDER BY cohort_start, period_offset)
             FROM (SELECT guildstats.retention_agg(u, NULL, a::timestamp, 'day') AS s
                   FROM (VALUES (1, '2026-03-01 10:00'), (1, '2026-03-02 10:00'), (1, '2026-03-04 10:00'),
                                (2, '2026-03-01 23:00'), (2, '2026-03-03 01:00'), (3, '2026-03-02 09:00')) v(u, a)) x,
                  guildstats.retention_rows(x.s)",
        )
        .expect("SPI");
        assert_eq!(
            cells.as_deref(),
            Some("2026-03-01/2/0/2/2 2026-03-01/2/1/1/2 2026-03-01/2/2/1/2 2026-03-01/2/3/1/1 2026-03-02/1/0/1/1 2026-03-02/1/1/0/0 2026-03-02/1/2/0/0")
        );
    }

    /// A value of `type_name` read through its binary input function (what COPY BINARY and
    /// the binary protocol call), shown through its text output.
    fn receive(type_name: &str, bytes: &[u8]) -> String {
        let oid = Spi::get_one::<pg_sys::Oid>(&format!("SELECT '{type_name}'::regtype::oid"))
            .expect("SPI")
            .expect("type");
        // SAFETY: a buffer of our bytes, given to the type's own receive and output functions.
        unsafe {
            let (mut recv, mut ioparam) = (pg_sys::Oid::INVALID, pg_sys::Oid::INVALID);
            pg_sys::getTypeBinaryInputInfo(oid, &mut recv, &mut ioparam);
            let buf = pg_sys::makeStringInfo();
            pg_sys::appendBinaryStringInfo(buf, bytes.as_ptr().cast(), bytes.len() as i32);
            let datum = pg_sys::OidReceiveFunctionCall(recv, buf, ioparam, -1);
            let (mut out, mut varlena) = (pg_sys::Oid::INVALID, false);
            pg_sys::getTypeOutputInfo(oid, &mut out, &mut varlena);
            std::ffi::CStr::from_ptr(pg_sys::OidOutputFunctionCall(out, datum))
                .to_string_lossy()
                .into_owned()
        }
    }

    #[pg_test]
    fn binary_input_reads_honest_states() {
        // Day 0 and day 3 of user 1, as the aggregate encodes them.
        assert_eq!(
            receive("guildstats.retention_state", &[1, 0, 0, 1, 2, 2, 0, 6]),
            "\\x0100000102020006"
        );
        assert_eq!(
            receive("guildstats.gini_state", &[1, 0, 1, 0, 7, 2]),
            "{\"version\":1,\"values\":[[7,2]]}"
        );
    }

    #[pg_test(error = "invalid retention_state: period out of the range of timestamps")]
    fn binary_input_refuses_the_forged_retention_state() {
        // Weeks 0 and 2^31 - 1 of one user: the state of issue 10.
        receive(
            "guildstats.retention_state",
            &[1, 1, 0, 1, 2, 2, 0, 0xfe, 0xff, 0xff, 0xff, 0x0f],
        );
    }

    #[pg_test(error = "invalid gini_state: entry count larger than the data")]
    fn binary_input_refuses_a_gini_state_with_counts_its_bytes_cannot_hold() {
        receive(
            "guildstats.gini_state",
            &[1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0],
        );
    }
}
