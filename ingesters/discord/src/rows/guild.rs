//! GUILD_CREATE (on every connect and reconnect) to the reconnect snapshot of who is in voice,
//! the guild's state (its AFK channel decides which sessions are AFK) and every channel's state;
//! later guild and channel changes to the same tables.

use super::{opt_sf, sf};
use crate::opt_out::OptOut;
use guildstats_ingest::raw_tables::{RAW_CHANNELS, RAW_GUILDS, RAW_VOICE_SNAPSHOTS};
use guildstats_ingest::Row;
use serde_json::{json, Value};
use serenity::model::channel::{ChannelType, GuildChannel};
use serenity::model::guild::{AfkMetadata, Guild, PartialGuild};
use serenity::model::id::GuildId;

/// Everything a GUILD_CREATE says: one snapshot (always, even an empty one: it says nobody is in
/// voice), one guild row, one row per channel and active thread.
pub fn guild_create_rows(guild: &Guild, received_at: &str, opt_out: &OptOut) -> Vec<Row> {
    let mut rows = vec![
        snapshot_row(guild, received_at, opt_out),
        guild_row(
            guild.id,
            &guild.name,
            guild.afk_metadata.as_ref(),
            Some(guild.member_count),
            received_at,
        ),
    ];
    let mut channels: Vec<&GuildChannel> = guild
        .channels
        .values()
        .chain(guild.threads.iter())
        .collect();
    channels.sort_by_key(|c| c.id);
    rows.extend(
        channels
            .into_iter()
            .map(|c| channel_row(c, false, received_at)),
    );
    rows
}

/// The voice states in the builder's snapshot format, bots and opted-out users left out, in user
/// order so that the same payload always gives the same JSON.
fn snapshot_row(guild: &Guild, received_at: &str, opt_out: &OptOut) -> Row {
    let mut states: Vec<_> = guild
        .voice_states
        .values()
        .filter(|s| s.channel_id.is_some() && !opt_out.contains(guild.id, s.user_id))
        .filter(|s| {
            let bot_in_payload = s.member.as_ref().map(|m| m.user.bot);
            let bot_in_members = guild.members.get(&s.user_id).map(|m| m.user.bot);
            !bot_in_payload.or(bot_in_members).unwrap_or(false)
        })
        .collect();
    states.sort_by_key(|s| s.user_id);
    let entries: Vec<Value> = states
        .into_iter()
        .map(|s| {
            json!({
                "user_id": sf(s.user_id),
                "channel_id": opt_sf(s.channel_id),
                "self_mute": s.self_mute,
                "self_deaf": s.self_deaf,
            })
        })
        .collect();
    Row::new(&RAW_VOICE_SNAPSHOTS)
        .set("guild_id", sf(guild.id))
        .set("taken_at", received_at)
        .set("voice_states", Value::Array(entries))
}

fn guild_row(
    id: GuildId,
    name: &str,
    afk: Option<&AfkMetadata>,
    member_count: Option<u64>,
    received_at: &str,
) -> Row {
    Row::new(&RAW_GUILDS)
        .set("guild_id", sf(id))
        .set("observed_at", received_at)
        .set("name", name)
        .set("afk_channel_id", opt_sf(afk.map(|a| a.afk_channel_id)))
        .set(
            "afk_timeout_s",
            afk.map_or(Value::Null, |a| Value::from(u16::from(a.afk_timeout))),
        )
        .set(
            "member_count",
            member_count.map_or(Value::Null, Value::from),
        )
}

/// GUILD_UPDATE: a new name or AFK channel.
pub fn guild_update_rows(guild: &PartialGuild, received_at: &str) -> Vec<Row> {
    vec![guild_row(
        guild.id,
        &guild.name,
        guild.afk_metadata.as_ref(),
        guild.approximate_member_count,
        received_at,
    )]
}

