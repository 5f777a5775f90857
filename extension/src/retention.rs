//! `retention_agg(user_id, cohort_at, activity_at, period)` -> `retention_state`,
//! `rollup(retention_state)`, `retention_rows(state, max_offset)`, and the guild-level `retention(...)` /
//! `retention_dn(...)` functions of `sql/extension/retention.sql`.
//!
//! The maths is `guildstats_engine::retention`. Like `gini_state`, the state is a concrete
//! varlena type updated in place as an expanded object while the aggregate runs (see
//! `crate::expanded`), with a combine function for parallel plans.

use crate::error::raise;
use crate::expanded::{flat_datum, methods_for, update, with_state, ExpandedState};
use guildstats_engine::retention::{Period, RetentionState, RowsError, DEFAULT_MAX_OFFSET};
use pgrx::datum::Date;
use pgrx::fcinfo::{pg_getarg_datum, pg_return_null};
use pgrx::pg_sys;
use pgrx::prelude::*;

extension_sql_file!(
    "../../sql/extension/retention.sql",
    name = "retention",
    requires = ["gini", _retention_rows_bounded]
);

static RETENTION_METHODS: pg_sys::ExpandedObjectMethods = methods_for::<RetentionState>();

impl ExpandedState for RetentionState {
    const CONTEXT_NAME: &'static std::ffi::CStr = c"guildstats retention_state";
    fn methods() -> &'static pg_sys::ExpandedObjectMethods {
        &RETENTION_METHODS
    }
    fn encode(&self) -> Vec<u8> {
        RetentionState::encode(self)
    }
    fn decode(bytes: &[u8]) -> Result<Self, String> {
        RetentionState::decode(bytes)
    }
}

crate::v1_info!(
    pg_finfo_gs_retention_state_in,
    pg_finfo_gs_retention_state_out,
    pg_finfo_gs_retention_state_recv,
    pg_finfo_gs_retention_state_send,
    pg_finfo_gs_retention_trans,
    pg_finfo_gs_retention_combine,
);

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `retention_state_in(cstring)`: `\x` and the binary form in hex (like bytea).
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn gs_retention_state_in(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let Some(arg) = pg_getarg_datum(fcinfo, 0) else {
        return pg_return_null(fcinfo);
    };
    let text = std::ffi::CStr::from_ptr(arg.cast_mut_ptr::<std::ffi::c_char>()).to_bytes();
    let bad = || -> ! {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
            "invalid retention_state: expected \\x followed by hex digits",
        )
    };
    let Some(hex) = text.strip_prefix(b"\\x") else {
        bad()
    };
    if hex.len() % 2 != 0 {
        bad()
    }
    let digit = |c: u8| -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => bad(),
        }
    };
    let bytes: Vec<u8> = hex
        .chunks_exact(2)
        .map(|p| digit(p[0]) << 4 | digit(p[1]))
        .collect();
    if let Err(e) = RetentionState::decode(&bytes) {
        raise(PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION, e)
    }
    flat_datum(&bytes)
}

/// `retention_state_out(retention_state)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn gs_retention_state_out(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let Some(arg) = pg_getarg_datum(fcinfo, 0) else {
        return pg_return_null(fcinfo);
    };
    let bytes = with_state(arg, |s: &RetentionState| s.encode());
    let out = pg_sys::palloc(bytes.len() * 2 + 3).cast::<u8>();
    *out = b'\\';
    *out.add(1) = b'x';
    for (i, b) in bytes.iter().enumerate() {
        *out.add(2 + 2 * i) = HEX[usize::from(b >> 4)];
        *out.add(3 + 2 * i) = HEX[usize::from(b & 15)];
    }
    *out.add(2 + 2 * bytes.len()) = 0;
    pg_sys::Datum::from(out)
}

/// `retention_state_recv(internal)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn gs_retention_state_recv(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let Some(arg) = pg_getarg_datum(fcinfo, 0) else {
        return pg_return_null(fcinfo);
    };
    let buf = arg.cast_mut_ptr::<pg_sys::StringInfoData>();
    let len = (*buf).len - (*buf).cursor;
    let data = pg_sys::pq_getmsgbytes(buf, len);
    let bytes = std::slice::from_raw_parts(data.cast::<u8>(), len as usize);
    if let Err(e) = RetentionState::decode(bytes) {
        raise(PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION, e)
    }
    flat_datum(bytes)
}

/// `retention_state_send(retention_state)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn gs_retention_state_send(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let Some(arg) = pg_getarg_datum(fcinfo, 0) else {
        return pg_return_null(fcinfo);
    };
    flat_datum(&with_state(arg, |s: &RetentionState| s.encode()))
}

/// A `timestamp` argument as microseconds since 2000-01-01; NULL and infinities are `None`.
unsafe fn timestamp_arg(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> Option<i64> {
    pg_getarg_datum(fcinfo, n)
        .map(|d| d.value() as i64)
        .filter(|&us| us != i64::MIN && us != i64::MAX)
}

/// `retention_trans(state, user_id, cohort_at, activity_at, period)`.
#[pg_guard]
#[unsafe(no_mangle)]
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
    update(fcinfo, "retention_trans", |state: &mut RetentionState| {
        if let Some(user) = user {
            if let Err(e) = state.add(user, cohort, activity, period) {
                raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, e)
            }
        }
    })
}

/// `retention_combine(state, state)`: combine function, and transition of `rollup`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn gs_retention_combine(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let Some(other) = pg_getarg_datum(fcinfo, 1) else {
        return match pg_getarg_datum(fcinfo, 0) {
            Some(own) => own,
            None => pg_return_null(fcinfo),
        };
    };
    update(fcinfo, "retention_combine", |state: &mut RetentionState| {
        with_state(other, |other: &RetentionState| {
            if let Err(e) = state.merge(other) {
                raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, e)
            }
        })
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
