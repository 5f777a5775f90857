//! jsonb written straight in PostgreSQL's binary format.
//!
//! Handing PostgreSQL JSON text means printing every number and parsing it back (`jsonb_in`,
//! `numeric_in` per number), which was most of the cost of storing the ET:Legacy importer's
//! per-player `file_stats`. This module writes the bytes `jsonb_in` would have produced for the
//! JSON that `serde_json` prints for the same value, byte for byte: the same key order, the
//! same numeric digits and display scale (`90.0` stays `90.0`). The `pg_test`s below hold that
//! against `jsonb_in` itself.
//!
//! The layout follows PostgreSQL 15's `src/backend/utils/adt/jsonb_util.c` (containers, JEntry
//! offsets every 32 entries, numerics padded to 4 bytes) and `numeric.c` (`set_var_from_str`,
//! `make_result`).

use pgrx::{pg_sys, IntoDatum};

/// A JSON value to write as jsonb. Numbers keep the Rust type they were computed in; a float
/// is written with the digits `serde_json` prints for it, and a non-finite one as null (as
/// `serde_json` does).
#[derive(Debug, Clone, PartialEq)]
pub enum JsonbValue<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    Array(Vec<JsonbValue<'a>>),
    /// Keys in any order (they are sorted when written); no key twice.
    Object(Vec<(&'a str, JsonbValue<'a>)>),
}

impl<'a> JsonbValue<'a> {
    pub fn opt_int(value: Option<i64>) -> Self {
        value.map_or(Self::Null, Self::Int)
    }

    pub fn opt_float(value: Option<f64>) -> Self {
        value.map_or(Self::Null, Self::Float)
    }

    /// A count; counts of this data never come near `i64::MAX`.
    pub fn count(value: u64) -> Self {
        Self::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }

    /// The same value as a `serde_json::Value`, whose text is what `jsonb_in` is compared with.
    #[cfg(any(test, feature = "pg_test"))]
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Self::Null => Value::Null,
            Self::Bool(b) => Value::Bool(*b),
            Self::Int(i) => Value::from(*i),
            Self::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Self::Str(s) => Value::String((*s).to_string()),
            Self::Array(items) => Value::Array(items.iter().map(Self::to_json).collect()),
            Self::Object(pairs) => Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// A complete jsonb datum (varlena header included), ready to hand to PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonbBytes(Vec<u8>);

pgrx::impl_sql_translatable!(JsonbBytes, "jsonb");

// SAFETY: the datum handed back is a complete jsonb varlena in the function's memory context.
unsafe impl pgrx::callconv::BoxRet for JsonbBytes {
    unsafe fn box_into<'fcx>(
        self,
        fcinfo: &mut pgrx::callconv::FcInfo<'fcx>,
    ) -> pgrx::datum::Datum<'fcx> {
        match self.into_datum() {
            // SAFETY: a valid jsonb datum is what the function's SQL signature promises.
            Some(datum) => unsafe { fcinfo.return_raw_datum(datum) },
            None => fcinfo.return_null(),
        }
    }
}

// jsonb.h
const JB_FSCALAR: u32 = 0x1000_0000;
const JB_FOBJECT: u32 = 0x2000_0000;
const JB_FARRAY: u32 = 0x4000_0000;
const JENTRY_OFFLENMASK: u32 = 0x0FFF_FFFF;
const JENTRY_TYPEMASK: u32 = 0x7000_0000;
const JENTRY_HAS_OFF: u32 = 0x8000_0000;
const JENTRY_ISNUMERIC: u32 = 0x1000_0000;
const JENTRY_ISBOOL_FALSE: u32 = 0x2000_0000;
const JENTRY_ISBOOL_TRUE: u32 = 0x3000_0000;
const JENTRY_ISNULL: u32 = 0x4000_0000;
const JENTRY_ISCONTAINER: u32 = 0x5000_0000;
const JB_OFFSET_STRIDE: usize = 32;

const VARHDRSZ: usize = 4;

/// A 4-byte varlena header for a datum of `len` bytes (SET_VARSIZE_4B).
fn varlena_header(len: usize) -> Result<[u8; 4], String> {
    let len = u32::try_from(len)
        .ok()
        .filter(|&l| l <= 0x3FFF_FFFF)
        .ok_or("jsonb value too large")?;
    #[cfg(target_endian = "little")]
    return Ok((len << 2).to_ne_bytes());
    #[cfg(target_endian = "big")]
    return Ok(len.to_ne_bytes());
}

