//! PostgreSQL COPY text format: one line per row, columns separated by tabs, `\N` for NULL,
//! and backslash, tab, newline and carriage return escaped, so that any string survives.
//!
//! [`CopyDirSink`] writes one `<table>.copy` file per table plus a `load.psql` script that
//! loads them the same way the `load` command does (through a staging table, so duplicate
//! rows are dropped by `ON CONFLICT DO NOTHING` instead of failing the COPY).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::rows::*;
use crate::sink::Sink;
use crate::time::Ts;

/// `s` escaped for COPY text format.
pub fn escape_text(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    escape_into(&mut out, s);
    // Escaping only replaces ASCII bytes with ASCII sequences, so UTF-8 stays valid.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Appends `s` escaped for COPY text format.
pub fn escape_into(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            // Other control characters are legal but invisible; octal keeps files readable.
            0..=0x1f | 0x7f => {
                out.push(b'\\');
                out.push(b'0' + (b >> 6));
                out.push(b'0' + ((b >> 3) & 7));
                out.push(b'0' + (b & 7));
            }
            _ => out.push(b),
        }
    }
}

/// Appends one row as a COPY text line (with the trailing newline).
pub fn write_row(out: &mut Vec<u8>, row: Row<'_>) {
    let mut w = Line { out, first: true };
    match row {
        Row::Guild(r) => {
            w.int(r.guild_id);
            w.ts(r.observed_at);
            w.text(&r.name);
            w.opt_int(r.afk_channel_id);
            w.opt_int(r.afk_timeout_s.map(i64::from));
            w.opt_int(r.member_count.map(i64::from));
        }
        Row::Channel(r) => {
            w.int(r.guild_id);
            w.int(r.channel_id);
            w.ts(r.observed_at);
            w.text(&r.name);
            w.text(r.kind);
            w.opt_int(r.parent_id);
            w.bool(r.is_deleted);
        }
        Row::MemberEvent(r) => {
            w.int(r.guild_id);
            w.int(r.user_id);
            w.text(r.event_type);
            w.ts(r.event_ts);
            w.opt_text(r.display_name.as_deref());
            w.bool(r.is_bot);
        }
        Row::ScheduledEvent(r) => {
            w.int(r.guild_id);
            w.int(r.event_id);
            w.ts(r.observed_at);
            w.text(&r.name);
            w.opt_int(r.channel_id);
            w.text(r.entity_type);
            w.text(r.status);
            w.opt_ts(r.scheduled_start);
            w.opt_ts(r.scheduled_end);
            w.opt_int(r.creator_id);
            w.opt_int(r.user_count.map(i64::from));
        }
        Row::VoiceEvent(r) => {
            w.int(r.guild_id);
            w.int(r.user_id);
            w.opt_int(r.channel_id);
            w.ts(r.event_ts);
            w.bool(r.flags.self_mute);
            w.bool(r.flags.self_deaf);
            w.bool(r.flags.server_mute);
            w.bool(r.flags.server_deaf);
            w.bool(r.flags.self_stream);
            w.bool(r.flags.self_video);
        }
        Row::VoiceSnapshot(r) => {
            w.int(r.guild_id);
            w.ts(r.taken_at);
            w.text(&r.voice_states);
        }
        Row::Heartbeat(r) => {
            w.text(r.source);
            w.opt_int(r.guild_id);
            w.ts(r.beat_at);
        }
        Row::Message(r) => {
            w.int(r.guild_id);
            w.int(r.channel_id);
            w.int(r.user_id);
            w.int(r.message_id);
            w.ts(r.sent_at);
            w.int(i64::from(r.char_count));
            w.int(i64::from(r.word_count));
            w.int(i64::from(r.attachment_count));
            w.int(i64::from(r.mention_count));
            w.bool(r.is_reply);
            w.bool(r.is_bot);
            w.opt_int(r.thread_id);
        }
        Row::PointTransaction(r) => {
            w.int(r.guild_id);
            w.int(r.user_id);
            w.int(r.amount);
            w.text(r.reason);
            w.ts(r.tx_ts);
            w.text(&r.tx_key);
        }
        Row::ServerPoll(r) => {
            w.text(&r.server);
            w.ts(r.polled_at);
            w.bool(r.ok);
            w.text(r.protocol);
            w.opt_text(r.error);
            w.opt_text(r.server_name.as_deref());
            w.opt_text(r.map);
            w.opt_text(r.game);
            w.opt_int(r.player_count.map(i64::from));
            w.opt_int(r.max_players.map(i64::from));
            w.opt_int(r.bot_count.map(i64::from));
            w.opt_f32(r.latency_ms);
        }
        Row::ServerPlayer(r) => {
            w.text(&r.server);
            w.ts(r.polled_at);
            w.int(i64::from(r.player_index));
            w.text(&r.name);
            w.opt_int(r.score.map(i64::from));
            w.opt_f32(r.connected_seconds);
            w.opt_int(r.ping_ms.map(i64::from));
        }
    }
    w.out.push(b'\n');
}

