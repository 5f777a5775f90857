//! Support for the Discord ingester's end-to-end tests: ../shared/tools/mock_discord.py (an
//! offline REST + gateway stand-in the real serenity client connects to) driven by a scenario of
//! gateway payloads, and the real `guildstats-discord` binary as a child process.

use crate::skip_or_fail;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The guild every scenario uses.
pub const GUILD: &str = "100";

/// The mock, or `None` (after saying why) when the tool or its Python package is missing.
pub fn mock_tool(test: &str) -> Option<PathBuf> {
    let tool = std::env::var("GUILDSTATS_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| crate::repo_root().join("../shared"))
        .join("tools/mock_discord.py");
    if !tool.exists() {
        skip_or_fail(test, &format!("{} is missing", tool.display()));
        return None;
    }
    let has_websockets = Command::new("python3")
        .args(["-c", "import websockets"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_websockets {
        skip_or_fail(
            test,
            "python3 has no websockets package (scripts/test installs it: gs_ensure_python_tools)",
        );
        return None;
    }
    Some(tool)
}

/// The guildstats-discord binary, built once per test process.
pub fn ingester_binary(_test: &str) -> Option<PathBuf> {
    Some(crate::ingest::ingester_binary("guildstats-discord"))
}

/// A scratch directory for one test run (logs, spool, scenario); a failed test leaves it behind
/// for inspection.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gs-e2e-discord-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The running mock; killed when dropped.
pub struct MockDiscord {
    child: Child,
    pub rest_port: u16,
    pub ws_port: u16,
    pub log: PathBuf,
    /// With [`MockDiscord::start_recording`]: every REST request as a JSON line, and the
    /// directory of the attachments it received.
    pub requests: Option<PathBuf>,
    pub files: Option<PathBuf>,
}

impl MockDiscord {
    /// Starts the mock with `{"guild": ..., "script": [[EVENT, payload], ...]}` and waits until it
    /// listens.
    pub fn start(tool: &Path, dir: &Path, name: &str, scenario: &Value) -> MockDiscord {
        MockDiscord::spawn(tool, dir, name, scenario, false)
    }

    /// As [`MockDiscord::start`], logging every REST request (MOCK_DISCORD_LOG) and saving
    /// the attachments (MOCK_DISCORD_FILES), for tests of the bot's answers.
    pub fn start_recording(tool: &Path, dir: &Path, name: &str, scenario: &Value) -> MockDiscord {
        MockDiscord::spawn(tool, dir, name, scenario, true)
    }

    fn spawn(tool: &Path, dir: &Path, name: &str, scenario: &Value, record: bool) -> MockDiscord {
        let scenario_file = dir.join(format!("{name}.json"));
        std::fs::write(&scenario_file, scenario.to_string()).expect("scenario file");
        let log = dir.join(format!("{name}.log"));
        let requests = record.then(|| dir.join(format!("{name}.requests.jsonl")));
        let files = record.then(|| dir.join(format!("{name}.files")));
        let (rest_port, ws_port) = (free_tcp_port(), free_tcp_port());
        let mut command = Command::new("python3");
        if let (Some(requests), Some(files)) = (&requests, &files) {
            command
                .env("MOCK_DISCORD_LOG", requests)
                .env("MOCK_DISCORD_FILES", files);
        }
        let child = command
            .arg(tool)
            .args([rest_port.to_string(), ws_port.to_string()])
            .arg(&scenario_file)
            .stdout(std::fs::File::create(&log).expect("mock log"))
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let mock = MockDiscord {
            child,
            rest_port,
            ws_port,
            log,
            requests,
            files,
        };
        wait_for("the mock to listen", Duration::from_secs(20), || {
            mock.log_text().contains("mock discord rest=")
        });
        mock
    }

    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rest_port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The REST requests logged so far (needs [`MockDiscord::start_recording`]).
    pub fn requests(&self) -> Vec<Value> {
        let path = self.requests.as_ref().expect("a recording mock");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for MockDiscord {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `guildstats-discord`: the process wrapper every ingester test uses.
pub type Ingester = crate::ingest::Ingester;

impl Ingester {
    /// Starts the bot with a token in its environment and debug logs of what it spooled.
    pub fn start_bot(bin: &Path, args: &[String], log: &Path) -> Ingester {
        Ingester::start(
            bin,
            args,
            log,
            &[
                ("GUILDSTATS_DISCORD_TOKEN", "e2e.not.a.real.token"),
                ("RUST_LOG", "guildstats_discord=debug,info"),
            ],
        )
    }
}

/// The arguments every test passes: the mock's REST address, the database, the spool.
pub fn ingester_args(mock: &MockDiscord, dsn: &str, spool: &Path) -> Vec<String> {
    vec![
        "--api-proxy".into(),
        mock.api_url(),
        "--dsn".into(),
        dsn.into(),
        "--spool".into(),
        spool.display().to_string(),
    ]
}

/// Polls `done` until it holds; a liveness bound, not a speed assertion.
pub fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The rows keys the ingester logged as durably spooled (its `spooled` debug lines).
pub fn spooled_rows(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(" spooled "))
        .filter_map(|l| l.split_once(" row=").map(|(_, key)| key.trim().to_string()))
        .collect()
}

// Gateway payloads, as Discord sends them.

pub fn user(id: &str, bot: bool) -> Value {
    json!({"id": id, "username": format!("u{id}"), "discriminator": "0", "global_name": null,
           "avatar": null, "bot": bot})
}

pub fn member(id: &str, bot: bool) -> Value {
    json!({"user": user(id, bot), "nick": null, "roles": [],
           "joined_at": "2024-01-02T03:04:05.000000+00:00", "deaf": false, "mute": false,
           "flags": 0, "guild_id": GUILD})
}

/// A voice state; `in_guild` false gives the GUILD_CREATE list shape (no guild, no member).
pub fn voice(user: &str, channel: Option<&str>, self_mute: bool, in_guild: bool) -> Value {
    let mut state = json!({"channel_id": channel, "user_id": user, "session_id": format!("s{user}"),
        "deaf": false, "mute": false, "self_deaf": false, "self_mute": self_mute,
        "self_video": false, "suppress": false, "request_to_speak_timestamp": null});
    if in_guild {
        state["guild_id"] = json!(GUILD);
        state["member"] = member(user, false);
    }
    state
}

pub fn channel(id: &str, kind: u8, name: &str, parent: Option<&str>) -> Value {
    json!({"id": id, "type": kind, "name": name, "parent_id": parent, "position": 0,
           "permission_overwrites": [], "guild_id": GUILD})
}

pub fn message(id: &str, channel: &str, author: Value, content: &str) -> Value {
    json!({"id": id, "channel_id": channel, "guild_id": GUILD, "author": author,
        "member": {"roles": [], "joined_at": "2024-01-02T03:04:05.000000+00:00", "deaf": false,
                   "mute": false, "flags": 0},
        "content": content, "timestamp": "2026-11-01T20:15:00.000000+00:00",
        "edited_timestamp": null, "tts": false, "mention_everyone": false, "mentions": [],
        "mention_roles": [], "attachments": [], "embeds": [], "pinned": false, "type": 0})
}

pub fn scheduled_event(id: &str, status: u8, creator: &str) -> Value {
    json!({"id": id, "guild_id": GUILD, "channel_id": "500", "creator_id": creator,
        "name": format!("event {id}"), "description": null,
        "scheduled_start_time": "2026-11-05T19:00:00+00:00", "scheduled_end_time": null,
        "privacy_level": 2, "status": status, "entity_type": 2, "entity_id": null,
        "entity_metadata": null, "user_count": 3, "image": null})
}

/// A GUILD_CREATE payload: AFK channel 999.
pub fn guild(
    channels: Vec<Value>,
    threads: Vec<Value>,
    members: Vec<Value>,
    voice_states: Vec<Value>,
) -> Value {
    let mut guild: Value = serde_json::from_str(
        r#"{"id": "100", "name": "ETL", "icon": null, "splash": null, "discovery_splash": null,
        "owner_id": "1", "afk_channel_id": "999", "afk_timeout": 300, "verification_level": 0,
        "default_message_notifications": 0, "explicit_content_filter": 0, "roles": [],
        "emojis": [], "features": [], "mfa_level": 0, "application_id": null,
        "system_channel_id": null, "system_channel_flags": 0, "rules_channel_id": null,
        "vanity_url_code": null, "description": null, "banner": null, "premium_tier": 0,
        "preferred_locale": "en-US", "public_updates_channel_id": null, "nsfw_level": 0,
        "premium_progress_bar_enabled": false, "joined_at": "2024-01-01T00:00:00+00:00",
        "large": false, "member_count": 6, "presences": [], "stage_instances": [],
        "guild_scheduled_events": [], "stickers": []}"#,
    )
    .expect("guild template");
    guild["channels"] = Value::Array(channels);
    guild["threads"] = Value::Array(threads);
    guild["members"] = Value::Array(members);
    guild["voice_states"] = Value::Array(voice_states);
    guild
}

/// An INTERACTION_CREATE payload: `user` runs `/command` in the guild with `options`
/// (`[{"name", "type", "value"}]`); `admin` gives them Manage Server. The token is
/// `token-{id}`, which the answers' webhook paths carry.
pub fn interaction(id: u64, user_id: &str, command: &str, options: Value, admin: bool) -> Value {
    let mut member = member(user_id, false);
    // Manage Server (1 << 5) or nothing, as Discord computes them for the channel.
    member["permissions"] = json!(if admin { "32" } else { "0" });
    json!({"id": id.to_string(), "application_id": "1", "type": 2, "token": format!("token-{id}"),
        "version": 1, "guild_id": GUILD, "channel_id": "510", "member": member,
        "data": {"id": "900", "name": command, "type": 1, "options": options},
        "app_permissions": "0", "locale": "en-US", "guild_locale": "en-US", "entitlements": [],
        "authorizing_integration_owners": {}, "context": 0, "attachment_size_limit": 8388608})
}

pub fn scenario(guild: Value, script: Vec<(&str, Value)>) -> Value {
    json!({"guild": guild,
           "script": script.into_iter().map(|(t, d)| json!([t, d])).collect::<Vec<_>>()})
}
