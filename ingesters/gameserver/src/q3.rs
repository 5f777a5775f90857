//! Quake 3 / ET:Legacy `getstatus`: request and pure parser of the `statusResponse` reply.

pub fn status_request(challenge: &str) -> Vec<u8> {
    let mut p = vec![0xFF, 0xFF, 0xFF, 0xFF];
    p.extend_from_slice(format!("getstatus {challenge}\n").as_bytes());
    p
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Status {
    /// Server cvars in reply order; names and values keep their colour codes.
    pub vars: Vec<(String, String)>,
    pub players: Vec<Q3Player>,
}

impl Status {
    pub fn var(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Q3Player {
    pub score: i32,
    pub ping: i32,
    pub name: String,
}

/// Parses a whole datagram, header included. Replies of ET:Legacy servers exceed 1024 bytes, so
/// the caller must receive into a large buffer; nothing here assumes a size.
pub fn parse_status(datagram: &[u8]) -> Result<Status, String> {
    let body = datagram
        .strip_prefix(&[0xFF, 0xFF, 0xFF, 0xFF])
        .ok_or("reply does not start with FF FF FF FF")?;
    let text = String::from_utf8_lossy(body).replace('\0', "");
    let mut lines = text.split('\n');
    let head = lines.next().unwrap_or_default();
    if head.trim_end() != "statusResponse" {
        return Err(format!("not a statusResponse: {:.40}", head));
    }
    let info = lines.next().unwrap_or_default();
    let mut parts = info.strip_prefix('\\').unwrap_or(info).split('\\');
    let mut vars = Vec::new();
    while let Some(k) = parts.next() {
        if k.is_empty() {
            continue;
        }
        vars.push((k.to_string(), parts.next().unwrap_or("").to_string()));
    }
    let mut players = Vec::new();
    for line in lines {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        players.push(parse_player(line)?);
    }
    Ok(Status { vars, players })
}

/// `score ping "name"`: the name is everything between the first and the last quote, so spaces
/// and quotes inside a name survive.
fn parse_player(line: &str) -> Result<Q3Player, String> {
    let bad = || format!("malformed player line: {line:.60}");
    let mut it = line.splitn(3, ' ');
    let score = it.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let ping = it.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let rest = it.next().unwrap_or("").trim();
    let name = match (rest.find('"'), rest.rfind('"')) {
        (Some(a), Some(b)) if b > a => &rest[a + 1..b],
        _ => rest,
    };
    Ok(Q3Player {
        score,
        ping,
        name: name.to_string(),
    })
}

/// The name without Quake colour codes (`^` followed by one character), for display and matching.
pub fn strip_colours(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '^' {
            if chars.next().is_none() {
                out.push(c);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(pad: usize) -> Vec<u8> {
        let mut b = b"\xff\xff\xff\xffstatusResponse\n".to_vec();
        b.extend_from_slice(b"\\sv_hostname\\^1My ^7Server\\mapname\\supply\\sv_maxclients\\24");
        for i in 0..pad {
            b.extend_from_slice(format!("\\pad_{i}\\{}", "v".repeat(20)).as_bytes());
        }
        b.extend_from_slice(b"\n10 50 \"^3Big \\\"Boss\\\" [clan]\"\n-2 999 \"x\"\n");
        b
    }

    #[test]
    fn parses_vars_and_players_with_spaces_and_colours() {
        let s = parse_status(&fixture(60)).unwrap();
        assert!(fixture(60).len() > 1024);
        assert_eq!(s.var("sv_hostname"), Some("^1My ^7Server"));
        assert_eq!(s.var("mapname"), Some("supply"));
        assert_eq!(s.vars.len(), 63);
        assert_eq!(s.players.len(), 2);
        assert_eq!(s.players[0].name, "^3Big \\\"Boss\\\" [clan]");
        assert_eq!((s.players[1].score, s.players[1].ping), (-2, 999));
        assert_eq!(strip_colours("^1My ^7Server^"), "My Server^");
    }

    #[test]
    fn malformed_replies_are_errors() {
        assert!(parse_status(b"hello").is_err());
        assert!(parse_status(b"\xff\xff\xff\xffinfoResponse\n").is_err());
        assert!(parse_status(b"\xff\xff\xff\xffstatusResponse\n\\a\\b\nnope\n").is_err());
        assert!(parse_status(b"\xff\xff\xff\xffstatusResponse")
            .unwrap()
            .players
            .is_empty());
    }
}
