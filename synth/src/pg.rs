//! Loading into PostgreSQL with the `postgres` crate.
//!
//! Each table is one transaction: `COPY` into a temporary staging table, then
//! `INSERT ... SELECT ... ORDER BY arrival ON CONFLICT DO NOTHING` into `guildstats.<table>`.
//! Duplicate rows (and rows already present from an earlier load) are dropped by the
//! table's unique key instead of failing the COPY, the number of new rows is exact, and
//! rows keep their stream order, so late voice events also get later `ingest_id`s.
//! Tables are generated one at a time (the generator skips the work of the others), so a
//! load streams with flat memory whatever its size.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use postgres::Client;

use crate::copy::{write_row, StagingSql};
use crate::error::Error;
use crate::rows::{Row, Table};
use crate::sink::Sink;
use crate::Community;

/// Outcome of loading one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableLoad {
    pub table: Table,
    /// Rows generated and copied (duplicates included).
    pub generated: u64,
    /// Rows that were new to the table.
    pub inserted: u64,
}

/// Generates `tables` of `community` and loads them, one transaction per table.
pub fn load(
    client: &mut Client,
    community: &Community,
    tables: &[Table],
) -> Result<Vec<TableLoad>, Error> {
    load_where(client, community, tables, |_| true)
}

/// [`load`], keeping only the rows `keep` accepts: e.g. a community's history up to some
/// instant, and later the rest, as it would reach a database that runs all along.
pub fn load_where(
    client: &mut Client,
    community: &Community,
    tables: &[Table],
    keep: impl Fn(&Row<'_>) -> bool,
) -> Result<Vec<TableLoad>, Error> {
    let mut out = Vec::with_capacity(tables.len());
    for &table in tables {
        let sql = StagingSql::for_table(table);
        let mut tx = client.transaction()?;
        tx.batch_execute(&sql.create)?;
        let generated = {
            let mut sink = CopySink {
                table,
                out: BufWriter::with_capacity(1 << 16, tx.copy_in(&sql.copy)?),
                line: Vec::with_capacity(256),
                keep: &keep,
            };
            community.generate(&mut sink)?;
            let CopySink { out, .. } = sink;
            let writer = out.into_inner().map_err(|e| Error::Io(e.into_error()))?;
            writer.finish()?
        };
        let inserted = tx.execute(sql.insert.as_str(), &[])?;
        tx.commit()?;
        out.push(TableLoad {
            table,
            generated,
            inserted,
        });
    }
    Ok(out)
}

/// Streams the rows of one table that `keep` accepts as COPY text into `out`.
struct CopySink<'k, W: Write, K: Fn(&Row<'_>) -> bool> {
    table: Table,
    out: W,
    line: Vec<u8>,
    keep: &'k K,
}

impl<W: Write, K: Fn(&Row<'_>) -> bool> Sink for CopySink<'_, W, K> {
    fn wants(&self, table: Table) -> bool {
        table == self.table
    }

    fn row(&mut self, row: Row<'_>) -> io::Result<()> {
        if !(self.keep)(&row) {
            return Ok(());
        }
        self.line.clear();
        write_row(&mut self.line, row);
        self.out.write_all(&self.line)
    }
}

/// Outcome of [`load_et_files`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EtLoad {
    /// `*.txt` files found.
    pub files: u64,
    /// Files whose content was not stored yet.
    pub new: u64,
}

/// Inserts every `*.txt` file directly in `dir` (not in subdirectories) into
/// `guildstats.raw_et_stats_files`, in name order, in one transaction. Content already
/// stored (the database hashes it) is skipped by `ON CONFLICT DO NOTHING`.
pub fn load_et_files(client: &mut Client, dir: &Path, source: &str) -> Result<EtLoad, Error> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let is_txt = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("txt"));
        if is_txt && entry.file_type()?.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let mut tx = client.transaction()?;
    let stmt = tx.prepare(
        "INSERT INTO guildstats.raw_et_stats_files (file_name, source, content) \
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )?;
    let mut new = 0;
    for path in &files {
        let content = fs::read(path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        new += tx.execute(&stmt, &[&name, &source, &content])?;
    }
    tx.commit()?;
    Ok(EtLoad {
        files: files.len() as u64,
        new,
    })
}
