//! The binary form of a [`GiniState`]: what `gini_state` values hold on disk and between
//! parallel workers.
//!
//! ```text
//! byte 0      version (1)
//! byte 1      flags (0; reserved)
//! varint      number of integer entries
//! varint      number of float entries
//! integers    ascending: the first value, then the gap to the previous one (>= 1), each
//!             followed by its count (>= 1); all unsigned LEB128 varints
//! floats      ascending: 8 bytes of the f64 (little endian), then the count as a varint
//! ```
//!
//! Sorted gaps as varints keep a state small: an economy whose balances are a few thousand
//! nearby integers costs two or three bytes per distinct balance. Decoding checks everything
//! (version, order, counts, value domain), so a damaged state is an error, never a wrong answer.

use super::{GiniState, EXACT_FLOAT_LIMIT, FORMAT_VERSION};
use std::fmt;

/// A byte string that is not a valid `gini_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid gini_state: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Ascending exact-integer values with their counts.
pub(crate) type IntEntries = Vec<(i64, u64)>;
/// Ascending non-integer values with their counts.
pub(crate) type FloatEntries = Vec<(f64, u64)>;

/// Entries reserved before they are read (see `GiniState::decode`).
const PREALLOCATE_AT_MOST: usize = 1 << 16;

fn bad<T>(why: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(why.into()))
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| DecodeError("truncated".into()))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let part = u64::from(b & 0x7f);
            if shift == 63 && part > 1 {
                return bad("varint overflows 64 bits");
            }
            v |= part << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        bad("varint longer than 10 bytes")
    }

    fn f64(&mut self) -> Result<f64, DecodeError> {
        let end = self.pos + 8;
        let chunk = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| DecodeError("truncated".into()))?;
        self.pos = end;
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        Ok(f64::from_le_bytes(b))
    }
}

impl GiniState {
    /// Ascending integer entries and ascending float entries, kept apart.
    pub(crate) fn parts(&self) -> (IntEntries, FloatEntries) {
        let mut ints: Vec<(i64, u64)> = self.ints.iter().map(|(&k, &c)| (k, c)).collect();
        ints.sort_unstable_by_key(|&(k, _)| k);
        let mut floats: Vec<(f64, u64)> = self
            .floats
            .iter()
            .map(|(&b, &c)| (f64::from_bits(b), c))
            .collect();
        floats.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        (ints, floats)
    }