impl JsonbBytes {
    /// Encodes a value; an error for what `jsonb_in` would refuse (a NUL character in a
    /// string) or a value too large for the format.
    pub fn encode(value: &JsonbValue) -> Result<Self, String> {
        let mut writer = Writer {
            buf: Vec::with_capacity(256),
            number: Vec::with_capacity(32),
            digits: Vec::with_capacity(32),
        };
        writer.buf.extend_from_slice(&[0; VARHDRSZ]);
        match value {
            JsonbValue::Array(items) => {
                writer.array(items.iter(), items.len(), false)?;
            }
            JsonbValue::Object(pairs) => {
                writer.object(pairs)?;
            }
            scalar => {
                writer.array(std::iter::once(scalar), 1, true)?;
            }
        }
        let header = varlena_header(writer.buf.len())?;
        writer.buf[..VARHDRSZ].copy_from_slice(&header);
        Ok(Self(writer.buf))
    }
}

impl IntoDatum for JsonbBytes {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        // SAFETY: palloc returns at least the requested size (MAXALIGNed), which we fill.
        unsafe {
            let ptr = pg_sys::palloc(self.0.len()).cast::<u8>();
            std::ptr::copy_nonoverlapping(self.0.as_ptr(), ptr, self.0.len());
            Some(pg_sys::Datum::from(ptr))
        }
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

/// Key order in a jsonb object: shorter keys first, then bytewise.
fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

struct Writer {
    buf: Vec<u8>,
    /// Scratch space for a number's decimal text.
    number: Vec<u8>,
    /// Scratch space for a number's decimal digits.
    digits: Vec<u8>,
}

impl Writer {
    fn pad_to_int(&mut self) -> usize {
        let pad = (4 - self.buf.len() % 4) % 4;
        self.buf.resize(self.buf.len() + pad, 0);
        pad
    }

    fn put_u32(&mut self, at: usize, value: u32) {
        self.buf[at..at + 4].copy_from_slice(&value.to_ne_bytes());
    }

    /// The JEntry of a child whose data ended `total` bytes into its container's data.
    fn jentry(meta: u32, total: usize, index: usize) -> u32 {
        if index.is_multiple_of(JB_OFFSET_STRIDE) {
            (meta & JENTRY_TYPEMASK) | total as u32 | JENTRY_HAS_OFF
        } else {
            meta
        }
    }

    fn array<'v, 'a: 'v>(
        &mut self,
        items: impl Iterator<Item = &'v JsonbValue<'a>>,
        count: usize,
        raw_scalar: bool,
    ) -> Result<u32, String> {
        let base = self.buf.len();
        self.pad_to_int();
        let mut header = count as u32 | JB_FARRAY;
        if raw_scalar {
            header |= JB_FSCALAR;
        }
        self.buf.extend_from_slice(&header.to_ne_bytes());
        let mut entry_at = self.buf.len();
        self.buf.resize(entry_at + 4 * count, 0);
        let mut total = 0usize;
        for (i, item) in items.enumerate() {
            let meta = self.value(item)?;
            total += (meta & JENTRY_OFFLENMASK) as usize;
            self.put_u32(entry_at, Self::jentry(meta, total, i));
            entry_at += 4;
        }
        self.container_entry(base)
    }

