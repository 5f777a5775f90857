//! A whole stats file: name, header and player lines.

use super::error::{EtParseError, EtParseErrorKind};
use super::extended::LuaVersion;
use super::file_name::{parse_file_name, FileNameInfo};
use super::header::{parse_header, Header};
use super::player::{parse_player_line, Player};

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
/// Content that is not UTF-8 is decoded lossily: names may hold any bytes, and a damaged byte
/// in a number still makes that number fail to parse. Blank lines are skipped; a trailing `\r`
/// on a line is ignored.
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
        kind,
    };
    let file = parse_file_name(file_name).map_err(|kind| error(None, kind))?;
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

    let mut players = Vec::new();
    let mut version: Option<LuaVersion> = None;
    for (number, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let (player, line_version) =
            parse_player_line(line).map_err(|kind| error(Some(number), kind))?;
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
    })
}
