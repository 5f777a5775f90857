//! Who is in the community: one profile per member, drawn once from the member's own stream.
//!
//! Activity is heavy-tailed on purpose: a voice-session rate drawn from a wide log-normal
//! (and a third of members never joining voice at all) gives the "few very active, most
//! rarely" shape real communities have. Members join over the period, go quiet after an
//! exponential lifetime (drive-by joiners after a few days), and often leave some days later.

use rand::Rng;

use crate::config::CommunityConfig;
use crate::ids::snowflake;
use crate::rng::{exponential, lognormal, normal, stream_rng, weighted, Stream};
use crate::rows::MemberEventRow;
use crate::time::Ts;

/// Number of bot accounts (always the first member indexes).
pub(crate) const BOTS: usize = 3;
const BOT_NAMES: [&str; BOTS] = ["GuildBot", "Jockie Music", "guildstats"];

/// How a member left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Departure {
    pub at: Ts,
    pub banned: bool,
}

/// One member's profile.
#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub user_id: i64,
    pub is_bot: bool,
    pub joined_at: Ts,
    /// From here on the member does nothing (far future if never).
    pub quiet_at: Ts,
    pub departure: Option<Departure>,
    pub rename_at: Option<Ts>,
    /// Expected voice sessions on an average day while active (0: never in voice).
    pub voice_rate: f64,
    /// Expected messages on an average day while active.
    pub msg_rate: f64,
    /// Weight for scheduled-event attendance (voice_rate squared: regulars come).
    pub event_weight: f64,
    /// Local hour around which evening sessions start.
    pub evening_peak: f64,
    /// Index into the regular voice channels of the member's favourite.
    pub fav_voice: usize,
    /// Multiplier on session length.
    pub session_scale: f64,
}

impl Member {
    /// Whether the member may do anything during `[from, to)`.
    pub fn active_during(&self, from: Ts, to: Ts) -> bool {
        self.joined_at < to && self.quiet_at > from
    }

    /// Hard limit for activity: the departure, if any (a ban also ends an ongoing session).
    pub fn hard_end(&self) -> Ts {
        self.departure
            .map_or(Ts::from_micros(i64::MAX / 2), |d| d.at)
    }
}

/// Draws every member profile.
pub(crate) fn generate(config: &CommunityConfig, voice_channel_weights: &[f64]) -> Vec<Member> {
    let start = config.start;
    let end = config.end();
    let period_s = end.secs_since(start);
    let never = Ts::from_micros(i64::MAX / 2);
    (0..config.members as usize)
        .map(|idx| {
            let mut rng = stream_rng(config.seed, Stream::Member, idx as u64, 0);
            // Account creation (the snowflake's time) lies before the first join.
            let created = start
                .add_secs(-rng.gen_range(30..9 * 365) * 86_400)
                .add_micros(rng.gen_range(0..86_400_000_000));
            let user_id = snowflake(created, idx as u64);
            if idx < BOTS {
                return Member {
                    user_id,
                    is_bot: true,
                    joined_at: start.add_secs(-rng.gen_range(400..800) * 86_400),
                    quiet_at: never,
                    departure: None,
                    rename_at: None,
                    voice_rate: 0.0,
                    msg_rate: rng.gen_range(0.5..3.0),
                    event_weight: 0.0,
                    evening_peak: 20.0,
                    fav_voice: 0,
                    session_scale: 1.0,
                };
            }
            let initial = rng.gen::<f64>() < config.initial_member_share;
            let joined_at = if initial {
                // Older members are rarer: an exponential look-back, capped at four years.
                let back_days = exponential(&mut rng, 300.0).clamp(1.0, 4.0 * 365.0);
                start.add_micros(-(back_days * 86_400e6) as i64)
            } else {
                start.add_micros((rng.gen::<f64>() * period_s * 1e6) as i64)
            };
            let joined_at = joined_at.max(created.add_secs(3600));
            let lifetime_days = if initial {
                exponential(&mut rng, 240.0)
            } else if rng.gen::<f64>() < 0.3 {
                exponential(&mut rng, 3.0) // drive-by: looks around, goes quiet
            } else {
                exponential(&mut rng, 75.0)
            };
            let alive_from = joined_at.max(start);
            let mut quiet_at = alive_from.add_micros((lifetime_days * 86_400e6) as i64);
            let mut departure = None;
            if quiet_at < end && rng.gen::<f64>() < 0.55 {
                let after = rng.gen_range(1.0..25.0) * 86_400e6;
                departure = Some(Departure {
                    at: quiet_at.add_micros(after as i64),
                    banned: false,
                });
            }
            if rng.gen::<f64>() < 0.006 {
                let hi = quiet_at.min(end);
                if hi > alive_from {
                    let at =
                        alive_from.add_micros(rng.gen_range(0..hi.micros() - alive_from.micros()));
                    quiet_at = at;
                    departure = Some(Departure { at, banned: true });
                }
            }
            if quiet_at > end {
                quiet_at = never;
            }
            let rename_at = if rng.gen::<f64>() < 0.05 {
                let hi = quiet_at.min(end);
                (hi > alive_from).then(|| {
                    alive_from.add_micros(rng.gen_range(0..hi.micros() - alive_from.micros()))
                })
            } else {
                None
            };
            let z_voice = normal(&mut rng);
            let voice_person = rng.gen::<f64>() >= 0.35;
            let voice_rate = if voice_person {
                (0.18 * (1.3 * z_voice).exp()).min(3.5) * config.voice_activity
            } else {
                0.0
            };
            let z_msg = 0.6 * z_voice + 0.8 * normal(&mut rng);
            let msg_rate = (0.8 * (1.4 * z_msg).exp()).min(150.0);
            Member {
                user_id,
                is_bot: false,
                joined_at,
                quiet_at,
                departure,
                rename_at,
                voice_rate,
                msg_rate,
                event_weight: voice_rate * voice_rate,
                evening_peak: (20.6 + normal(&mut rng)).clamp(18.0, 23.5),
                fav_voice: weighted(&mut rng, voice_channel_weights),
                session_scale: lognormal(&mut rng, 1.0, 0.3),
            }
        })
        .collect()
}