/// Writes the fields of one line, putting the tabs in between.
struct Line<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl Line<'_> {
    fn sep(&mut self) {
        if !self.first {
            self.out.push(b'\t');
        }
        self.first = false;
    }
    fn null(&mut self) {
        self.sep();
        self.out.extend_from_slice(b"\\N");
    }
    fn int(&mut self, v: i64) {
        self.sep();
        // Formatting into a Vec cannot fail.
        let _ = write!(self.out, "{v}");
    }
    fn opt_int(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.int(v),
            None => self.null(),
        }
    }
    fn opt_f32(&mut self, v: Option<f32>) {
        match v {
            // Non-finite values never occur; `{}` gives the shortest round-tripping form.
            Some(v) if v.is_finite() => {
                self.sep();
                let _ = write!(self.out, "{v}");
            }
            _ => self.null(),
        }
    }
    fn bool(&mut self, v: bool) {
        self.sep();
        self.out.push(if v { b't' } else { b'f' });
    }
    fn text(&mut self, s: &str) {
        self.sep();
        escape_into(self.out, s);
    }
    fn opt_text(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }
    fn ts(&mut self, t: Ts) {
        self.sep();
        t.write_pg(self.out);
    }
    fn opt_ts(&mut self, t: Option<Ts>) {
        match t {
            Some(t) => self.ts(t),
            None => self.null(),
        }
    }
}

/// The comma-separated column list of `table`.
pub fn column_list(table: Table) -> String {
    table.columns().join(", ")
}

/// SQL statements that load COPY rows of `table` idempotently: rows go into a temporary
/// staging table (with an arrival counter), then move with `INSERT ... ON CONFLICT DO
/// NOTHING` in arrival order, so duplicates and reruns are dropped and late rows still get
/// later `ingest_id`s than the rows streamed before them.
pub struct StagingSql {
    /// Creates the staging table `synth_stage` (dropped at commit).
    pub create: String,
    /// `COPY synth_stage (...) FROM STDIN`.
    pub copy: String,
    /// Moves the staged rows; its row count is the number of new rows.
    pub insert: String,
}

impl StagingSql {
    pub fn for_table(table: Table) -> Self {
        let cols = column_list(table);
        let name = table.name();
        StagingSql {
            create: format!(
                "CREATE TEMP TABLE synth_stage ON COMMIT DROP AS \
                 SELECT {cols} FROM guildstats.{name} WITH NO DATA; \
                 ALTER TABLE synth_stage ADD COLUMN synth_ord bigint GENERATED ALWAYS AS IDENTITY"
            ),
            copy: format!("COPY synth_stage ({cols}) FROM STDIN"),
            insert: format!(
                "INSERT INTO guildstats.{name} ({cols}) SELECT {cols} FROM synth_stage \
                 ORDER BY synth_ord ON CONFLICT DO NOTHING"
            ),
        }
    }
}

/// Writes `<dir>/<table>.copy` per table and `<dir>/load.psql`.
pub struct CopyDirSink {
    dir: PathBuf,
    files: BTreeMap<Table, BufWriter<File>>,
    counts: BTreeMap<Table, u64>,
    only: Option<Vec<Table>>,
    line: Vec<u8>,
}

impl CopyDirSink {
    /// Creates `dir` if needed. Files are created on the first row of their table.
    pub fn create(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(CopyDirSink {
            dir: dir.to_path_buf(),
            files: BTreeMap::new(),
            counts: BTreeMap::new(),
            only: None,
            line: Vec::with_capacity(256),
        })
    }

    /// Restricts output to `tables`.
    pub fn only(mut self, tables: &[Table]) -> Self {
        self.only = Some(tables.to_vec());
        self
    }

    /// Flushes every file, writes `load.psql` and returns the row count per table.
    pub fn finish(mut self) -> io::Result<BTreeMap<Table, u64>> {
        for f in self.files.values_mut() {
            f.flush()?;
        }
        let mut script = String::from(
            "-- Generated by guildstats-synth. Run from this directory: psql -f load.psql\n\
             -- Each table goes through a staging table so duplicates are dropped, not fatal.\n\
             \\set ON_ERROR_STOP on\n",
        );
        for table in self.files.keys() {
            let sql = StagingSql::for_table(*table);
            script.push_str(&format!(
                "BEGIN;\n{};\n\\copy synth_stage ({}) FROM '{}.copy'\n{};\nCOMMIT;\n",
                sql.create,
                column_list(*table),
                table.name(),
                sql.insert
            ));
        }
        fs::write(self.dir.join("load.psql"), script)?;
        Ok(self.counts)
    }
}

impl Sink for CopyDirSink {
    fn wants(&self, table: Table) -> bool {
        self.only.as_ref().is_none_or(|t| t.contains(&table))
    }

    fn row(&mut self, row: Row<'_>) -> io::Result<()> {
        let table = row.table();
        let file = match self.files.entry(table) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let path = self.dir.join(format!("{}.copy", table.name()));
                e.insert(BufWriter::with_capacity(1 << 16, File::create(path)?))
            }
        };
        self.line.clear();
        write_row(&mut self.line, row);
        file.write_all(&self.line)?;
        *self.counts.entry(table).or_insert(0) += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_specials() {
        let mut out = Vec::new();
        escape_into(&mut out, "a\\b\tc\nd\re\u{1}f ü");
        assert_eq!(out, b"a\\\\b\\tc\\nd\\re\\001f \xc3\xbc");
        assert_eq!(escape_text("^1a\tb\\"), "^1a\\tb\\\\");
    }

    #[test]
    fn writes_nulls_and_timestamps() {
        let row = MemberEventRow {
            guild_id: 1,
            user_id: 2,
            event_type: "join",
            event_ts: Ts::from_ymd_hms(2026, 1, 5, 0, 0, 1).unwrap(),
            display_name: None,
            is_bot: false,
        };
        let mut out = Vec::new();
        write_row(&mut out, Row::MemberEvent(&row));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1\t2\tjoin\t2026-01-05 00:00:01.000000+00\t\\N\tf\n"
        );
    }
}