/// CHANNEL_CREATE / CHANNEL_UPDATE / THREAD_CREATE (deleted false) and CHANNEL_DELETE (true).
pub fn channel_rows(channel: &GuildChannel, deleted: bool, received_at: &str) -> Vec<Row> {
    vec![channel_row(channel, deleted, received_at)]
}

fn channel_row(channel: &GuildChannel, deleted: bool, received_at: &str) -> Row {
    Row::new(&RAW_CHANNELS)
        .set("guild_id", sf(channel.guild_id))
        .set("channel_id", sf(channel.id))
        .set("observed_at", received_at)
        .set("name", channel.name.as_str())
        .set("kind", channel_kind(channel.kind))
        .set("parent_id", opt_sf(channel.parent_id))
        .set("is_deleted", deleted)
}

/// The raw_channels.kind vocabulary.
pub fn channel_kind(kind: ChannelType) -> &'static str {
    match kind {
        ChannelType::Text => "text",
        ChannelType::Voice => "voice",
        ChannelType::Stage => "stage",
        ChannelType::Category => "category",
        ChannelType::Forum => "forum",
        ChannelType::News => "announcement",
        ChannelType::NewsThread | ChannelType::PublicThread | ChannelType::PrivateThread => {
            "thread"
        }
        _ => "other",
    }
}

