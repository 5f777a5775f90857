//! A fetched stats file as a raw_et_stats_files row.

use guildstats_ingest::raw_tables::RAW_ET_STATS_FILES;
use guildstats_ingest::row::bytea_text;
use guildstats_ingest::Row;

/// The content goes as bytea hex text (`\x...`): the sink's rows are JSON, which cannot carry
/// arbitrary bytes, and a file that is not UTF-8 must still be stored exactly as it is (the
/// importer, run later by the builders, repairs it and records a warning beside it, or records
/// why it cannot be parsed). The database computes sha256 and size.
pub fn stats_file_row(file_name: &str, source: &str, content: &[u8], fetched_at: &str) -> Row {
    Row::new(&RAW_ET_STATS_FILES)
        .set("file_name", file_name)
        .set("source", source)
        .set("content", bytea_text(content))
        .set("fetched_at", fetched_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_hex_and_the_row_validates() {
        let row = stats_file_row("a-round-1.txt", "s", &[0x00, 0xff, b'h', 0x0a], "t");
        assert_eq!(row.values["content"], "\\x00ff680a");
        assert_eq!(row.values["file_name"], "a-round-1.txt");
        assert!(row.validate().is_ok());
        assert_eq!(stats_file_row("e", "s", &[], "t").values["content"], "\\x");
    }
}
