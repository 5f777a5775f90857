//! Users who opted out of tracking. Their rows are never written: the ingester drops them before
//! the spool, so they reach neither the disk nor the database. The one list is the database's
//! `guildstats.opt_out` (guild, user), read at start and re-read on every reload tick, so that an
//! opt-out an admin records takes effect here without a restart; the database also drops the
//! rows of those members on arrival, so a stale copy here loses nothing. The flags and a file
//! (re-read when it changes) remain as a fallback: their users are opted out in every guild.

use guildstats_ingest::sink::{connect, error_text};
use guildstats_ingest::SinkOptions;
use serenity::model::id::{GuildId, UserId};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

/// One version of the list.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OptOut {
    /// Opted out in every guild (flags, file).
    users: HashSet<u64>,
    /// Opted out in one guild (the database's list): (guild, user).
    members: HashSet<(u64, u64)>,
}

impl OptOut {
    pub fn new(users: impl IntoIterator<Item = u64>) -> OptOut {
        OptOut {
            users: users.into_iter().collect(),
            members: HashSet::new(),
        }
    }

    /// The same list plus members opted out in one guild each.
    pub fn with_members(mut self, members: impl IntoIterator<Item = (u64, u64)>) -> OptOut {
        self.members.extend(members);
        self
    }

    pub fn contains(&self, guild: GuildId, user: UserId) -> bool {
        self.users.contains(&user.get()) || self.members.contains(&(guild.get(), user.get()))
    }

    /// Entries of both kinds.
    pub fn len(&self) -> usize {
        self.users.len() + self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.members.is_empty()
    }

    /// Members opted out in one guild (from the database).
    pub fn members_len(&self) -> usize {
        self.members.len()
    }
}

/// The database's list: every (guild, user) in `guildstats.opt_out`.
pub async fn from_database(options: &SinkOptions) -> Result<Vec<(u64, u64)>, String> {
    let client = connect(options)
        .await
        .map_err(|e| format!("cannot read guildstats.opt_out: {e}"))?;
    let rows = client
        .query("SELECT guild_id, user_id FROM guildstats.opt_out", &[])
        .await
        .map_err(|e| format!("cannot read guildstats.opt_out: {}", error_text(&e)))?;
    // Snowflakes are positive; a negative id names nobody the gateway can send.
    Ok(rows
        .iter()
        .filter_map(|r| {
            let (guild, user): (i64, i64) = (r.get(0), r.get(1));
            Some((u64::try_from(guild).ok()?, u64::try_from(user).ok()?))
        })
        .collect())
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

/// The live list: the ids given as flags plus the file's plus the database's, swapped whole on
/// each reload.
pub struct OptOutList {
    fixed: Vec<u64>,
    file: Option<PathBuf>,
    file_seen: Mutex<Option<SystemTime>>,
    file_ids: Mutex<Vec<u64>>,
    database: Mutex<Vec<(u64, u64)>>,
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
            file_ids: Mutex::new(Vec::new()),
            database: Mutex::new(Vec::new()),
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

    /// Replaces the database's part of the list; true when it changed. A failed read never
    /// comes here, so the previous list stays in force.
    pub fn set_database(&self, mut members: Vec<(u64, u64)>) -> bool {
        members.sort_unstable();
        members.dedup();
        {
            let mut database = self.database.lock().unwrap_or_else(|p| p.into_inner());
            if *database == members {
                return false;
            }
            *database = members;
        }
        self.publish();
        true
    }

    /// Reads the database's list and installs it; true when it changed.
    pub async fn refresh_from_database(&self, options: &SinkOptions) -> Result<bool, String> {
        Ok(self.set_database(from_database(options).await?))
    }

    fn reload(&self) -> Result<(), String> {
        if let Some(file) = &self.file {
            let modified = std::fs::metadata(file).and_then(|m| m.modified()).ok();
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read the opt-out file {}: {e}", file.display()))?;
            let ids = parse_ids(&text, &file.display().to_string())?;
            *self.file_ids.lock().unwrap_or_else(|p| p.into_inner()) = ids;
            *self.file_seen.lock().unwrap_or_else(|p| p.into_inner()) = modified;
        }
        self.publish();
        Ok(())
    }

    fn publish(&self) {
        let mut users = self.fixed.clone();
        users.extend(
            self.file_ids
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter(),
        );
        let members = self
            .database
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(OptOut::new(users).with_members(members));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: GuildId = GuildId::new(100);

    #[test]
    fn a_member_of_the_database_list_is_opted_out_in_that_guild_only() {
        let list = OptOutList::load(vec![7], None).unwrap();
        assert!(list.set_database(vec![(100, 42), (200, 43), (100, 42)]));
        assert!(!list.set_database(vec![(200, 43), (100, 42)]), "same list");
        let now = list.current();
        assert!(now.contains(GuildId::new(100), UserId::new(42)));
        assert!(!now.contains(GuildId::new(200), UserId::new(42)));
        assert!(now.contains(GuildId::new(200), UserId::new(43)));
        assert!(
            now.contains(GuildId::new(300), UserId::new(7)),
            "flags: every guild"
        );
        assert_eq!((now.len(), now.members_len()), (3, 2));
        // An opt-in (the row deleted) takes effect on the next read.
        assert!(list.set_database(vec![(200, 43)]));
        assert!(!list.current().contains(GuildId::new(100), UserId::new(42)));
    }

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
        assert!(list.current().contains(G, UserId::new(42)));
        assert!(list.current().contains(G, UserId::new(7)));
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
        assert!(list.current().contains(G, UserId::new(43)));

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
            list.current().contains(G, UserId::new(43)),
            "the old list stays"
        );
    }

    #[test]
    fn a_missing_file_stops_the_start() {
        let err = OptOutList::load(vec![], Some(PathBuf::from("/nonexistent/optout"))).err();
        assert!(err.unwrap().contains("/nonexistent/optout"));
    }
}
