//! The Gini coefficient, exact, over a compact value → count multiset.
//!
//! A [`GiniState`] counts how many times each value was seen. An economy where most holders
//! share a few balances stays small however many holders it has; an economy with a million
//! distinct balances costs a hash-map entry per distinct balance. Two states merge by adding
//! counts ([`GiniState::merge`]), which is what makes the SQL aggregate parallel and
//! re-aggregatable (`rollup`).
//!
//! # Values
//!
//! Values are non-negative and finite. A value that is integral and no larger than 2^53 is kept
//! as an exact integer whatever type it came in as (so `gini(bigint)`, `gini(numeric)` and
//! `gini(double precision)` agree on whole numbers); every bigint is kept exactly. Other values
//! (fractions, or floats beyond 2^53) are kept as `f64`. While every value is an integer the
//! statistics are computed in exact 128-bit integer arithmetic (falling back to `f64` if a sum
//! would overflow); otherwise in `f64` with compensated sums.
//!
//! # Definitions
//!
//! With the values sorted, `x_1 <= ... <= x_n`, total `S` (> 0):
//!
//! - Gini: `G = Σ_{i<j} (x_j - x_i) / (n · S)`, i.e. the mean absolute difference over all
//!   ordered pairs divided by twice the mean (the population Gini, no small-sample correction).
//!   All equal gives 0; one holder of everything among `n` gives `(n - 1) / n`.
//! - Top share of a fraction `f`: the share of `S` held by the `ceil(f · n)` largest values.
//! - Median: the middle value, or the mean of the two middle values when `n` is even (as
//!   PostgreSQL's `percentile_cont(0.5)`).
//!
//! No values, or a zero total, make Gini and the top share undefined (`None`).

mod codec;
mod stats;
mod text;

pub use codec::DecodeError;
pub use stats::{gini_of_sorted, median_of_sorted, top_share_of_sorted, Sorted};

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

/// Largest float that is kept as an exact integer: every integer up to 2^53 is exact in `f64`.
pub const EXACT_FLOAT_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Version byte that starts the binary form ([`GiniState::encode`]).
pub const FORMAT_VERSION: u8 = 1;

/// Why a value cannot go into a Gini state.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueError {
    Negative(String),
    NotFinite(String),
    /// More than 2^64 - 1 values in one state (only forged states get near it).
    TooMany,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::Negative(v) => write!(
                f,
                "gini is undefined for negative values (got {v}); filter them out or map them to 0 first"
            ),
            ValueError::NotFinite(v) => {
                write!(f, "gini needs finite values (got {v})")
            }
            ValueError::TooMany => f.write_str("gini: a state holds at most 2^64 - 1 values"),
        }
    }
}

impl std::error::Error for ValueError {}

/// A multiplicative hasher for integer keys (keys are balances, not attacker-chosen data in a
/// way that matters here: the worst case is a slower aggregate, never a wrong one).
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, word: u64) {
        // Folded 64x64->128 multiply: every input bit reaches both the low bits (bucket) and
        // the high bits (tag) of the hash. A plain multiply keeps trailing zeros, and the bit
        // patterns of doubles such as 12345.5 end in dozens of them.
        let product = u128::from(self.0 ^ word) * 0x9E37_79B9_7F4A_7C15u128;
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }
    fn write_i64(&mut self, word: i64) {
        self.write_u64(word as u64);
    }
}

type Counts<K> = HashMap<K, u64, BuildHasherDefault<KeyHasher>>;

/// The multiset of values seen so far.
#[derive(Clone, Default)]
pub struct GiniState {
    /// Exact integer values (>= 0) and their counts.
    ints: Counts<i64>,
    /// Other values, by their `f64` bit pattern (finite, > 0, never integral below 2^53).
    floats: Counts<u64>,
    /// Number of values (sum of all counts).
    n: u64,
}

impl fmt::Debug for GiniState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl PartialEq for GiniState {
    fn eq(&self, other: &Self) -> bool {
        self.n == other.n && self.ints == other.ints && self.floats == other.floats
    }
}

