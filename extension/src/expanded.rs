//! Aggregate states (every type `crate::aggregate::state_aggregate!` declares) as PostgreSQL
//! "expanded objects", which is what keeps the aggregates linear. This module knows nothing of
//! any particular state.
//!
//! A state on disk (and between parallel workers) is a plain varlena holding the versioned
//! binary form of an engine state. Decoding and re-encoding that on every row
//! would make the aggregate quadratic in the number of distinct values. Instead the transition
//! function returns a read-write pointer to an expanded object: a small header in its own
//! memory context (a child of the aggregate's context) that owns the decoded Rust state. The
//! executor hands the same pointer back on the next row (nodeAgg adopts read-write expanded
//! objects instead of copying them), so each row is one hash-map update. PostgreSQL flattens
//! the object through the two methods below whenever it needs bytes: when a parallel worker
//! sends its partial state, when a state is stored in a table, or when a window aggregate
//! copies it. This is how PostgreSQL's own `array_append` aggregates stay linear.
//!
//! The Rust state lives on the Rust heap; a reset callback on the object's memory context frees
//! it, so an error or a cancelled query never leaks it.

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::varlena::{set_varsize_4b, varatt_is_1b_e, varlena_to_byte_slice, vartag_external};
use std::ffi::c_void;

/// An engine state that travels as a varlena SQL type.
pub(crate) trait ExpandedState: Clone + Default + 'static {
    /// Name of the memory context of one object (shows in memory-context dumps).
    const CONTEXT_NAME: &'static std::ffi::CStr;
    /// The type's method table: a `static` per type, which also identifies our objects.
    fn methods() -> &'static pg_sys::ExpandedObjectMethods;
    fn encode(&self) -> Vec<u8>;
    fn decode(bytes: &[u8]) -> Result<Self, String>;
}

/// `ExpandedObjectMethods` for a state type, to put in the type's `static`.
pub(crate) const fn methods_for<T: ExpandedState>() -> pg_sys::ExpandedObjectMethods {
    pg_sys::ExpandedObjectMethods {
        get_flat_size: Some(flat_size::<T>),
        flatten_into: Some(flatten_into::<T>),
    }
}

#[repr(C)]
struct Expanded<T> {
    /// Must come first: PostgreSQL sees a pointer to this header.
    hdr: pg_sys::ExpandedObjectHeader,
    state: *mut T,
    /// The encoded state while it is unchanged (flattening asks for the size, then the bytes).
    flat: *mut Vec<u8>,
    callback: pg_sys::MemoryContextCallback,
}

const VARHDRSZ: usize = 4;

#[pg_guard]
unsafe extern "C-unwind" fn flat_size<T: ExpandedState>(
    eoh: *mut pg_sys::ExpandedObjectHeader,
) -> pg_sys::Size {
    let obj = eoh.cast::<Expanded<T>>();
    VARHDRSZ + encoded(obj).len()
}

#[pg_guard]
unsafe extern "C-unwind" fn flatten_into<T: ExpandedState>(
    eoh: *mut pg_sys::ExpandedObjectHeader,
    result: *mut c_void,
    allocated_size: pg_sys::Size,
) {
    let obj = eoh.cast::<Expanded<T>>();
    let bytes = encoded(obj);
    if allocated_size != VARHDRSZ + bytes.len() {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            "expanded state: flatten size mismatch",
        );
    }
    let out = result.cast::<u8>();
    std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.add(VARHDRSZ), bytes.len());
    set_varsize_4b(result.cast(), allocated_size as i32);
}

/// The encoded form of the object's state, computed once per change.
unsafe fn encoded<'a, T: ExpandedState>(obj: *mut Expanded<T>) -> &'a [u8] {
    if (*obj).flat.is_null() {
        (*obj).flat = Box::into_raw(Box::new((*(*obj).state).encode()));
    }
    (*(*obj).flat).as_slice()
}

#[pg_guard]
unsafe extern "C-unwind" fn release<T: ExpandedState>(arg: *mut c_void) {
    let obj = arg.cast::<Expanded<T>>();
    if !(*obj).state.is_null() {
        drop(Box::from_raw((*obj).state));
        (*obj).state = std::ptr::null_mut();
    }
    if !(*obj).flat.is_null() {
        drop(Box::from_raw((*obj).flat));
        (*obj).flat = std::ptr::null_mut();
    }
}

/// A new expanded object owning `state`, in a fresh child context of `parent`.
unsafe fn create<T: ExpandedState>(parent: pg_sys::MemoryContext, state: T) -> *mut Expanded<T> {
    let context =
        pg_sys::AllocSetContextCreateInternal(parent, T::CONTEXT_NAME.as_ptr(), 0, 1024, 8 * 1024);
    let obj = pg_sys::MemoryContextAllocZero(context, std::mem::size_of::<Expanded<T>>())
        .cast::<Expanded<T>>();
    pg_sys::EOH_init_header(&mut (*obj).hdr, T::methods(), context);
    (*obj).state = Box::into_raw(Box::new(state));
    (*obj).callback.func = Some(release::<T>);
    (*obj).callback.arg = obj.cast();
    pg_sys::MemoryContextRegisterResetCallback(context, &mut (*obj).callback);
    obj
}

