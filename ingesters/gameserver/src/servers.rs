//! Which servers to poll: `protocol host:port` entries from flags or a simple list file, and the
//! enabled rows of `guildstats.game_servers`.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    A2s,
    Q3,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::A2s => "a2s",
            Protocol::Q3 => "q3",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub protocol: Protocol,
    /// host:port as written; also the `server` column, so rows stay stable across DNS changes.
    pub address: String,
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.protocol.as_str(), self.address)
    }
}

/// `a2s host:port`, `q3 host:port` (also `a2s://host:port`); a bare `host:port` is A2S.
impl FromStr for Server {
    type Err = String;
    fn from_str(s: &str) -> Result<Server, String> {
        let s = s.trim();
        let (proto, addr) = if let Some((p, a)) = s.split_once("://") {
            (p, a)
        } else if let Some((p, a)) = s.split_once(char::is_whitespace) {
            (p, a.trim())
        } else {
            ("a2s", s)
        };
        let protocol = match proto.to_ascii_lowercase().as_str() {
            "a2s" | "source" => Protocol::A2s,
            "q3" | "quake3" | "etl" | "et" => Protocol::Q3,
            other => return Err(format!("unknown protocol {other:?} in {s:?}")),
        };
        match addr.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(Server {
                protocol,
                address: addr.to_string(),
            }),
            _ => Err(format!("{s:?} is not protocol host:port")),
        }
    }
}

/// One server per line; blank lines and `#` comments are ignored.
pub fn parse_list(text: &str) -> Result<Vec<Server>, String> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| l.parse().map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// The enabled servers an admin listed in `guildstats.game_servers`.
pub async fn from_table(options: &guildstats_ingest::SinkOptions) -> Result<Vec<Server>, String> {
    use guildstats_ingest::sink::{connect, error_text};
    let client = connect(options)
        .await
        .map_err(|e| format!("cannot read game_servers: {e}"))?;
    let rows = client
        .query(
            "SELECT protocol, address FROM guildstats.game_servers WHERE enabled ORDER BY address",
            &[],
        )
        .await
        .map_err(|e| format!("cannot read game_servers: {}", error_text(&e)))?;
    rows.iter()
        .map(|r| {
            let (protocol, address): (String, String) = (r.get(0), r.get(1));
            format!("{protocol} {address}").parse()
        })
        .collect()
}

/// The servers of both sources, each address once (the configuration's entry wins).
pub fn merge(configured: &[Server], listed: &[Server]) -> Vec<Server> {
    let mut all = configured.to_vec();
    for server in listed {
        if !all.iter().any(|s| s.address == server.address) {
            all.push(server.clone());
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists() {
        let list =
            parse_list("# ours\na2s 10.0.0.1:27015\nq3://et.example.org:27960 # etl\n\nhost:1\n")
                .unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[1].protocol, Protocol::Q3);
        assert_eq!(list[1].address, "et.example.org:27960");
        assert_eq!(list[2].protocol, Protocol::A2s);
        assert!(parse_list("gopher x:1").is_err());
        assert!(parse_list("a2s nohost").is_err());
    }

    #[test]
    fn merging_keeps_each_address_once() {
        let configured = parse_list("a2s a:1\nq3 b:2").unwrap();
        let listed = parse_list("q3 a:1\nq3 c:3").unwrap();
        let all = merge(&configured, &listed);
        let shown: Vec<String> = all.iter().map(Server::to_string).collect();
        assert_eq!(shown, ["a2s a:1", "q3 b:2", "q3 c:3"]);
    }
}
