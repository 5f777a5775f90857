//! `gini(x)`, `gini_agg(x)`, `rollup(gini_state)` and the accessors of `gini_state`.
//!
//! The maths is `guildstats_engine::gini`; this module adapts it to PostgreSQL's calling
//! convention. The functions are written against `fcinfo` directly (and declared in
//! `sql/extension/gini.sql`) because the state is a custom varlena type that travels as an
//! expanded object (see [`expanded`]): `#[pg_extern]` would copy it on every row.

extension_sql_file!(
    "../../../sql/extension/gini.sql",
    name = "gini",
    requires = ["settings"]
);

use crate::error::raise;
use crate::expanded::{flat_datum, methods_for, update, with_state, ExpandedState};
use guildstats_engine::gini::{GiniState, ValueError};
use pgrx::fcinfo::{pg_getarg_datum, pg_return_null};
use pgrx::pg_sys;
use pgrx::prelude::*;

static GINI_METHODS: pg_sys::ExpandedObjectMethods = methods_for::<GiniState>();

impl ExpandedState for GiniState {
    const CONTEXT_NAME: &'static std::ffi::CStr = c"guildstats gini_state";
    fn methods() -> &'static pg_sys::ExpandedObjectMethods {
        &GINI_METHODS
    }
    fn encode(&self) -> Vec<u8> {
        GiniState::encode(self)
    }
    fn decode(bytes: &[u8]) -> Result<Self, String> {
        GiniState::decode(bytes).map_err(|e| e.to_string())
    }
}

/// `PG_FUNCTION_INFO_V1`: tells PostgreSQL the function uses the version-1 calling convention.
#[macro_export]
macro_rules! v1_info {
    ($($finfo:ident),* $(,)?) => {$(
        #[unsafe(no_mangle)]
        #[doc(hidden)]
        pub extern "C" fn $finfo() -> &'static pg_sys::Pg_finfo_record {
            const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }
    )*};
}

v1_info!(
    pg_finfo_gs_gini_state_in,
    pg_finfo_gs_gini_state_out,
    pg_finfo_gs_gini_state_recv,
    pg_finfo_gs_gini_state_send,
    pg_finfo_gs_gini_trans_int8,
    pg_finfo_gs_gini_trans_float8,
    pg_finfo_gs_gini_trans_numeric,
    pg_finfo_gs_gini_combine,
    pg_finfo_gs_gini_final,
    pg_finfo_gs_gini_top_share,
    pg_finfo_gs_gini_median,
);

fn value_error(e: ValueError) -> ! {
    let code = match e {
        ValueError::TooMany => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        _ => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
    };
    raise(code, e.to_string())
}

/// A NULL value before any other keeps the state NULL, so that `gini_agg` over only NULLs is
/// NULL (as its comment says, and as `sum` is) rather than an empty state.
unsafe fn nothing_yet(fcinfo: pg_sys::FunctionCallInfo) -> bool {
    pg_getarg_datum(fcinfo, 0).is_none() && pg_getarg_datum(fcinfo, 1).is_none()
}

fn float_result(fcinfo: pg_sys::FunctionCallInfo, value: Option<f64>) -> pg_sys::Datum {
    match value {
        Some(v) => pg_sys::Datum::from(v.to_bits()),
        None => unsafe { pg_return_null(fcinfo) },
    }
}

/// Argument `n`, which the SQL declaration makes non-NULL (STRICT, or checked by the caller).
unsafe fn arg(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> pg_sys::Datum {
    pg_getarg_datum(fcinfo, n).unwrap_or_else(|| pgrx::error!("unexpected NULL argument {n}"))
}

/// `gini_state_in(cstring)`: the text form, `{"version":1,"values":[[value,count],...]}`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn gs_gini_state_in(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let text = std::ffi::CStr::from_ptr(arg(fcinfo, 0).cast_mut_ptr::<std::ffi::c_char>());
    let state = match text
        .to_str()
        .map_err(|e| e.to_string())
        .and_then(|t| GiniState::from_text(t).map_err(|e| e.to_string()))
    {
        Ok(state) => state,
        Err(e) => raise(PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION, e),
    };
    flat_datum(&state.encode())
}

