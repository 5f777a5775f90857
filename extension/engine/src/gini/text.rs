//! The text form of a [`GiniState`] (what `gini_state` values look like in psql and in a
//! plain-text dump): `{"version":1,"values":[[0,3],[5,1],[2.5,1]]}`, values ascending, each
//! with its count. Integers are written as integers, other values as doubles that read back
//! to the same bits.

use super::{DecodeError, GiniState, FORMAT_VERSION};
use std::fmt::Write;

impl GiniState {
    pub fn to_text(&self) -> String {
        let (ints, floats) = self.parts();
        let mut out = format!("{{\"version\":{FORMAT_VERSION},\"values\":[");
        let mut first = true;
        let mut sep = |out: &mut String| {
            if !first {
                out.push(',');
            }
            first = false;
        };
        // Integers and floats interleaved in ascending order.
        let (mut i, mut f) = (0, 0);
        while i < ints.len() || f < floats.len() {
            let take_int = match (ints.get(i), floats.get(f)) {
                (Some(a), Some(b)) => (a.0 as f64) <= b.0,
                (Some(_), None) => true,
                _ => false,
            };
            sep(&mut out);
            if take_int {
                let _ = write!(out, "[{},{}]", ints[i].0, ints[i].1);
                i += 1;
            } else {
                let _ = write!(out, "[{:?},{}]", floats[f].0, floats[f].1);
                f += 1;
            }
        }
        out.push_str("]}");
        out
    }

    /// Reads the text form. Values may come in any order and repeat (their counts add up).
    pub fn from_text(text: &str) -> Result<GiniState, DecodeError> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let err = |why: &str| DecodeError(format!("{why} in {text:?}"));
        let rest = compact
            .strip_prefix("{\"version\":")
            .ok_or_else(|| err("expected {\"version\":1,\"values\":[...]}"))?;
        let (version, rest) = rest
            .split_once(',')
            .ok_or_else(|| err("expected a version"))?;
        if version != FORMAT_VERSION.to_string() {
            return Err(err(&format!("unknown version {version}")));
        }
        let body = rest
            .strip_prefix("\"values\":[")
            .and_then(|r| r.strip_suffix("]}"))
            .ok_or_else(|| err("expected \"values\":[...]"))?;
        let mut state = GiniState::new();
        if body.is_empty() {
            return Ok(state);
        }
        let inner = body
            .strip_prefix('[')
            .and_then(|b| b.strip_suffix(']'))
            .ok_or_else(|| err("expected [value,count] pairs"))?;
        for pair in inner.split("],[") {
            let (value, count) = pair
                .split_once(',')
                .ok_or_else(|| err("expected [value,count]"))?;
            let count: u64 = count
                .parse()
                .ok()
                .filter(|&c| c > 0)
                .ok_or_else(|| err("counts must be positive integers"))?;
            let added = if value.contains(['.', 'e', 'E']) || value.contains("inf") {
                let v: f64 = value.parse().map_err(|_| err("bad value"))?;
                state.add_f64_n(v, count)
            } else {
                let v: i64 = value.parse().map_err(|_| err("bad value"))?;
                if v < 0 {
                    Err(super::ValueError::Negative(v.to_string()))
                } else {
                    state.add_int_n(v, count)
                }
            };
            added.map_err(|e| err(&e.to_string()))?;
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let mut s = GiniState::new();
        for v in [0.0, 0.0, 2.0, 2.5, 1e20, 0.1] {
            s.add_f64(v).unwrap();
        }
        s.add_i64(i64::MAX).unwrap();
        let text = s.to_text();
        assert_eq!(
            text,
            "{\"version\":1,\"values\":[[0,2],[0.1,1],[2,1],[2.5,1],[9223372036854775807,1],[1e20,1]]}"
        );
        assert_eq!(GiniState::from_text(&text).unwrap(), s);
        assert_eq!(
            GiniState::from_text("{\"version\":1,\"values\":[]}").unwrap(),
            GiniState::new()
        );
        assert_eq!(
            GiniState::from_text(" { \"version\" : 1 , \"values\" : [ [3, 2] , [3,1] ] } ")
                .unwrap()
                .count(),
            3
        );
    }

    #[test]
    fn bad_text_is_an_error() {
        for bad in [
            "",
            "{}",
            "{\"version\":2,\"values\":[]}",
            "{\"version\":1,\"values\":[[1]]}",
            "{\"version\":1,\"values\":[[-1,1]]}",
            "{\"version\":1,\"values\":[[1,0]]}",
            "{\"version\":1,\"values\":[[NaN,1]]}",
            "{\"version\":1,\"values\":[[1.5,x]]}",
            "{\"version\":1,\"values\":[[inf,1]]}",
            "{\"version\":1,\"values\":[[1,18446744073709551615],[2,1]]}",
            "{\"version\":1,\"values\":[[0.5,18446744073709551615],[1,1]]}",
        ] {
            assert!(GiniState::from_text(bad).is_err(), "{bad}");
        }
    }
}
