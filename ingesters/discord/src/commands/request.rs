//! What a slash command asks, checked before anything is sent anywhere: each command maps to
//! exactly one SQL function of the extension, called with bound parameters only.

use serde_json::Value;

/// Longest name or GUID the bot passes on; Discord allows 6000 characters in options.
pub const MAX_TEXT: usize = 64;

pub const METRICS: [&str; 8] = [
    "kills",
    "dpm",
    "kd",
    "damage",
    "gibs",
    "time",
    "voice_hours",
    "messages",
];
pub const PERIODS: [&str; 4] = ["week", "month", "season", "all"];

/// One option of an interaction, reduced to what the commands use.
#[derive(Debug, Clone, PartialEq)]
pub enum Opt {
    Text(String),
    User(u64),
}

/// Who asked, from where.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub guild: u64,
    pub user: u64,
    /// Manage Server or Administrator in that guild.
    pub admin: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    LastSession,
    Stats {
        player: Option<String>,
        user: Option<u64>,
    },
    Top {
        metric: String,
        period: String,
        map: Option<String>,
    },
    LinkCandidates {
        user: u64,
        name: String,
    },
    Link {
        user: u64,
        guid: String,
        confirmed_by: Option<u64>,
    },
    Server,
    Voice {
        user: u64,
    },
    Community,
}

/// A SQL parameter; every value reaches PostgreSQL bound, never spliced into the text.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Int(Option<i64>),
    Text(Option<String>),
}

fn text<'a>(options: &'a [(String, Opt)], name: &str) -> Option<&'a str> {
    options.iter().find_map(|(n, o)| match o {
        Opt::Text(t) if n == name => Some(t.as_str()),
        _ => None,
    })
}

fn user(options: &[(String, Opt)], name: &str) -> Option<u64> {
    options.iter().find_map(|(n, o)| match o {
        Opt::User(u) if n == name => Some(*u),
        _ => None,
    })
}

/// A trimmed, non-empty text of at most `MAX_TEXT` characters without control characters.
fn checked(what: &str, value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(format!("The {what} is empty."));
    }
    let chars = value.chars().count();
    if chars > MAX_TEXT {
        return Err(format!(
            "The {what} is {chars} characters long; at most {MAX_TEXT} are accepted."
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("The {what} contains control characters."));
    }
    Ok(value.to_string())
}

/// `<@123>` or `<@!123>`: a mention typed into a text option.
fn mention(value: &str) -> Option<u64> {
    let inner = value.trim().strip_prefix("<@")?.strip_suffix('>')?;
    inner.strip_prefix('!').unwrap_or(inner).parse().ok()
}

fn one_of(what: &str, value: &str, allowed: &[&str]) -> Result<String, String> {
    if allowed.contains(&value) {
        Ok(value.to_string())
    } else {
        Err(format!(
            "Unknown {what} `{}`; choose one of {}.",
            value.chars().take(MAX_TEXT).collect::<String>(),
            allowed.join(", ")
        ))
    }
}

/// The request a command names, or the reason (for the user, shown ephemerally) it is refused.
pub fn parse(command: &str, options: &[(String, Opt)], caller: Caller) -> Result<Request, String> {
    match command {
        "last_session" => Ok(Request::LastSession),
        "stats" => {
            if let Some(member) = user(options, "member") {
                return Ok(Request::Stats {
                    player: None,
                    user: Some(member),
                });
            }
            match text(options, "player") {
                Some(p) => match mention(p) {
                    Some(id) => Ok(Request::Stats {
                        player: None,
                        user: Some(id),
                    }),
                    None => Ok(Request::Stats {
                        player: Some(checked("player name", p)?),
                        user: None,
                    }),
                },
                None => Ok(Request::Stats {
                    player: None,
                    user: Some(caller.user),
                }),
            }
        }
        "top" => Ok(Request::Top {
            metric: one_of(
                "metric",
                text(options, "metric").unwrap_or("kills"),
                &METRICS,
            )?,
            period: one_of("period", text(options, "period").unwrap_or("all"), &PERIODS)?,
            map: text(options, "map")
                .map(|m| checked("map", m))
                .transpose()?,
        }),
        "link" => {
            let target = link_target(user(options, "member"), caller)?;
            match text(options, "guid") {
                Some(guid) => claim(target, guid, caller),
                None => Ok(Request::LinkCandidates {
                    user: target,
                    name: checked("name", text(options, "name").unwrap_or(""))?,
                }),
            }
        }
        "server" => Ok(Request::Server),
        "voice" => Ok(Request::Voice {
            user: user(options, "member").unwrap_or(caller.user),
        }),
        "community" => {
            if caller.admin {
                Ok(Request::Community)
            } else {
                Err("/community is for admins (Manage Server).".into())
            }
        }
        other => Err(format!("Unknown command /{other}.")),
    }
}

