//! The rows the generator produces, one struct per raw table, with exactly the contract
//! columns of `sql/extension/raw_tables.sql` that an ingester fills in. `ingest_id`,
//! `received_at`, generated columns and columns whose default is right (`source` of most
//! tables) are left to the database.

use crate::time::Ts;

/// A raw table the generator can fill (`raw_et_stats_files` is filled by `load-et-files` from
/// real files instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    Guilds,
    Channels,
    MemberEvents,
    ScheduledEvents,
    VoiceEvents,
    VoiceSnapshots,
    Heartbeats,
    Messages,
    PointTransactions,
    ServerPolls,
    ServerPlayers,
}

impl Table {
    /// Every generated table, in a sensible load order (dimensions first).
    pub const ALL: [Table; 11] = [
        Table::Guilds,
        Table::Channels,
        Table::MemberEvents,
        Table::ScheduledEvents,
        Table::VoiceEvents,
        Table::VoiceSnapshots,
        Table::Heartbeats,
        Table::Messages,
        Table::PointTransactions,
        Table::ServerPolls,
        Table::ServerPlayers,
    ];

    /// Table name in schema `guildstats`.
    pub fn name(self) -> &'static str {
        match self {
            Table::Guilds => "raw_guilds",
            Table::Channels => "raw_channels",
            Table::MemberEvents => "raw_member_events",
            Table::ScheduledEvents => "raw_scheduled_events",
            Table::VoiceEvents => "raw_voice_events",
            Table::VoiceSnapshots => "raw_voice_snapshots",
            Table::Heartbeats => "raw_heartbeats",
            Table::Messages => "raw_messages",
            Table::PointTransactions => "raw_point_transactions",
            Table::ServerPolls => "raw_server_polls",
            Table::ServerPlayers => "raw_server_players",
        }
    }

    /// Looks a table up by name, with or without the `raw_` prefix.
    pub fn from_name(name: &str) -> Option<Table> {
        let name = name.trim();
        Table::ALL
            .into_iter()
            .find(|t| t.name() == name || t.name().strip_prefix("raw_") == Some(name))
    }

    /// The columns written, in COPY order.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Table::Guilds => &[
                "guild_id",
                "observed_at",
                "name",
                "afk_channel_id",
                "afk_timeout_s",
                "member_count",
            ],
            Table::Channels => &[
                "guild_id",
                "channel_id",
                "observed_at",
                "name",
                "kind",
                "parent_id",
                "is_deleted",
            ],
            Table::MemberEvents => &[
                "guild_id",
                "user_id",
                "event_type",
                "event_ts",
                "display_name",
                "is_bot",
            ],
            Table::ScheduledEvents => &[
                "guild_id",
                "event_id",
                "observed_at",
                "name",
                "channel_id",
                "entity_type",
                "status",
                "scheduled_start",
                "scheduled_end",
                "creator_id",
                "user_count",
            ],
            Table::VoiceEvents => &[
                "guild_id",
                "user_id",
                "channel_id",
                "event_ts",
                "self_mute",
                "self_deaf",
                "server_mute",
                "server_deaf",
                "self_stream",
                "self_video",
            ],
            Table::VoiceSnapshots => &["guild_id", "taken_at", "voice_states"],
            Table::Heartbeats => &["source", "guild_id", "beat_at"],
            Table::Messages => &[
                "guild_id",
                "channel_id",
                "user_id",
                "message_id",
                "sent_at",
                "char_count",
                "word_count",
                "attachment_count",
                "mention_count",
                "is_reply",
                "is_bot",
                "thread_id",
            ],
            Table::PointTransactions => {
                &["guild_id", "user_id", "amount", "reason", "tx_ts", "tx_key"]
            }
            Table::ServerPolls => &[
                "server",
                "polled_at",
                "ok",
                "protocol",
                "error",
                "server_name",
                "map",
                "game",
                "player_count",
                "max_players",
                "bot_count",
                "latency_ms",
            ],
            Table::ServerPlayers => &[
                "server",
                "polled_at",
                "player_index",
                "name",
                "score",
                "connected_seconds",
                "ping_ms",
            ],
        }
    }
}

/// One observed state of the guild (`raw_guilds`).
#[derive(Clone, Debug, PartialEq)]
pub struct GuildRow {
    pub guild_id: i64,
    pub observed_at: Ts,
    pub name: String,
    pub afk_channel_id: Option<i64>,
    pub afk_timeout_s: Option<i32>,
    pub member_count: Option<i32>,
}

/// One observed state of a channel (`raw_channels`).
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelRow {
    pub guild_id: i64,
    pub channel_id: i64,
    pub observed_at: Ts,
    pub name: String,
    pub kind: &'static str,
    pub parent_id: Option<i64>,
    pub is_deleted: bool,
}

/// A membership change (`raw_member_events`): join, leave, ban or update.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberEventRow {
    pub guild_id: i64,
    pub user_id: i64,
    pub event_type: &'static str,
    pub event_ts: Ts,
    pub display_name: Option<String>,
    pub is_bot: bool,
}

