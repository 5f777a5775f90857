//! ET:Legacy player names with colour codes, for the name-cleaning benchmark and tests.
//!
//! In Quake 3 engines `^` followed by a character is a colour code; the corner cases that
//! trip up naive cleaners are all here on purpose: `^^`, a trailing `^`, codes next to each
//! other, non-ASCII characters after a caret, and names that are nothing but colour.

use rand::Rng;

use crate::rng::{stream_rng, Stream};

const STEMS: [&str; 24] = [
    "Panzer",
    "Medic",
    "Sniper",
    "Rambo",
    "olz",
    "Garand",
    "Engi",
    "covops",
    "fieldops",
    "Mortar",
    "allied",
    "axis",
    "Schnitzel",
    "Blitz",
    "Nordlicht",
    "Kaiser",
    "Wolf",
    "Fox",
    "Jürgen",
    "Łukasz",
    "ミカ",
    "Rocker",
    "ETPlayer",
    "noob",
];
const ODD: [&str; 10] = [
    "^^",
    "^",
    "^^^",
    "^7",
    "^1^2^3",
    "^\u{e4}",
    "^ ",
    "\\m/",
    "^x^y",
    "[^1TAG^7]",
];
const COLOURS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz!?*:";

/// `n` player names drawn from `seed` (same seed, same names).
pub fn player_names(seed: u64, n: usize) -> Vec<String> {
    let mut rng = stream_rng(seed, Stream::Server, u64::MAX, 1);
    (0..n)
        .map(|_| {
            let parts = rng.gen_range(1..4);
            let mut name = String::new();
            for _ in 0..parts {
                if rng.gen::<f64>() < 0.7 {
                    name.push('^');
                    name.push(char::from(COLOURS[rng.gen_range(0..COLOURS.len())]));
                }
                if rng.gen::<f64>() < 0.15 {
                    name.push_str(ODD[rng.gen_range(0..ODD.len())]);
                } else {
                    name.push_str(STEMS[rng.gen_range(0..STEMS.len())]);
                }
            }
            if rng.gen::<f64>() < 0.05 {
                name.push('^');
            }
            name
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_deterministic_and_colourful() {
        let a = player_names(1, 500);
        assert_eq!(a, player_names(1, 500));
        assert_ne!(a, player_names(2, 500));
        assert!(a.iter().any(|n| n.contains("^^")));
        assert!(a.iter().any(|n| n.ends_with('^')));
        assert!(a.iter().filter(|n| n.contains('^')).count() > 300);
    }
}