/// Whose GUID a /link is about: the caller's own, or, for an admin, any member's.
fn link_target(target: Option<u64>, caller: Caller) -> Result<u64, String> {
    if target.is_some_and(|t| t != caller.user) && !caller.admin {
        return Err("Only an admin (Manage Server) may link another member.".into());
    }
    Ok(target.unwrap_or(caller.user))
}

/// A claim of `guid` for `user`; an admin's claim is their confirmation.
fn claim(user: u64, guid: &str, caller: Caller) -> Result<Request, String> {
    Ok(Request::Link {
        user,
        guid: checked("GUID", guid)?,
        confirmed_by: caller.admin.then_some(caller.user),
    })
}

/// The custom_id of the menu `/link name:` answers with names the member the pick is for:
/// nothing secret, since whoever picks is checked again as if they had typed `/link guid:`.
pub const PICK_PREFIX: &str = "link:";

pub fn pick_id(user: u64) -> String {
    format!("{PICK_PREFIX}{user}")
}

/// A GUID picked from the /link menu: the request a typed `/link guid:` makes, checked the
/// same way (only an admin may pick for somebody else, e.g. with a menu forwarded to them).
pub fn parse_pick(custom_id: &str, values: &[String], caller: Caller) -> Result<Request, String> {
    let target = custom_id
        .strip_prefix(PICK_PREFIX)
        .and_then(|u| u.parse::<u64>().ok())
        .ok_or_else(|| "This menu is not one of the stats bot's; use /link again.".to_string())?;
    let [guid] = values else {
        return Err("Pick exactly one GUID.".into());
    };
    claim(link_target(Some(target), caller)?, guid, caller)
}

fn id(value: u64) -> Param {
    // Snowflakes fit in i64 until 2084; beyond that the database would refuse, not misread.
    Param::Int(i64::try_from(value).ok())
}

impl Request {
    pub fn name(&self) -> &'static str {
        match self {
            Request::LastSession => "last_session",
            Request::Stats { .. } => "stats",
            Request::Top { .. } => "top",
            Request::LinkCandidates { .. } | Request::Link { .. } => "link",
            Request::Server => "server",
            Request::Voice { .. } => "voice",
            Request::Community => "community",
        }
    }

    /// The one SQL call answering the request, named arguments and placeholders only.
    pub fn sql(&self, guild: u64) -> (&'static str, Vec<Param>) {
        let g = id(guild);
        match self {
            Request::LastSession => (
                "SELECT guildstats.command_last_session(guild_id => $1)",
                vec![g],
            ),
            Request::Stats { player, user } => (
                "SELECT guildstats.command_stats(guild_id => $1, player => $2, user_id => $3)",
                vec![g, Param::Text(player.clone()), Param::Int(user.and_then(|u| i64::try_from(u).ok()))],
            ),
            Request::Top {
                metric,
                period,
                map,
            } => (
                "SELECT guildstats.command_top(guild_id => $1, metric => $2, period => $3, map => $4)",
                vec![
                    g,
                    Param::Text(Some(metric.clone())),
                    Param::Text(Some(period.clone())),
                    Param::Text(map.clone()),
                ],
            ),
            Request::LinkCandidates { user, name } => (
                "SELECT guildstats.command_link_candidates(guild_id => $1, user_id => $2, name => $3)",
                vec![g, id(*user), Param::Text(Some(name.clone()))],
            ),
            Request::Link {
                user,
                guid,
                confirmed_by,
            } => (
                "SELECT guildstats.command_link(guild_id => $1, user_id => $2, guid => $3, confirmed_by => $4)",
                vec![
                    g,
                    id(*user),
                    Param::Text(Some(guid.clone())),
                    Param::Int(confirmed_by.and_then(|u| i64::try_from(u).ok())),
                ],
            ),
            Request::Server => ("SELECT guildstats.command_server(guild_id => $1)", vec![g]),
            Request::Voice { user } => (
                "SELECT guildstats.command_voice(guild_id => $1, user_id => $2)",
                vec![g, id(*user)],
            ),
            Request::Community => (
                "SELECT guildstats.command_community(guild_id => $1)",
                vec![g],
            ),
        }
    }
}