    fn object(&mut self, pairs: &[(&str, JsonbValue)]) -> Result<u32, String> {
        let mut sorted: Vec<&(&str, JsonbValue)> = pairs.iter().collect();
        sorted.sort_by(|a, b| key_order(a.0, b.0));
        if sorted.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err("a jsonb object with a key twice".into());
        }
        let count = sorted.len();
        let base = self.buf.len();
        self.pad_to_int();
        self.buf
            .extend_from_slice(&(count as u32 | JB_FOBJECT).to_ne_bytes());
        let mut entry_at = self.buf.len();
        self.buf.resize(entry_at + 8 * count, 0);
        let mut total = 0usize;
        for (i, (key, _)) in sorted.iter().enumerate() {
            let meta = self.string(key)?;
            total += (meta & JENTRY_OFFLENMASK) as usize;
            self.put_u32(entry_at, Self::jentry(meta, total, i));
            entry_at += 4;
        }
        for (i, (_, value)) in sorted.iter().enumerate() {
            let meta = self.value(value)?;
            total += (meta & JENTRY_OFFLENMASK) as usize;
            self.put_u32(entry_at, Self::jentry(meta, total, i + count));
            entry_at += 4;
        }
        self.container_entry(base)
    }

    fn container_entry(&self, base: usize) -> Result<u32, String> {
        let len = self.buf.len() - base;
        if len > JENTRY_OFFLENMASK as usize {
            return Err("jsonb value too large".into());
        }
        Ok(JENTRY_ISCONTAINER | len as u32)
    }

    /// Writes one value's data; returns its JEntry (type and length).
    fn value(&mut self, value: &JsonbValue) -> Result<u32, String> {
        match value {
            JsonbValue::Null => Ok(JENTRY_ISNULL),
            JsonbValue::Bool(true) => Ok(JENTRY_ISBOOL_TRUE),
            JsonbValue::Bool(false) => Ok(JENTRY_ISBOOL_FALSE),
            JsonbValue::Str(s) => self.string(s),
            JsonbValue::Int(i) => {
                self.number.clear();
                self.number.extend_from_slice(i.to_string().as_bytes());
                self.numeric()
            }
            JsonbValue::Float(f) if f.is_finite() => {
                self.number.clear();
                serde_json::to_writer(&mut self.number, f)
                    .map_err(|e| format!("formatting {f}: {e}"))?;
                self.numeric()
            }
            JsonbValue::Float(_) => Ok(JENTRY_ISNULL),
            JsonbValue::Array(items) => self.array(items.iter(), items.len(), false),
            JsonbValue::Object(pairs) => self.object(pairs),
        }
    }

    fn string(&mut self, s: &str) -> Result<u32, String> {
        if s.contains('\0') {
            return Err(
                "unsupported Unicode escape sequence: \\u0000 cannot be converted to text".into(),
            );
        }
        if s.len() > JENTRY_OFFLENMASK as usize {
            return Err("jsonb string too long".into());
        }
        self.buf.extend_from_slice(s.as_bytes());
        Ok(s.len() as u32)
    }

    /// The numeric for the decimal text in `self.number`, as `numeric_in` makes it, padded to
    /// 4 bytes like every numeric in a jsonb container.
    fn numeric(&mut self) -> Result<u32, String> {
        let pad = self.pad_to_int();
        let start = self.buf.len();
        numeric_from_text(&self.number, &mut self.digits, &mut self.buf)?;
        Ok(JENTRY_ISNUMERIC | (pad + self.buf.len() - start) as u32)
    }
}

// numeric.c
const DEC_DIGITS: usize = 4;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_SHORT: u16 = 0x8000;
const NUMERIC_SHORT_SIGN_MASK: u16 = 0x2000;
const NUMERIC_SHORT_DSCALE_SHIFT: u16 = 7;
const NUMERIC_SHORT_DSCALE_MAX: i32 = 0x1F80 >> 7;
const NUMERIC_SHORT_WEIGHT_SIGN_MASK: u16 = 0x0040;
const NUMERIC_SHORT_WEIGHT_MASK: u16 = 0x003F;
const NUMERIC_SHORT_WEIGHT_MAX: i32 = 63;
const NUMERIC_SHORT_WEIGHT_MIN: i32 = -64;
const NUMERIC_DSCALE_MASK: u16 = 0x3FFF;
/// numeric_in refuses larger exponents.
const NUMERIC_MAX_EXPONENT: i64 = 1000;

