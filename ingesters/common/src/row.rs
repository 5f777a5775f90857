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

/// One multi-row `INSERT ... ON CONFLICT DO NOTHING` for rows of one shape; `$1` is a JSON array
/// of the rows' objects (sent as text). Idempotent, so replaying a spool is harmless.
pub fn batch_insert_sql(table: &str, columns: &[String]) -> String {
    let cols = columns
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO guildstats.{table} ({cols}) SELECT {cols} FROM \
         json_populate_recordset(NULL::guildstats.{table}, $1::text::json) ON CONFLICT DO NOTHING"
    )
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
    fn insert_sql_is_idempotent_and_quoted() {
        let sql = batch_insert_sql("raw_heartbeats", &["beat_at".into(), "source".into()]);
        assert!(sql.starts_with("INSERT INTO guildstats.raw_heartbeats (\"beat_at\", \"source\")"));
        assert!(sql.ends_with("ON CONFLICT DO NOTHING"));
    }
}
