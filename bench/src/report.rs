//! The benchmark's output: a text table for people and JSON for tools.

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Measurement {
    pub case: String,
    pub rows: u64,
    pub extension_ms: f64,
    pub baseline_ms: f64,
    /// The baseline is a write floor (only writing the rows the extension produces), so the
    /// interesting number is how many times the floor the extension costs.
    pub floor: bool,
    /// What the case's baseline includes, when the case says (printed under the table).
    pub note: Option<String>,
    /// The 1-minute load average before and after the case's runs.
    pub load_average: String,
}

impl Measurement {
    /// How many times faster the extension is than the baseline (above 1: faster).
    pub fn speedup(&self) -> f64 {
        self.baseline_ms / self.extension_ms.max(f64::MIN_POSITIVE)
    }

    /// Input rows (or files) the extension handled per second.
    pub fn extension_rows_per_second(&self) -> f64 {
        self.rows as f64 * 1000.0 / self.extension_ms.max(f64::MIN_POSITIVE)
    }
}

pub fn table(results: &[Measurement]) -> String {
    let mut out = format!(
        "{:<34} {:>10} {:>13} {:>12} {:>8} {:>14}\n",
        "case", "rows", "extension ms", "baseline ms", "ratio", "ext rows/s"
    );
    for m in results {
        out.push_str(&format!(
            "{:<34} {:>10} {:>13.1} {:>12.1} {:>7.2}x {:>14.0}\n",
            m.case,
            m.rows,
            m.extension_ms,
            m.baseline_ms,
            m.speedup(),
            m.extension_rows_per_second()
        ));
    }
    for m in results.iter().filter(|m| m.floor) {
        out.push_str(&format!(
            "{}: the extension costs {:.2}x its write floor\n",
            m.case,
            m.extension_ms / m.baseline_ms.max(f64::MIN_POSITIVE)
        ));
    }
    for m in results {
        out.push_str(&format!("{}: load average {}", m.case, m.load_average));
        if let Some(note) = &m.note {
            out.push_str(&format!("; {note}"));
        }
        out.push('\n');
    }
    out
}

pub fn json(results: &[Measurement]) -> String {
    #[derive(Serialize)]
    struct Row<'a> {
        #[serde(flatten)]
        measurement: &'a Measurement,
        ratio: f64,
        extension_rows_per_second: f64,
    }
    let rows: Vec<Row> = results
        .iter()
        .map(|measurement| Row {
            measurement,
            ratio: measurement.speedup(),
            extension_rows_per_second: measurement.extension_rows_per_second(),
        })
        .collect();
    serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_baseline_over_extension() {
        let m = Measurement {
            case: "c".into(),
            rows: 10,
            extension_ms: 2.0,
            baseline_ms: 5.0,
            floor: false,
            note: None,
            load_average: "0.5 -> 0.7".into(),
        };
        assert!((m.speedup() - 2.5).abs() < 1e-12);
        let text = table(&[m]);
        assert!(text.contains("2.50x"), "{text}");
        assert!(!text.contains("floor"), "{text}");
    }

    #[test]
    fn a_write_floor_gives_the_cost_in_floors() {
        let m = Measurement {
            case: "w".into(),
            rows: 10,
            extension_ms: 6.0,
            baseline_ms: 4.0,
            floor: true,
            note: Some("the floor: inserting the rows".into()),
            load_average: "1.0 -> 2.0".into(),
        };
        let text = table(&[m]);
        assert!(text.contains("0.67x"), "{text}");
        assert!(
            text.contains("w: the extension costs 1.50x its write floor"),
            "{text}"
        );
        assert!(
            text.contains("w: load average 1.0 -> 2.0; the floor: inserting the rows"),
            "{text}"
        );
    }

    #[test]
    fn json_lists_every_field_and_the_ratio() {
        let m = Measurement {
            case: "c".into(),
            rows: 10,
            extension_ms: 1.0,
            baseline_ms: 3.0,
            floor: false,
            note: None,
            load_average: "0.5 -> 0.7".into(),
        };
        let value: serde_json::Value = serde_json::from_str(&json(&[m])).expect("valid JSON");
        assert_eq!(value[0]["case"], "c");
        assert_eq!(value[0]["rows"], 10);
        assert_eq!(value[0]["ratio"], 3.0);
    }
}