/// The answer's `{"ok": false, "error": ...}`, if it is one.
pub fn refusal(answer: &Value) -> Option<String> {
    if answer.get("ok").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    Some(
        answer
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("The database could not answer that.")
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLER: Caller = Caller {
        guild: 100,
        user: 42,
        admin: false,
    };

    fn t(name: &str, value: &str) -> (String, Opt) {
        (name.to_string(), Opt::Text(value.to_string()))
    }

    #[test]
    fn stats_takes_a_name_a_mention_a_member_or_the_caller() {
        assert_eq!(
            parse("stats", &[t("player", "  ^1Fi^7sh ")], CALLER),
            Ok(Request::Stats {
                player: Some("^1Fi^7sh".into()),
                user: None
            })
        );
        assert_eq!(
            parse("stats", &[t("player", "<@!43>")], CALLER),
            Ok(Request::Stats {
                player: None,
                user: Some(43)
            })
        );
        assert_eq!(
            parse("stats", &[("member".into(), Opt::User(44))], CALLER),
            Ok(Request::Stats {
                player: None,
                user: Some(44)
            })
        );
        assert_eq!(
            parse("stats", &[], CALLER),
            Ok(Request::Stats {
                player: None,
                user: Some(42)
            })
        );
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let long = "x".repeat(500);
        let err = parse("stats", &[t("player", &long)], CALLER).unwrap_err();
        assert!(err.contains("500 characters"), "{err}");
        let err = parse("top", &[t("metric", "kills; DROP TABLE x")], CALLER).unwrap_err();
        assert!(err.contains("Unknown metric"), "{err}");
        let err = parse("top", &[t("metric", "kills"), t("period", &long)], CALLER).unwrap_err();
        assert!(err.len() < 200, "the echo is cut: {err}");
        assert!(parse("community", &[], CALLER)
            .unwrap_err()
            .contains("admins"));
        let err = parse(
            "link",
            &[t("name", "a"), ("member".into(), Opt::User(9))],
            CALLER,
        );
        assert!(err.unwrap_err().contains("admin"));
        assert!(parse("stats", &[t("player", "a\u{0}b")], CALLER).is_err());
        assert!(parse("link", &[t("name", "   ")], CALLER).is_err());
    }

    #[test]
    fn sql_metacharacters_stay_in_bound_parameters() {
        let name = "x'); DROP TABLE guildstats.settings; --";
        let request = parse("stats", &[t("player", name)], CALLER).unwrap();
        let (sql, params) = request.sql(100);
        assert!(!sql.contains("DROP"));
        assert_eq!(params[1], Param::Text(Some(name.into())));
    }

    #[test]
    fn an_admin_confirms_a_link_for_another_member() {
        let admin = Caller {
            admin: true,
            ..CALLER
        };
        let request = parse(
            "link",
            &[
                t("name", "fish"),
                t("guid", "ABCD1234"),
                ("member".into(), Opt::User(9)),
            ],
            admin,
        )
        .unwrap();
        assert_eq!(
            request,
            Request::Link {
                user: 9,
                guid: "ABCD1234".into(),
                confirmed_by: Some(42)
            }
        );
        let (_, params) = parse("link", &[t("name", "fish"), t("guid", "AB")], CALLER)
            .unwrap()
            .sql(100);
        assert_eq!(
            params[3],
            Param::Int(None),
            "a member's own claim is unconfirmed"
        );
    }

    #[test]
    fn a_pick_from_the_link_menu_is_a_claim_checked_like_a_typed_one() {
        let picked = |custom_id: &str, values: &[&str], caller: Caller| {
            let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
            parse_pick(custom_id, &values, caller)
        };
        assert_eq!(
            picked(&pick_id(42), &["ABCD1234"], CALLER),
            Ok(Request::Link {
                user: 42,
                guid: "ABCD1234".into(),
                confirmed_by: None
            })
        );
        // Somebody else's menu: only an admin may pick from it, and then confirms.
        assert!(picked(&pick_id(9), &["ABCD1234"], CALLER)
            .unwrap_err()
            .contains("admin"));
        let admin = Caller {
            admin: true,
            ..CALLER
        };
        assert_eq!(
            picked(&pick_id(9), &["ABCD1234"], admin),
            Ok(Request::Link {
                user: 9,
                guid: "ABCD1234".into(),
                confirmed_by: Some(42)
            })
        );
        assert!(picked("other:42", &["ABCD1234"], CALLER).is_err());
        assert!(picked("link:x", &["ABCD1234"], CALLER).is_err());
        assert!(picked(&pick_id(42), &[], CALLER).is_err());
        assert!(picked(&pick_id(42), &["A", "B"], CALLER).is_err());
        assert!(picked(&pick_id(42), &[&"x".repeat(500)], CALLER)
            .unwrap_err()
            .contains("500 characters"));
    }

    #[test]
    fn refusals_come_from_the_answer() {
        assert_eq!(refusal(&serde_json::json!({"ok": true})), None);
        assert_eq!(
            refusal(&serde_json::json!({"ok": false, "error": "no such player"})).as_deref(),
            Some("no such player")
        );
        assert!(refusal(&serde_json::json!(null)).is_some());
    }
}