    /// The binary form (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let (ints, floats) = self.parts();
        let mut out = Vec::with_capacity(4 + ints.len() * 3 + floats.len() * 10);
        out.push(FORMAT_VERSION);
        out.push(0);
        put_varint(&mut out, ints.len() as u64);
        put_varint(&mut out, floats.len() as u64);
        let mut prev: Option<i64> = None;
        for (k, c) in ints {
            let gap = match prev {
                None => k as u64,
                Some(p) => k.wrapping_sub(p) as u64,
            };
            put_varint(&mut out, gap);
            put_varint(&mut out, c);
            prev = Some(k);
        }
        for (v, c) in floats {
            out.extend_from_slice(&v.to_le_bytes());
            put_varint(&mut out, c);
        }
        out
    }

    /// Reads the binary form, checking every invariant.
    pub fn decode(bytes: &[u8]) -> Result<GiniState, DecodeError> {
        let mut r = Reader { bytes, pos: 0 };
        let version = r.byte()?;
        if version != FORMAT_VERSION {
            return bad(format!(
                "unknown version {version} (this build reads version {FORMAT_VERSION})"
            ));
        }
        if r.byte()? != 0 {
            return bad("unknown flags");
        }
        let n_ints = r.varint()?;
        let n_floats = r.varint()?;
        // Each entry takes at least two bytes (nine for floats): refuse counts the input
        // cannot hold before reserving memory for them.
        let room = (bytes.len() - r.pos) as u64;
        if n_ints > room / 2 || n_floats > room / 9 {
            return bad("entry count larger than the data");
        }
        // Reserve no more than a little up front: a count the bytes could hold but do not (a
        // truncated state) must not cost memory before the error.
        let mut ints = Vec::with_capacity((n_ints as usize).min(PREALLOCATE_AT_MOST));
        let mut prev: Option<i64> = None;
        let mut n = 0u64;
        for _ in 0..n_ints {
            let gap = r.varint()?;
            let k = match prev {
                None => i64::try_from(gap).map_err(|_| DecodeError("value out of range".into()))?,
                Some(p) => {
                    if gap == 0 {
                        return bad("integer values not strictly ascending");
                    }
                    i64::try_from(gap)
                        .ok()
                        .and_then(|g| p.checked_add(g))
                        .ok_or_else(|| DecodeError("value out of range".into()))?
                }
            };
            let c = r.varint()?;
            if c == 0 {
                return bad("zero count");
            }
            n = n
                .checked_add(c)
                .ok_or_else(|| DecodeError("count overflows".into()))?;
            ints.push((k, c));
            prev = Some(k);
        }
        let mut floats = Vec::with_capacity((n_floats as usize).min(PREALLOCATE_AT_MOST));
        let mut prev_f: Option<f64> = None;
        for _ in 0..n_floats {
            let v = r.f64()?;
            if !v.is_finite() || v <= 0.0 || (v.fract() == 0.0 && v <= EXACT_FLOAT_LIMIT) {
                return bad(format!("float value {v} out of domain"));
            }
            if prev_f.is_some_and(|p| p >= v) {
                return bad("float values not strictly ascending");
            }
            let c = r.varint()?;
            if c == 0 {
                return bad("zero count");
            }
            n = n
                .checked_add(c)
                .ok_or_else(|| DecodeError("count overflows".into()))?;
            floats.push((v, c));
            prev_f = Some(v);
        }
        if r.pos != bytes.len() {
            return bad("trailing bytes");
        }
        Ok(GiniState::from_sorted_parts(ints, floats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut s = GiniState::new();
        for v in [0, 0, 5, 7, 7, 1 << 40, i64::MAX] {
            s.add_i64(v).unwrap();
        }
        for v in [0.25, 2.5, 1e300] {
            s.add_f64(v).unwrap();
        }
        let bytes = s.encode();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(GiniState::decode(&bytes).unwrap(), s);
        assert_eq!(
            GiniState::decode(&GiniState::new().encode()).unwrap(),
            GiniState::new()
        );
    }

    #[test]
    fn few_distinct_values_stay_small() {
        let mut s = GiniState::new();
        for i in 0..1_000_000i64 {
            s.add_i64(i % 100).unwrap();
        }
        assert!(s.encode().len() < 500, "{}", s.encode().len());
    }

    #[test]
    fn damage_is_an_error() {
        let mut s = GiniState::new();
        s.add_i64(3).unwrap();
        s.add_f64(0.5).unwrap();
        let good = s.encode();
        assert!(GiniState::decode(&[]).is_err());
        assert!(GiniState::decode(&[2, 0, 0, 0]).is_err());
        assert!(GiniState::decode(&[1, 1, 0, 0]).is_err());
        for cut in 0..good.len() {
            assert!(GiniState::decode(&good[..cut]).is_err(), "cut {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(GiniState::decode(&trailing).is_err());
        // zero count
        assert!(GiniState::decode(&[1, 0, 1, 0, 5, 0]).is_err());
        // non-ascending integers
        assert!(GiniState::decode(&[1, 0, 2, 0, 5, 1, 0, 1]).is_err());
        // a whole float is not a float entry
        let mut whole = vec![1, 0, 0, 1];
        whole.extend_from_slice(&2.0f64.to_le_bytes());
        whole.push(1);
        assert!(GiniState::decode(&whole).is_err());
        // huge entry counts
        assert!(GiniState::decode(&[1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0]).is_err());
    }
}