/// `gini_state_out(gini_state)`: the text form.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn gs_gini_state_out(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let text = with_state(arg(fcinfo, 0), |s: &GiniState| s.to_text());
    let out = pg_sys::palloc(text.len() + 1).cast::<u8>();
    std::ptr::copy_nonoverlapping(text.as_ptr(), out, text.len());
    *out.add(text.len()) = 0;
    pg_sys::Datum::from(out)
}

/// `gini_state_recv(internal)`: the binary form, checked.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn gs_gini_state_recv(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let buf = arg(fcinfo, 0).cast_mut_ptr::<pg_sys::StringInfoData>();
    let len = (*buf).len - (*buf).cursor;
    let data = pg_sys::pq_getmsgbytes(buf, len);
    let bytes = std::slice::from_raw_parts(data.cast::<u8>(), len as usize);
    match GiniState::decode(bytes) {
        Ok(_) => flat_datum(bytes),
        Err(e) => raise(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            e.to_string(),
        ),
    }
}

/// `gini_state_send(gini_state)`: the binary form as bytea.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn gs_gini_state_send(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let bytes = with_state(arg(fcinfo, 0), |s: &GiniState| s.encode());
    flat_datum(&bytes)
}

/// `gini_trans(gini_state, bigint)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn gs_gini_trans_int8(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    if nothing_yet(fcinfo) {
        return pg_return_null(fcinfo);
    }
    let value = pg_getarg_datum(fcinfo, 1).map(|d| d.value() as i64);
    update(fcinfo, "gini_trans", |state: &mut GiniState| {
        if let Some(v) = value {
            state.add_i64(v).unwrap_or_else(|e| value_error(e));
        }
    })
}

/// `gini_trans(gini_state, double precision)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn gs_gini_trans_float8(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    if nothing_yet(fcinfo) {
        return pg_return_null(fcinfo);
    }
    let value = pg_getarg_datum(fcinfo, 1).map(|d| f64::from_bits(d.value() as u64));
    update(fcinfo, "gini_trans", |state: &mut GiniState| {
        if let Some(v) = value {
            state.add_f64(v).unwrap_or_else(|e| value_error(e));
        }
    })
}

/// `gini_trans(gini_state, numeric)`: numeric values are read as double precision (exact for
/// whole numbers up to 2^53).
#[pg_guard]
#[unsafe(no_mangle)]
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
    update(fcinfo, "gini_trans", |state: &mut GiniState| {
        if let Some(v) = value {
            state.add_f64(v).unwrap_or_else(|e| value_error(e));
        }
    })
}

/// `gini_combine(gini_state, gini_state)`: the combine function of every gini aggregate, and
/// the transition function of `rollup(gini_state)`. Never changes its second argument.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn gs_gini_combine(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let Some(other) = pg_getarg_datum(fcinfo, 1) else {
        return match pg_getarg_datum(fcinfo, 0) {
            Some(own) => own,
            None => pg_return_null(fcinfo),
        };
    };
    update(fcinfo, "gini_combine", |state: &mut GiniState| {
        with_state(other, |other: &GiniState| {
            state.merge(other).unwrap_or_else(|e| value_error(e))
        });
    })
}

/// `gini(gini_state)`: also the final function of `gini(x)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn gs_gini_final(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let g = with_state(arg(fcinfo, 0), |s: &GiniState| s.gini());
    float_result(fcinfo, g)
}

/// `top_share(gini_state, fraction)`.
#[pg_guard]
#[unsafe(no_mangle)]
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
#[pg_guard]
#[unsafe(no_mangle)]
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
