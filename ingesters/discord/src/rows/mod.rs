//! Discord models to raw rows: pure functions, one module per kind of fact.
//!
//! Every function takes what serenity parsed plus what the payload itself lacks (the receipt
//! time, facts from the cache) and returns the rows to write, possibly none. Rules that hold
//! everywhere:
//! - nothing outside a guild is recorded (direct messages, DM calls);
//! - an opted-out user's rows are never produced, and their id is left out of other rows;
//! - idempotency keys come from Discord where it gives one (message ids, join times, event ids)
//!   and otherwise from the receipt time stamped once per event.

pub mod guild;
pub mod members;
pub mod messages;
pub mod scheduled;
pub mod voice;

use guildstats_ingest::Row;
use serde_json::Value;

/// A snowflake as the raw tables store it (bigint). Discord ids stay below 2^63 until 2084,
/// so the conversion is exact.
pub(crate) fn sf(id: impl Into<u64>) -> i64 {
    id.into() as i64
}

pub(crate) fn opt_sf(id: Option<impl Into<u64>>) -> Value {
    id.map_or(Value::Null, |id| Value::from(sf(id)))
}

/// The columns that identify a row, for logs: never a name, never content.
pub fn row_key(row: &Row) -> String {
    const KEY_COLUMNS: [&str; 9] = [
        "guild_id",
        "user_id",
        "channel_id",
        "message_id",
        "event_id",
        "event_type",
        "action",
        "status",
        "self_mute",
    ];
    let mut parts = vec![row.table.clone()];
    for column in KEY_COLUMNS {
        if let Some(value) = row.values.get(column) {
            parts.push(format!("{column}={value}"));
        }
    }
    parts.join(" ")
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Payloads as the gateway sends them, parsed by serenity exactly as at run time.

    use serde_json::{json, Value};

    pub fn user(id: &str, bot: bool) -> Value {
        json!({"id": id, "username": format!("u{id}"), "discriminator": "0", "global_name": null,
               "avatar": null, "bot": bot})
    }

    pub fn member(id: &str, bot: bool) -> Value {
        json!({"user": user(id, bot), "nick": null, "roles": [],
               "joined_at": "2024-01-02T03:04:05.000000+00:00", "deaf": false, "mute": false,
               "flags": 0, "guild_id": "100"})
    }

    /// A VOICE_STATE_UPDATE payload (or, without guild, a GUILD_CREATE voice_states entry).
    pub fn voice_state(user: &str, channel: Option<&str>, in_guild: bool) -> Value {
        let mut state = json!({"channel_id": channel, "user_id": user, "session_id": format!("s{user}"),
               "deaf": false, "mute": false, "self_deaf": false, "self_mute": false,
               "self_video": false, "suppress": false, "request_to_speak_timestamp": null});
        if in_guild {
            state["guild_id"] = json!("100");
            state["member"] = member(user, false);
        }
        state
    }

    pub fn parse<T: serde::de::DeserializeOwned>(value: Value) -> T {
        serde_json::from_value(value).expect("serenity parses the payload")
    }
}
