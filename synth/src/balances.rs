//! Point balances of a large economy, for the Gini benchmark: a fifth of the accounts are
//! empty, the rest log-normal (a few rich holders, a long tail of small ones), so a big
//! economy has many distinct balances, the hard case for a value -> count state.

use rand::Rng;

use crate::rng::{stream_rng, Stream};

/// `n` balances drawn from `seed` (same seed, same balances), streamed.
pub fn balances(seed: u64, n: usize) -> impl Iterator<Item = i64> {
    let mut rng = stream_rng(seed, Stream::Economy, u64::MAX, 7);
    (0..n).map(move |_| {
        if rng.gen::<f64>() < 0.2 {
            return 0;
        }
        // Box-Muller: one standard normal from two uniforms.
        let (u1, u2): (f64, f64) = (rng.gen::<f64>().max(f64::MIN_POSITIVE), rng.gen());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        (6.0 + 1.8 * z).exp().round() as i64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balances_are_deterministic_and_heavy_tailed() {
        let a: Vec<i64> = balances(1, 10_000).collect();
        assert_eq!(a, balances(1, 10_000).collect::<Vec<_>>());
        assert!(a.iter().all(|&b| b >= 0));
        let zeros = a.iter().filter(|&&b| b == 0).count();
        assert!((1500..2500).contains(&zeros), "{zeros}");
        let max = *a.iter().max().unwrap();
        assert!(max > 50_000, "{max}");
    }
}
