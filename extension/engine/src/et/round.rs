//! A whole stats file: name, header and player lines.

use super::error::{EtParseError, EtParseErrorKind};
use super::extended::LuaVersion;
use super::file_name::{parse_file_name, FileNameInfo};
use super::header::{parse_header, Header};
use super::player::{parse_player_line, player_label, Player};

/// One parsed stats file.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRound {
    /// The file name as given to the parser.
    pub file_name: String,
    /// Facts from the file name (save time, map, round).
    pub file: FileNameInfo,
    /// The header line.
    pub header: Header,
    /// The mod version recognised from the player lines; `None` for a header-only file.
    pub version: Option<LuaVersion>,
    /// Players in file order (which the mod leaves arbitrary).
    pub players: Vec<Player>,
    /// What the parser had to repair to read the file, each naming the file (today only bytes
    /// that were not UTF-8). Empty for a clean file.
    pub warnings: Vec<String>,
}

impl ParsedRound {
    /// The round number from the file name (1 or 2), which the reference also relies on.
    pub fn round(&self) -> u8 {
        self.file.round
    }

    /// The player with this GUID (see [`Player::guid`]), if present.
    pub fn player(&self, guid: &str) -> Option<&Player> {
        self.players.iter().find(|p| p.guid == guid)
    }
}

/// Parses one stats file. Never panics, whatever the bytes.
///
/// Content that is not UTF-8 is decoded lossily: each invalid byte sequence becomes U+FFFD, and
/// [`ParsedRound::warnings`] says how many there were and on which line the first was. Names
/// may hold any bytes, and a damaged byte in a number still makes that number fail to parse. A
/// UTF-8 byte order mark at the start is dropped. Blank lines are skipped; a trailing `\r` on
/// a line is ignored.
///
/// Every number is checked against the range the format documents for its field: counts and
/// measures `0..=2147483647` (totals over weapons and time played in seconds included), team
/// 1 to 3, the header's round 1 or 2 and equal to the file name's, defender and winner 1 or 2.
/// A number outside its range is an error naming the file, the line, the player, the field
/// and the value, never a silent NULL or clamp.
///
/// ```
/// use guildstats_engine::et::parse_round;
/// let round = parse_round(
///     "2024-09-12-174949-supply-round-2.txt",
///     b"^a#^7p^au^7rans^a.^7only\\supply\\defaultpublic\\2\\1\\1\\15:00\\15:00\n",
/// ).unwrap();
/// assert_eq!(round.players.len(), 0);
/// assert_eq!(round.header.time_used_seconds, Some(900));
/// ```
pub fn parse_round(file_name: &str, content: &[u8]) -> Result<ParsedRound, EtParseError> {
    let error = |line: Option<usize>, kind: EtParseErrorKind| EtParseError {
        file: file_name.to_string(),
        line,
        player: None,
        kind,
    };
    let file = parse_file_name(file_name).map_err(|kind| error(None, kind))?;
    let content = content.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(content);
    let warnings = utf8_warning(file_name, content).into_iter().collect();
    let text = String::from_utf8_lossy(content);
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l));
    let header_line = match lines.next() {
        Some((_, line)) if !line.trim().is_empty() => line,
        _ => return Err(error(Some(1), EtParseErrorKind::MissingHeader)),
    };
    let header = parse_header(header_line).map_err(|kind| error(Some(1), kind))?;
    if header.round != i64::from(file.round) {
        return Err(error(
            Some(1),
            EtParseErrorKind::RoundMismatch {
                header: header.round,
                file_name: file.round,
            },
        ));
    }

    let mut players = Vec::new();
    let mut version: Option<LuaVersion> = None;
    for (number, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let (player, line_version) = parse_player_line(line).map_err(|kind| {
            let named = matches!(
                kind,
                EtParseErrorKind::BadNumber { .. } | EtParseErrorKind::OutOfRange { .. }
            );
            EtParseError {
                player: if named { player_label(line) } else { None },
                ..error(Some(number), kind)
            }
        })?;
        match version {
            None => version = Some(line_version),
            Some(first) if first != line_version => {
                return Err(error(
                    Some(number),
                    EtParseErrorKind::MixedVersions {
                        first: first.field_count(),
                        this: line_version.field_count(),
                    },
                ))
            }
            Some(_) => {}
        }
        players.push(player);
    }
    Ok(ParsedRound {
        file_name: file_name.to_string(),
        file,
        header,
        version,
        players,
        warnings,
    })
}

/// The warning for content that is not UTF-8: how many invalid sequences the lossy decoding
/// replaced, and the line of the first.
fn utf8_warning(file_name: &str, content: &[u8]) -> Option<String> {
    let mut replaced = 0usize;
    let mut first_at: Option<usize> = None;
    let mut offset = 0usize;
    for chunk in content.utf8_chunks() {
        offset += chunk.valid().len();
        if !chunk.invalid().is_empty() {
            replaced += 1;
            first_at.get_or_insert(offset);
        }
        offset += chunk.invalid().len();
    }
    let first_at = first_at?;
    let line = 1 + content[..first_at].iter().filter(|&&b| b == b'\n').count();
    Some(format!(
        "{file_name}: not valid UTF-8: {replaced} invalid byte sequence(s) replaced by U+FFFD, the first on line {line}"
    ))
}
