//! Writing many rows from Rust into a table through PostgreSQL's own COPY FROM.
//!
//! A builder that computes its rows in Rust can hand them to SQL (as a set, or as column
//! arrays) and let an INSERT write them, but then every row is written one at a time
//! (heap_insert) after a second pass that turns the values back into tuples. COPY FROM batches
//! its rows into multi-row writes (heap_multi_insert), and still does everything an INSERT does
//! to each row: NOT NULL and CHECK constraints, the table's indexes, triggers and foreign keys.
//! We feed it a binary COPY stream produced on demand from the rows, a chunk at a time, so
//! that the stream never exists whole in memory.
//!
//! COPY FROM has no notion of row-level security (the COPY command refuses a table under a
//! policy), and it checks no privileges itself: [`copy_rows`] checks INSERT on the columns it
//! writes, as an INSERT would, and refuses a table whose policies apply to the current user;
//! callers write such tables with a plain INSERT instead (see [`row_security_applies`]).
//!
//! Errors raised inside COPY (a CHECK violation, a unique key, a trigger's) are ordinary
//! PostgreSQL errors: the calls go through pgrx's guarded bindings, so the error unwinds the
//! Rust frames (dropping the stream, see [`SourceGuard`]) and aborts the statement. Nothing
//! is left half-written beyond what the transaction's abort undoes.

use pgrx::prelude::*;
use std::cell::Cell;
use std::ffi::{c_void, CString};

/// The header of a binary COPY stream: signature, flags (none), header extension length (0).
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The trailer: a field count of -1.
const TRAILER: &[u8] = &(-1i16).to_be_bytes();
/// How many bytes of rows to encode ahead of what COPY asks for: COPY reads in 64 kB pieces.
const CHUNK: usize = 64 * 1024;

/// The fields of one row in COPY's binary format: append them in the order of the columns
/// given to [`copy_rows`]. Values are in network byte order, each prefixed by its length.
pub(crate) struct RowWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl RowWriter<'_> {
    fn field(&mut self, bytes: &[u8]) {
        self.out
            .extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        self.out.extend_from_slice(bytes);
    }

    pub(crate) fn null(&mut self) {
        self.out.extend_from_slice(&(-1i32).to_be_bytes());
    }

    pub(crate) fn int8(&mut self, value: i64) {
        self.field(&value.to_be_bytes());
    }

    /// A timestamptz: microseconds since 2000-01-01 00:00 UTC (PostgreSQL's own value;
    /// i64::MIN and i64::MAX are -infinity and infinity).
    pub(crate) fn timestamptz(&mut self, postgres_us: i64) {
        self.field(&postgres_us.to_be_bytes());
    }

    pub(crate) fn float8(&mut self, value: f64) {
        self.field(&value.to_bits().to_be_bytes());
    }

    pub(crate) fn bool(&mut self, value: bool) {
        self.field(&[u8::from(value)]);
    }

    /// Text in the client encoding (the receive function converts it): callers pass ASCII.
    pub(crate) fn text(&mut self, value: &str) {
        self.field(value.as_bytes());
    }
}

/// Whether the current user's access to `relid` goes through row-level security policies:
/// COPY FROM would write past them, so such a table must be written by an INSERT.
pub(crate) fn row_security_applies(relid: pg_sys::Oid) -> bool {
    // SAFETY: a catalog lookup; with noError it raises nothing for row_security = off.
    let rls = unsafe { pg_sys::check_enable_rls(relid, pg_sys::InvalidOid, true) };
    rls == pg_sys::CheckEnableRlsResult::RLS_ENABLED as i32
}

