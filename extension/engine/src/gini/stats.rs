//! Statistics over sorted distinct values with counts: one linear pass each.

/// Distinct values in ascending order with their counts (> 0). `Ints` when every value is an
/// exact integer, which keeps the sums exact.
#[derive(Debug, Clone, PartialEq)]
pub enum Sorted {
    Ints(Vec<(i64, u64)>),
    Floats(Vec<(f64, u64)>),
}

impl Sorted {
    /// Number of values.
    pub fn count(&self) -> u64 {
        match self {
            Sorted::Ints(v) => v.iter().map(|e| e.1).sum(),
            Sorted::Floats(v) => v.iter().map(|e| e.1).sum(),
        }
    }

    /// Sum of the values.
    pub fn total(&self) -> f64 {
        match self {
            Sorted::Ints(v) => match int_total(v) {
                Some(t) => t as f64,
                None => float_total(&to_floats(v)),
            },
            Sorted::Floats(v) => float_total(v),
        }
    }
}

fn to_floats(v: &[(i64, u64)]) -> Vec<(f64, u64)> {
    v.iter().map(|&(k, c)| (k as f64, c)).collect()
}

fn int_total(v: &[(i64, u64)]) -> Option<i128> {
    v.iter().try_fold(0i128, |acc, &(k, c)| {
        acc.checked_add(i128::from(k).checked_mul(i128::from(c))?)
    })
}

/// Neumaier's compensated sum: keeps the error of long sums of doubles near one rounding.
#[derive(Default, Clone, Copy)]
struct Sum {
    sum: f64,
    compensation: f64,
}

impl Sum {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.compensation += (self.sum - t) + x;
        } else {
            self.compensation += (x - t) + self.sum;
        }
        self.sum = t;
    }
    fn value(&self) -> f64 {
        // Past f64::MAX the compensation is -inf: the sum is infinite, not NaN.
        if self.sum.is_finite() {
            self.sum + self.compensation
        } else {
            self.sum
        }
    }
}

fn float_total(v: &[(f64, u64)]) -> f64 {
    let mut s = Sum::default();
    for &(x, c) in v {
        s.add(x * c as f64);
    }
    s.value()
}

/// `Σ_{i<j} (x_j - x_i) / (n · S)`; `None` for no values or a zero total.
pub fn gini_of_sorted(sorted: &Sorted) -> Option<f64> {
    match sorted {
        Sorted::Ints(v) => match gini_ints_exact(v) {
            Ok(g) => g,
            Err(Overflow) => gini_floats(&to_floats(v)),
        },
        Sorted::Floats(v) => gini_floats(v),
    }
}

struct Overflow;

fn gini_ints_exact(v: &[(i64, u64)]) -> Result<Option<f64>, Overflow> {
    let mut n: i128 = 0; // values before the current group (r_k), then all of them
    let mut prefix: i128 = 0; // sum of the values before the current group (P_k)
    let mut pairs: i128 = 0; // Σ_k c_k (r_k v_k - P_k) = Σ_{i<j} (x_j - x_i)
    for &(value, count) in v {
        let (value, count) = (i128::from(value), i128::from(count));
        let gap = n
            .checked_mul(value)
            .and_then(|rv| rv.checked_sub(prefix))
            .ok_or(Overflow)?;
        pairs = gap
            .checked_mul(count)
            .and_then(|g| pairs.checked_add(g))
            .ok_or(Overflow)?;
        prefix = value
            .checked_mul(count)
            .and_then(|vc| prefix.checked_add(vc))
            .ok_or(Overflow)?;
        n += count;
    }
    if n == 0 || prefix == 0 {
        return Ok(None);
    }
    Ok(Some(pairs as f64 / (n as f64 * prefix as f64)))
}

/// A power of two that brings the largest value (the last) to between 1 and 4. Gini and
/// shares do not change with the scale, and sums of scaled values cannot overflow where sums
/// of values near `f64::MAX` would (to infinity, then NaN). Multiplying by a power of two is
/// exact, so ordinary values give the same bits as without it.
fn scale_of(v: &[(f64, u64)]) -> f64 {
    match v.last() {
        // At most 2^1022 down: the largest scaled value stays below 4, and 2^-1022 is normal.
        Some(&(max, _)) if max > 1.0 => 2f64.powi(-(max.log2().floor() as i32).min(1022)),
        _ => 1.0,
    }
}

fn gini_floats(v: &[(f64, u64)]) -> Option<f64> {
    let scale = scale_of(v);
    let mut n = 0u64;
    let mut prefix = Sum::default();
    let mut pairs = Sum::default();
    for &(value, count) in v {
        let value = value * scale;
        let gap = n as f64 * value - prefix.value();
        pairs.add(gap.max(0.0) * count as f64);
        prefix.add(value * count as f64);
        n += count;
    }
    let total = prefix.value();
    if n == 0 || total <= 0.0 {
        return None;
    }
    Some((pairs.value() / (n as f64 * total)).clamp(0.0, 1.0))
}

/// How many of `n` values the top `fraction` is: `ceil(fraction · n)`, forgiving the rounding
/// of binary fractions (1 % of 300 holders is 3, not 4).
fn top_count(fraction: f64, n: u64) -> u64 {
    let exact = fraction * n as f64;
    let nearest = exact.round();
    let k = if (exact - nearest).abs() <= 1e-9 * nearest.max(1.0) {
        nearest
    } else {
        exact.ceil()
    };
    (k.max(0.0) as u64).min(n)
}

