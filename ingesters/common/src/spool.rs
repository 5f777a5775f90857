//! The local spool: a directory of append-only segment files that is the sink's queue. A row is
//! on disk (fsync'd) before the sink acknowledges it, and the database writer reads rows back
//! from the segments, so a database outage of any length costs disk, not memory, and a crash or a
//! restart loses nothing: whatever is not known to be committed is read again on the next start.
//! Replaying a row that was in fact committed is harmless because every insert is idempotent.
//!
//! Layout of the directory:
//! - `NNNNNNNNNNNNNNNNNNNN.jsonl`: segments, one row per line, numbered in write order. A
//!   process only appends to a segment it created, so a torn last line left by a crash is never
//!   followed by an acknowledged row. A line is the row as JSON, a tab and the CRC-32 of the JSON
//!   in 8 hex digits: a record changed on disk (a bad sector, a stray write) fails its checksum
//!   and is set aside, never replayed as something else. Lines without the checksum, written
//!   before it existed, are still read (as JSON alone), so an upgrade keeps a waiting spool; for
//!   them only damage that breaks the JSON is detected.
//! - `committed`: `SEGMENT OFFSET` up to which every row is committed. Written after each commit
//!   without fsync: if it is lost or stale, more is replayed, which is harmless.
//! - `rejected.jsonl`: rows the database refused, and spool records that are damaged, each with
//!   the reason, kept for an operator.
//! - `lock`: held (flock) by the process using the spool; two ingesters on one spool would
//!   interleave their replays.

use crate::row::Row;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Segments are closed at this size, so committed ones can be deleted while writing goes on.
pub const SEGMENT_BYTES: u64 = 4 << 20;

/// A place in the spool: a segment and a byte offset inside it, always at a line boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:020}.jsonl"))
}

