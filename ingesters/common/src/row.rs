//! One raw row on its way to the database.

use crate::raw_tables::{RawTable, ALL};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A row for one raw table: column name to value. JSON values keep the row self-describing, so
/// the spool file can hold rows of every table and PostgreSQL converts them to column types
/// (`json_populate_recordset`) with its own input functions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub table: String,
    pub values: Map<String, Value>,
}

impl Row {
    pub fn new(table: &RawTable) -> Row {
        Row {
            table: table.name.to_string(),
            values: Map::new(),
        }
    }

    /// Builder-style setter; `None`-like values are simply left out so the column default applies.
    pub fn set(mut self, column: &str, value: impl Into<Value>) -> Row {
        self.values.insert(column.to_string(), value.into());
        self
    }

    /// The catalogue entry, or why the row cannot be written. Only raw tables of the contract are
    /// writable, and column names end up in SQL text, so they must be plain identifiers.
    pub fn validate(&self) -> Result<&'static RawTable, String> {
        let table = ALL
            .iter()
            .find(|t| t.name == self.table)
            .ok_or_else(|| format!("{} is not a raw table", self.table))?;
        for column in self.values.keys() {
            let plain = !column.is_empty()
                && column
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !plain {
                return Err(format!("column name {column:?} is not a plain identifier"));
            }
        }
        Ok(table)
    }

    /// Rows with the same table and column set go into one statement.
    pub fn shape(&self) -> (String, Vec<String>) {
        let mut columns: Vec<String> = self.values.keys().cloned().collect();
        columns.sort();
        (self.table.clone(), columns)
    }
}

/// One multi-row `INSERT ... ON CONFLICT DO NOTHING` for rows of one shape: each column arrives
/// as one text array (`$1`, `$2`, ... in `columns` order) and is cast to its column type with the
/// type's own input function, which is much cheaper than parsing the rows as JSON in the server.
/// Idempotent, so replaying a spool is harmless. `columns` pairs a name with its SQL type.
pub fn batch_insert_sql(table: &str, columns: &[(String, String)]) -> String {
    let names = columns
        .iter()
        .map(|(c, _)| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let casts = columns
        .iter()
        .map(|(c, t)| format!("u.\"{c}\"::{t}"))
        .collect::<Vec<_>>()
        .join(", ");
    let arrays = (1..=columns.len())
        .map(|i| format!("${i}::text[]"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO guildstats.{table} ({names}) SELECT {casts} FROM unnest({arrays}) AS u({names}) \
         ON CONFLICT DO NOTHING"
    )
}

/// A value as the text its column's input function reads: strings as they are, numbers and
/// booleans in JSON spelling (which PostgreSQL reads), objects and arrays as JSON (for jsonb).
pub fn as_input_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

/// `COPY guildstats.table (columns) FROM STDIN` in text format.
pub fn copy_sql(table: &str, columns: &[String]) -> String {
    let names = columns
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!("COPY guildstats.{table} ({names}) FROM STDIN")
}

/// Appends one COPY text-format line: values tab-separated, `\N` for NULL, and the characters
/// COPY treats specially escaped.
pub fn copy_line(out: &mut Vec<u8>, values: &Map<String, Value>, columns: &[String]) {
    for (i, column) in columns.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match values.get(column).and_then(as_input_text) {
            None => out.extend_from_slice(b"\\N"),
            Some(text) => {
                for &b in text.as_bytes() {
                    match b {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        b'\r' => out.extend_from_slice(b"\\r"),
                        _ => out.push(b),
                    }
                }
            }
        }
    }
    out.push(b'\n');
}

/// Bytes for a `bytea` column, in PostgreSQL's hex input format.
pub fn bytea_text(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 + bytes.len() * 2);
    out.push_str("\\x");
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw_tables::RAW_HEARTBEATS;

    #[test]
    fn validates_table_and_columns() {
        let ok = Row::new(&RAW_HEARTBEATS).set("source", "x");
        assert!(ok.validate().is_ok());
        let bad_table = Row {
            table: "members".into(),
            values: Map::new(),
        };
        assert!(bad_table.validate().is_err());
        let bad_col = Row::new(&RAW_HEARTBEATS).set("a\"; drop", 1);
        assert!(bad_col.validate().is_err());
    }

    #[test]
    fn insert_sql_is_idempotent_quoted_and_typed() {
        let columns = [
            (
                "beat_at".to_string(),
                "timestamp with time zone".to_string(),
            ),
            ("source".to_string(), "text".to_string()),
        ];
        let sql = batch_insert_sql("raw_heartbeats", &columns);
        assert_eq!(
            sql,
            "INSERT INTO guildstats.raw_heartbeats (\"beat_at\", \"source\") \
             SELECT u.\"beat_at\"::timestamp with time zone, u.\"source\"::text \
             FROM unnest($1::text[], $2::text[]) AS u(\"beat_at\", \"source\") ON CONFLICT DO NOTHING"
        );
    }

    #[test]
    fn values_become_input_text() {
        assert_eq!(as_input_text(&Value::Null), None);
        assert_eq!(as_input_text(&Value::from("a b")).as_deref(), Some("a b"));
        assert_eq!(as_input_text(&Value::from(false)).as_deref(), Some("false"));
        assert_eq!(
            as_input_text(&Value::from(824215638301851648i64)).as_deref(),
            Some("824215638301851648")
        );
        assert_eq!(
            as_input_text(&serde_json::json!([{"user_id": 1}])).as_deref(),
            Some("[{\"user_id\":1}]")
        );
        assert_eq!(bytea_text(b"\\x\0\xff"), "\\x5c7800ff");
    }

    #[test]
    fn copy_lines_escape_what_copy_reads_specially() {
        let row = Row::new(&RAW_HEARTBEATS)
            .set("source", "a\tb\\c\nd\re")
            .set("guild_id", Value::Null)
            .set("beat_at", "2026-01-01T00:00:00Z");
        let (_, columns) = row.shape();
        let mut out = Vec::new();
        copy_line(&mut out, &row.values, &columns);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-01-01T00:00:00Z\t\\N\ta\\tb\\\\c\\nd\\re\n"
        );
        assert_eq!(
            copy_sql("raw_heartbeats", &columns),
            "COPY guildstats.raw_heartbeats (\"beat_at\", \"guild_id\", \"source\") FROM STDIN"
        );
    }
}
