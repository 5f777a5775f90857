//! Which remote file names are stats files: a shell-style pattern (`*` and `?`), so an operator
//! can keep the endstats files or editor leftovers out without learning a regex syntax.

#[derive(Debug, Clone)]
pub struct NameFilter {
    pattern: Vec<char>,
}

impl NameFilter {
    pub fn new(pattern: &str) -> NameFilter {
        NameFilter {
            pattern: pattern.chars().collect(),
        }
    }

    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        let (mut p, mut n) = (0, 0);
        // Where the last `*` was and how much of the name it has swallowed so far, to retry
        // with one more character when the rest fails.
        let mut star: Option<(usize, usize)> = None;
        while n < name.len() {
            match self.pattern.get(p) {
                Some('*') => {
                    star = Some((p, n));
                    p += 1;
                }
                Some(&c) if c == '?' || c == name[n] => {
                    p += 1;
                    n += 1;
                }
                _ => match star {
                    Some((sp, sn)) => {
                        p = sp + 1;
                        n = sn + 1;
                        star = Some((sp, sn + 1));
                    }
                    None => return false,
                },
            }
        }
        self.pattern[p..].iter().all(|&c| c == '*')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_and_question_marks() {
        let txt = NameFilter::new("*.txt");
        assert!(txt.matches("2024-09-11-212540-supply-round-1.txt"));
        assert!(txt.matches(".txt"));
        assert!(!txt.matches("2024-09-11-212540-supply-round-1.txt.tmp"));
        let rounds = NameFilter::new("*-round-?.txt");
        assert!(rounds.matches("2024-09-11-212540-sw_goldrush-te-round-2.txt"));
        assert!(!rounds.matches("2026-01-12-224606-te_escape2-round-2-endstats.txt"));
        assert!(NameFilter::new("*").matches(""));
        assert!(!NameFilter::new("a*b*c").matches("abcb"));
        assert!(NameFilter::new("a*b*c").matches("aXbYbc"));
        assert!(NameFilter::new("exact").matches("exact"));
        assert!(!NameFilter::new("exact").matches("exactly"));
    }
}
