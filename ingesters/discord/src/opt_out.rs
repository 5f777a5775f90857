//! Users who opted out of tracking. Their rows are never written: the ingester drops them before
//! the spool, so they reach neither the disk nor the database. The list comes from flags and from
//! a file that is re-read when it changes, so an opt-out takes effect without a restart.

use serenity::model::id::UserId;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

/// One version of the list.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OptOut {
    users: HashSet<u64>,
}

impl OptOut {
    pub fn new(users: impl IntoIterator<Item = u64>) -> OptOut {
        OptOut {
            users: users.into_iter().collect(),
        }
    }

    pub fn contains(&self, user: UserId) -> bool {
        self.users.contains(&user.get())
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// User ids, one per line; `#` starts a comment. A bad line is an error naming the line: a list
/// that silently lost an entry would let that user's rows through.
pub fn parse_ids(text: &str, origin: &str) -> Result<Vec<u64>, String> {
    let mut ids = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        match entry.parse::<u64>() {
            Ok(id) if id > 0 => ids.push(id),
            _ => {
                return Err(format!(
                    "{origin}:{}: {entry:?} is not a Discord user id",
                    n + 1
                ))
            }
        }
    }
    Ok(ids)
}

/// The live list: the ids given as flags plus the file's, swapped whole on reload.
pub struct OptOutList {
    fixed: Vec<u64>,
    file: Option<PathBuf>,
    file_seen: Mutex<Option<SystemTime>>,
    current: RwLock<Arc<OptOut>>,
}

impl OptOutList {
    /// Fails when the file cannot be read or has a bad line: starting without the list the
    /// operator asked for would record people who opted out.
    pub fn load(fixed: Vec<u64>, file: Option<PathBuf>) -> Result<OptOutList, String> {
        let list = OptOutList {
            fixed,
            file,
            file_seen: Mutex::new(None),
            current: RwLock::new(Arc::new(OptOut::default())),
        };
        list.reload()?;
        Ok(list)
    }

    pub fn current(&self) -> Arc<OptOut> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Re-reads the file when its modification time changed. On error the previous list stays
    /// in force (never an emptier one).
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let Some(file) = &self.file else {
            return Ok(false);
        };
        let modified = std::fs::metadata(file)
            .and_then(|m| m.modified())
            .map_err(|e| format!("cannot read the opt-out file {}: {e}", file.display()))?;
        if *self.file_seen.lock().unwrap_or_else(|p| p.into_inner()) == Some(modified) {
            return Ok(false);
        }
        self.reload()?;
        Ok(true)
    }

    fn reload(&self) -> Result<(), String> {
        let mut ids = self.fixed.clone();
        if let Some(file) = &self.file {
            let modified = std::fs::metadata(file).and_then(|m| m.modified()).ok();
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read the opt-out file {}: {e}", file.display()))?;
            ids.extend(parse_ids(&text, &file.display().to_string())?);
            *self.file_seen.lock().unwrap_or_else(|p| p.into_inner()) = modified;
        }
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(OptOut::new(ids));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_with_comments_and_names_a_bad_line() {
        let ids = parse_ids("# opted out\n42\n  43  # asked on 2026-03-01\n\n", "list").unwrap();
        assert_eq!(ids, vec![42, 43]);
        let err = parse_ids("42\nbob\n", "/etc/optout").unwrap_err();
        assert_eq!(err, "/etc/optout:2: \"bob\" is not a Discord user id");
        assert!(parse_ids("0\n", "x").is_err());
    }

    #[test]
    fn reloads_a_changed_file_and_keeps_the_old_list_on_a_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("optout.txt");
        std::fs::write(&path, "42\n").unwrap();
        let list = OptOutList::load(vec![7], Some(path.clone())).unwrap();
        assert!(list.current().contains(UserId::new(42)));
        assert!(list.current().contains(UserId::new(7)));
        assert!(!list.reload_if_changed().unwrap());

        std::fs::write(&path, "42\n43\n").unwrap();
        // A new mtime is what marks the change; set one explicitly so the test does not depend
        // on the file system's timestamp resolution.
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(list.reload_if_changed().unwrap());
        assert!(list.current().contains(UserId::new(43)));

        std::fs::write(&path, "42\nnot-an-id\n").unwrap();
        let later = later + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(list.reload_if_changed().is_err());
        assert!(
            list.current().contains(UserId::new(43)),
            "the old list stays"
        );
    }

    #[test]
    fn a_missing_file_stops_the_start() {
        let err = OptOutList::load(vec![], Some(PathBuf::from("/nonexistent/optout"))).err();
        assert!(err.unwrap().contains("/nonexistent/optout"));
    }
}
