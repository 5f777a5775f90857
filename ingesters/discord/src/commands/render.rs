//! The SQL function's jsonb answer as a Discord message. Every number shown is one the function
//! returned: the bot formats, it never computes. Pure, so each command's layout is tested
//! without Discord.

use super::request::{pick_id, Request};
use serde_json::Value;
use serenity::builder::{
    CreateActionRow, CreateEmbed, CreateEmbedFooter, CreateSelectMenu, CreateSelectMenuKind,
    CreateSelectMenuOption,
};

/// Discord's limits: 4096 characters of embed description, 1024 per field.
const DESCRIPTION_MAX: usize = 4000;
const FIELD_MAX: usize = 1000;
/// guildstats' accent, legible on the dark and the light theme alike.
const COLOUR: u32 = 0x3b82f6;

/// Which image goes with an answer (rendered by guildstats-charts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chart {
    LastSession,
    StatsForm,
    VoiceWeeks,
}

impl Chart {
    pub fn file_name(self) -> &'static str {
        match self {
            Chart::LastSession => "last_session.png",
            Chart::StatsForm => "stats_form.png",
            Chart::VoiceWeeks => "voice_weeks.png",
        }
    }
}

pub struct Reply {
    pub content: Option<String>,
    pub embeds: Vec<CreateEmbed>,
    pub ephemeral: bool,
    pub chart: Option<Chart>,
    /// The function's answer, for the chart.
    pub answer: Option<Value>,
    /// Message components: the /link menu of candidate GUIDs.
    pub components: Vec<CreateActionRow>,
}

impl Reply {
    /// A message only the caller sees: refusals, limits, faults.
    pub fn private(text: impl Into<String>) -> Reply {
        Reply {
            content: Some(text.into()),
            embeds: Vec::new(),
            ephemeral: true,
            chart: None,
            answer: None,
            components: Vec::new(),
        }
    }

    pub fn with_answer(self, answer: Value) -> Reply {
        Reply {
            answer: Some(answer),
            ..self
        }
    }

    fn public(embed: CreateEmbed, chart: Option<Chart>) -> Reply {
        Reply {
            content: None,
            embeds: vec![embed.colour(COLOUR)],
            ephemeral: false,
            chart,
            answer: None,
            components: Vec::new(),
        }
    }
}

/// A number as the function gave it: integers as integers, others with two decimals.
pub fn num(value: &Value) -> String {
    match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => format!("{:.2}", n.as_f64().unwrap_or(0.0)),
        Value::Null => "–".into(),
        other => other.to_string(),
    }
}

fn s<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("?")
}

fn n(value: &Value, key: &str) -> String {
    num(value.get(key).unwrap_or(&Value::Null))
}

fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A name safe inside a code block, a title or a field name: nothing that ends a code span or
/// makes a mention.
pub fn clean(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '`' | '@' | '<' | '>' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .take(32)
        .collect()
}