/// Share of the total held by the `ceil(fraction · n)` largest values. `fraction` must be in
/// [0, 1]; `None` when there are no values or they sum to 0.
pub fn top_share_of_sorted(sorted: &Sorted, fraction: f64) -> Result<Option<f64>, String> {
    if !(0.0..=1.0).contains(&fraction) {
        return Err(format!(
            "top_share: fraction must be between 0 and 1, got {fraction}"
        ));
    }
    let n = sorted.count();
    let total = sorted.total();
    if n == 0 || total <= 0.0 {
        return Ok(None);
    }
    let mut left = top_count(fraction, n);
    let top = match sorted {
        Sorted::Ints(v) => {
            let mut top: i128 = 0;
            for &(value, count) in v.iter().rev() {
                if left == 0 {
                    break;
                }
                let take = count.min(left);
                top = top.saturating_add(i128::from(value) * i128::from(take));
                left -= take;
            }
            match int_total(v) {
                Some(exact) => return Ok(Some(top as f64 / exact as f64)),
                None => top as f64,
            }
        }
        Sorted::Floats(v) => {
            let scale = scale_of(v);
            let mut top = Sum::default();
            for &(value, count) in v.iter().rev() {
                if left == 0 {
                    break;
                }
                let take = count.min(left);
                top.add(value * scale * take as f64);
                left -= take;
            }
            let scaled: Vec<(f64, u64)> = v.iter().map(|&(x, c)| (x * scale, c)).collect();
            return Ok(Some((top.value() / float_total(&scaled)).clamp(0.0, 1.0)));
        }
    };
    Ok(Some((top / total).clamp(0.0, 1.0)))
}

/// The middle value, or the mean of the two middle values when the count is even.
pub fn median_of_sorted(sorted: &Sorted) -> Option<f64> {
    let n = sorted.count();
    if n == 0 {
        return None;
    }
    // 0-based positions of the middle value(s).
    let (lo, hi) = if n % 2 == 1 {
        (n / 2, n / 2)
    } else {
        (n / 2 - 1, n / 2)
    };
    let at = |pos: u64| -> f64 {
        let mut seen = 0u64;
        match sorted {
            Sorted::Ints(v) => {
                for &(value, count) in v {
                    seen += count;
                    if pos < seen {
                        return value as f64;
                    }
                }
            }
            Sorted::Floats(v) => {
                for &(value, count) in v {
                    seen += count;
                    if pos < seen {
                        return value;
                    }
                }
            }
        }
        f64::NAN
    };
    let (a, b) = (at(lo), at(hi));
    Some(if lo == hi { a } else { a + (b - a) / 2.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_count_forgives_binary_fractions() {
        assert_eq!(top_count(0.01, 300), 3);
        assert_eq!(top_count(0.01, 301), 4);
        assert_eq!(top_count(0.01, 10), 1);
        assert_eq!(top_count(0.0, 10), 0);
        assert_eq!(top_count(1.0, 10), 10);
        assert_eq!(top_count(0.1, 3), 1);
    }

    #[test]
    fn huge_integers_fall_back_to_floats() {
        let v = vec![(0, 1), (i64::MAX, u64::MAX / 2)];
        let g = gini_of_sorted(&Sorted::Ints(v)).unwrap();
        assert!(
            (g - 1.0 / (1.0 + (u64::MAX / 2) as f64)).abs() < 1e-12,
            "{g}"
        );
    }

    #[test]
    fn values_near_the_largest_double_give_a_number() {
        // Two holders of 1e308 and 1.7e308: the unscaled sums overflow to infinity (NaN).
        let v = vec![(1e308, 1), (1.7e308, 1)];
        let g = gini_of_sorted(&Sorted::Floats(v.clone())).unwrap();
        // (1.7 - 1) / (2 · 2.7), the scale cancels out.
        let expected = 0.7 / 5.4;
        assert!((g - expected).abs() < 1e-15, "{g} vs {expected}");
        let top = top_share_of_sorted(&Sorted::Floats(v), 0.5)
            .unwrap()
            .unwrap();
        assert!((top - 1.7 / 2.7).abs() < 1e-15, "{top}");
        // Many copies of f64::MAX: all equal.
        let v = vec![(f64::MAX, u64::MAX / 3)];
        assert_eq!(gini_of_sorted(&Sorted::Floats(v.clone())), Some(0.0));
        assert_eq!(top_share_of_sorted(&Sorted::Floats(v), 1.0), Ok(Some(1.0)));
        // Scaling by a power of two leaves ordinary values bit for bit.
        let v = vec![(0.5, 3), (1.25, 2), (3e6, 1)];
        let unscaled = {
            let (mut n, mut prefix, mut pairs) = (0u64, Sum::default(), Sum::default());
            for &(x, c) in &v {
                pairs.add((n as f64 * x - prefix.value()).max(0.0) * c as f64);
                prefix.add(x * c as f64);
                n += c;
            }
            pairs.value() / (n as f64 * prefix.value())
        };
        assert_eq!(gini_of_sorted(&Sorted::Floats(v)), Some(unscaled));
    }

    #[test]
    fn float_and_int_paths_agree() {
        let ints = vec![(0, 3), (1, 2), (7, 1), (100, 4)];
        let floats = to_floats(&ints);
        let a = gini_of_sorted(&Sorted::Ints(ints)).unwrap();
        let b = gini_of_sorted(&Sorted::Floats(floats)).unwrap();
        assert!((a - b).abs() < 1e-15);
    }
}
