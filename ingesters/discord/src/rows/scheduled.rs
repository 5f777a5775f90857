//! Scheduled events to `raw_scheduled_events` (every observed state) and interest in them to
//! `raw_scheduled_event_users`.

use super::{opt_sf, sf};
use crate::opt_out::OptOut;
use guildstats_ingest::raw_tables::{RAW_SCHEDULED_EVENTS, RAW_SCHEDULED_EVENT_USERS};
use guildstats_ingest::Row;
use serde_json::Value;
use serenity::model::guild::{ScheduledEvent, ScheduledEventStatus, ScheduledEventType};
use serenity::model::id::{GuildId, ScheduledEventId, UserId};

/// GUILD_SCHEDULED_EVENT_CREATE / _UPDATE (`deleted` false) and _DELETE (true). A deleted event
/// will not happen (or stops): it is recorded as canceled, which also marks the end of one that
/// was running. An opted-out creator is left out of the row.
pub fn scheduled_event_rows(
    event: &ScheduledEvent,
    deleted: bool,
    received_at: &str,
    opt_out: &OptOut,
) -> Vec<Row> {
    let status = if deleted {
        "canceled"
    } else {
        match event.status {
            ScheduledEventStatus::Scheduled => "scheduled",
            ScheduledEventStatus::Active => "active",
            ScheduledEventStatus::Completed => "completed",
            ScheduledEventStatus::Canceled => "canceled",
            _ => "unknown",
        }
    };
    let entity_type = match event.kind {
        ScheduledEventType::StageInstance => "stage",
        ScheduledEventType::Voice => "voice",
        ScheduledEventType::External => "external",
        _ => "unknown",
    };
    let creator = event
        .creator_id
        .filter(|c| !opt_out.contains(event.guild_id, *c));
    vec![Row::new(&RAW_SCHEDULED_EVENTS)
        .set("guild_id", sf(event.guild_id))
        .set("event_id", sf(event.id))
        .set("observed_at", received_at)
        .set("name", event.name.as_str())
        .set("channel_id", opt_sf(event.channel_id))
        .set("entity_type", entity_type)
        .set("status", status)
        .set("scheduled_start", event.start_time.to_string())
        .set(
            "scheduled_end",
            event
                .end_time
                .map_or(Value::Null, |t| Value::from(t.to_string())),
        )
        .set("creator_id", opt_sf(creator))
        .set(
            "user_count",
            event.user_count.map_or(Value::Null, Value::from),
        )]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    Add,
    Remove,
}

/// GUILD_SCHEDULED_EVENT_USER_ADD / _REMOVE.
pub fn interest_rows(
    guild_id: GuildId,
    event_id: ScheduledEventId,
    user_id: UserId,
    interest: Interest,
    received_at: &str,
    opt_out: &OptOut,
) -> Vec<Row> {
    if opt_out.contains(guild_id, user_id) {
        return Vec::new();
    }
    let action = match interest {
        Interest::Add => "add",
        Interest::Remove => "remove",
    };
    vec![Row::new(&RAW_SCHEDULED_EVENT_USERS)
        .set("guild_id", sf(guild_id))
        .set("event_id", sf(event_id))
        .set("user_id", sf(user_id))
        .set("action", action)
        .set("observed_at", received_at)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::fixtures::parse;
    use guildstats_ingest::raw_tables::ALL;
    use serde_json::json;
    use serenity::model::event::GuildScheduledEventUserAddEvent;

    const AT: &str = "2026-11-01T20:00:00.000000Z";

    fn payload(status: u8) -> Value {
        json!({"id": "700", "guild_id": "100", "channel_id": "500", "creator_id": "42",
            "name": "Scrim night", "description": null,
            "scheduled_start_time": "2026-11-05T19:00:00+00:00", "scheduled_end_time": null,
            "privacy_level": 2, "status": status, "entity_type": 2, "entity_id": null,
            "entity_metadata": null, "user_count": 3, "image": null})
    }

    #[test]
    fn every_state_is_a_row() {
        let event: ScheduledEvent = parse(payload(1));
        let row = &scheduled_event_rows(&event, false, AT, &OptOut::default())[0].values;
        assert_eq!(row["event_id"], json!(700));
        assert_eq!(row["status"], json!("scheduled"));
        assert_eq!(row["entity_type"], json!("voice"));
        assert_eq!(row["channel_id"], json!(500));
        assert_eq!(row["scheduled_start"], json!("2026-11-05T19:00:00Z"));
        assert_eq!(row["scheduled_end"], Value::Null);
        assert_eq!(row["creator_id"], json!(42));
        assert_eq!(row["user_count"], json!(3));
        let active: ScheduledEvent = parse(payload(2));
        let row = &scheduled_event_rows(&active, false, AT, &OptOut::default())[0].values;
        assert_eq!(row["status"], json!("active"));
    }

    #[test]
    fn a_deleted_event_is_canceled() {
        let event: ScheduledEvent = parse(payload(2));
        let row = &scheduled_event_rows(&event, true, AT, &OptOut::default())[0].values;
        assert_eq!(row["status"], json!("canceled"));
    }

    #[test]
    fn an_external_event_without_channel_or_creator() {
        let mut p = payload(1);
        p["entity_type"] = json!(3);
        p["channel_id"] = Value::Null;
        p.as_object_mut().unwrap().remove("creator_id");
        p["entity_metadata"] = json!({"location": "LAN party hall"});
        p["scheduled_end_time"] = json!("2026-11-05T23:00:00+00:00");
        let event: ScheduledEvent = parse(p);
        let row = &scheduled_event_rows(&event, false, AT, &OptOut::default())[0].values;
        assert_eq!(row["entity_type"], json!("external"));
        assert_eq!(row["channel_id"], Value::Null);
        assert_eq!(row["creator_id"], Value::Null);
        assert_eq!(row["scheduled_end"], json!("2026-11-05T23:00:00Z"));
    }

    #[test]
    fn an_opted_out_creator_is_left_out_but_the_event_stays() {
        let event: ScheduledEvent = parse(payload(1));
        let rows = scheduled_event_rows(&event, false, AT, &OptOut::new([42]));
        assert_eq!(rows[0].values["creator_id"], Value::Null);
        assert_eq!(rows[0].values["name"], json!("Scrim night"));
    }

    #[test]
    fn interest_added_and_removed() {
        let add: GuildScheduledEventUserAddEvent = parse(json!(
            {"guild_scheduled_event_id": "700", "user_id": "42", "guild_id": "100"}));
        let rows = interest_rows(
            add.guild_id,
            add.scheduled_event_id,
            add.user_id,
            Interest::Add,
            AT,
            &OptOut::default(),
        );
        assert_eq!(rows[0].values["action"], json!("add"));
        assert_eq!(rows[0].values["event_id"], json!(700));
        assert!(rows[0].validate().is_ok());
        assert!(ALL.iter().any(|t| t.name == rows[0].table));
        let removed = interest_rows(
            add.guild_id,
            add.scheduled_event_id,
            add.user_id,
            Interest::Remove,
            AT,
            &OptOut::new([42]),
        );
        assert!(removed.is_empty());
    }
}