/// One observed state of a scheduled event (`raw_scheduled_events`).
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduledEventRow {
    pub guild_id: i64,
    pub event_id: i64,
    pub observed_at: Ts,
    pub name: String,
    pub channel_id: Option<i64>,
    pub entity_type: &'static str,
    pub status: &'static str,
    pub scheduled_start: Option<Ts>,
    pub scheduled_end: Option<Ts>,
    pub creator_id: Option<i64>,
    pub user_count: Option<i32>,
}

/// Voice flags carried by every voice state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VoiceFlags {
    pub self_mute: bool,
    pub self_deaf: bool,
    pub server_mute: bool,
    pub server_deaf: bool,
    pub self_stream: bool,
    pub self_video: bool,
}

/// "From `event_ts` on, `user_id` is in `channel_id`" (`raw_voice_events`); `None` = left voice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VoiceEventRow {
    pub guild_id: i64,
    pub user_id: i64,
    pub channel_id: Option<i64>,
    pub event_ts: Ts,
    pub flags: VoiceFlags,
}

/// Who is in voice at `taken_at` (`raw_voice_snapshots`); `voice_states` is a JSON array text.
#[derive(Clone, Debug, PartialEq)]
pub struct VoiceSnapshotRow {
    pub guild_id: i64,
    pub taken_at: Ts,
    pub voice_states: String,
}

/// Ingester liveness (`raw_heartbeats`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeartbeatRow {
    pub source: &'static str,
    pub guild_id: Option<i64>,
    pub beat_at: Ts,
}

/// Message metadata (`raw_messages`); there is no content, by design.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MessageRow {
    pub guild_id: i64,
    pub channel_id: i64,
    pub user_id: i64,
    pub message_id: i64,
    pub sent_at: Ts,
    pub char_count: i32,
    pub word_count: i32,
    pub attachment_count: i32,
    pub mention_count: i32,
    pub is_reply: bool,
    pub is_bot: bool,
    pub thread_id: Option<i64>,
}

/// A ledger line of the community currency (`raw_point_transactions`).
#[derive(Clone, Debug, PartialEq)]
pub struct PointTxRow {
    pub guild_id: i64,
    pub user_id: i64,
    pub amount: i64,
    pub reason: &'static str,
    pub tx_ts: Ts,
    pub tx_key: String,
}

/// One poll of a game server (`raw_server_polls`), failed ones included.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerPollRow {
    pub server: String,
    pub polled_at: Ts,
    pub ok: bool,
    pub protocol: &'static str,
    pub error: Option<&'static str>,
    pub server_name: Option<String>,
    pub map: Option<&'static str>,
    pub game: Option<&'static str>,
    pub player_count: Option<i32>,
    pub max_players: Option<i32>,
    pub bot_count: Option<i32>,
    pub latency_ms: Option<f32>,
}

/// One player listed by a successful poll (`raw_server_players`).
#[derive(Clone, Debug, PartialEq)]
pub struct ServerPlayerRow {
    pub server: String,
    pub polled_at: Ts,
    pub player_index: i32,
    pub name: String,
    pub score: Option<i32>,
    pub connected_seconds: Option<f32>,
    pub ping_ms: Option<i32>,
}

/// A borrowed row of any table, as handed to a [`crate::Sink`].
#[derive(Clone, Copy, Debug)]
pub enum Row<'a> {
    Guild(&'a GuildRow),
    Channel(&'a ChannelRow),
    MemberEvent(&'a MemberEventRow),
    ScheduledEvent(&'a ScheduledEventRow),
    VoiceEvent(&'a VoiceEventRow),
    VoiceSnapshot(&'a VoiceSnapshotRow),
    Heartbeat(&'a HeartbeatRow),
    Message(&'a MessageRow),
    PointTransaction(&'a PointTxRow),
    ServerPoll(&'a ServerPollRow),
    ServerPlayer(&'a ServerPlayerRow),
}

impl Row<'_> {
    /// The table this row belongs to.
    pub fn table(&self) -> Table {
        match self {
            Row::Guild(_) => Table::Guilds,
            Row::Channel(_) => Table::Channels,
            Row::MemberEvent(_) => Table::MemberEvents,
            Row::ScheduledEvent(_) => Table::ScheduledEvents,
            Row::VoiceEvent(_) => Table::VoiceEvents,
            Row::VoiceSnapshot(_) => Table::VoiceSnapshots,
            Row::Heartbeat(_) => Table::Heartbeats,
            Row::Message(_) => Table::Messages,
            Row::PointTransaction(_) => Table::PointTransactions,
            Row::ServerPoll(_) => Table::ServerPolls,
            Row::ServerPlayer(_) => Table::ServerPlayers,
        }
    }

    /// When the fact happened: the time a loader can split a community's history on (what had
    /// arrived by some instant, and what came after).
    pub fn time(&self) -> Ts {
        match self {
            Row::Guild(r) => r.observed_at,
            Row::Channel(r) => r.observed_at,
            Row::MemberEvent(r) => r.event_ts,
            Row::ScheduledEvent(r) => r.observed_at,
            Row::VoiceEvent(r) => r.event_ts,
            Row::VoiceSnapshot(r) => r.taken_at,
            Row::Heartbeat(r) => r.beat_at,
            Row::Message(r) => r.sent_at,
            Row::PointTransaction(r) => r.tx_ts,
            Row::ServerPoll(r) => r.polled_at,
            Row::ServerPlayer(r) => r.polled_at,
        }
    }
}