/// Our expanded object behind `datum`, and whether the pointer is read-write.
unsafe fn as_expanded<T: ExpandedState>(datum: pg_sys::Datum) -> Option<(*mut Expanded<T>, bool)> {
    let ptr = datum.cast_mut_ptr::<pg_sys::varlena>();
    if ptr.is_null() || !varatt_is_1b_e(ptr) {
        return None;
    }
    let tag = u32::from(vartag_external(ptr));
    let rw = tag == pg_sys::vartag_external::VARTAG_EXPANDED_RW;
    if !rw && tag != pg_sys::vartag_external::VARTAG_EXPANDED_RO {
        return None;
    }
    // What DatumGetEOHP does, without a guarded FFI call per row: the external datum's payload
    // (after the two header bytes) is the object's header pointer, possibly unaligned.
    let eoh = std::ptr::read_unaligned(
        ptr.cast::<u8>()
            .add(2)
            .cast::<*mut pg_sys::ExpandedObjectHeader>(),
    );
    if eoh.is_null() {
        return None;
    }
    if !std::ptr::eq((*eoh).eoh_methods, T::methods()) {
        return None;
    }
    Some((eoh.cast::<Expanded<T>>(), rw))
}

/// Decodes a flat (possibly toasted or compressed) state.
pub(crate) unsafe fn decode_flat<T: ExpandedState>(datum: pg_sys::Datum) -> T {
    let detoasted = pg_sys::pg_detoast_datum(datum.cast_mut_ptr());
    let bytes = varlena_to_byte_slice(detoasted);
    match T::decode(bytes) {
        Ok(state) => state,
        Err(e) => crate::error::raise(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, e),
    }
}

/// Runs `f` on the state behind a datum without changing it.
pub(crate) unsafe fn with_state<T: ExpandedState, R>(
    datum: pg_sys::Datum,
    f: impl FnOnce(&T) -> R,
) -> R {
    match as_expanded::<T>(datum) {
        Some((obj, _)) => f(&*(*obj).state),
        None => f(&decode_flat::<T>(datum)),
    }
}

/// A state datum holding `bytes` (a new varlena in the current memory context).
pub(crate) unsafe fn flat_datum(bytes: &[u8]) -> pg_sys::Datum {
    let size = VARHDRSZ + bytes.len();
    let out = pg_sys::palloc(size).cast::<u8>();
    std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.add(VARHDRSZ), bytes.len());
    set_varsize_4b(out.cast(), size as i32);
    pg_sys::Datum::from(out)
}

/// The aggregate memory context, or an error when not called as part of an aggregate.
unsafe fn aggregate_context(
    fcinfo: pg_sys::FunctionCallInfo,
    function: &str,
) -> pg_sys::MemoryContext {
    let mut context: pg_sys::MemoryContext = std::ptr::null_mut();
    if pg_sys::AggCheckCallContext(fcinfo, &mut context) == 0 || context.is_null() {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("{function} can only be called as part of an aggregate"),
        );
    }
    context
}

/// The state to update for a transition or combine call: argument `arg` itself when it is our
/// read-write object (the executor's own state), else a new object in the aggregate context
/// (empty, or a copy of a flat or read-only state). Runs `update` on it and returns the
/// read-write datum.
pub(crate) unsafe fn update<T: ExpandedState>(
    fcinfo: pg_sys::FunctionCallInfo,
    function: &str,
    update: impl FnOnce(&mut T),
) -> pg_sys::Datum {
    // Our read-write object is the executor's own state: update it in place (the common path,
    // one per row, so it makes no call into PostgreSQL). Anything else becomes a new object in
    // the aggregate's memory context.
    let obj = match pgrx::fcinfo::pg_getarg_datum(fcinfo, 0) {
        None => create(aggregate_context(fcinfo, function), T::default()),
        Some(datum) => match as_expanded::<T>(datum) {
            Some((obj, true)) => obj,
            Some((obj, false)) => {
                create(aggregate_context(fcinfo, function), (*(*obj).state).clone())
            }
            None => create(aggregate_context(fcinfo, function), decode_flat(datum)),
        },
    };
    if !(*obj).flat.is_null() {
        drop(Box::from_raw((*obj).flat));
        (*obj).flat = std::ptr::null_mut();
    }
    update(&mut *(*obj).state);
    pg_sys::Datum::from((*obj).hdr.eoh_rw_ptr.as_mut_ptr())
}
