//! Source engine A2S: request packets and pure parsers for the replies (after the 4-byte
//! header), plus reassembly of split replies. No I/O here, so every case is unit-tested on bytes.

use crate::bytes::Reader;
use std::collections::HashMap;

pub const SINGLE: i32 = -1;
pub const SPLIT: i32 = -2;
/// Without a challenge, servers answer A2S_PLAYER/A2S_RULES with one; -1 asks for it.
pub const NO_CHALLENGE: i32 = -1;

pub fn info_request(challenge: Option<i32>) -> Vec<u8> {
    let mut p = vec![0xFF, 0xFF, 0xFF, 0xFF, b'T'];
    p.extend_from_slice(b"Source Engine Query\0");
    // Since Dec 2020 servers may answer the first A2S_INFO with a challenge to be echoed.
    if let Some(c) = challenge {
        p.extend_from_slice(&c.to_le_bytes());
    }
    p
}

pub fn players_request(challenge: i32) -> Vec<u8> {
    let mut p = vec![0xFF, 0xFF, 0xFF, 0xFF, b'U'];
    p.extend_from_slice(&challenge.to_le_bytes());
    p
}

pub fn rules_request(challenge: i32) -> Vec<u8> {
    let mut p = vec![0xFF, 0xFF, 0xFF, 0xFF, b'V'];
    p.extend_from_slice(&challenge.to_le_bytes());
    p
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Info {
    pub protocol: u8,
    pub name: String,
    pub map: String,
    pub folder: String,
    pub game: String,
    pub app_id: u16,
    pub players: u8,
    pub max_players: u8,
    pub bots: u8,
    pub version: String,
    pub port: Option<u16>,
    pub steam_id: Option<u64>,
    pub tv_port: Option<u16>,
    pub tv_name: Option<String>,
    pub keywords: Option<String>,
    pub game_id: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Player {
    pub name: String,
    pub score: i32,
    pub duration: f32,
}

/// A reply payload (header stripped): either what was asked for, or a challenge to echo.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply<T> {
    Challenge(i32),
    Data(T),
}

fn challenge_or<T>(
    payload: &[u8],
    kind: u8,
    parse: impl FnOnce(&mut Reader) -> Result<T, String>,
) -> Result<Reply<T>, String> {
    let mut r = Reader::new(payload);
    match r.u8("reply type")? {
        b'A' => Ok(Reply::Challenge(r.i32("challenge")?)),
        k if k == kind => Ok(Reply::Data(parse(&mut r)?)),
        k => Err(format!(
            "unexpected reply type 0x{k:02x} (wanted '{}')",
            kind as char
        )),
    }
}

pub fn parse_info(payload: &[u8]) -> Result<Reply<Info>, String> {
    challenge_or(payload, b'I', |r| {
        let mut i = Info {
            protocol: r.u8("protocol")?,
            name: r.cstr("name")?,
            map: r.cstr("map")?,
            folder: r.cstr("folder")?,
            game: r.cstr("game")?,
            app_id: r.u16("app id")?,
            players: r.u8("players")?,
            max_players: r.u8("max players")?,
            bots: r.u8("bots")?,
            ..Info::default()
        };
        r.u8("server type")?;
        r.u8("environment")?;
        r.u8("visibility")?;
        r.u8("vac")?;
        if i.app_id == 2400 {
            // The Ship carries three extra bytes here.
            r.u8("ship mode")?;
            r.u8("ship witnesses")?;
            r.u8("ship duration")?;
        }
        i.version = r.cstr("version")?;
        if r.remaining() == 0 {
            return Ok(i);
        }
        // Extra data flag: the optional fields follow in this fixed order (Valve wiki).
        let edf = r.u8("extra data flag")?;
        if edf & 0x80 != 0 {
            i.port = Some(r.u16("port")?);
        }
        if edf & 0x10 != 0 {
            i.steam_id = Some(r.u64("steam id")?);
        }
        if edf & 0x40 != 0 {
            i.tv_port = Some(r.u16("SourceTV port")?);
            i.tv_name = Some(r.cstr("SourceTV name")?);
        }
        if edf & 0x20 != 0 {
            i.keywords = Some(r.cstr("keywords")?);
        }
        if edf & 0x01 != 0 {
            i.game_id = Some(r.u64("game id")?);
        }
        Ok(i)
    })
}

pub fn parse_players(payload: &[u8]) -> Result<Reply<Vec<Player>>, String> {
    challenge_or(payload, b'D', |r| {
        let n = r.u8("player count")?;
        let mut players = Vec::with_capacity(n as usize);
        for _ in 0..n {
            r.u8("player index")?; // always 0 on current servers; the position is the index
            players.push(Player {
                name: r.cstr("player name")?,
                score: r.i32("score")?,
                duration: r.f32("duration")?,
            });
        }
        Ok(players)
    })
}

pub fn parse_rules(payload: &[u8]) -> Result<Reply<Vec<(String, String)>>, String> {
    challenge_or(payload, b'E', |r| {
        let n = r.u16("rule count")?;
        let mut rules = Vec::with_capacity(n.min(4096) as usize);
        for _ in 0..n {
            rules.push((r.cstr("rule name")?, r.cstr("rule value")?));
        }
        Ok(rules)
    })
}

/// Collects the packets of replies: single ones pass through, split ones are stored by id until
/// every fragment arrived, in whatever order. Fragments of an older, abandoned reply may still
/// arrive; they live under their own id and never mix with the current one.
#[derive(Debug, Default)]
pub struct Reassembler {
    pending: HashMap<i32, Vec<Option<Vec<u8>>>>,
}

/// At most this many split replies in flight; a flood of bogus ids cannot grow memory.
const MAX_PENDING: usize = 8;

impl Reassembler {
    /// Feeds one datagram; returns the complete payload (after the FF FF FF FF header) once known.
    pub fn push(&mut self, datagram: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let mut r = Reader::new(datagram);
        match r.i32("packet header")? {
            SINGLE => Ok(Some(r.rest().to_vec())),
            SPLIT => {
                let id = r.i32("split id")?;
                if id as u32 & 0x8000_0000 != 0 {
                    // Only GoldSrc-era and a few old Source servers compress; none we poll do.
                    return Err("split reply is bzip2-compressed, which is not supported".into());
                }
                let total = r.u8("split total")?;
                let number = r.u8("split number")?;
                r.u16("split size")?;
                if total == 0 || number >= total {
                    return Err(format!("bad split fragment {number} of {total}"));
                }
                if !self.pending.contains_key(&id) && self.pending.len() >= MAX_PENDING {
                    self.pending.clear();
                }
                let parts = self
                    .pending
                    .entry(id)
                    .or_insert_with(|| vec![None; total as usize]);
                if parts.len() != total as usize {
                    return Err(format!("split reply {id} changed its fragment count"));
                }
                parts[number as usize] = Some(r.rest().to_vec());
                if parts.iter().any(Option::is_none) {
                    return Ok(None);
                }
                let parts = self.pending.remove(&id).unwrap_or_default();
                let whole: Vec<u8> = parts.into_iter().flatten().flatten().collect();
                let mut w = Reader::new(&whole);
                if w.i32("reassembled header")? != SINGLE {
                    return Err("reassembled reply does not start with FF FF FF FF".into());
                }
                Ok(Some(w.rest().to_vec()))
            }
            other => Err(format!("unknown packet header {other:#x}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cstr(s: &str) -> Vec<u8> {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        v
    }

    fn info_fixture(edf: u8) -> Vec<u8> {
        let mut b = vec![b'I', 17];
        for s in ["My ^1Server", "de_dust2", "csgo", "Counter-Strike 2"] {
            b.extend(cstr(s));
        }
        b.extend(730u16.to_le_bytes());
        b.extend([10, 64, 2, b'd', b'l', 0, 1]);
        b.extend(cstr("1.40"));
        b.push(edf);
        b.extend(27015u16.to_le_bytes());
        b.extend(7u64.to_le_bytes());
        if edf & 0x40 != 0 {
            b.extend(27020u16.to_le_bytes());
            b.extend(cstr("TV"));
        }
        b.extend(cstr("secure"));
        b.extend(730u64.to_le_bytes());
        b
    }

    #[test]
    fn parses_info_with_and_without_sourcetv() {
        for edf in [0xB1u8, 0xF1] {
            let Reply::Data(i) = parse_info(&info_fixture(edf)).unwrap() else {
                panic!("expected data")
            };
            assert_eq!(i.name, "My ^1Server");
            assert_eq!(i.map, "de_dust2");
            assert_eq!((i.players, i.max_players, i.bots), (10, 64, 2));
            assert_eq!(i.port, Some(27015));
            assert_eq!(i.keywords.as_deref(), Some("secure"));
            assert_eq!(i.game_id, Some(730));
            assert_eq!(i.tv_name.is_some(), edf & 0x40 != 0);
        }
    }

    #[test]
    fn truncated_replies_are_errors_not_panics() {
        let full = info_fixture(0xF1);
        for n in 0..full.len() - 1 {
            let _ = parse_info(&full[..n]);
        }
        assert!(parse_info(&full[..20]).is_err());
        assert!(parse_players(&[b'D', 3, 0, b'a']).is_err());
        assert!(parse_rules(&[b'E', 1]).is_err());
    }

    #[test]
    fn challenge_replies_are_recognised() {
        let mut b = vec![b'A'];
        b.extend(1234i32.to_le_bytes());
        assert_eq!(parse_players(&b).unwrap(), Reply::Challenge(1234));
        assert_eq!(parse_info(&b).unwrap(), Reply::Challenge(1234));
    }

    #[test]
    fn parses_players_and_rules() {
        let mut b = vec![b'D', 2];
        for (n, s) in [("a b", 5i32), ("^2c", -1)] {
            b.push(0);
            b.extend(cstr(n));
            b.extend(s.to_le_bytes());
            b.extend(1.5f32.to_le_bytes());
        }
        let Reply::Data(p) = parse_players(&b).unwrap() else {
            panic!()
        };
        assert_eq!(p[0].name, "a b");
        assert_eq!(p[1].score, -1);
        let mut r = vec![b'E'];
        r.extend(2u16.to_le_bytes());
        for s in ["k1", "v1", "k2", "v2"] {
            r.extend(cstr(s));
        }
        let Reply::Data(rules) = parse_rules(&r).unwrap() else {
            panic!()
        };
        assert_eq!(rules[1], ("k2".to_string(), "v2".to_string()));
    }

    fn frames(payload: &[u8], id: i32, size: usize) -> Vec<Vec<u8>> {
        let mut whole = vec![0xFF; 4];
        whole.extend_from_slice(payload);
        let chunks: Vec<&[u8]> = whole.chunks(size).collect();
        chunks
            .iter()
            .enumerate()
            .map(|(n, c)| {
                let mut f = SPLIT.to_le_bytes().to_vec();
                f.extend(id.to_le_bytes());
                f.push(chunks.len() as u8);
                f.push(n as u8);
                f.extend((size as u16).to_le_bytes());
                f.extend_from_slice(c);
                f
            })
            .collect()
    }

    #[test]
    fn reassembles_in_any_order_and_keeps_ids_apart() {
        let payload: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let mut fs = frames(&payload, 7, 1000);
        fs.reverse();
        let stale = frames(b"old reply that never completes", 6, 10);
        let mut r = Reassembler::default();
        assert_eq!(r.push(&stale[0]).unwrap(), None);
        let mut out = None;
        for f in &fs {
            out = r.push(f).unwrap();
        }
        assert_eq!(out.unwrap(), payload);
    }

    #[test]
    fn rejects_bzip2_and_bad_fragments() {
        let mut f = frames(b"x", 1, 100).remove(0);
        f[7] |= 0x80;
        assert!(Reassembler::default()
            .push(&f)
            .unwrap_err()
            .contains("bzip2"));
        let mut g = frames(b"x", 1, 100).remove(0);
        g[9] = 5; // number >= total
        assert!(Reassembler::default().push(&g).is_err());
        assert!(Reassembler::default().push(&[1, 2]).is_err());
    }
}
