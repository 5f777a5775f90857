//! The slash commands end to end: the real serenity client in the real `guildstats-discord`
//! binary (`--commands`), connected to ../shared/tools/mock_discord.py, which dispatches the
//! scripted INTERACTION_CREATEs and logs every REST request the bot makes. The commands log in
//! as a `guildstats_commands` login into a database holding the real ET:Legacy files; each
//! answer is checked against the SQL function called here with the same arguments.

use guildstats_e2e::discord::{
    channel, guild, interaction, member, mock_tool, scenario, scratch_dir, wait_for, Ingester,
    MockDiscord, GUILD,
};
use guildstats_e2e::et::{cluster_and_fixtures, fixture_names, import_pending, insert_files};
use guildstats_e2e::ingest::ingester_binary;
use guildstats_e2e::{apply_roles_script, db_message, login_role, TestDb};
use postgres::Client;
use serde_json::{json, Value};
use std::time::Duration;

const COMMANDS_LOGIN: &str = "e2e_discord_commands";
const INGEST_LOGIN: &str = "e2e_discord_cmd_ingest";
const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";
/// What the bot says when the database could not answer (commands::GENERIC_FAULT).
const GENERIC_FAULT_TEXT: &str = "the stats database could not answer right now";

fn answer(
    client: &mut Client,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Value {
    let text: String = client
        .query_one(&format!("SELECT ({sql})::text"), params)
        .unwrap_or_else(|e| panic!("{sql}: {}", db_message(&e)))
        .get(0);
    serde_json::from_str(&text).expect("jsonb parses")
}

/// A number as a reader sees it in the answer: integers whole, others to two decimals.
/// A null (no rank this week, say) shows as a dash.
fn shown(value: &Value) -> String {
    match (value.as_i64(), value.as_f64()) {
        (Some(i), _) => i.to_string(),
        (None, Some(f)) => format!("{f:.2}"),
        _ if value.is_null() => "–".to_string(),
        _ => panic!("{value} is not a number"),
    }
}

/// A string option, a user option.
fn text(name: &str, value: &str) -> Value {
    json!({"name": name, "type": 3, "value": value})
}

fn user_option(name: &str, id: &str) -> Value {
    json!({"name": name, "type": 6, "value": id})
}

/// A MESSAGE_COMPONENT interaction: `user` picked `values` from the select menu `custom_id` of
/// an ephemeral message the bot sent earlier (Discord sends that message along).
fn pick(id: u64, user: &str, custom_id: &str, values: &[&str], admin: bool) -> Value {
    let mut picked = interaction(id, user, "link", json!([]), admin);
    picked["type"] = json!(3);
    picked["data"] = json!({"custom_id": custom_id, "component_type": 3, "values": values});
    picked["message"] = json!({"id": (id + 1_000_000).to_string(), "channel_id": "510",
        "author": {"id": "1", "username": "guildstats", "discriminator": "0", "avatar": null, "bot": true},
        "content": "Pick yours from the menu below:", "timestamp": "2026-11-01T20:15:00.000000+00:00",
        "edited_timestamp": null, "tts": false, "mention_everyone": false, "mentions": [],
        "mention_roles": [], "attachments": [], "embeds": [], "pinned": false, "type": 20, "flags": 64});
    picked
}

/// What the bot sent for one interaction, read from the mock's request log.
#[derive(Debug, Default)]
struct Answer {
    /// The interaction callback's body: type 4 (a message now) or 5 (deferred).
    callback: Option<Value>,
    /// The edit of the deferred message (PATCH .../messages/@original).
    edit: Option<Value>,
    /// A follow-up message (POST /webhooks/{app}/{token}).
    followup: Option<Value>,
    deleted_original: bool,
}

impl Answer {
    fn of(requests: &[Value], token: &str) -> Answer {
        let mut answer = Answer::default();
        for r in requests {
            let path = r["path"].as_str().unwrap_or("");
            if !path.contains(&format!("/{token}")) {
                continue;
            }
            match (r["method"].as_str().unwrap_or(""), path) {
                (_, p) if p.ends_with("/callback") => answer.callback = Some(r.clone()),
                ("PATCH", _) => answer.edit = Some(r.clone()),
                ("DELETE", _) => answer.deleted_original = true,
                ("POST", _) => answer.followup = Some(r.clone()),
                _ => {}
            }
        }
        answer
    }

    fn complete(&self) -> bool {
        match self.callback.as_ref().map(|c| c["json"]["type"].as_i64()) {
            Some(Some(4)) => true,
            Some(Some(5)) => self.edit.is_some() || self.followup.is_some(),
            // A menu pick acknowledged: its answer edits the menu's message.
            Some(Some(6)) => self.edit.is_some(),
            _ => false,
        }
    }

    /// The request that carries the visible answer.
    fn message(&self) -> &Value {
        self.followup
            .as_ref()
            .or(self.edit.as_ref())
            .or(self.callback.as_ref())
            .expect("an answer")
    }

    fn body(&self) -> Value {
        let m = self.message();
        if m["path"].as_str().unwrap_or("").ends_with("/callback") {
            m["json"]["data"].clone()
        } else {
            m["json"].clone()
        }
    }

    /// Only the caller sees it: an ephemeral message, or an edit of an ephemeral defer.
    fn private(&self) -> bool {
        let flags = |v: &Value| v["flags"].as_u64().unwrap_or(0) & 64 != 0;
        let deferred_private = self
            .callback
            .as_ref()
            .is_some_and(|c| c["json"]["type"] == json!(5) && flags(&c["json"]["data"]));
        if self.followup.is_some() {
            return flags(&self.body()) && self.deleted_original;
        }
        if self.edit.is_some() {
            return deferred_private;
        }
        flags(&self.body())
    }

    fn text(&self) -> String {
        let body = self.body();
        format!(
            "{} {}",
            body["content"].as_str().unwrap_or(""),
            body["embeds"]
        )
    }

    fn files(&self) -> Vec<Value> {
        self.message()["files"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

struct Run {
    mock: MockDiscord,
    bot: Ingester,
    dir: std::path::PathBuf,
}

impl Run {
    /// The bot with commands on, until every interaction of `tokens` is answered.
    fn start(
        test: &str,
        tool: &std::path::Path,
        ingest_dsn: &str,
        commands_dsn: &str,
        script: Vec<(&str, Value)>,
        tokens: &[String],
    ) -> Run {
        let dir = scratch_dir(test);
        let members = ["42", "43", "44", "60"]
            .map(|id| member(id, false))
            .to_vec();
        let guild = guild(
            vec![
                channel("500", 2, "Lobby", None),
                channel("510", 0, "general", None),
            ],
            vec![],
            members,
            vec![],
        );
        // Registration comes first: the commands exist before anyone uses them.
        let mut script = script;
        script.insert(0, ("SLEEP", json!(2)));
        let mock = MockDiscord::start_recording(tool, &dir, "mock", &scenario(guild, script));
        let args: Vec<String> = [
            "--api-proxy",
            &mock.api_url(),
            "--dsn",
            ingest_dsn,
            "--spool",
            &dir.join("spool").display().to_string(),
            "--commands",
            "--commands-dsn",
            commands_dsn,
        ]
        .map(String::from)
        .to_vec();
        let bin = ingester_binary("guildstats-discord");
        let mut bot = Ingester::start_bot(&bin, &args, &dir.join("bot.log"));
        wait_for(
            "every interaction answered",
            Duration::from_secs(90),
            || {
                bot.assert_running();
                let requests = mock.requests();
                tokens.iter().all(|t| Answer::of(&requests, t).complete())
            },
        );
        // The mock logs a request before it replies; whether the bot took the reply as a
        // delivery shows in its own log, once that reply is read.
        wait_for(
            "every deferred answer confirmed by the bot",
            Duration::from_secs(30),
            || {
                let log = bot.log_text();
                deferred(&mock.requests(), tokens)
                    .iter()
                    .all(|id| confirmed(&log, id))
            },
        );
        Run { mock, bot, dir }
    }

    /// No answer went wrong on the bot's side: the mock's log shows what was sent, not whether
    /// the bot saw it accepted; an answer the bot believes lost is an error in its log.
    fn assert_every_answer_delivered(&self) {
        let log = self.bot.log_text();
        let failed: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("guildstats_discord::commands"))
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .collect();
        assert!(failed.is_empty(), "answers that went wrong: {failed:#?}");
    }

    fn answer(&self, token: &str) -> Answer {
        Answer::of(&self.mock.requests(), token)
    }

    /// The attachment the mock saved for `file`, checked to be a PNG.
    fn assert_png(&self, answer: &Answer, name: &str) {
        let files = answer.files();
        assert_eq!(files.len(), 1, "one image with {}", answer.text());
        assert_eq!(files[0]["filename"], json!(name));
        assert!(files[0]["size"].as_u64().unwrap() > 0);
        let saved = std::fs::read_dir(self.mock.files.as_ref().unwrap())
            .expect("saved attachments")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(name))
            .unwrap_or_else(|| panic!("{name} not saved by the mock"));
        let bytes = std::fs::read(&saved).expect("saved png");
        assert!(bytes.starts_with(PNG_MAGIC), "{name} is not a PNG");
        assert_eq!(bytes.len() as u64, files[0]["size"].as_u64().unwrap());
        assert!(
            answer.text().contains(&format!("attachment://{name}")),
            "the embed shows the image: {}",
            answer.text()
        );
    }
}

/// The interaction ids of `tokens` whose answer was deferred (the real answer follows as an
/// edit or a follow-up, and the bot logs "command answered" once Discord took it).
fn deferred(requests: &[Value], tokens: &[String]) -> Vec<String> {
    tokens
        .iter()
        .filter(|t| {
            let callback = Answer::of(requests, t).callback;
            callback.is_some_and(|c| matches!(c["json"]["type"].as_i64(), Some(5 | 6)))
        })
        .map(|t| t.trim_start_matches("token-").to_string())
        .collect()
}

fn confirmed(log: &str, interaction: &str) -> bool {
    let id = format!("interaction={interaction} ");
    log.lines()
        .any(|l| l.contains("command answered") && l.contains(&id))
}

/// roles.sql, the commands' login (guildstats_commands) bound to guild 100; its DSN.
fn commands_login(db: &TestDb) -> String {
    apply_roles_script(&db.cluster, db);
    login_role(&db.cluster, COMMANDS_LOGIN, "guildstats_commands");
    db.connect()
        .execute(
            "INSERT INTO guildstats.reader_guilds (role_name, guild_id) VALUES ($1, $2)",
            &[&COMMANDS_LOGIN, &GUILD.parse::<i64>().unwrap()],
        )
        .expect("bind the commands login to the guild");
    db.cluster.dsn(&db.name, COMMANDS_LOGIN)
}

/// A DSN whose port nobody listens on: the ingesting side is down, the commands are not.
fn dead_ingest_dsn() -> String {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    format!("host=127.0.0.1 port={dead_port} user=nobody dbname=nothing connect_timeout=1")
}

/// A database with the real ET files imported, voice sessions for members 42 and 43 in guild
/// 100, and the commands' login bound to that guild.
fn commands_database(test: &str) -> Option<(TestDb, String, String)> {
    let (cluster, dir) = cluster_and_fixtures(test)?;
    let db = TestDb::create(&cluster, test);
    let mut client = db.connect();
    insert_files(&mut client, &dir, &fixture_names(&dir));
    import_pending(&mut client);
    client
        .batch_execute(&format!(
            "INSERT INTO guildstats.voice_sessions (guild_id, user_id, channel_id, started_at, ended_at,
                 end_reason, is_afk, start_reason, capped, self_mute_seconds, self_deaf_seconds)
             SELECT {GUILD}, u, 500, now() - d * interval '1 day', now() - d * interval '1 day' + h * interval '1 hour',
                    'leave', false, 'join', false, 0, 0
             FROM (VALUES (42, 2, 2), (43, 2, 1), (42, 10, 1), (42, 20, 3)) v(u, d, h);"
        ))
        .expect("voice sessions");
    let ingest_dsn = db.ingest_login(INGEST_LOGIN);
    let commands_dsn = commands_login(&db);
    Some((db, ingest_dsn, commands_dsn))
}

#[test]
fn every_command_answers_from_its_sql_function() {
    const TEST: &str = "every_command_answers_from_its_sql_function";
    let Some(tool) = mock_tool(TEST) else { return };
    let Some((db, ingest_dsn, commands_dsn)) = commands_database(TEST) else {
        return;
    };
    let mut client = db.connect();
    let guild: i64 = GUILD.parse().unwrap();
    let top = answer(
        &mut client,
        "guildstats.command_top(guild_id => $1, metric => 'kills', period => 'all')",
        &[&guild],
    );
    let best = top["rows"][0]["name"]
        .as_str()
        .expect("a ranked player")
        .to_string();
    let candidates = answer(
        &mut client,
        "guildstats.command_link_candidates(guild_id => $1, user_id => 45, name => $2)",
        &[&guild, &best],
    );
    let picked_guid = candidates["candidates"][0]["guid"]
        .as_str()
        .expect("a candidate")
        .to_string();
    let hostile = "'); DROP TABLE guildstats.settings; --";
    let long = "x".repeat(500);

    let calls: Vec<(u64, &str, &str, Value, bool)> = vec![
        (5001, "42", "last_session", json!([]), false),
        (5002, "43", "stats", json!([text("player", &best)]), false),
        (
            5003,
            "44",
            "top",
            json!([text("metric", "kills"), text("period", "all")]),
            false,
        ),
        (5004, "42", "server", json!([]), false),
        (
            5005,
            "43",
            "voice",
            json!([user_option("member", "42")]),
            false,
        ),
        (5006, "44", "community", json!([]), true),
        (5007, "45", "link", json!([text("name", &best)]), false),
        (
            5008,
            "46",
            "stats",
            json!([text("player", "zzqx nobody plays as this")]),
            false,
        ),
        (5009, "47", "stats", json!([text("player", &long)]), false),
        (5010, "48", "stats", json!([text("player", hostile)]), false),
        (5011, "49", "community", json!([]), false),
        (
            5012,
            "50",
            "top",
            json!([text("metric", "kills"), text("period", "forever")]),
            false,
        ),
    ];
    let mut script: Vec<(&str, Value)> = calls
        .iter()
        .map(|(id, user, command, options, admin)| {
            (
                "INTERACTION_CREATE",
                interaction(*id, user, command, options.clone(), *admin),
            )
        })
        .collect();
    // /link, second step: 45 picks the first candidate from the menu of the 5007 answer; 46
    // replays 45's menu.
    script.push(("SLEEP", json!(1)));
    script.push((
        "INTERACTION_CREATE",
        pick(5201, "45", "link:45", &[&picked_guid], false),
    ));
    script.push((
        "INTERACTION_CREATE",
        pick(5202, "46", "link:45", &[&picked_guid], false),
    ));
    // One member hammering: a burst of three, then limited.
    for id in 5101..5107 {
        script.push((
            "INTERACTION_CREATE",
            interaction(id, "60", "top", json!([text("metric", "dpm")]), false),
        ));
    }
    let tokens: Vec<String> = (5001..5013)
        .chain(5101..5107)
        .chain(5201..5203)
        .map(|id| format!("token-{id}"))
        .collect();
    let mut run = Run::start(TEST, &tool, &ingest_dsn, &commands_dsn, script, &tokens);
    run.assert_every_answer_delivered();

    // The commands were registered in the guild, /community for Manage Server only.
    let requests = run.mock.requests();
    let registered = requests
        .iter()
        .find(|r| {
            r["method"] == json!("PUT")
                && r["path"]
                    .as_str()
                    .unwrap()
                    .ends_with("/guilds/100/commands")
        })
        .expect("guild commands registered");
    let names: Vec<&str> = registered["json"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "last_session",
            "stats",
            "top",
            "link",
            "server",
            "voice",
            "community"
        ]
    );
    let community = &registered["json"][6];
    assert_eq!(community["default_member_permissions"], json!("32"));

    // /last_session: every player's line holds the function's numbers, and the image.
    let a = run.answer("token-5001");
    assert!(!a.private(), "{a:?}");
    let expected = answer(
        &mut client,
        "guildstats.command_last_session(guild_id => $1)",
        &[&guild],
    );
    let description = a.body()["embeds"][0]["description"]
        .as_str()
        .unwrap()
        .to_string();
    for p in expected["players"].as_array().unwrap() {
        let minutes = p["time_played_s"].as_i64().unwrap() / 60;
        let numbers = [
            shown(&p["kills"]),
            shown(&p["deaths"]),
            shown(&p["kd"]),
            shown(&p["dpm"]),
            shown(&p["damage_given"]),
            shown(&p["gibs"]),
            minutes.to_string(),
        ];
        assert!(
            description.lines().any(|l| {
                let tokens: Vec<&str> = l.split_whitespace().collect();
                tokens.len() >= 8
                    && tokens[tokens.len() - 7..] == numbers.each_ref().map(String::as_str)
            }),
            "{} {numbers:?} in\n{description}",
            p["name"]
        );
    }
    for m in expected["maps"].as_array().unwrap() {
        assert!(a.text().contains(m["map"].as_str().unwrap()));
    }
    run.assert_png(&a, "last_session.png");

    // /stats by name: totals as the function gives them, and the form image.
    let a = run.answer("token-5002");
    let expected = answer(
        &mut client,
        "guildstats.command_stats(guild_id => $1, player => $2)",
        &[&guild, &best],
    );
    let t = &expected["totals"];
    for part in [
        format!("rounds {}", shown(&t["rounds"])),
        format!("kills {}", shown(&t["kills"])),
        format!("deaths {}", shown(&t["deaths"])),
        format!("K/D {}", shown(&t["kd"])),
        format!("DPM {}", shown(&t["dpm"])),
    ] {
        assert!(a.text().contains(&part), "{part} in {}", a.text());
    }
    assert!(!a.private());
    run.assert_png(&a, "stats_form.png");

    // /top: every row's value, in order.
    let a = run.answer("token-5003");
    let listed = a.body()["embeds"][0]["description"]
        .as_str()
        .unwrap()
        .to_string();
    for row in top["rows"].as_array().unwrap() {
        let line = listed
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{}.", row["rank"])))
            .unwrap_or_else(|| panic!("rank {} in {listed}", row["rank"]));
        assert!(line.contains(&shown(&row["value"])), "{row} in {line}");
    }
    assert!(a
        .text()
        .contains(&format!("at least {} rounds", top["min_rounds"])));
    assert!(a.files().is_empty());

    // /server: what the function says (no server polled here).
    let a = run.answer("token-5004");
    let expected = answer(
        &mut client,
        "guildstats.command_server(guild_id => $1)",
        &[&guild],
    );
    if expected["ok"] == json!(true) && expected["servers"].as_array().is_some_and(Vec::is_empty) {
        assert!(
            a.text().contains("No server has been polled yet"),
            "{}",
            a.text()
        );
    }

    // /voice of another member: hours and rank as the function gives them, with the image.
    let a = run.answer("token-5005");
    let expected = answer(
        &mut client,
        "guildstats.command_voice(guild_id => $1, user_id => 42)",
        &[&guild],
    );
    assert_eq!(expected["ok"], json!(true), "{expected}");
    for part in [
        format!(
            "{} h · rank #{}",
            shown(&expected["hours_week"]),
            shown(&expected["rank_week"])
        ),
        format!(
            "{} h · rank #{}",
            shown(&expected["hours_month"]),
            shown(&expected["rank_month"])
        ),
    ] {
        assert!(a.text().contains(&part), "{part} in {}", a.text());
    }
    run.assert_png(&a, "voice_weeks.png");

    // /community for an admin: private, with the function's DAU, or its refusal.
    let a = run.answer("token-5006");
    assert!(a.private(), "admin figures stay private: {a:?}");
    let expected = answer(
        &mut client,
        "guildstats.command_community(guild_id => $1)",
        &[&guild],
    );
    let part = match expected["error"].as_str() {
        Some(error) => error.to_string(),
        None => format!("\"name\":\"DAU\",\"value\":\"{}\"", shown(&expected["dau"])),
    };
    assert!(a.text().contains(&part), "{part} in {}", a.text());

    // /link without a GUID: the candidates, privately.
    let a = run.answer("token-5007");
    assert!(a.private());
    let expected = answer(
        &mut client,
        "guildstats.command_link_candidates(guild_id => $1, user_id => 45, name => $2)",
        &[&guild, &best],
    );
    for c in expected["candidates"].as_array().unwrap() {
        assert!(
            a.text().contains(c["guid"].as_str().unwrap()),
            "{c} in {}",
            a.text()
        );
    }

    // ... with a menu of their GUIDs, for the member who asked.
    let menu = &a.body()["components"][0]["components"][0];
    assert_eq!(menu["custom_id"], json!("link:45"), "{}", a.body());
    let offered: Vec<&str> = menu["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["value"].as_str().unwrap())
        .collect();
    let listed: Vec<&str> = expected["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["guid"].as_str().unwrap())
        .collect();
    assert_eq!(offered, listed);

    // The pick: acknowledged, then the menu's message says what command_link did. 45 was never
    // in voice, so the claim waits for an admin (0 of the 3 rounds the settings ask for).
    let a = run.answer("token-5201");
    assert_eq!(a.callback.as_ref().unwrap()["json"]["type"], json!(6));
    let body = a.body();
    assert_eq!(
        body["content"],
        json!(format!(
            "Claim for GUID {picked_guid} saved; an admin must confirm it (you were in voice during 0 of its rounds, 3 needed to link at once)."
        )),
        "{body}"
    );
    assert_eq!(body["components"], json!([]), "the menu is gone: {body}");
    let claims: Vec<(i64, String, i32)> = client
        .query(
            "SELECT user_id, guid, voice_overlap_rounds FROM guildstats.et_guid_claims WHERE guild_id = $1",
            &[&guild],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(claims, vec![(45, picked_guid.clone(), 0)]);
    // Somebody else's menu: refused privately, nothing written for them.
    let a = run.answer("token-5202");
    assert!(
        a.private() && a.text().contains("Only an admin"),
        "{}",
        a.text()
    );

    // Bad input: a clear private answer each time, and the database unharmed.
    let unknown = run.answer("token-5008");
    let expected = answer(
        &mut client,
        "guildstats.command_stats(guild_id => $1, player => 'zzqx nobody plays as this')",
        &[&guild],
    );
    assert!(unknown.private(), "{unknown:?}");
    assert!(
        unknown.text().contains(expected["error"].as_str().unwrap()),
        "{}",
        unknown.text()
    );
    let long_name = run.answer("token-5009");
    assert!(
        long_name.private() && long_name.text().contains("500 characters"),
        "{}",
        long_name.text()
    );
    let hostile_answer = run.answer("token-5010");
    assert!(hostile_answer.private(), "{}", hostile_answer.text());
    assert_eq!(
        client
            .query_one("SELECT count(*) FROM guildstats.settings", &[])
            .map(|r| r.get::<_, i64>(0) >= 0)
            .ok(),
        Some(true),
        "the settings table is still there"
    );
    let not_admin = run.answer("token-5011");
    assert!(
        not_admin.private() && not_admin.text().contains("admins"),
        "{}",
        not_admin.text()
    );
    let bad_period = run.answer("token-5012");
    assert!(bad_period.private() && bad_period.text().contains("Unknown period"));

    // The hammering member: three answers, then a private "slow down" for each of the rest.
    let limited: Vec<bool> = (5101..5107)
        .map(|id| {
            run.answer(&format!("token-{id}"))
                .text()
                .contains("Slow down")
        })
        .collect();
    assert_eq!(limited.iter().filter(|l| **l).count(), 3, "{limited:?}");
    for id in 5101..5107 {
        let a = run.answer(&format!("token-{id}"));
        assert_eq!(a.private(), a.text().contains("Slow down"), "{a:?}");
    }

    let log = run.bot.log_text();
    assert!(!log.contains("panicked"), "{log}");
    let status = run.bot.terminate();
    assert!(status.success(), "exit status {status}");
    let _ = std::fs::remove_dir_all(&run.dir);
}

/// The ingest database unreachable (its DSN points at a port nobody listens on) while the
/// commands' own login answers; the commands' database is empty of ET rounds, so /last_session
/// says so privately.
#[test]
fn commands_answer_while_the_ingest_database_is_down() {
    const TEST: &str = "commands_answer_while_the_ingest_database_is_down";
    let Some(tool) = mock_tool(TEST) else { return };
    let Some(cluster) = guildstats_e2e::Cluster::from_env(TEST) else {
        return;
    };
    let db = TestDb::create(&cluster, "commands_ingest_down");
    let commands_dsn = commands_login(&db);
    let mut client = db.connect();
    let ingest_dsn = dead_ingest_dsn();
    let script = vec![
        (
            "INTERACTION_CREATE",
            interaction(6001, "42", "last_session", json!([]), false),
        ),
        (
            "INTERACTION_CREATE",
            interaction(6002, "43", "top", json!([text("metric", "kills")]), false),
        ),
    ];
    let tokens = ["token-6001".to_string(), "token-6002".to_string()];
    let mut run = Run::start(TEST, &tool, &ingest_dsn, &commands_dsn, script, &tokens);
    run.assert_every_answer_delivered();

    let a = run.answer("token-6001");
    let expected = answer(
        &mut client,
        "guildstats.command_last_session(guild_id => 100)",
        &[],
    );
    assert_eq!(expected["ok"], json!(false));
    assert!(a.private(), "{a:?}");
    assert!(
        a.text().contains(expected["error"].as_str().unwrap()),
        "{}",
        a.text()
    );
    // /top on a database without rounds: whatever the function says, as it says it.
    let a = run.answer("token-6002");
    let expected = answer(
        &mut client,
        "guildstats.command_top(guild_id => 100, metric => 'kills')",
        &[],
    );
    match expected["error"].as_str() {
        Some(error) => assert!(a.private() && a.text().contains(error), "{}", a.text()),
        None => assert!(a.text().contains("Top kills"), "{}", a.text()),
    }
    let log = run.bot.log_text();
    assert!(log.contains("command answered"), "{log}");
    let status = run.bot.terminate();
    assert!(status.success(), "exit status {status}");
}

/// A command whose query waits on a lock (here an admin's open transaction holding the settings
/// table, as a full rebuild's TRUNCATE would) is cancelled in the database when the bot gives up
/// on it. Before, only the bot's own timer ran out: the query went on waiting on the server for
/// as long as the lock was held, and every later command queued behind it on the connection.
#[test]
fn a_command_blocked_by_a_lock_is_cancelled_in_the_database() {
    const TEST: &str = "a_command_blocked_by_a_lock_is_cancelled_in_the_database";
    let Some(tool) = mock_tool(TEST) else { return };
    let Some(cluster) = guildstats_e2e::Cluster::from_env(TEST) else {
        return;
    };
    let db = TestDb::create(&cluster, "commands_lock_held");
    let commands_dsn = commands_login(&db);
    let ingest_dsn = dead_ingest_dsn();
    let mut holder = db.connect();
    let mut held = holder.transaction().expect("begin");
    held.batch_execute(
        "LOCK TABLE guildstats.settings, guildstats.command_settings IN ACCESS EXCLUSIVE MODE",
    )
    .expect("hold the settings");
    let script = vec![(
        "INTERACTION_CREATE",
        interaction(6101, "42", "top", json!([text("metric", "kills")]), false),
    )];
    let tokens = ["token-6101".to_string()];
    let mut run = Run::start(TEST, &tool, &ingest_dsn, &commands_dsn, script, &tokens);

    let a = run.answer("token-6101");
    assert!(a.text().contains(GENERIC_FAULT_TEXT), "{}", a.text());
    // The answer came when the bot's wait ended; give the server a moment past it.
    std::thread::sleep(Duration::from_secs(2));
    let waiting: i64 = db
        .connect()
        .query_one(
            // This database only: another test's bot logs in with the same role.
            "SELECT count(*) FROM pg_stat_activity
              WHERE usename = $1 AND datname = current_database() AND state = 'active'",
            &[&COMMANDS_LOGIN],
        )
        .expect("pg_stat_activity")
        .get(0);
    assert_eq!(
        waiting, 0,
        "the command's query still waits on the lock after the bot gave up"
    );
    let log = run.bot.log_text();
    assert!(log.contains("statement timeout"), "{log}");
    held.rollback().expect("release the lock");
    let status = run.bot.terminate();
    assert!(status.success(), "exit status {status}");
}