/// A name in running text: cleaned, with Discord's markdown characters escaped.
pub fn plain(name: &str) -> String {
    let mut out = String::new();
    for c in clean(name).chars() {
        if matches!(c, '*' | '_' | '~' | '|' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Lines up to `max` characters; says how many were left out.
fn fit(lines: impl IntoIterator<Item = String>, max: usize) -> String {
    let lines: Vec<String> = lines.into_iter().collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let more = format!("… and {} more", lines.len() - i);
        if out.len() + line.len() + more.len() + 8 > max {
            out.push_str(&more);
            return out;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn code(lines: impl IntoIterator<Item = String>, max: usize) -> String {
    format!("```\n{}```", fit(lines, max - 8))
}

pub fn render(request: &Request, answer: &Value) -> Reply {
    match request {
        Request::LastSession => last_session(answer),
        Request::Stats { .. } => stats(answer),
        Request::Top { .. } => top(answer),
        Request::LinkCandidates { user, .. } => link_candidates(*user, answer),
        Request::Link { .. } => Reply::private(s(answer, "message")),
        Request::Server => server(answer),
        Request::Voice { .. } => voice(answer),
        Request::Community => community(answer),
    }
}

fn last_session(a: &Value) -> Reply {
    let session = a.get("session").unwrap_or(&Value::Null);
    let maps = list(a, "maps")
        .iter()
        .map(|m| format!("`{}`: {}", clean(s(m, "map")), s(m, "result")));
    let mut players = vec![format!(
        "{:<16}{:>4}{:>4}{:>6}{:>7}{:>7}{:>4}{:>5}",
        "player", "K", "D", "K/D", "DPM", "dmg", "gib", "min"
    )];
    players.extend(list(a, "players").iter().map(|p| {
        let minutes = p.get("time_played_s").and_then(Value::as_i64).unwrap_or(0) / 60;
        format!(
            "{:<16}{:>4}{:>4}{:>6}{:>7}{:>7}{:>4}{:>5}",
            clean(s(p, "name")).chars().take(15).collect::<String>(),
            n(p, "kills"),
            n(p, "deaths"),
            n(p, "kd"),
            n(p, "dpm"),
            n(p, "damage_given"),
            n(p, "gibs"),
            minutes
        )
    }));
    let mut embed = CreateEmbed::new()
        .title(format!(
            "Last session: {} rounds on {}",
            n(session, "rounds"),
            clean(s(session, "server"))
        ))
        .description(code(players, DESCRIPTION_MAX))
        .field("Maps", fit(maps, FIELD_MAX), false);
    for (team, key) in [("Team A", "a"), ("Team B", "b")] {
        let names: Vec<String> = a
            .get("teams")
            .map(|t| list(t, key))
            .unwrap_or(&[])
            .iter()
            .filter_map(Value::as_str)
            .map(plain)
            .collect();
        if !names.is_empty() {
            embed = embed.field(team, fit([names.join(", ")], FIELD_MAX), true);
        }
    }
    if let Some(mvp) = a.get("mvp").filter(|m| !m.is_null()) {
        embed = embed.field(
            "MVP",
            format!("{} ({})", plain(s(mvp, "name")), s(mvp, "reason")),
            false,
        );
    }
    let awards = list(a, "awards").iter().map(|w| {
        format!(
            "{}: {} ({})",
            s(w, "award"),
            plain(s(w, "name")),
            n(w, "value")
        )
    });
    embed = embed
        .field("Awards", fit(awards, FIELD_MAX), false)
        .footer(CreateEmbedFooter::new(format!(
            "{} to {}",
            s(session, "started_at"),
            s(session, "ended_at")
        )));
    Reply::public(embed, Some(Chart::LastSession))
}

fn stats(a: &Value) -> Reply {
    let player = a.get("player").unwrap_or(&Value::Null);
    let totals = a.get("totals").unwrap_or(&Value::Null);
    let form = a.get("form").unwrap_or(&Value::Null);
    let recent = form.get("last_30_days").unwrap_or(&Value::Null);
    let before = form.get("before").unwrap_or(&Value::Null);
    let mut embed = CreateEmbed::new()
        .title(format!("Stats of {}", clean(s(player, "name"))))
        .field(
            "Totals",
            format!(
                "rounds {} · kills {} · deaths {} · K/D {} · DPM {} · damage {} · gibs {} · {} h played",
                n(totals, "rounds"),
                n(totals, "kills"),
                n(totals, "deaths"),
                n(totals, "kd"),
                n(totals, "dpm"),
                n(totals, "damage_given"),
                n(totals, "gibs"),
                totals
                    .get("time_played_s")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    / 3600
            ),
            false,
        )
        .field(
            "Form: last 30 days",
            format!(
                "{} rounds · K/D {} · DPM {}",
                n(recent, "rounds"),
                n(recent, "kd"),
                n(recent, "dpm")
            ),
            true,
        )
        .field(
            "Before",
            format!(
                "{} rounds · K/D {} · DPM {}",
                n(before, "rounds"),
                n(before, "kd"),
                n(before, "dpm")
            ),
            true,
        );
    if let Some(v) = a.get("voice_hours").filter(|v| !v.is_null()) {
        embed = embed.field(
            "Voice hours",
            format!(
                "week {} · month {} · all {}",
                n(v, "week"),
                n(v, "month"),
                n(v, "all")
            ),
            false,
        );
    }
    if let Some(e) = a.get("events_attended").filter(|e| !e.is_null()) {
        embed = embed.field("Events attended", num(e), true);
    }
    let ranks = list(a, "ranks")
        .iter()
        .map(|r| format!("{}: #{} of {}", s(r, "metric"), n(r, "rank"), n(r, "of")));
    embed = embed.field("Ranks", fit(ranks, FIELD_MAX), false);
    let chart = (!list(a, "sessions").is_empty()).then_some(Chart::StatsForm);
    if let Some(guid) = player.get("guid").and_then(Value::as_str) {
        embed = embed.footer(CreateEmbedFooter::new(format!("GUID {}", clean(guid))));
    }
    Reply::public(embed, chart)
}

fn top(a: &Value) -> Reply {
    let rows = list(a, "rows").iter().map(|r| {
        let rounds = r
            .get("rounds")
            .filter(|v| !v.is_null())
            .map(|v| format!(" ({} rounds)", num(v)))
            .unwrap_or_default();
        format!(
            "{:>3}. {:<18}{:>10}{rounds}",
            n(r, "rank"),
            clean(s(r, "name")).chars().take(17).collect::<String>(),
            n(r, "value")
        )
    });
    let map = a
        .get("map")
        .and_then(Value::as_str)
        .map(|m| format!(" on {}", clean(m)))
        .unwrap_or_default();
    let embed = CreateEmbed::new()
        .title(format!("Top {} ({}){map}", s(a, "metric"), s(a, "period")))
        .description(if list(a, "rows").is_empty() {
            "Nobody qualifies yet.".to_string()
        } else {
            code(rows, DESCRIPTION_MAX)
        })
        .footer(CreateEmbedFooter::new(format!(
            "at least {} rounds to rank",
            n(a, "min_rounds")
        )));
    Reply::public(embed, None)
}

/// Discord's limits for a select menu: 25 options, 100 characters per label and description.
const MENU_OPTIONS: usize = 25;
const MENU_TEXT: usize = 100;

fn link_candidates(user: u64, a: &Value) -> Reply {
    let candidates = list(a, "candidates");
    if candidates.is_empty() {
        return Reply::private("No ET player matches that name.");
    }
    let lines = candidates.iter().map(|c| {
        format!(
            "`{}` {} · {} rounds · last seen {} · in voice during {} of them",
            clean(s(c, "guid")),
            plain(s(c, "name")),
            n(c, "rounds"),
            s(c, "last_seen"),
            n(c, "voice_overlap_rounds")
        )
    });
    let options = candidates
        .iter()
        .filter(|c| c.get("guid").and_then(Value::as_str).is_some())
        .take(MENU_OPTIONS)
        .map(|c| {
            let label = format!("{} ({} rounds)", clean(s(c, "name")), n(c, "rounds"));
            let mut description = format!(
                "GUID {} · in voice during {} of its rounds",
                clean(s(c, "guid")),
                n(c, "voice_overlap_rounds")
            );
            if c.get("linked_user_id").is_some_and(|u| !u.is_null()) {
                description.push_str(" · already linked");
            }
            CreateSelectMenuOption::new(
                label.chars().take(MENU_TEXT).collect::<String>(),
                s(c, "guid"),
            )
            .description(description.chars().take(MENU_TEXT).collect::<String>())
        })
        .collect();
    let menu = CreateSelectMenu::new(pick_id(user), CreateSelectMenuKind::String { options })
        .placeholder("Pick your ET name")
        .min_values(1)
        .max_values(1);
    Reply {
        content: Some(format!(
            "Pick yours from the menu below:\n{}",
            fit(lines, 1800)
        )),
        embeds: Vec::new(),
        ephemeral: true,
        chart: None,
        answer: None,
        components: vec![CreateActionRow::SelectMenu(menu)],
    }
}

fn server(a: &Value) -> Reply {
    let servers = list(a, "servers");
    let mut embed = CreateEmbed::new().title("Game servers");
    if servers.is_empty() {
        embed = embed.description("No server has been polled yet.");
    }
    for srv in servers.iter().take(10) {
        let players = list(srv, "players");
        let lines = players.iter().map(|p| {
            format!(
                "{}{} · score {} · ping {}",
                if p.get("in_voice").and_then(Value::as_bool) == Some(true) {
                    "🔊 "
                } else {
                    ""
                },
                plain(s(p, "name")),
                n(p, "score"),
                n(p, "ping")
            )
        });
        let body = format!(
            "map `{}` · {}/{} players · polled {}\n{}",
            clean(s(srv, "map")),
            players.len(),
            n(srv, "max_players"),
            s(srv, "polled_at"),
            fit(lines, FIELD_MAX - 120)
        );
        embed = embed.field(
            format!("{} ({})", clean(s(srv, "name")), clean(s(srv, "server"))),
            body,
            false,
        );
    }
    Reply::public(embed, None)
}

fn voice(a: &Value) -> Reply {
    let partners = list(a, "partners").iter().map(|p| {
        let who = p
            .get("name")
            .and_then(Value::as_str)
            .map(plain)
            .unwrap_or_else(|| format!("user {}", s(p, "user_id")));
        format!("{who}: {} min together", n(p, "shared_minutes"))
    });
    let who = a
        .get("name")
        .and_then(Value::as_str)
        .map(clean)
        .unwrap_or_else(|| "a member".into());
    let embed = CreateEmbed::new()
        .title(format!("Voice of {who}"))
        .description(format!(
            "<@{}>",
            s(a, "user_id").replace(|c: char| !c.is_ascii_digit(), "")
        ))
        .field(
            "This week",
            format!(
                "{} h · rank #{} of {}",
                n(a, "hours_week"),
                n(a, "rank_week"),
                n(a, "members_ranked_week")
            ),
            true,
        )
        .field(
            "This month",
            format!(
                "{} h · rank #{} of {}",
                n(a, "hours_month"),
                n(a, "rank_month"),
                n(a, "members_ranked")
            ),
            true,
        )
        .field("Top partners", fit(partners, FIELD_MAX), false);
    let chart = (!list(a, "weeks").is_empty()).then_some(Chart::VoiceWeeks);
    Reply::public(embed, chart)
}

fn community(a: &Value) -> Reply {
    let alerts = list(a, "economy_alerts")
        .iter()
        .map(|e| format!("{}: {}", s(e, "day"), s(e, "alert")));
    let problems = list(a, "health_problems")
        .iter()
        .filter_map(Value::as_str)
        .map(String::from);
    let embed = CreateEmbed::new()
        .title("Community health")
        .field("DAU", n(a, "dau"), true)
        .field("MAU", n(a, "mau"), true)
        .field("DAU/MAU", n(a, "dau_mau"), true)
        .field("D7 retention", n(a, "d7"), true)
        .field("D30 retention", n(a, "d30"), true)
        .field("Economy alerts", or_none(fit(alerts, FIELD_MAX)), false)
        .field("Health problems", or_none(fit(problems, FIELD_MAX)), false);
    // Admin figures stay with the admin who asked.
    Reply {
        ephemeral: true,
        ..Reply::public(embed, None)
    }
}

fn or_none(text: String) -> String {
    if text.trim().is_empty() {
        "none".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text_of(reply: &Reply) -> String {
        let mut text = reply.content.clone().unwrap_or_default();
        for e in &reply.embeds {
            text.push_str(&serde_json::to_string(e).unwrap());
        }
        text
    }

    #[test]
    fn numbers_are_shown_as_the_function_gave_them() {
        assert_eq!(num(&json!(12)), "12");
        assert_eq!(num(&json!(1.5)), "1.50");
        assert_eq!(num(&json!(null)), "–");
    }

    #[test]
    fn last_session_shows_every_player_and_attaches_its_image() {
        let answer = json!({"ok": true,
            "session": {"id": 1, "started_at": "s", "ended_at": "e", "server": "etl", "rounds": 2},
            "maps": [{"map": "supply", "result": "allies win (9:00 vs 10:12)"}],
            "teams": {"a": ["fish"], "b": ["`bob`"]},
            "players": [{"name": "fish", "kills": 31, "deaths": 12, "kd": 2.583, "dpm": 301.25,
                          "damage_given": 9000, "gibs": 4, "time_played_s": 1800},
                        {"name": "@everyone", "kills": 3, "deaths": 12, "kd": 0.25, "dpm": 80.5,
                          "damage_given": 900, "gibs": 0, "time_played_s": 600}],
            "mvp": {"name": "fish", "reason": "most kills"}, "awards": []});
        let reply = render(&Request::LastSession, &answer);
        let text = text_of(&reply);
        for expected in ["31", "2.58", "301.25", "9000", "supply", "most kills"] {
            assert!(text.contains(expected), "{expected} in {text}");
        }
        assert!(!text.contains("@everyone") && !text.contains("`bob`"));
        assert_eq!(plain("a_b*c"), "a\\_b\\*c");
        assert_eq!(clean("etl_sp_delivery"), "etl_sp_delivery");
        assert_eq!(reply.chart, Some(Chart::LastSession));
        assert!(!reply.ephemeral);
    }

    #[test]
    fn link_candidates_come_with_a_menu_of_their_guids() {
        let candidates: Vec<Value> = (0..30)
            .map(|i| {
                json!({"guid": format!("ABCD{i:04}"), "name": format!("{}{i}", "n".repeat(120)),
                            "rounds": i, "last_seen": "2026-01-02", "voice_overlap_rounds": 0,
                            "linked_user_id": if i == 0 { json!("7") } else { json!(null) }})
            })
            .collect();
        let request = Request::LinkCandidates {
            user: 45,
            name: "n".into(),
        };
        let reply = render(&request, &json!({"ok": true, "candidates": candidates}));
        assert!(reply.ephemeral);
        let rows = serde_json::to_value(&reply.components).unwrap();
        let menu = &rows[0]["components"][0];
        assert_eq!(menu["custom_id"], json!("link:45"));
        let options = menu["options"].as_array().unwrap();
        assert_eq!(options.len(), 25, "Discord's limit");
        assert_eq!(options[0]["value"], json!("ABCD0000"));
        assert!(options[0]["description"]
            .as_str()
            .unwrap()
            .contains("already linked"));
        assert!(options
            .iter()
            .all(|o| o["label"].as_str().unwrap().chars().count() <= 100));
    }

    #[test]
    fn long_lists_stay_within_discords_limits() {
        let players: Vec<Value> = (0..500)
            .map(|i| json!({"name": format!("player{i}"), "kills": i}))
            .collect();
        let reply = render(
            &Request::LastSession,
            &json!({"ok": true, "players": players}),
        );
        let embed = serde_json::to_value(&reply.embeds[0]).unwrap();
        let description = embed["description"].as_str().unwrap();
        assert!(description.len() <= 4096);
        assert!(description.contains("more"));
    }

    #[test]
    fn every_command_renders_an_empty_answer_without_panicking() {
        let requests = [
            Request::LastSession,
            Request::Stats {
                player: None,
                user: Some(1),
            },
            Request::Top {
                metric: "kills".into(),
                period: "all".into(),
                map: None,
            },
            Request::LinkCandidates {
                user: 1,
                name: "x".into(),
            },
            Request::Link {
                user: 1,
                guid: "x".into(),
                confirmed_by: None,
            },
            Request::Server,
            Request::Voice { user: 1 },
            Request::Community,
        ];
        for request in &requests {
            for answer in [json!({"ok": true}), json!(null), json!([1, 2])] {
                let _ = render(request, &answer);
            }
        }
    }

    #[test]
    fn top_lists_the_rows_and_the_minimum() {
        let answer = json!({"ok": true, "metric": "dpm", "period": "week", "map": null,
            "min_rounds": 10, "rows": [{"rank": 1, "name": "fish", "value": 301.25, "rounds": 30}]});
        let request = Request::Top {
            metric: "dpm".into(),
            period: "week".into(),
            map: None,
        };
        let text = text_of(&render(&request, &answer));
        assert!(
            text.contains("301.25") && text.contains("30 rounds") && text.contains("10 rounds")
        );
    }
}