/// Appends to `out` the numeric datum (varlena header included) that `numeric_in` makes of the
/// decimal text `text` (`-12.50`, `1e-7`, ...): `set_var_from_str`, `strip_var`, `make_result`.
fn numeric_from_text(text: &[u8], decimal: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<(), String> {
    let invalid = || format!("invalid numeric text {:?}", String::from_utf8_lossy(text));
    let mut rest = text;
    let negative = match rest.first() {
        Some(b'-') => {
            rest = &rest[1..];
            true
        }
        Some(b'+') => {
            rest = &rest[1..];
            false
        }
        _ => false,
    };
    // Decimal digits with DEC_DIGITS zeroes before them, so that the first group can be
    // aligned to a base-10000 digit.
    decimal.clear();
    decimal.resize(DEC_DIGITS, 0);
    let mut dweight: i64 = -1;
    let mut dscale: i64 = 0;
    let mut have_point = false;
    let mut consumed = 0;
    for &c in rest {
        match c {
            b'0'..=b'9' => {
                decimal.push(c - b'0');
                if have_point {
                    dscale += 1;
                } else {
                    dweight += 1;
                }
            }
            b'.' if !have_point => have_point = true,
            _ => break,
        }
        consumed += 1;
    }
    let ddigits = decimal.len() - DEC_DIGITS;
    if ddigits == 0 {
        return Err(invalid());
    }
    decimal.resize(decimal.len() + DEC_DIGITS - 1, 0);
    rest = &rest[consumed..];
    if let Some((b'e' | b'E', exponent)) = rest.split_first() {
        let exponent: i64 = std::str::from_utf8(exponent)
            .ok()
            .and_then(|e| e.parse().ok())
            .filter(|e: &i64| e.abs() <= NUMERIC_MAX_EXPONENT)
            .ok_or_else(invalid)?;
        dweight += exponent;
        dscale = (dscale - exponent).max(0);
    } else if !rest.is_empty() {
        return Err(invalid());
    }

    let dec = DEC_DIGITS as i64;
    let mut weight = if dweight >= 0 {
        (dweight + 1 + dec - 1) / dec - 1
    } else {
        -((-dweight - 1) / dec + 1)
    };
    let offset = (weight + 1) * dec - (dweight + 1);
    let ndigits = (ddigits as i64 + offset + dec - 1) / dec;
    let mut groups: Vec<i16> = Vec::with_capacity(ndigits as usize);
    let mut i = (dec - offset) as usize;
    for _ in 0..ndigits {
        let d = &decimal[i..i + DEC_DIGITS];
        groups.push(((d[0] as i16 * 10 + d[1] as i16) * 10 + d[2] as i16) * 10 + d[3] as i16);
        i += DEC_DIGITS;
    }
    // strip_var: leading and trailing zero groups go; zero is positive with weight 0.
    let leading = groups.iter().take_while(|&&g| g == 0).count();
    weight -= leading as i64;
    let trailing = groups[leading..]
        .iter()
        .rev()
        .take_while(|&&g| g == 0)
        .count();
    let groups = &groups[leading..groups.len() - trailing];
    let negative = negative && !groups.is_empty();
    if groups.is_empty() {
        weight = 0;
    }
    let dscale = i32::try_from(dscale).map_err(|_| invalid())?;
    let weight = i32::try_from(weight).map_err(|_| invalid())?;

    let short = dscale <= NUMERIC_SHORT_DSCALE_MAX
        && (NUMERIC_SHORT_WEIGHT_MIN..=NUMERIC_SHORT_WEIGHT_MAX).contains(&weight);
    let header_len = if short { 2 } else { 4 };
    out.extend_from_slice(&varlena_header(VARHDRSZ + header_len + 2 * groups.len())?);
    if short {
        let mut header = NUMERIC_SHORT | ((dscale as u16) << NUMERIC_SHORT_DSCALE_SHIFT);
        if negative {
            header |= NUMERIC_SHORT_SIGN_MASK;
        }
        if weight < 0 {
            header |= NUMERIC_SHORT_WEIGHT_SIGN_MASK;
        }
        header |= (weight as u16) & NUMERIC_SHORT_WEIGHT_MASK;
        out.extend_from_slice(&header.to_ne_bytes());
    } else {
        let sign = if negative { NUMERIC_NEG } else { 0 };
        let sign_dscale = sign | (dscale as u16 & NUMERIC_DSCALE_MASK);
        out.extend_from_slice(&sign_dscale.to_ne_bytes());
        out.extend_from_slice(&(weight as i16).to_ne_bytes());
    }
    for group in groups {
        out.extend_from_slice(&group.to_ne_bytes());
    }
    Ok(())
}

/// The bytes `jsonb_in` makes of `text`, varlena header included.
#[cfg(any(test, feature = "pg_test"))]
fn jsonb_in(text: &str) -> Vec<u8> {
    let cstring = std::ffi::CString::new(text).expect("no NUL");
    // SAFETY: jsonb_in returns a freshly palloc'd, untoasted varlena.
    unsafe {
        let datum = pgrx::direct_function_call_as_datum(
            pg_sys::jsonb_in,
            &[Some(pg_sys::Datum::from(cstring.as_ptr()))],
        )
        .expect("jsonb_in returned NULL");
        let ptr = datum.cast_mut_ptr::<pg_sys::varlena>();
        std::slice::from_raw_parts(ptr.cast::<u8>(), pgrx::varlena::varsize_any(ptr)).to_vec()
    }
}

#[cfg(any(test, feature = "pg_test"))]
impl JsonbBytes {
    /// Whether these are the very bytes `jsonb_in` makes of this value's own text.
    pub fn is_what_jsonb_in_makes(&self) -> bool {
        let text =
            pgrx::Spi::get_one_with_args::<String>("SELECT $1::text", &[self.clone().into()])
                .expect("SPI")
                .expect("text");
        jsonb_in(&text) == self.0
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::{jsonb_in, JsonbBytes, JsonbValue};
    use pgrx::prelude::*;

    fn assert_same_as_jsonb_in(value: &JsonbValue) {
        let text = serde_json::to_string(&value.to_json()).expect("serialize");
        let ours = JsonbBytes::encode(value).expect("encode");
        assert_eq!(ours.0, jsonb_in(&text), "for {text}");
    }

    #[pg_test]
    fn numbers_match_numeric_in() {
        let mut floats = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            90.0,
            106.66666666666667,
            1e-7,
            1.5e-7,
            123456789.125,
            1e15,
            1e16,
            1e17,
            1e20,
            1.234e33,
            1e300,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            0.1,
            0.001234,
            12.34,
            99999.99995,
            10000.0,
            0.0001,
            0.00001,
            1e-5,
            1e-4,
            123e-20,
        ];
        // A deterministic spread over many magnitudes and digit counts.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mantissa = (x % 10_000_000) as f64 / 1000.0;
            let exponent = (x >> 40) as i32 % 40 - 20;
            floats.push(mantissa * 10f64.powi(exponent));
            floats.push(f64::from_bits(x) % 1e6);
        }
        for f in floats {
            assert_same_as_jsonb_in(&JsonbValue::Float(f));
            assert_same_as_jsonb_in(&JsonbValue::Float(-f));
        }
        for i in [
            0,
            1,
            -1,
            9999,
            10000,
            10001,
            123456789,
            i64::MAX,
            i64::MIN,
            -100000000,
        ] {
            assert_same_as_jsonb_in(&JsonbValue::Int(i));
        }
    }

    #[pg_test]
    fn containers_match_jsonb_in() {
        // Enough keys and elements to pass the JEntry offset stride (32) twice.
        let keys: Vec<String> = (0..70).map(|i| format!("k{}", i * 3 % 70)).collect();
        let object = JsonbValue::Object(
            keys.iter()
                .enumerate()
                .map(|(i, k)| {
                    let value = match i % 6 {
                        0 => JsonbValue::Int(i as i64 * 1000),
                        1 => JsonbValue::Float(i as f64 / 3.0),
                        2 => JsonbValue::Str("^1Red^7Fox \"quoted\" \\ ünïcode"),
                        3 => JsonbValue::Null,
                        4 => JsonbValue::Bool(i % 4 == 0),
                        _ => JsonbValue::Array(vec![JsonbValue::Int(1), JsonbValue::Str("")]),
                    };
                    (k.as_str(), value)
                })
                .collect(),
        );
        assert_same_as_jsonb_in(&object);
        let array = JsonbValue::Array(
            (0..100)
                .map(|i| match i % 3 {
                    0 => JsonbValue::Float(f64::from(i) + 0.25),
                    1 => object.clone(),
                    _ => JsonbValue::Str("x"),
                })
                .collect(),
        );
        assert_same_as_jsonb_in(&array);
        assert_same_as_jsonb_in(&JsonbValue::Array(vec![]));
        assert_same_as_jsonb_in(&JsonbValue::Object(vec![]));
        for scalar in [
            JsonbValue::Null,
            JsonbValue::Bool(true),
            JsonbValue::Int(7),
            JsonbValue::Float(2.5),
            JsonbValue::Str("s"),
        ] {
            assert_same_as_jsonb_in(&scalar);
        }
    }

    #[pg_test]
    fn an_encoded_value_reads_back_in_sql() {
        let value = JsonbValue::Object(vec![
            ("kills", JsonbValue::Int(9)),
            ("dpm", JsonbValue::Float(106.66666666666667)),
            ("name", JsonbValue::Str("^1Fox")),
            ("missing", JsonbValue::Float(f64::NAN)),
        ]);
        let text = Spi::get_one_with_args::<String>(
            "SELECT $1::text",
            &[JsonbBytes::encode(&value).expect("encode").into()],
        )
        .expect("SPI");
        assert_eq!(
            text.as_deref(),
            Some(r#"{"dpm": 106.66666666666667, "name": "^1Fox", "kills": 9, "missing": null}"#)
        );
    }

    #[pg_test]
    fn a_nul_character_is_refused_like_jsonb_in_refuses_it() {
        assert!(JsonbBytes::encode(&JsonbValue::Str("a\0b")).is_err());
    }
}
