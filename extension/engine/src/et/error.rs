//! Errors from parsing an ET:Legacy stats file.

use std::fmt;

/// Why a stats file could not be parsed, and where.
///
/// The `Display` form names the file, the 1-based line number when the problem is on a line,
/// the player when the line names one, and the problem, e.g.
/// `2025-10-12-221244-supply-round-1.txt line 7: expected 20 weapon numbers for mask 0xF, found 18`
/// or `… line 3 (player AAAA0001 "Fox"): damage given (extended field 0) 2147483648 is out
/// of range (0 to 2147483647)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtParseError {
    /// The file name as given to the parser.
    pub file: String,
    /// 1-based line number, or `None` when the problem is with the file name or the whole file.
    pub line: Option<usize>,
    /// The player of that line (GUID and clean name, as written), when a number of a player
    /// line is wrong.
    pub player: Option<String>,
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
    /// A number is well formed but outside the range the format documents for its field
    /// (every count and measure is a non-negative 32-bit integer in the engine).
    OutOfRange {
        /// Which field, in words.
        field: String,
        /// The value as found (possibly shortened).
        value: String,
        /// The smallest value allowed.
        min: i32,
        /// The largest value allowed.
        max: i32,
    },
    /// The header's round number is not the one in the file name.
    RoundMismatch {
        /// The header's round (1 or 2).
        header: i64,
        /// The file name's round.
        file_name: u8,
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

/// The largest count or measure the engine can hold (its counters are C `int`s), which is also
/// what the `integer` columns take.
pub const MAX_COUNT: i32 = i32::MAX;

/// An error for `value` outside `min..=max`, or `Ok(value)`.
pub(crate) fn in_range(
    field: &str,
    value: i64,
    min: i32,
    max: i32,
) -> Result<i64, EtParseErrorKind> {
    if (i64::from(min)..=i64::from(max)).contains(&value) {
        Ok(value)
    } else {
        Err(EtParseErrorKind::OutOfRange {
            field: field.to_string(),
            value: value.to_string(),
            min,
            max,
        })
    }
}

/// Parses a decimal integer (`-?digits`) and checks it lies in `min..=max`. Text that is not an
/// integer is a [`EtParseErrorKind::BadNumber`]; an integer of any size outside the range,
/// however many digits it has, is an [`EtParseErrorKind::OutOfRange`], so that one rule
/// covers `-1`, `2147483648` and `99999999999999999999` alike.
pub(crate) fn parse_ranged(
    field: &str,
    text: &str,
    min: i32,
    max: i32,
) -> Result<i64, EtParseErrorKind> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EtParseErrorKind::BadNumber {
            field: field.to_string(),
            value: quote(text),
        });
    }
    match text.parse::<i64>() {
        Ok(value) => in_range(field, value, min, max),
        Err(_) => Err(EtParseErrorKind::OutOfRange {
            field: field.to_string(),
            value: quote(text),
            min,
            max,
        }),
    }
}

/// [`parse_ranged`] for a count: `0..=`[`MAX_COUNT`].
pub(crate) fn parse_count(field: &str, text: &str) -> Result<i64, EtParseErrorKind> {
    parse_ranged(field, text, 0, MAX_COUNT)
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
            Self::OutOfRange {
                field,
                value,
                min,
                max,
            } => write!(f, "{field} {value} is out of range ({min} to {max})"),
            Self::RoundMismatch { header, file_name } => write!(
                f,
                "header round {header} differs from the file name's round {file_name}"
            ),
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
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        if let Some(player) = &self.player {
            write!(f, " (player {player})")?;
        }
        write!(f, ": {}", self.kind)
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
            player: None,
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
    fn ranged_numbers() {
        assert_eq!(parse_count("x", "0"), Ok(0));
        assert_eq!(parse_count("x", "2147483647"), Ok(2_147_483_647));
        for (text, shown) in [
            ("2147483648", "2147483648"),
            ("-1", "-1"),
            ("99999999999999999999", "99999999999999999999"),
        ] {
            assert_eq!(
                parse_count("damage", text).unwrap_err().to_string(),
                format!("damage {shown} is out of range (0 to 2147483647)")
            );
        }
        for bad in ["", "-", "+1", "1.0", "x", " 1"] {
            assert!(
                matches!(
                    parse_count("x", bad),
                    Err(EtParseErrorKind::BadNumber { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(parse_ranged("team", "3", 1, 3), Ok(3));
        assert!(parse_ranged("team", "70000", 1, 3).is_err());
    }

    #[test]
    fn message_names_the_player() {
        let err = EtParseError {
            file: "f.txt".into(),
            line: Some(3),
            player: Some("AAAA0001 \"Fox\"".into()),
            kind: EtParseErrorKind::OutOfRange {
                field: "damage given (extended field 0)".into(),
                value: "2147483648".into(),
                min: 0,
                max: MAX_COUNT,
            },
        };
        assert_eq!(
            err.to_string(),
            "f.txt line 3 (player AAAA0001 \"Fox\"): damage given (extended field 0) 2147483648 is out of range (0 to 2147483647)"
        );
    }

    #[test]
    fn long_values_are_shortened() {
        let long = "x".repeat(100);
        assert_eq!(quote(&long).chars().count(), 41);
        assert_eq!(quote("short"), "short");
    }
}
