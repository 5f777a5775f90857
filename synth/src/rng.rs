//! Seeding and the few distributions the generator needs.
//!
//! Every independent piece of the simulation (a member's profile, one member-day, a game
//! server, the outage plan, ...) draws from its own ChaCha8 stream whose key is derived from
//! the config seed and the piece's coordinates. That is what makes table-by-table generation
//! possible: leaving out one table never shifts the random numbers another table sees, so the
//! database loader can regenerate one table per COPY and still get exactly the rows the file
//! writer produces in a single pass.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Which part of the simulation a stream belongs to (mixed into the key).
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
pub(crate) enum Stream {
    Member = 1,
    Voice = 2,
    Late = 3,
    Messages = 4,
    Economy = 5,
    Events = 6,
    Outages = 7,
    Server = 8,
}

/// SplitMix64 finalizer: a cheap, well-mixed hash of one word.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A ChaCha8 stream for (seed, stream, a, b).
pub(crate) fn stream_rng(seed: u64, stream: Stream, a: u64, b: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    let mut h = mix64(seed ^ mix64(stream as u64));
    for (i, chunk) in key.chunks_exact_mut(8).enumerate() {
        h = mix64(h ^ a.rotate_left(17 * i as u32) ^ mix64(b.wrapping_add(i as u64)));
        chunk.copy_from_slice(&h.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// Standard normal (Box-Muller; one value per call keeps the streams simple to reason about).
pub(crate) fn normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]: ln is finite
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Log-normal with the given median and log-space standard deviation.
pub(crate) fn lognormal<R: Rng + ?Sized>(rng: &mut R, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

/// Exponential with the given mean.
pub(crate) fn exponential<R: Rng + ?Sized>(rng: &mut R, mean: f64) -> f64 {
    let u: f64 = 1.0 - rng.gen::<f64>();
    -mean * u.ln()
}

/// Poisson count with mean `lambda` (Knuth for small means, a rounded normal above 30,
/// where the difference does not matter for synthetic activity).
pub(crate) fn poisson<R: Rng + ?Sized>(rng: &mut R, lambda: f64) -> u32 {
    // Also catches NaN.
    if lambda.is_nan() || lambda <= 0.0 {
        return 0;
    }
    if lambda > 30.0 {
        let v = lambda + lambda.sqrt() * normal(rng);
        return v.round().max(0.0) as u32;
    }
    let limit = (-lambda).exp();
    let mut k = 0u32;
    let mut p: f64 = rng.gen();
    while p > limit {
        k += 1;
        p *= rng.gen::<f64>();
    }
    k
}

/// Uniform in `[lo, hi)` seconds, as whole microseconds.
pub(crate) fn micros_between<R: Rng + ?Sized>(rng: &mut R, lo_secs: f64, hi_secs: f64) -> i64 {
    let lo = (lo_secs * 1e6) as i64;
    let hi = (hi_secs * 1e6) as i64;
    if hi <= lo {
        lo
    } else {
        rng.gen_range(lo..hi)
    }
}

/// Picks an index with probability proportional to `weights` (which must not all be zero).
pub(crate) fn weighted<R: Rng + ?Sized>(rng: &mut R, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.gen::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len().saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_independent_and_repeatable() {
        let a: u64 = stream_rng(7, Stream::Voice, 1, 2).gen();
        let b: u64 = stream_rng(7, Stream::Voice, 1, 2).gen();
        let c: u64 = stream_rng(7, Stream::Voice, 2, 1).gen();
        let d: u64 = stream_rng(7, Stream::Messages, 1, 2).gen();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn poisson_mean_is_close() {
        let mut rng = stream_rng(1, Stream::Outages, 9, 9);
        for lambda in [0.3, 4.0, 50.0] {
            let n = 20_000;
            let sum: u64 = (0..n).map(|_| u64::from(poisson(&mut rng, lambda))).sum();
            let mean = sum as f64 / n as f64;
            assert!(
                (mean - lambda).abs() < lambda * 0.05 + 0.02,
                "{lambda}: {mean}"
            );
        }
    }
}
