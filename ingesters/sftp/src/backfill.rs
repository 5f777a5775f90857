//! Backfill: the stats files of a local directory (an old archive), once, with a progress bar.
//! Same rows as the puller; names already stored under the source are skipped, and the
//! database drops repeated contents, so running it twice is harmless.

use crate::name_filter::NameFilter;
use crate::pull::send_blocking;
use crate::stats_file::stats_file_row;
use crate::stop::Stop;
use guildstats_ingest::sink::SinkHandle;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Rows per spool write: one fsync for a handful of files.
const CHUNK: usize = 20;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BackfillSummary {
    pub matching: usize,
    pub already_stored: usize,
    pub queued: usize,
    /// Files that could not be read or were too large, each logged with its reason.
    pub failed: usize,
}

/// The regular files of `dir` whose names match, sorted by name (not recursive: the archive
/// holds other things, e.g. endstats/, beside the round files).
pub fn matching_files(dir: &Path, filter: &NameFilter) -> Result<Vec<(String, PathBuf)>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read the backfill directory {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry
            .map_err(|e| format!("cannot read the backfill directory {}: {e}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_file() && filter.matches(&name) {
            files.push((name, path));
        }
    }
    files.sort();
    Ok(files)
}

pub struct Backfill<'a> {
    pub source: &'a str,
    pub filter: &'a NameFilter,
    pub max_file_bytes: u64,
    pub stored: &'a HashSet<String>,
}

impl Backfill<'_> {
    pub fn run(
        &self,
        dir: &Path,
        sink: &SinkHandle,
        runtime: &tokio::runtime::Handle,
        stop: &Stop,
    ) -> Result<BackfillSummary, String> {
        let files = matching_files(dir, self.filter)?;
        let mut summary = BackfillSummary {
            matching: files.len(),
            ..BackfillSummary::default()
        };
        let todo: Vec<_> = files
            .into_iter()
            .filter(|(name, _)| !self.stored.contains(name))
            .collect();
        summary.already_stored = summary.matching - todo.len();
        tracing::info!(
            dir = %dir.display(),
            source = %self.source,
            files = summary.matching,
            already_stored = summary.already_stored,
            "backfill"
        );
        let bar = ProgressBar::new(todo.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} files {elapsed} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        for chunk in todo.chunks(CHUNK) {
            let mut rows = Vec::with_capacity(chunk.len());
            for (name, path) in chunk {
                bar.set_message(name.clone());
                match self.read(path) {
                    Ok(content) => rows.push(stats_file_row(
                        name,
                        self.source,
                        &content,
                        &guildstats_ingest::time::now(),
                    )),
                    Err(why) => {
                        summary.failed += 1;
                        bar.suspend(|| tracing::error!(file = %path.display(), error = %why, "not imported"));
                    }
                }
            }
            let n = rows.len();
            if !send_blocking(runtime, sink, rows, stop)? {
                break;
            }
            summary.queued += n;
            bar.inc(chunk.len() as u64);
            if stop.requested() {
                break;
            }
        }
        bar.finish_and_clear();
        Ok(summary)
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>, String> {
        let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
        if size > self.max_file_bytes {
            return Err(format!(
                "{size} bytes, larger than --max-file-bytes {}: not a stats file",
                self.max_file_bytes
            ));
        }
        std::fs::read(path).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_matching_regular_files_in_name_order() {
        let dir = tempfile::tempdir().expect("tmp");
        for name in ["b-round-2.txt", "a-round-1.txt", "notes.md"] {
            std::fs::write(dir.path().join(name), "x").expect("write");
        }
        std::fs::create_dir(dir.path().join("sub.txt")).expect("dir");
        let files = matching_files(dir.path(), &NameFilter::new("*.txt")).expect("list");
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["a-round-1.txt", "b-round-2.txt"]);
        let err =
            matching_files(&dir.path().join("none"), &NameFilter::new("*")).expect_err("missing");
        assert!(err.contains("none"), "{err}");
    }
}