impl GiniState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of values (NULLs are never added).
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Number of distinct values: what the state costs in memory and on disk.
    pub fn distinct(&self) -> usize {
        self.ints.len() + self.floats.len()
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Adds one bigint.
    pub fn add_i64(&mut self, value: i64) -> Result<(), ValueError> {
        if value < 0 {
            return Err(ValueError::Negative(value.to_string()));
        }
        self.add_int_n(value, 1)
    }

    /// Adds one double (also how numeric values arrive).
    pub fn add_f64(&mut self, value: f64) -> Result<(), ValueError> {
        self.add_f64_n(value, 1)
    }

    /// Adds `count` copies of a double.
    pub fn add_f64_n(&mut self, value: f64, count: u64) -> Result<(), ValueError> {
        if !value.is_finite() {
            return Err(ValueError::NotFinite(value.to_string()));
        }
        if value < 0.0 {
            return Err(ValueError::Negative(value.to_string()));
        }
        if value.fract() == 0.0 && value <= EXACT_FLOAT_LIMIT {
            // -0.0 lands here too and becomes 0.
            self.add_int_n(value as i64, count)
        } else {
            self.n = self.n.checked_add(count).ok_or(ValueError::TooMany)?;
            *self.floats.entry(value.to_bits()).or_insert(0) += count;
            Ok(())
        }
    }

    /// Every count is at most `n`, so checking `n` keeps all of them from overflowing.
    fn add_int_n(&mut self, value: i64, count: u64) -> Result<(), ValueError> {
        self.n = self.n.checked_add(count).ok_or(ValueError::TooMany)?;
        *self.ints.entry(value).or_insert(0) += count;
        Ok(())
    }

    /// Adds every value of `other` (counts add up); an error, and no change, when the sum of
    /// the counts would pass 2^64 - 1.
    pub fn merge(&mut self, other: &GiniState) -> Result<(), ValueError> {
        if self.n == 0 {
            self.clone_from(other);
            return Ok(());
        }
        self.n = self.n.checked_add(other.n).ok_or(ValueError::TooMany)?;
        self.ints.reserve(other.ints.len());
        for (&k, &c) in &other.ints {
            *self.ints.entry(k).or_insert(0) += c;
        }
        for (&k, &c) in &other.floats {
            *self.floats.entry(k).or_insert(0) += c;
        }
        Ok(())
    }

    /// The distinct values in ascending order with their counts.
    pub fn sorted(&self) -> Sorted {
        let mut ints: Vec<(i64, u64)> = self.ints.iter().map(|(&k, &c)| (k, c)).collect();
        ints.sort_unstable_by_key(|&(k, _)| k);
        if self.floats.is_empty() {
            return Sorted::Ints(ints);
        }
        let mut all: Vec<(f64, u64)> = ints.into_iter().map(|(k, c)| (k as f64, c)).collect();
        all.extend(self.floats.iter().map(|(&b, &c)| (f64::from_bits(b), c)));
        all.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        // An integer above 2^53 and a float may now be equal: merge equal neighbours.
        let mut merged: Vec<(f64, u64)> = Vec::with_capacity(all.len());
        for (v, c) in all {
            match merged.last_mut() {
                Some(last) if last.0 == v => last.1 += c,
                _ => merged.push((v, c)),
            }
        }
        Sorted::Floats(merged)
    }

    /// The Gini coefficient; `None` when there are no values or they sum to 0.
    pub fn gini(&self) -> Option<f64> {
        gini_of_sorted(&self.sorted())
    }

    /// Share of the total held by the `ceil(fraction · n)` largest values.
    pub fn top_share(&self, fraction: f64) -> Result<Option<f64>, String> {
        top_share_of_sorted(&self.sorted(), fraction)
    }

    /// The median (mean of the two middle values for an even count).
    pub fn median(&self) -> Option<f64> {
        median_of_sorted(&self.sorted())
    }

    /// Sum of all values, as a double.
    pub fn total(&self) -> f64 {
        self.sorted().total()
    }

    /// Rebuilds a state from ascending `(value, count)` pairs.
    fn from_sorted_parts(ints: Vec<(i64, u64)>, floats: Vec<(f64, u64)>) -> GiniState {
        let mut state = GiniState::new();
        state.ints.reserve(ints.len());
        for (k, c) in ints {
            *state.ints.entry(k).or_insert(0) += c;
            state.n += c;
        }
        for (v, c) in floats {
            *state.floats.entry(v.to_bits()).or_insert(0) += c;
            state.n += c;
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(values: &[i64]) -> GiniState {
        let mut s = GiniState::new();
        for &v in values {
            s.add_i64(v).unwrap();
        }
        s
    }

    #[test]
    fn equal_values_give_zero() {
        assert_eq!(of(&[7, 7, 7, 7]).gini(), Some(0.0));
        assert_eq!(of(&[1]).gini(), Some(0.0));
    }

    #[test]
    fn one_holder_among_n_gives_n_minus_one_over_n() {
        for n in 1..50usize {
            let mut values = vec![0i64; n - 1];
            values.push(1000);
            assert_eq!(
                of(&values).gini(),
                Some((n as f64 - 1.0) / n as f64),
                "n={n}"
            );
        }
    }

    #[test]
    fn textbook_values() {
        // 1,2,3,4,5: sum over pairs i<j of (x_j - x_i) = 20, n·S = 5·15 = 75.
        assert!((of(&[1, 2, 3, 4, 5]).gini().unwrap() - 20.0 / 75.0).abs() < 1e-15);
        // 0,0,1,1: pairs differ by 1 four times, n·S = 4·2.
        assert_eq!(of(&[0, 0, 1, 1]).gini(), Some(0.5));
        // 1,3: |1-3| = 2 over 2·4.
        assert_eq!(of(&[3, 1]).gini(), Some(0.25));
    }

    #[test]
    fn empty_and_all_zero_are_undefined() {
        assert_eq!(GiniState::new().gini(), None);
        assert_eq!(of(&[0, 0, 0]).gini(), None);
        assert_eq!(of(&[0, 0, 0]).median(), Some(0.0));
        assert_eq!(GiniState::new().median(), None);
    }

    #[test]
    fn negative_and_non_finite_values_are_refused() {
        assert!(matches!(
            GiniState::new().add_i64(-1),
            Err(ValueError::Negative(_))
        ));
        assert!(matches!(
            GiniState::new().add_f64(-0.5),
            Err(ValueError::Negative(_))
        ));
        assert!(matches!(
            GiniState::new().add_f64(f64::NAN),
            Err(ValueError::NotFinite(_))
        ));
        assert!(matches!(
            GiniState::new().add_f64(f64::INFINITY),
            Err(ValueError::NotFinite(_))
        ));
        let mut s = GiniState::new();
        s.add_f64(-0.0).unwrap();
        assert_eq!(s.sorted(), Sorted::Ints(vec![(0, 1)]));
    }

    #[test]
    fn whole_floats_are_exact_integers() {
        let mut a = GiniState::new();
        let mut b = GiniState::new();
        for v in [0i64, 3, 3, 10, 250] {
            a.add_i64(v).unwrap();
            b.add_f64(v as f64).unwrap();
        }
        assert_eq!(a, b);
        assert_eq!(a.gini(), b.gini());
    }

    #[test]
    fn fractions_mix_with_integers() {
        let mut s = GiniState::new();
        for v in [0.5, 1.0, 1.5, 2.0] {
            s.add_f64(v).unwrap();
        }
        // pairs: 0.5,1,1.5,0.5,1,0.5 -> 5; n·S = 4·5 = 20
        assert!((s.gini().unwrap() - 0.25).abs() < 1e-15);
        assert_eq!(s.median(), Some(1.25));
    }

    #[test]
    fn hashes_spread_doubles_with_trailing_zero_bits() {
        use std::hash::Hash;
        let mut buckets = std::collections::HashSet::new();
        for i in 0..1000u32 {
            let mut h = KeyHasher::default();
            (f64::from(i) + 0.5).to_bits().hash(&mut h);
            buckets.insert(h.finish() & 1023);
        }
        assert!(buckets.len() > 500, "{}", buckets.len());
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = of(&[1, 2, 2]);
        let b = of(&[2, 9]);
        a.merge(&b).unwrap();
        assert_eq!(a, of(&[1, 2, 2, 2, 9]));
        let mut e = GiniState::new();
        e.merge(&b).unwrap();
        assert_eq!(e, b);
        let mut c = b.clone();
        c.merge(&GiniState::new()).unwrap();
        assert_eq!(c, b);
    }

    #[test]
    fn counts_past_u64_are_an_error_not_a_wrap() {
        let mut big = GiniState::new();
        big.add_f64_n(1.0, u64::MAX - 1).unwrap();
        let mut other = big.clone();
        assert_eq!(other.merge(&big), Err(ValueError::TooMany));
        assert_eq!(other, big, "a failed merge changes nothing");
        big.add_i64(1).unwrap();
        assert_eq!(big.add_i64(1), Err(ValueError::TooMany));
        assert_eq!(big.add_f64(0.5), Err(ValueError::TooMany));
        assert_eq!(big.count(), u64::MAX);
    }

    #[test]
    fn top_share_and_median() {
        let s = of(&[0, 0, 0, 0, 0, 0, 0, 0, 10, 90]);
        assert_eq!(s.top_share(0.1).unwrap(), Some(0.9));
        assert_eq!(s.top_share(0.2).unwrap(), Some(1.0));
        assert_eq!(s.top_share(0.0).unwrap(), Some(0.0));
        assert_eq!(s.top_share(1.0).unwrap(), Some(1.0));
        // 1 % of 10 holders rounds up to one holder.
        assert_eq!(s.top_share(0.01).unwrap(), Some(0.9));
        assert!(s.top_share(1.5).is_err());
        assert!(s.top_share(f64::NAN).is_err());
        assert_eq!(s.median(), Some(0.0));
        assert_eq!(of(&[1, 2, 3]).median(), Some(2.0));
        assert_eq!(of(&[1, 2, 3, 10]).median(), Some(2.5));
    }
}
