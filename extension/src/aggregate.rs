//! The generator of concrete-state aggregates: [`state_aggregate!`] declares, from one
//! description, a state type's input/output/receive/send functions, its combine function and
//! `rollup(state)`, the transition and final functions written for it, and every SQL object
//! they need (`CREATE TYPE`, `CREATE FUNCTION ... LANGUAGE C`, `CREATE AGGREGATE` with its
//! combine function, `PARALLEL SAFE`, and their comments).
//!
//! A concrete state type (rather than `internal` with serial/deserial functions) is what lets a
//! state be stored in a table, re-aggregated with `rollup()`, sent between parallel workers
//! through its send/receive functions, and pushed down by Citus; while an aggregate runs it is
//! an expanded object updated in place (see [`crate::expanded`]).
//!
//! A new aggregate therefore needs only its engine state (`encode`, `decode`, [`AggregateState`])
//! and its step and final logic, each an `unsafe extern "C-unwind" fn(fcinfo) -> Datum` marked
//! `#[pg_v1]` that calls [`transition`] and [`with_state`].

use crate::error::raise;
pub(crate) use crate::expanded::with_state;
use crate::expanded::{flat_datum, update, ExpandedState};
use pgrx::fcinfo::{pg_getarg_datum, pg_return_null};
use pgrx::pg_sys;
use pgrx::prelude::*;

/// What the generated plumbing needs of a state type beyond its binary form.
pub(crate) trait AggregateState: ExpandedState {
    /// The SQL type's name, for messages.
    const SQL_TYPE: &'static str;

    /// The text form the type's output function writes. By default `\x` and the binary form
    /// in hex, like bytea.
    fn to_text(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bytes = self.encode();
        let mut text = String::with_capacity(2 + 2 * bytes.len());
        text.push_str("\\x");
        for b in bytes {
            text.push(char::from(HEX[usize::from(b >> 4)]));
            text.push(char::from(HEX[usize::from(b & 15)]));
        }
        text
    }

    /// The checked binary form of a text form (the type's input function). By default the
    /// hex form of [`AggregateState::to_text`].
    fn binary_from_text(text: &[u8]) -> Result<Vec<u8>, String> {
        let bad = || {
            format!(
                "invalid {}: expected \\x followed by hex digits",
                Self::SQL_TYPE
            )
        };
        let hex = text.strip_prefix(b"\\x").ok_or_else(bad)?;
        if hex.len() % 2 != 0 {
            return Err(bad());
        }
        let digit = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(bad()),
        };
        let bytes = hex
            .chunks_exact(2)
            .map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?))
            .collect::<Result<Vec<u8>, String>>()?;
        Self::decode(&bytes)?;
        Ok(bytes)
    }

    /// Adds `other` into `self` (the combine function), or the SQLSTATE and message to raise.
    fn merge_from(&mut self, other: &Self) -> Result<(), (PgSqlErrorCode, String)>;
}

/// Argument `n`, which the SQL declaration makes non-NULL (STRICT, or checked by the caller).
pub(crate) unsafe fn arg(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> pg_sys::Datum {
    pg_getarg_datum(fcinfo, n).unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("unexpected NULL argument {n}"),
        )
    })
}

/// The type's input function: the text form, checked.
pub(crate) unsafe fn state_in<T: AggregateState>(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let text = std::ffi::CStr::from_ptr(arg(fcinfo, 0).cast_mut_ptr::<std::ffi::c_char>());
    match T::binary_from_text(text.to_bytes()) {
        Ok(bytes) => flat_datum(&bytes),
        Err(e) => raise(PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION, e),
    }
}

/// The type's output function: the text form as a cstring.
pub(crate) unsafe fn state_out<T: AggregateState>(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let text = with_state(arg(fcinfo, 0), |s: &T| s.to_text());
    let out = pg_sys::palloc(text.len() + 1).cast::<u8>();
    std::ptr::copy_nonoverlapping(text.as_ptr(), out, text.len());
    *out.add(text.len()) = 0;
    pg_sys::Datum::from(out)
}

/// The type's receive function (COPY BINARY, binary protocol, and what a parallel worker's
/// state goes through): the binary form, checked exactly as strictly as a stored state.
pub(crate) unsafe fn state_recv<T: AggregateState>(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let buf = arg(fcinfo, 0).cast_mut_ptr::<pg_sys::StringInfoData>();
    let len = (*buf).len - (*buf).cursor;
    let data = pg_sys::pq_getmsgbytes(buf, len);
    let bytes = std::slice::from_raw_parts(data.cast::<u8>(), len as usize);
    match T::decode(bytes) {
        Ok(_) => flat_datum(bytes),
        Err(e) => raise(PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION, e),
    }
}

