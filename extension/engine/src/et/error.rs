//! Errors from parsing an ET:Legacy stats file.

use std::fmt;

/// Why a stats file could not be parsed, and where.
///
/// The `Display` form names the file, the 1-based line number when the problem is on a line,
/// and the problem, e.g.
/// `2025-10-12-221244-supply-round-1.txt line 7: expected 20 weapon numbers for mask 0xF, found 18`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtParseError {
    /// The file name as given to the parser.
    pub file: String,
    /// 1-based line number, or `None` when the problem is with the file name or the whole file.
    pub line: Option<usize>,
    /// What went wrong.
    pub kind: EtParseErrorKind,
}

/// The kinds of problem the parser reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtParseErrorKind {
    /// The file name does not match `YYYY-MM-DD-HHMMSS-<map>-round-<N>.txt`.
    BadFileName {
        /// What exactly is wrong with it.
        reason: String,
    },
    /// The file is empty: there is no header line.
    MissingHeader,
    /// The header does not have 8 or 9 backslash-separated fields.
    HeaderFieldCount {
        /// How many fields were found.
        found: usize,
    },
    /// A field that must hold a number (or a time) does not.
    BadNumber {
        /// Which field, in words.
        field: String,
        /// The text that was found (possibly shortened).
        value: String,
    },
    /// A player line has fewer than 5 backslash-separated parts.
    PlayerFieldCount {
        /// How many parts were found.
        found: usize,
    },
    /// The GUID is not 8 hex characters (nor an Omni-bot marker).
    BadGuid {
        /// The text that was found (possibly shortened).
        value: String,
    },
    /// The weapon mask has bits above index 27.
    WeaponMaskOutOfRange {
        /// The mask as read.
        mask: u64,
    },
    /// The number of weapon numbers is not 5 × popcount(mask).
    WeaponCount {
        /// The mask as read.
        mask: u64,
        /// 5 × popcount(mask).
        expected: usize,
        /// How many numbers were found.
        found: usize,
    },
    /// The extended part has a field count that matches no known Lua version.
    ExtendedFieldCount {
        /// How many fields were found.
        found: usize,
    },
    /// A player line uses a different Lua version (field count) than an earlier line.
    MixedVersions {
        /// Extended-field count of the first player line.
        first: usize,
        /// Extended-field count of this line.
        this: usize,
    },
}

/// Shortens a value quoted in an error so that a huge garbage line cannot make a huge message.
pub(crate) fn quote(value: &str) -> String {
    const MAX_CHARS: usize = 40;
    if value.chars().count() <= MAX_CHARS {
        value.to_string()
    } else {
        let mut short: String = value.chars().take(MAX_CHARS).collect();
        short.push('…');
        short
    }
}

impl fmt::Display for EtParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadFileName { reason } => write!(f, "bad file name: {reason}"),
            Self::MissingHeader => write!(f, "missing header line (the file is empty)"),
            Self::HeaderFieldCount { found } => {
                write!(
                    f,
                    "expected 8 or 9 header fields separated by '\\', found {found}"
                )
            }
            Self::BadNumber { field, value } => write!(f, "bad {field}: {value:?}"),
            Self::PlayerFieldCount { found } => write!(
                f,
                "expected a player line 'guid\\name\\rounds\\team\\stats', found {found} part(s)"
            ),
            Self::BadGuid { value } => write!(f, "bad GUID {value:?}: expected 8 hex characters"),
            Self::WeaponMaskOutOfRange { mask } => {
                write!(f, "weapon mask {mask:#X} has bits above weapon index 27")
            }
            Self::WeaponCount {
                mask,
                expected,
                found,
            } => write!(
                f,
                "expected {expected} weapon numbers for mask {mask:#X}, found {found}"
            ),
            Self::ExtendedFieldCount { found } => write!(
                f,
                "expected 32, 33, 36, 37 or 38 extended fields, found {found}"
            ),
            Self::MixedVersions { first, this } => write!(
                f,
                "line has {this} extended fields but the first player line has {first}"
            ),
        }
    }
}

impl fmt::Display for EtParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} line {}: {}", self.file, line, self.kind),
            None => write!(f, "{}: {}", self.file, self.kind),
        }
    }
}

impl std::error::Error for EtParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_file_line_and_problem() {
        let err = EtParseError {
            file: "2025-10-12-221244-supply-round-1.txt".into(),
            line: Some(7),
            kind: EtParseErrorKind::WeaponCount {
                mask: 0xF,
                expected: 20,
                found: 18,
            },
        };
        assert_eq!(
            err.to_string(),
            "2025-10-12-221244-supply-round-1.txt line 7: expected 20 weapon numbers for mask 0xF, found 18"
        );
    }

    #[test]
    fn long_values_are_shortened() {
        let long = "x".repeat(100);
        assert_eq!(quote(&long).chars().count(), 41);
        assert_eq!(quote("short"), "short");
    }
}