/// Segment numbers present in the directory, in order.
pub fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(number) = name.strip_suffix(".jsonl") {
            if number.len() == 20 {
                if let Ok(n) = number.parse::<u64>() {
                    found.push(n);
                }
            }
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Where the last commit ended, if it was recorded.
pub fn read_checkpoint(dir: &Path) -> Option<Position> {
    let text = std::fs::read_to_string(dir.join("committed")).ok()?;
    let mut parts = text.split_whitespace();
    Some(Position {
        segment: parts.next()?.parse().ok()?,
        offset: parts.next()?.parse().ok()?,
    })
}

fn write_checkpoint(dir: &Path, at: Position) -> io::Result<()> {
    let tmp = dir.join("committed.tmp");
    std::fs::write(&tmp, format!("{} {}\n", at.segment, at.offset))?;
    std::fs::rename(tmp, dir.join("committed"))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// How many rows a spool holds that are not known to be committed (for `--check` and tests).
pub fn pending_rows(dir: &Path) -> io::Result<u64> {
    if !dir.exists() {
        return Ok(0);
    }
    let start = read_checkpoint(dir).unwrap_or_default();
    let mut count = 0;
    for segment in segments(dir)? {
        if segment < start.segment {
            continue;
        }
        let bytes = std::fs::read(segment_path(dir, segment))?;
        let skip = if segment == start.segment {
            (start.offset as usize).min(bytes.len())
        } else {
            0
        };
        count += bytes[skip..].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    Ok(count)
}

/// The exclusive hold on a spool directory, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct SpoolLock {
    _file: File,
}

impl SpoolLock {
    pub fn acquire(dir: &Path) -> io::Result<SpoolLock> {
        std::fs::create_dir_all(dir)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        match file.try_lock() {
            Ok(()) => Ok(SpoolLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "the spool {} is in use by another process; give each ingester its own --spool",
                    dir.display()
                ),
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// The writing end, owned by one thread: appends encoded rows to the newest segment.
#[derive(Debug)]
pub struct Appender {
    dir: PathBuf,
    segment: u64,
    file: File,
    len: u64,
}

impl Appender {
    /// Starts a fresh segment after every existing one.
    pub fn open(dir: &Path) -> io::Result<Appender> {
        let next = segments(dir)?.last().map_or(1, |last| last + 1);
        Appender::create(dir, next)
    }

    fn create(dir: &Path, segment: u64) -> io::Result<Appender> {
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(segment_path(dir, segment))?;
        // The new name must survive a crash, or the rows written into it would vanish with it.
        sync_dir(dir)?;
        Ok(Appender {
            dir: dir.to_path_buf(),
            segment,
            file,
            len: 0,
        })
    }

    /// Everything written so far; readers may read up to here.
    pub fn position(&self) -> Position {
        Position {
            segment: self.segment,
            offset: self.len,
        }
    }

    /// Writes whole lines and makes them durable with one fsync. After a failure the segment is
    /// cut back to its last whole line, so the next append does not glue onto a fragment.
    pub fn append(&mut self, lines: &[u8]) -> io::Result<()> {
        let result = self
            .file
            .write_all(lines)
            .and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                self.len += lines.len() as u64;
                if self.len >= SEGMENT_BYTES {
                    *self = Appender::create(&self.dir, self.segment + 1)?;
                }
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }
}

/// What a read found besides rows: lines that cannot be rows, all kept in `rejected.jsonl`. A torn
/// last line (no newline) of a segment an earlier process was writing when it died was never
/// acknowledged; it is kept all the same, since a damaged line end looks the same.
#[derive(Debug, Default)]
pub struct Unreadable {
    pub torn: Vec<Corrupt>,
    pub corrupt: Vec<Corrupt>,
}

/// A damaged spool record: where it is, why it is not a row, and its bytes as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt {
    pub segment: u64,
    pub offset: u64,
    pub reason: String,
    pub text: String,
}

impl Corrupt {
    pub fn file_name(&self) -> String {
        format!("{:020}.jsonl", self.segment)
    }

    /// Its line in `rejected.jsonl`.
    pub fn rejected_line(&self) -> String {
        serde_json::json!({
            "spool_segment": self.file_name(),
            "offset": self.offset,
            "error": self.reason,
            "line": self.text,
        })
        .to_string()
    }
}

/// The reading end, used by the database writer: reads rows in write order, never past the
/// durable end the appender has published.
#[derive(Debug)]
pub struct Reader {
    dir: PathBuf,
    at: Position,
    file: Option<File>,
}

impl Reader {
    /// Starts where the last recorded commit ended (or at the oldest segment), after deleting
    /// segments that are wholly committed.
    pub fn open(dir: &Path) -> io::Result<Reader> {
        let existing = segments(dir)?;
        let checkpoint = read_checkpoint(dir).filter(|c| existing.contains(&c.segment));
        for &segment in &existing {
            if checkpoint.is_some_and(|c| segment < c.segment) {
                std::fs::remove_file(segment_path(dir, segment))?;
            }
        }
        let at = checkpoint.unwrap_or(Position {
            segment: existing.first().copied().unwrap_or(1),
            offset: 0,
        });
        Ok(Reader {
            dir: dir.to_path_buf(),
            at,
            file: None,
        })
    }

    pub fn position(&self) -> Position {
        self.at
    }

    /// Bytes of segments still on disk (for the size cap).
    pub fn disk_bytes(&self) -> io::Result<u64> {
        let mut total = 0;
        for segment in segments(&self.dir)? {
            total += std::fs::metadata(segment_path(&self.dir, segment))?.len();
        }
        Ok(total)
    }

    /// Up to `max` rows written before `durable`, and the position just after the last one.
    pub fn read(
        &mut self,
        durable: Position,
        max: usize,
        unreadable: &mut Unreadable,
    ) -> io::Result<(Vec<Row>, Position)> {
        let mut rows = Vec::new();
        while rows.len() < max && self.at < durable {
            let complete = self.at.segment < durable.segment;
            if self.file.is_none() {
                match File::open(segment_path(&self.dir, self.at.segment)) {
                    Ok(f) => self.file = Some(f),
                    // Gaps cannot occur in one run, but a hand-edited spool should not wedge us.
                    Err(e) if e.kind() == io::ErrorKind::NotFound && complete => {
                        self.next_segment();
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            let Some(file) = self.file.as_ref() else {
                unreachable!("opened just above")
            };
            let end = if complete {
                file.metadata()?.len()
            } else {
                durable.offset
            };
            if self.at.offset >= end {
                if complete {
                    self.next_segment();
                }
                continue;
            }
            let consumed = read_lines(
                file,
                self.at.segment,
                self.at.offset,
                end,
                max - rows.len(),
                &mut rows,
                unreadable,
            )?;
            if consumed == 0 {
                // Only a fragment without a newline is left: the torn tail of a crashed writer.
                let mut fragment = vec![0u8; (end - self.at.offset) as usize];
                file.read_exact_at(&mut fragment, self.at.offset)?;
                unreadable.torn.push(Corrupt {
                    segment: self.at.segment,
                    offset: self.at.offset,
                    reason: "torn last line: a write cut short by a crash (never acknowledged), \
                             or a damaged line end"
                        .into(),
                    text: String::from_utf8_lossy(&fragment).into_owned(),
                });
                self.at.offset = end;
            } else {
                self.at.offset += consumed;
            }
        }
        Ok((rows, self.at))
    }

    fn next_segment(&mut self) {
        self.file = None;
        self.at = Position {
            segment: self.at.segment + 1,
            offset: 0,
        };
    }

    /// Records that every row before `at` is committed and deletes the segments wholly before it.
    /// Returns the bytes freed.
    pub fn committed(&self, at: Position) -> io::Result<u64> {
        write_checkpoint(&self.dir, at)?;
        let mut freed = 0;
        for segment in segments(&self.dir)? {
            if segment >= at.segment {
                break;
            }
            let path = segment_path(&self.dir, segment);
            freed += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            std::fs::remove_file(path)?;
        }
        Ok(freed)
    }

    /// Keeps rows (as JSON lines) the database refused, or lines that are not rows.
    pub fn reject(&self, lines: &[String]) -> io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("rejected.jsonl"))?;
        for line in lines {
            f.write_all(line.as_bytes())?;
            f.write_all(b"\n")?;
        }
        f.sync_data()
    }
}

/// Reads whole lines from `offset` (not past `end`) into `rows`, at most `max`; returns the bytes
/// consumed, which end at a newline.
fn read_lines(
    file: &File,
    segment: u64,
    offset: u64,
    end: u64,
    max: usize,
    rows: &mut Vec<Row>,
    unreadable: &mut Unreadable,
) -> io::Result<u64> {
    let mut chunk = 256 * 1024u64;
    loop {
        let len = chunk.min(end - offset) as usize;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, offset)?;
        let Some(last_newline) = buf.iter().rposition(|&b| b == b'\n') else {
            if (len as u64) < end - offset {
                // One line longer than the chunk: read more at once.
                chunk *= 4;
                continue;
            }
            return Ok(0);
        };
        let mut consumed = 0usize;
        let mut taken = 0usize;
        for line in buf[..=last_newline].split_inclusive(|&b| b == b'\n') {
            if taken == max {
                break;
            }
            let at = offset + consumed as u64;
            consumed += line.len();
            let text = &line[..line.len() - 1];
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match decode_line(text) {
                Ok(row) => {
                    rows.push(row);
                    taken += 1;
                }
                Err(reason) => unreadable.corrupt.push(Corrupt {
                    segment,
                    offset: at,
                    reason,
                    text: String::from_utf8_lossy(text).into_owned(),
                }),
            }
        }
        return Ok(consumed as u64);
    }
}

/// One line per row, as the appender writes them: the JSON, a tab, its CRC-32 in hex.
pub fn encode(rows: &[Row]) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(rows.len() * 128);
    for row in rows {
        let start = buf.len();
        serde_json::to_writer(&mut buf, row).map_err(io::Error::other)?;
        let crc = crc32fast::hash(&buf[start..]);
        writeln!(buf, "\t{crc:08x}")?;
    }
    Ok(buf)
}

/// The JSON of a line and the checksum written after it, when the line has one. JSON text
/// never holds a raw tab, so the tab cannot be part of the row.
fn split_checksum(line: &[u8]) -> Option<(&[u8], u32)> {
    let at = line.len().checked_sub(9)?;
    let (json, tail) = line.split_at(at);
    let hex = tail.strip_prefix(b"\t")?;
    if !hex
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return None;
    }
    let crc = u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
    Some((json, crc))
}

/// A line back into its row, or why it is not one.
fn decode_line(line: &[u8]) -> Result<Row, String> {
    match split_checksum(line) {
        Some((json, crc)) => {
            if crc32fast::hash(json) != crc {
                return Err(
                    "checksum mismatch: the record changed on disk after it was written".into(),
                );
            }
            serde_json::from_slice(json)
                .map_err(|e| format!("checksum matches but the record is not a row: {e}"))
        }
        // Written before records had checksums, or damaged where the checksum was.
        None => serde_json::from_slice(line)
            .map_err(|e| format!("not a row (and no valid checksum): {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw_tables::RAW_HEARTBEATS;

    fn row(i: i64) -> Row {
        Row::new(&RAW_HEARTBEATS)
            .set("source", "t")
            .set("guild_id", i)
    }

    fn read_all(reader: &mut Reader, durable: Position) -> (Vec<Row>, Unreadable) {
        let mut unreadable = Unreadable::default();
        let (rows, _) = reader.read(durable, usize::MAX, &mut unreadable).unwrap();
        (rows, unreadable)
    }

    #[test]
    fn rows_come_back_in_order_up_to_the_durable_end_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut appender = Appender::open(dir.path()).unwrap();
        let mut reader = Reader::open(dir.path()).unwrap();
        appender
            .append(&encode(&[row(1), row(2)]).unwrap())
            .unwrap();
        let first = appender.position();
        appender.append(&encode(&[row(3)]).unwrap()).unwrap();
        let mut unreadable = Unreadable::default();
        let (rows, at) = reader.read(first, 10, &mut unreadable).unwrap();
        assert_eq!(rows, vec![row(1), row(2)]);
        assert_eq!(at, first);
        let (rows, _) = read_all(&mut reader, appender.position());
        assert_eq!(rows, vec![row(3)]);
        // Batches never exceed what was asked for, and resume where they stopped.
        let mut reader = Reader::open(dir.path()).unwrap();
        let (rows, _) = reader
            .read(appender.position(), 2, &mut unreadable)
            .unwrap();
        assert_eq!(rows.len(), 2);
        let (rows, _) = reader
            .read(appender.position(), 2, &mut unreadable)
            .unwrap();
        assert_eq!(rows, vec![row(3)]);
    }

    #[test]
    fn a_restart_replays_from_the_checkpoint_and_skips_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut appender = Appender::open(dir.path()).unwrap();
            let mut reader = Reader::open(dir.path()).unwrap();
            appender
                .append(&encode(&[row(1), row(2)]).unwrap())
                .unwrap();
            let mut unreadable = Unreadable::default();
            let (_, at) = reader
                .read(appender.position(), 1, &mut unreadable)
                .unwrap();
            reader.committed(at).unwrap();
            appender.append(&encode(&[row(3)]).unwrap()).unwrap();
            // A crash in the middle of a write: a fragment without its newline.
            appender.file.write_all(b"{\"table\":\"raw_hea").unwrap();
        }
        assert_eq!(pending_rows(dir.path()).unwrap(), 2);
        let mut appender = Appender::open(dir.path()).unwrap();
        let mut reader = Reader::open(dir.path()).unwrap();
        appender.append(&encode(&[row(4)]).unwrap()).unwrap();
        let (rows, unreadable) = read_all(&mut reader, appender.position());
        assert_eq!(rows, vec![row(2), row(3), row(4)]);
        assert_eq!(unreadable.torn.len(), 1);
        assert_eq!(unreadable.torn[0].text, "{\"table\":\"raw_hea");
        assert!(unreadable.corrupt.is_empty());
    }

    #[test]
    fn committed_segments_are_deleted_and_nothing_pending_remains() {
        let dir = tempfile::tempdir().unwrap();
        let mut appender = Appender::open(dir.path()).unwrap();
        let mut reader = Reader::open(dir.path()).unwrap();
        // Enough rows to close a few segments.
        let big = "x".repeat(1000);
        let rows: Vec<Row> = (0..10_000)
            .map(|i| row(i).set("source", big.as_str()))
            .collect();
        for chunk in rows.chunks(500) {
            appender.append(&encode(chunk).unwrap()).unwrap();
        }
        assert!(segments(dir.path()).unwrap().len() >= 3);
        let (read, _) = read_all(&mut reader, appender.position());
        assert_eq!(read.len(), rows.len());
        let freed = reader.committed(reader.position()).unwrap();
        assert!(freed >= 2 * SEGMENT_BYTES);
        assert_eq!(segments(dir.path()).unwrap(), vec![appender.segment]);
        assert_eq!(pending_rows(dir.path()).unwrap(), 0);
    }

    #[test]
    fn a_corrupt_line_is_reported_and_reading_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut appender = Appender::open(dir.path()).unwrap();
        let mut lines = encode(&[row(1)]).unwrap();
        lines.extend_from_slice(b"not json\n");
        lines.extend(encode(&[row(2)]).unwrap());
        appender.append(&lines).unwrap();
        let mut reader = Reader::open(dir.path()).unwrap();
        let (rows, unreadable) = read_all(&mut reader, appender.position());
        assert_eq!(rows, vec![row(1), row(2)]);
        let texts: Vec<&str> = unreadable.corrupt.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, vec!["not json"]);
    }

    /// Changes the first occurrence of `from` in the segment to `to` (same length).
    fn damage(dir: &Path, segment: u64, from: &str, to: &str) -> u64 {
        let path = segment_path(dir, segment);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes
            .windows(from.len())
            .position(|w| w == from.as_bytes())
            .unwrap();
        bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
        std::fs::write(&path, bytes).unwrap();
        at as u64
    }

    #[test]
    fn damaged_records_fail_their_checksum_and_the_others_are_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut appender = Appender::open(dir.path()).unwrap();
        let rows: Vec<Row> = (0..20).map(row).collect();
        appender.append(&encode(&rows).unwrap()).unwrap();
        // Still valid JSON, and a different row: only the checksum can tell.
        damage(dir.path(), 1, "\"guild_id\":7,", "\"guild_id\":9,");
        // Bytes that are not even text, in the middle of another record.
        damage(
            dir.path(),
            1,
            "\"guild_id\":12,",
            "\"gu\u{1}\u{2}d_id\":12,",
        );
        let mut reader = Reader::open(dir.path()).unwrap();
        let (read, unreadable) = read_all(&mut reader, appender.position());
        let expected: Vec<Row> = (0..20).filter(|i| ![7, 12].contains(i)).map(row).collect();
        assert_eq!(read, expected);
        assert_eq!(unreadable.corrupt.len(), 2);
        for corrupt in &unreadable.corrupt {
            assert!(
                corrupt.reason.starts_with("checksum mismatch"),
                "{corrupt:?}"
            );
            assert_eq!(corrupt.segment, 1);
        }
        // The offsets point at the damaged lines themselves.
        let bytes = std::fs::read(segment_path(dir.path(), 1)).unwrap();
        let line_at = |c: &Corrupt| {
            let rest = &bytes[c.offset as usize..];
            String::from_utf8_lossy(&rest[..rest.iter().position(|&b| b == b'\n').unwrap()])
                .into_owned()
        };
        assert_eq!(line_at(&unreadable.corrupt[0]), unreadable.corrupt[0].text);
        assert!(unreadable.corrupt[0].text.contains("\"guild_id\":9,"));
        // Nothing comes twice.
        let (again, _) = read_all(&mut reader, appender.position());
        assert!(again.is_empty());
    }

    #[test]
    fn segments_written_before_checksums_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut old = Vec::new();
        for i in 0..3 {
            serde_json::to_writer(&mut old, &row(i)).unwrap();
            old.push(b'\n');
        }
        std::fs::write(segment_path(dir.path(), 1), &old).unwrap();
        let mut appender = Appender::open(dir.path()).unwrap();
        appender.append(&encode(&[row(3)]).unwrap()).unwrap();
        let mut reader = Reader::open(dir.path()).unwrap();
        let (read, unreadable) = read_all(&mut reader, appender.position());
        assert_eq!(read, (0..4).map(row).collect::<Vec<_>>());
        assert!(unreadable.corrupt.is_empty());
        // A checksummed line whose checksum was lost reads as old, and its leftover fails.
        let line = encode(&[row(5)]).unwrap();
        let cut = &line[..line.len() - 2];
        assert!(decode_line(cut).is_err());
    }

    #[test]
    fn a_second_process_cannot_take_the_spool() {
        let dir = tempfile::tempdir().unwrap();
        let _held = SpoolLock::acquire(dir.path()).unwrap();
        let err = SpoolLock::acquire(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("in use by another process"),
            "{err}"
        );
    }
}
