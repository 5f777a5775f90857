//! Secrets (key passphrase) from the environment or a file; never printed.

use std::path::Path;

/// Debug and Display show only that a value is there.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The first line of a file (a trailing newline is not part of a passphrase).
    pub fn from_file(path: &Path) -> Result<Secret, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the secret file {}: {e}", path.display()))?;
        Ok(Secret(text.lines().next().unwrap_or("").to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shows_the_value() {
        let s = Secret::new("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("p");
        std::fs::write(&file, "pass phrase\nignored\n").expect("write");
        assert_eq!(
            Secret::from_file(&file).expect("read").expose(),
            "pass phrase"
        );
        let err = Secret::from_file(&dir.path().join("missing")).expect_err("missing");
        assert!(err.contains("missing"), "{err}");
    }
}