/// The type's send function: the binary form as bytea.
pub(crate) unsafe fn state_send<T: AggregateState>(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    flat_datum(&with_state(arg(fcinfo, 0), |s: &T| s.encode()))
}

/// The combine function of every aggregate over the state, and the transition function of
/// `rollup(state)`. Never changes its second argument.
pub(crate) unsafe fn combine<T: AggregateState>(
    fcinfo: pg_sys::FunctionCallInfo,
    function: &str,
) -> pg_sys::Datum {
    let Some(other) = pg_getarg_datum(fcinfo, 1) else {
        return match pg_getarg_datum(fcinfo, 0) {
            Some(own) => own,
            None => pg_return_null(fcinfo),
        };
    };
    update(fcinfo, function, |state: &mut T| {
        with_state(other, |other: &T| {
            if let Err((code, message)) = state.merge_from(other) {
                raise(code, message)
            }
        })
    })
}

/// A transition function's work: `step` on the aggregate's state (argument 0), created empty
/// on the first row, updated in place on the next ones.
pub(crate) unsafe fn transition<T: AggregateState>(
    fcinfo: pg_sys::FunctionCallInfo,
    function: &str,
    step: impl FnOnce(&mut T),
) -> pg_sys::Datum {
    update(fcinfo, function, step)
}

/// A double precision result, NULL for `None`.
pub(crate) fn float_result(fcinfo: pg_sys::FunctionCallInfo, value: Option<f64>) -> pg_sys::Datum {
    match value {
        Some(v) => pg_sys::Datum::from(v.to_bits()),
        None => unsafe { pg_return_null(fcinfo) },
    }
}

/// Version-1 C functions `symbol(fcinfo) -> Datum`, each a call of `function(fcinfo[, extra])`.
macro_rules! v1_wrappers {
    ($($symbol:ident => $function:path $(, $extra:expr)?;)*) => {$(
        #[::guildstats_macros::pg_v1]
        pub unsafe extern "C-unwind" fn $symbol(
            fcinfo: ::pgrx::pg_sys::FunctionCallInfo,
        ) -> ::pgrx::pg_sys::Datum {
            $function(fcinfo $(, $extra)?)
        }
    )*};
}
pub(crate) use v1_wrappers;

