//! When a remote file is complete: the game server writes a file in one go, but a listing can
//! still catch it half written. A file is taken once two listings in a row agree on its size
//! and modification time, and it is not empty.

use std::collections::HashMap;

/// One regular file of a remote listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub size: u64,
    pub mtime: Option<u64>,
}

#[derive(Debug, Default)]
pub struct Settling {
    previous: HashMap<String, (u64, Option<u64>)>,
    unsettled: usize,
}

impl Settling {
    /// Takes the candidates of one listing (files not stored yet) and returns those that are
    /// complete, in name order (the names start with the save time, so rounds go in the order
    /// they were played).
    pub fn observe(&mut self, candidates: Vec<Listed>) -> Vec<Listed> {
        let mut ready = Vec::new();
        let mut current = HashMap::with_capacity(candidates.len());
        self.unsettled = 0;
        for file in candidates {
            let seen = (file.size, file.mtime);
            let stable = self.previous.get(&file.name) == Some(&seen);
            if stable && file.size > 0 {
                ready.push(file.clone());
            } else if !stable {
                self.unsettled += 1;
            }
            current.insert(file.name, seen);
        }
        // Files that vanished are forgotten; if they come back they settle again.
        self.previous = current;
        ready.sort_by(|a, b| a.name.cmp(&b.name));
        ready
    }

    /// How many candidates of the last listing were new or still changing: worth a quick
    /// second look instead of a full poll interval.
    pub fn unsettled(&self) -> usize {
        self.unsettled
    }

    /// The file changed while it was read: it has to settle again.
    pub fn forget(&mut self, name: &str) {
        self.previous.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, size: u64, mtime: u64) -> Listed {
        Listed {
            name: name.into(),
            size,
            mtime: Some(mtime),
        }
    }

    #[test]
    fn a_file_is_ready_after_two_equal_listings() {
        let mut s = Settling::default();
        assert!(s.observe(vec![f("b", 10, 1), f("a", 5, 1)]).is_empty());
        assert_eq!(s.unsettled(), 2);
        let ready = s.observe(vec![f("b", 10, 1), f("a", 5, 1)]);
        assert_eq!(ready, vec![f("a", 5, 1), f("b", 10, 1)]);
        assert_eq!(s.unsettled(), 0);
    }

    #[test]
    fn a_growing_file_waits_until_it_stops_growing() {
        let mut s = Settling::default();
        assert!(s.observe(vec![f("a", 5, 1)]).is_empty());
        assert!(s.observe(vec![f("a", 9, 2)]).is_empty());
        assert_eq!(s.unsettled(), 1);
        // Same size but touched again: still being written.
        assert!(s.observe(vec![f("a", 9, 3)]).is_empty());
        assert_eq!(s.observe(vec![f("a", 9, 3)]), vec![f("a", 9, 3)]);
    }

    #[test]
    fn empty_files_vanished_files_and_forgotten_files() {
        let mut s = Settling::default();
        s.observe(vec![f("empty", 0, 1), f("gone", 3, 1)]);
        assert!(s.observe(vec![f("empty", 0, 1)]).is_empty());
        // A stable empty file is not "unsettled": it does not keep the quick cadence going.
        assert_eq!(s.unsettled(), 0);
        assert!(s.observe(vec![f("gone", 3, 1)]).is_empty());
        assert_eq!(s.observe(vec![f("gone", 3, 1)]).len(), 1);
        s.forget("gone");
        assert!(s.observe(vec![f("gone", 3, 1)]).is_empty());
    }
}
