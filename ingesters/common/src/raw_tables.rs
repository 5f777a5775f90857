//! The raw tables of the guildstats contract: the only tables an ingester writes to.

/// One raw table and the columns an ingester supplies. Every other column has a default in
/// the database (arrival order, receipt time, hashes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawTable {
    pub name: &'static str,
    pub contract_columns: &'static [&'static str],
}

impl RawTable {
    /// The schema-qualified name, as ingesters write it.
    pub fn qualified_name(&self) -> String {
        format!("guildstats.{}", self.name)
    }

    /// `INSERT ... ON CONFLICT DO NOTHING` with one placeholder per contract column: the one
    /// statement shape that makes a replayed row harmless.
    pub fn idempotent_insert_sql(&self) -> String {
        let placeholders: Vec<String> = (1..=self.contract_columns.len())
            .map(|i| format!("${i}"))
            .collect();
        format!(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING",
            self.qualified_name(),
            self.contract_columns.join(", "),
            placeholders.join(", ")
        )
    }
}

pub const RAW_VOICE_EVENTS: RawTable = RawTable {
    name: "raw_voice_events",
    contract_columns: &[
        "guild_id",
        "user_id",
        "channel_id",
        "event_ts",
        "self_mute",
        "self_deaf",
    ],
};
pub const RAW_VOICE_SNAPSHOTS: RawTable = RawTable {
    name: "raw_voice_snapshots",
    contract_columns: &["guild_id", "taken_at", "voice_states"],
};
pub const RAW_HEARTBEATS: RawTable = RawTable {
    name: "raw_heartbeats",
    contract_columns: &["source", "guild_id", "beat_at"],
};
pub const RAW_MESSAGES: RawTable = RawTable {
    name: "raw_messages",
    contract_columns: &[
        "guild_id",
        "channel_id",
        "user_id",
        "message_id",
        "sent_at",
        "char_count",
    ],
};
pub const RAW_MEMBER_EVENTS: RawTable = RawTable {
    name: "raw_member_events",
    contract_columns: &["guild_id", "user_id", "event_type", "event_ts"],
};
pub const RAW_GUILDS: RawTable = RawTable {
    name: "raw_guilds",
    contract_columns: &["guild_id", "observed_at", "name", "afk_channel_id"],
};
pub const RAW_CHANNELS: RawTable = RawTable {
    name: "raw_channels",
    contract_columns: &["guild_id", "channel_id", "observed_at", "name", "kind"],
};
pub const RAW_SCHEDULED_EVENTS: RawTable = RawTable {
    name: "raw_scheduled_events",
    contract_columns: &[
        "guild_id",
        "event_id",
        "observed_at",
        "name",
        "channel_id",
        "status",
    ],
};
pub const RAW_SCHEDULED_EVENT_USERS: RawTable = RawTable {
    name: "raw_scheduled_event_users",
    contract_columns: &["guild_id", "event_id", "user_id", "action", "observed_at"],
};
pub const RAW_SERVER_POLLS: RawTable = RawTable {
    name: "raw_server_polls",
    contract_columns: &["server", "polled_at", "ok"],
};
pub const RAW_SERVER_PLAYERS: RawTable = RawTable {
    name: "raw_server_players",
    contract_columns: &[
        "server",
        "polled_at",
        "player_index",
        "name",
        "score",
        "connected_seconds",
    ],
};
pub const RAW_ET_STATS_FILES: RawTable = RawTable {
    name: "raw_et_stats_files",
    contract_columns: &["file_name", "source", "content", "fetched_at"],
};
pub const RAW_POINT_TRANSACTIONS: RawTable = RawTable {
    name: "raw_point_transactions",
    contract_columns: &["guild_id", "user_id", "amount", "reason", "tx_ts", "tx_key"],
};

/// Every raw table, in the order of the design document.
pub const ALL: [RawTable; 13] = [
    RAW_VOICE_EVENTS,
    RAW_VOICE_SNAPSHOTS,
    RAW_HEARTBEATS,
    RAW_MESSAGES,
    RAW_MEMBER_EVENTS,
    RAW_GUILDS,
    RAW_CHANNELS,
    RAW_SCHEDULED_EVENTS,
    RAW_SCHEDULED_EVENT_USERS,
    RAW_SERVER_POLLS,
    RAW_SERVER_PLAYERS,
    RAW_ET_STATS_FILES,
    RAW_POINT_TRANSACTIONS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_statement_names_every_contract_column_once() {
        let sql = RAW_HEARTBEATS.idempotent_insert_sql();
        assert_eq!(
            sql,
            "INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
        );
    }

    #[test]
    fn table_names_are_unique_and_prefixed() {
        let mut names: Vec<_> = ALL.iter().map(|t| t.name).collect();
        assert!(names.iter().all(|n| n.starts_with("raw_")));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }
}