const FIRST: [&str; 32] = [
    "Silent", "Crazy", "Dark", "Lucky", "Frosty", "Sneaky", "Brave", "Lazy", "Nordic", "Pixel",
    "Rusty", "Salty", "Shadow", "Turbo", "Wild", "Zen", "Grumpy", "Happy", "Iron", "Mighty",
    "Neon", "Old", "Quick", "Red", "Sleepy", "Toxic", "Ultra", "Blue", "Cosmic", "Epic", "Fuzzy",
    "Jolly",
];
const SECOND: [&str; 32] = [
    "Fox", "Wolf", "Panda", "Viking", "Sniper", "Medic", "Otter", "Falcon", "Knight", "Bear",
    "Ninja", "Pirate", "Goblin", "Raven", "Tiger", "Badger", "Moose", "Dragon", "Hamster",
    "Wizard", "Gamer", "Potato", "Camper", "Rocket", "Lynx", "Yeti", "Kraken", "Penguin", "Owl",
    "Bison", "Elk", "Toaster",
];
/// Real names and the odd character that must survive COPY escaping and UTF-8 handling.
const SPECIAL: [&str; 8] = [
    "Jürgen",
    "Zoë",
    "Łukasz",
    "Søren",
    "xX\\Slayer/Xx",
    "ßtefan",
    "Ренат",
    "ミカ",
];

/// A member's display name; `version` 1 is the name after a rename.
pub(crate) fn display_name(seed: u64, idx: usize, version: u64) -> String {
    if idx < BOTS {
        return BOT_NAMES[idx].to_owned();
    }
    let mut rng = stream_rng(seed, Stream::Member, idx as u64, 1 + version);
    if rng.gen::<f64>() < 0.06 {
        let n: u32 = rng.gen_range(0..100);
        return format!("{}{}", SPECIAL[rng.gen_range(0..SPECIAL.len())], n);
    }
    let a = FIRST[rng.gen_range(0..FIRST.len())];
    let b = SECOND[rng.gen_range(0..SECOND.len())];
    match rng.gen_range(0..4) {
        0 => format!("{a}{b}"),
        1 => format!("{a}{b}{}", rng.gen_range(1..100)),
        2 => format!("{}_{}", a.to_lowercase(), b.to_lowercase()),
        _ => format!("{b}{}", rng.gen_range(1..10_000)),
    }
}

/// The member events of the whole period, in time order. Joins before the period are kept
/// (with Discord's `joined_at`), as an ingester syncing the member list on connect sees them.
pub(crate) fn member_events(
    config: &CommunityConfig,
    members: &[Member],
) -> Vec<(Ts, usize, MemberEventKind)> {
    let end = config.end();
    let mut out = Vec::with_capacity(members.len() * 3 / 2);
    for (idx, m) in members.iter().enumerate() {
        if m.joined_at < end {
            out.push((m.joined_at, idx, MemberEventKind::Join));
        }
        if let Some(at) = m.rename_at.filter(|t| *t < end) {
            out.push((at, idx, MemberEventKind::Rename));
        }
        if let Some(d) = m.departure.filter(|d| d.at < end) {
            if d.banned {
                out.push((d.at, idx, MemberEventKind::Ban));
            }
            // Discord sends the removal right after a ban; a millisecond keeps the order clear.
            let at = if d.banned {
                d.at.add_micros(1000)
            } else {
                d.at
            };
            out.push((at, idx, MemberEventKind::Leave));
        }
    }
    out.sort_unstable_by_key(|(t, idx, kind)| (*t, *idx, *kind));
    out
}

/// The kind of a membership change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum MemberEventKind {
    Join,
    Rename,
    Ban,
    Leave,
}

/// The row for one membership change.
pub(crate) fn member_event_row(
    config: &CommunityConfig,
    members: &[Member],
    (at, idx, kind): (Ts, usize, MemberEventKind),
) -> MemberEventRow {
    let m = &members[idx];
    let renamed = m.rename_at.is_some_and(|r| r <= at);
    let (event_type, display_name) = match kind {
        MemberEventKind::Join => ("join", Some(display_name(config.seed, idx, 0))),
        MemberEventKind::Rename => ("update", Some(display_name(config.seed, idx, 1))),
        MemberEventKind::Ban => ("ban", None),
        MemberEventKind::Leave => (
            "leave",
            Some(display_name(config.seed, idx, u64::from(renamed))),
        ),
    };
    MemberEventRow {
        guild_id: config.guild_id,
        user_id: m.user_id,
        event_type,
        event_ts: at,
        display_name,
        is_bot: m.is_bot,
    }
}
