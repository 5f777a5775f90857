//! Property tests of the Gini state: against the textbook pairwise definition, and merge /
//! encode laws that make the SQL aggregate parallel-safe.

use guildstats_engine::gini::GiniState;
use proptest::prelude::*;

/// Σ_i Σ_j |x_i - x_j| / (2 n² μ), straight from the definition.
fn naive_gini(values: &[f64]) -> Option<f64> {
    let n = values.len() as f64;
    let total: f64 = values.iter().sum();
    if values.is_empty() || total == 0.0 {
        return None;
    }
    let mut diffs = 0.0;
    for a in values {
        for b in values {
            diffs += (a - b).abs();
        }
    }
    Some(diffs / (2.0 * n * total))
}

fn state_of(values: &[i64]) -> GiniState {
    let mut s = GiniState::new();
    for &v in values {
        s.add_i64(v).unwrap();
    }
    s
}

proptest! {
    #[test]
    fn matches_the_pairwise_definition(values in prop::collection::vec(0i64..1000, 0..120)) {
        let got = state_of(&values).gini();
        let floats: Vec<f64> = values.iter().map(|&v| v as f64).collect();
        match (got, naive_gini(&floats)) {
            (None, None) => {}
            (Some(a), Some(b)) => prop_assert!((a - b).abs() < 1e-12, "{a} vs {b}"),
            other => prop_assert!(false, "{other:?}"),
        }
    }

    #[test]
    fn fractions_match_the_pairwise_definition(values in prop::collection::vec(0.0f64..50.0, 1..80)) {
        let mut s = GiniState::new();
        for &v in &values {
            s.add_f64(v).unwrap();
        }
        match (s.gini(), naive_gini(&values)) {
            (None, None) => {}
            (Some(a), Some(b)) => prop_assert!((a - b).abs() < 1e-10, "{a} vs {b}"),
            other => prop_assert!(false, "{other:?}"),
        }
    }

    #[test]
    fn any_split_merges_to_the_same_state(
        values in prop::collection::vec(0i64..50, 0..200),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let whole = state_of(&values);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(values.len() + 1)).collect();
        points.push(0);
        points.push(values.len());
        points.sort_unstable();
        // Merge the parts in reverse order: order must not matter.
        let mut merged = GiniState::new();
        for w in points.windows(2).rev() {
            merged.merge(&state_of(&values[w[0]..w[1]])).unwrap();
        }
        prop_assert_eq!(&merged, &whole);
        prop_assert_eq!(merged.gini(), whole.gini());
        prop_assert_eq!(merged.median(), whole.median());
    }

    #[test]
    fn order_does_not_matter(mut values in prop::collection::vec(0i64..1_000_000, 0..100)) {
        let a = state_of(&values).gini();
        values.reverse();
        prop_assert_eq!(a, state_of(&values).gini());
    }

    #[test]
    fn encode_and_text_round_trip(
        ints in prop::collection::vec(0i64..i64::MAX, 0..50),
        floats in prop::collection::vec(0.0f64..1e30, 0..50),
    ) {
        let mut s = state_of(&ints);
        for &f in &floats {
            s.add_f64(f).unwrap();
        }
        prop_assert_eq!(&GiniState::decode(&s.encode()).unwrap(), &s);
        prop_assert_eq!(&GiniState::from_text(&s.to_text()).unwrap(), &s);
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = GiniState::decode(&bytes);
    }

    #[test]
    fn top_share_bounds(values in prop::collection::vec(0i64..1000, 1..100), f in 0.0f64..=1.0) {
        let s = state_of(&values);
        if let Some(share) = s.top_share(f).unwrap() {
            prop_assert!((0.0..=1.0).contains(&share));
            // The top share is at least the fraction of holders it covers.
            let k = (f * values.len() as f64).ceil() / values.len() as f64;
            prop_assert!(share + 1e-12 >= k.min(1.0) || share >= f - 1e-12);
        }
    }
}
