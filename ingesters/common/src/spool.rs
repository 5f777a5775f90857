//! The local append-only spool: every row is on disk (fsync'd) before the sink acknowledges it,
//! so a database outage or a crash loses nothing. It is emptied only when every row it holds has
//! been committed; replaying it is harmless because every insert is idempotent.

use crate::row::Row;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// JSON lines, one row each.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    file: File,
    /// Rows appended (or found at start) and not yet known to be committed.
    pending: u64,
}

impl Spool {
    /// Opens (creating) the spool and returns the rows a previous run left uncommitted. A torn
    /// last line (crash during a write, before the acknowledgement) is skipped: that row was never
    /// acknowledged, so its sender still owns it.
    pub fn open(path: &Path) -> io::Result<(Spool, Vec<Row>)> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let mut rows = Vec::new();
        if path.exists() {
            for line in BufReader::new(File::open(path)?).lines() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Row>(&line) {
                    Ok(row) => rows.push(row),
                    Err(e) => tracing::warn!(error = %e, "skipping an unreadable spool line"),
                }
            }
        }
        // Rewrite what was read (tmp file, fsync, rename): a torn tail must not glue itself to
        // the next appended row, which would make that acknowledged row unreadable.
        if path.exists() {
            let tmp = path.with_extension("rewrite");
            let mut out = File::create(&tmp)?;
            let mut buf = Vec::new();
            for row in &rows {
                serde_json::to_writer(&mut buf, row).map_err(io::Error::other)?;
                buf.push(b'\n');
            }
            out.write_all(&buf)?;
            out.sync_all()?;
            std::fs::rename(&tmp, path)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let spool = Spool {
            path: path.to_path_buf(),
            file,
            pending: rows.len() as u64,
        };
        Ok((spool, rows))
    }

    /// Appends rows and fsyncs once for all of them.
    pub fn append(&mut self, rows: &[Row]) -> io::Result<()> {
        let mut buf = Vec::new();
        for row in rows {
            serde_json::to_writer(&mut buf, row).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        self.file.write_all(&buf)?;
        self.file.sync_data()?;
        self.pending += rows.len() as u64;
        Ok(())
    }

    /// Records that `n` rows were committed; once nothing is pending the file is truncated, so
    /// the spool stays as small as the backlog.
    pub fn committed(&mut self, n: u64) -> io::Result<()> {
        self.pending = self.pending.saturating_sub(n);
        if self.pending == 0 {
            self.file.set_len(0)?;
            self.file.sync_all()?;
        }
        Ok(())
    }

    pub fn pending(&self) -> u64 {
        self.pending
    }

    pub fn path(&self) -> &Path {
        &self.path
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

    #[test]
    fn replays_what_was_not_committed_and_truncates_when_all_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s/spool.jsonl");
        {
            let (mut s, old) = Spool::open(&path).unwrap();
            assert!(old.is_empty());
            s.append(&[row(1), row(2)]).unwrap();
            s.append(&[row(3)]).unwrap();
            s.committed(2).unwrap();
            assert_eq!(s.pending(), 1);
        }
        // A "crash": everything is replayed, committed rows included (idempotent inserts).
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"table\":\"raw_hea")
            .unwrap();
        let (mut s, old) = Spool::open(&path).unwrap();
        assert_eq!(old, vec![row(1), row(2), row(3)]);
        s.append(&[row(4)]).unwrap();
        drop(s);
        let (mut s, old) = Spool::open(&path).unwrap();
        assert_eq!(old, vec![row(1), row(2), row(3), row(4)]);
        assert_eq!(s.pending(), 4);
        s.committed(4).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        let (_, old) = Spool::open(&path).unwrap();
        assert!(old.is_empty());
    }
}