/// Writes `rows` into the table `relid`, filling `columns` (the others get their defaults),
/// each row's fields appended by `write` in that order. Returns the number of rows written.
///
/// The caller must hold no expectation of row-level security (checked: an error if policies
/// apply); the current user needs INSERT on the columns (checked, with INSERT's error).
pub(crate) fn copy_rows<R>(
    relid: pg_sys::Oid,
    columns: &[&str],
    rows: impl Iterator<Item = R>,
    mut write: impl FnMut(&R, &mut RowWriter<'_>),
) -> u64 {
    if row_security_applies(relid) {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "guildstats: a bulk write cannot apply row-level security policies; write with INSERT",
        );
    }
    let names: Vec<CString> = columns
        .iter()
        .map(|c| CString::new(*c).expect("column names are literals without NUL"))
        .collect();
    let field_count = (columns.len() as i16).to_be_bytes();

    // The stream: header, rows encoded CHUNK bytes at a time, trailer.
    let mut rows = rows.peekable();
    let mut pending: Vec<u8> = Vec::with_capacity(CHUNK * 2);
    pending.extend_from_slice(HEADER);
    let mut offset = 0;
    let mut finished = false;
    let mut fill = |buf: &mut [u8]| -> usize {
        if offset == pending.len() {
            pending.clear();
            offset = 0;
            while pending.len() < CHUNK {
                let Some(row) = rows.next() else {
                    if !finished {
                        pending.extend_from_slice(TRAILER);
                        finished = true;
                    }
                    break;
                };
                pending.extend_from_slice(&field_count);
                write(&row, &mut RowWriter { out: &mut pending });
            }
        }
        let n = buf.len().min(pending.len() - offset);
        buf[..n].copy_from_slice(&pending[offset..offset + n]);
        offset += n;
        n
    };
    let mut source: &mut dyn FnMut(&mut [u8]) -> usize = &mut fill;
    let _guard = SourceGuard::install(&mut source);

    // SAFETY: the sequence of src/backend/replication/logical/tablesync.c's copy_table: a
    // parse state with the relation as its only range table entry (CopyFrom opens the result
    // relation through it), the relation locked as INSERT locks it and kept locked to the end
    // of the transaction. Every list and string is palloc'd in the current memory context,
    // which outlives the COPY. Errors unwind as Rust panics through the guarded bindings.
    unsafe {
        let rel = pg_sys::table_open(relid, pg_sys::RowExclusiveLock as i32);
        let pstate = pg_sys::make_parsestate(std::ptr::null_mut());
        let nsitem = pg_sys::addRangeTableEntryForRelation(
            pstate,
            rel,
            pg_sys::RowExclusiveLock as i32,
            std::ptr::null_mut(),
            false,
            false,
        );
        // The privileges an INSERT into these columns needs, checked as the executor does.
        let rte = (*nsitem).p_rte;
        (*rte).requiredPerms = pg_sys::ACL_INSERT as pg_sys::AclMode;
        let mut attnames: *mut pg_sys::List = std::ptr::null_mut();
        for name in &names {
            let attnum = pg_sys::get_attnum(relid, name.as_ptr());
            if attnum == pg_sys::InvalidAttrNumber as i16 {
                crate::error::raise(
                    PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
                    format!(
                        "guildstats: a bulk write names column {:?}, which its table does not have",
                        name
                    ),
                );
            }
            (*rte).insertedCols = pg_sys::bms_add_member(
                (*rte).insertedCols,
                i32::from(attnum) - pg_sys::FirstLowInvalidHeapAttributeNumber,
            );
            attnames = pg_sys::lappend(
                attnames,
                pg_sys::makeString(pg_sys::pstrdup(name.as_ptr())).cast(),
            );
        }
        pg_sys::ExecCheckRTPerms((*pstate).p_rtable, true);

        let format = pg_sys::makeDefElem(
            pg_sys::pstrdup(c"format".as_ptr()),
            pg_sys::makeString(pg_sys::pstrdup(c"binary".as_ptr())).cast(),
            -1,
        );
        let options = pg_sys::lappend(std::ptr::null_mut(), format.cast());
        let cstate = pg_sys::BeginCopyFrom(
            pstate,
            rel,
            std::ptr::null_mut(),
            std::ptr::null(),
            false,
            Some(read_source),
            attnames,
            options,
        );
        let written = pg_sys::CopyFrom(cstate);
        pg_sys::EndCopyFrom(cstate);
        pg_sys::free_parsestate(pstate);
        pg_sys::table_close(rel, pg_sys::NoLock as i32);
        written
    }
}

thread_local! {
    /// The stream COPY is reading, while [`copy_rows`] runs: its data source callback gets no
    /// argument of ours. Points at a `&mut dyn FnMut(&mut [u8]) -> usize` on copy_rows' stack.
    static SOURCE: Cell<*mut c_void> = const { Cell::new(std::ptr::null_mut()) };
}

/// Installs a stream as [`SOURCE`] and puts back the previous one when dropped, also when an
/// error unwinds out of the COPY (a trigger fired by one COPY may run another).
struct SourceGuard {
    previous: *mut c_void,
}

impl SourceGuard {
    fn install(source: &mut &mut dyn FnMut(&mut [u8]) -> usize) -> Self {
        let previous =
            SOURCE.with(|s| s.replace((source as *mut &mut dyn FnMut(&mut [u8]) -> usize).cast()));
        SourceGuard { previous }
    }
}

impl Drop for SourceGuard {
    fn drop(&mut self) {
        SOURCE.with(|s| s.set(self.previous));
    }
}

/// COPY's data source: up to `maxread` bytes of the stream into `outbuf`; 0 at its end.
#[pg_guard]
unsafe extern "C-unwind" fn read_source(
    outbuf: *mut c_void,
    _minread: std::os::raw::c_int,
    maxread: std::os::raw::c_int,
) -> std::os::raw::c_int {
    let source = SOURCE.with(Cell::get);
    if source.is_null() || maxread <= 0 {
        return 0;
    }
    // SAFETY: SOURCE points at copy_rows' stream while the COPY that calls this runs, and
    // COPY hands a buffer of `maxread` bytes.
    unsafe {
        let source = &mut *source.cast::<&mut dyn FnMut(&mut [u8]) -> usize>();
        let buf = std::slice::from_raw_parts_mut(outbuf.cast::<u8>(), maxread as usize);
        source(buf) as std::os::raw::c_int
    }
}