pub fn is_thread(kind: ChannelType) -> bool {
    channel_kind(kind) == "thread"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::fixtures::{member, parse, voice_state};
    use serde_json::json;

    const AT: &str = "2026-11-01T19:00:00.000000Z";

    /// A GUILD_CREATE payload shaped like the gateway's (and the mock's).
    fn guild_payload(voice_states: Vec<Value>) -> Value {
        let mut guild: Value = serde_json::from_str(
            r#"{"id": "100", "name": "ETL", "icon": null, "splash": null, "discovery_splash": null,
            "owner_id": "1", "afk_channel_id": "999", "afk_timeout": 300, "verification_level": 0,
            "default_message_notifications": 0, "explicit_content_filter": 0, "roles": [],
            "emojis": [], "features": [], "mfa_level": 0, "application_id": null,
            "system_channel_id": null, "system_channel_flags": 0, "rules_channel_id": null,
            "vanity_url_code": null, "description": null, "banner": null, "premium_tier": 0,
            "preferred_locale": "en-US", "public_updates_channel_id": null, "nsfw_level": 0,
            "premium_progress_bar_enabled": false, "joined_at": "2024-01-01T00:00:00+00:00",
            "large": false, "member_count": 5,
            "channels": [
                {"id": "500", "type": 2, "name": "Lobby", "parent_id": "400", "position": 1, "permission_overwrites": []},
                {"id": "400", "type": 4, "name": "Voice", "parent_id": null, "position": 0, "permission_overwrites": []},
                {"id": "510", "type": 0, "name": "general", "parent_id": null, "position": 2, "permission_overwrites": []}
            ],
            "threads": [
                {"id": "520", "type": 11, "name": "scrim plans", "parent_id": "510", "owner_id": "42",
                 "thread_metadata": {"archived": false, "auto_archive_duration": 1440, "locked": false,
                                     "archive_timestamp": "2026-11-01T00:00:00+00:00"}}
            ],
            "presences": [], "stage_instances": [], "guild_scheduled_events": [], "stickers": []}"#,
        )
        .unwrap();
        guild["members"] = json!([member("42", false), member("77", true)]);
        guild["voice_states"] = Value::Array(voice_states);
        guild
    }

    fn snapshot_states(rows: &[Row]) -> Value {
        rows[0].values["voice_states"].clone()
    }

    #[test]
    fn a_guild_create_gives_snapshot_guild_and_channels() {
        let mut muted = voice_state("42", Some("500"), false);
        muted["self_mute"] = json!(true);
        let guild: Guild = parse(guild_payload(vec![
            voice_state("43", Some("999"), false),
            muted,
        ]));
        let rows = guild_create_rows(&guild, AT, &OptOut::default());
        let tables: Vec<&str> = rows.iter().map(|r| r.table.as_str()).collect();
        assert_eq!(
            tables,
            [
                "raw_voice_snapshots",
                "raw_guilds",
                "raw_channels",
                "raw_channels",
                "raw_channels",
                "raw_channels"
            ]
        );
        assert_eq!(rows[0].values["taken_at"], json!(AT));
        assert_eq!(
            snapshot_states(&rows),
            json!([
                {"user_id": 42, "channel_id": 500, "self_mute": true, "self_deaf": false},
                {"user_id": 43, "channel_id": 999, "self_mute": false, "self_deaf": false}
            ])
        );
        let g = &rows[1].values;
        assert_eq!(
            (&g["name"], &g["afk_channel_id"], &g["afk_timeout_s"]),
            (&json!("ETL"), &json!(999), &json!(300))
        );
        let channels: Vec<(Value, Value, Value)> = rows[2..]
            .iter()
            .map(|r| {
                (
                    r.values["channel_id"].clone(),
                    r.values["kind"].clone(),
                    r.values["parent_id"].clone(),
                )
            })
            .collect();
        assert_eq!(
            channels,
            [
                (json!(400), json!("category"), Value::Null),
                (json!(500), json!("voice"), json!(400)),
                (json!(510), json!("text"), Value::Null),
                (json!(520), json!("thread"), json!(510)),
            ]
        );
    }

    #[test]
    fn an_empty_voice_list_is_still_a_snapshot() {
        let guild: Guild = parse(guild_payload(vec![]));
        let rows = guild_create_rows(&guild, AT, &OptOut::default());
        assert_eq!(rows[0].table, "raw_voice_snapshots");
        assert_eq!(snapshot_states(&rows), json!([]));
    }

    #[test]
    fn the_snapshot_leaves_out_bots_and_opted_out_users() {
        // 77 is a bot by the guild's member list (the voice state has no member).
        let guild: Guild = parse(guild_payload(vec![
            voice_state("42", Some("500"), false),
            voice_state("46", Some("500"), false),
            voice_state("77", Some("500"), false),
        ]));
        let rows = guild_create_rows(&guild, AT, &OptOut::new([46]));
        assert_eq!(
            snapshot_states(&rows),
            json!([{"user_id": 42, "channel_id": 500, "self_mute": false, "self_deaf": false}])
        );
    }

    #[test]
    fn a_reconnect_gives_a_new_snapshot_with_its_own_time() {
        let guild: Guild = parse(guild_payload(vec![voice_state("42", Some("500"), false)]));
        let first = guild_create_rows(&guild, AT, &OptOut::default());
        let again = guild_create_rows(&guild, "2026-11-01T21:00:00.000000Z", &OptOut::default());
        assert_eq!(snapshot_states(&first), snapshot_states(&again));
        assert_ne!(first[0].values["taken_at"], again[0].values["taken_at"]);
        // The same event received once is the same rows: a replayed spool changes nothing.
        assert_eq!(first, guild_create_rows(&guild, AT, &OptOut::default()));
    }

    #[test]
    fn a_guild_without_afk_channel_has_none() {
        let mut payload = guild_payload(vec![]);
        payload["afk_channel_id"] = Value::Null;
        let guild: Guild = parse(payload);
        let rows = guild_create_rows(&guild, AT, &OptOut::default());
        assert_eq!(rows[1].values["afk_channel_id"], Value::Null);
    }

    #[test]
    fn a_deleted_channel_is_marked() {
        let channel: GuildChannel = parse(json!({"id": "600", "type": 2, "name": "Games",
            "guild_id": "100", "parent_id": null, "position": 3, "permission_overwrites": []}));
        let row = &channel_rows(&channel, true, AT)[0].values;
        assert_eq!(
            (&row["kind"], &row["is_deleted"]),
            (&json!("voice"), &json!(true))
        );
    }
}