/// Declares a concrete-state aggregate family; see the module documentation. The SQL text of
/// every comment is given as it goes between the quotes of `COMMENT ... IS '...'` (quotes
/// doubled). `functions` are the C functions written by hand for the state (transition and
/// final functions, accessors), each `sql name(arguments) -> return type = symbol, options,
/// comment`; `aggregates` are `sql name(arguments) = transition function [final function],
/// comment`, each with the state's combine function and `PARALLEL = SAFE`.
macro_rules! state_aggregate {
    (
        state: $state:ty,
        sql_type: $sql_type:literal,
        section: $section:literal,
        requires: [$($requires:tt)*],
        comment: $type_comment:literal,
        input: $in_sym:ident, $in_comment:literal,
        output: $out_sym:ident, $out_comment:literal,
        receive: $recv_sym:ident, $recv_comment:literal,
        send: $send_sym:ident, $send_comment:literal,
        $(cast_to_bytea: $cast:literal,)?
        combine: $combine:literal = $combine_sym:ident, $combine_comment:literal,
        rollup: $rollup_comment:literal,
        functions: [$(
            $fname:literal ($fargs:literal) -> $fret:literal = $fsym:ident, $fopts:literal,
                $fcomment:literal;
        )*],
        aggregates: [$(
            $aname:literal ($aargs:literal) = $asfunc:literal $([$afinal:literal])?,
                $acomment:literal;
        )*],
    ) => {
        impl $crate::expanded::ExpandedState for $state {
            const CONTEXT_NAME: &'static ::std::ffi::CStr =
                match ::std::ffi::CStr::from_bytes_with_nul(
                    concat!("guildstats ", $sql_type, "\0").as_bytes(),
                ) {
                    Ok(name) => name,
                    Err(_) => panic!("context name"),
                };
            fn methods() -> &'static ::pgrx::pg_sys::ExpandedObjectMethods {
                static METHODS: ::pgrx::pg_sys::ExpandedObjectMethods =
                    $crate::expanded::methods_for::<$state>();
                &METHODS
            }
            fn encode(&self) -> Vec<u8> {
                <$state>::encode(self)
            }
            fn decode(bytes: &[u8]) -> Result<Self, String> {
                <$state>::decode(bytes).map_err(|e| e.to_string())
            }
        }

        $crate::aggregate::v1_wrappers! {
            $in_sym => $crate::aggregate::state_in::<$state>;
            $out_sym => $crate::aggregate::state_out::<$state>;
            $recv_sym => $crate::aggregate::state_recv::<$state>;
            $send_sym => $crate::aggregate::state_send::<$state>;
            $combine_sym => $crate::aggregate::combine::<$state>, $combine;
        }

        ::guildstats_macros::concat_extension_sql!(
            [
                "CREATE TYPE ", $sql_type, ";\n\n",
                "CREATE FUNCTION ", $sql_type, "_in(cstring) RETURNS ", $sql_type, "\n",
                "    AS 'MODULE_PATHNAME', '", $in_sym, "' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;\n",
                "COMMENT ON FUNCTION ", $sql_type, "_in(cstring) IS\n    '", $in_comment, "';\n\n",
                "CREATE FUNCTION ", $sql_type, "_out(", $sql_type, ") RETURNS cstring\n",
                "    AS 'MODULE_PATHNAME', '", $out_sym, "' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;\n",
                "COMMENT ON FUNCTION ", $sql_type, "_out(", $sql_type, ") IS\n    '", $out_comment, "';\n\n",
                "CREATE FUNCTION ", $sql_type, "_recv(internal) RETURNS ", $sql_type, "\n",
                "    AS 'MODULE_PATHNAME', '", $recv_sym, "' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;\n",
                "COMMENT ON FUNCTION ", $sql_type, "_recv(internal) IS\n    '", $recv_comment, "';\n\n",
                "CREATE FUNCTION ", $sql_type, "_send(", $sql_type, ") RETURNS bytea\n",
                "    AS 'MODULE_PATHNAME', '", $send_sym, "' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;\n",
                "COMMENT ON FUNCTION ", $sql_type, "_send(", $sql_type, ") IS\n    '", $send_comment, "';\n\n",
                "CREATE TYPE ", $sql_type, " (\n",
                "    INPUT = ", $sql_type, "_in,\n",
                "    OUTPUT = ", $sql_type, "_out,\n",
                "    RECEIVE = ", $sql_type, "_recv,\n",
                "    SEND = ", $sql_type, "_send,\n",
                "    INTERNALLENGTH = VARIABLE,\n",
                "    STORAGE = extended\n",
                ");\n",
                "COMMENT ON TYPE ", $sql_type, " IS\n    '", $type_comment, "';\n\n",
                $(
                    "-- The binary form is the same varlena as a ", $cast, " holding it.\n",
                    "CREATE CAST (", $sql_type, " AS ", $cast, ") WITHOUT FUNCTION;\n\n",
                )?
                $(
                    "CREATE FUNCTION ", $fname, "(", $fargs, ") RETURNS ", $fret, "\n",
                    "    AS 'MODULE_PATHNAME', '", $fsym, "' LANGUAGE C ", $fopts, ";\n",
                    "COMMENT ON FUNCTION ", $fname, "(", $fargs, ") IS\n    '", $fcomment, "';\n\n",
                )*
                "CREATE FUNCTION ", $combine, "(", $sql_type, ", ", $sql_type, ") RETURNS ", $sql_type, "\n",
                "    AS 'MODULE_PATHNAME', '", $combine_sym, "' LANGUAGE C IMMUTABLE PARALLEL SAFE;\n",
                "COMMENT ON FUNCTION ", $combine, "(", $sql_type, ", ", $sql_type, ") IS\n    '", $combine_comment, "';\n\n",
                $(
                    "CREATE AGGREGATE ", $aname, "(", $aargs, ") (\n",
                    "    SFUNC = ", $asfunc, ", STYPE = ", $sql_type, ", COMBINEFUNC = ", $combine,
                    $(", FINALFUNC = ", $afinal,)? ",\n",
                    "    PARALLEL = SAFE\n",
                    ");\n",
                    "COMMENT ON AGGREGATE ", $aname, "(", $aargs, ") IS\n    '", $acomment, "';\n\n",
                )*
                "CREATE AGGREGATE rollup(", $sql_type, ") (\n",
                "    SFUNC = ", $combine, ", STYPE = ", $sql_type, ", COMBINEFUNC = ", $combine, ",\n",
                "    PARALLEL = SAFE\n",
                ");\n",
                "COMMENT ON AGGREGATE rollup(", $sql_type, ") IS\n    '", $rollup_comment, "';\n",
            ],
            name = $section,
            requires = [$($requires)*]
        );
    };
}
pub(crate) use state_aggregate;
