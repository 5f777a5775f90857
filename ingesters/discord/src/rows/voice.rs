//! Voice state updates to `raw_voice_events`: "from event_ts on, this user is in channel_id
//! (NULL: not in voice), with these flags". Joins, moves, leaves and flag changes are all that one
//! shape; the builder needs no previous channel, it walks each user's rows in time order.

use super::{opt_sf, sf};
use crate::opt_out::OptOut;
use guildstats_ingest::raw_tables::RAW_VOICE_EVENTS;
use guildstats_ingest::Row;
use serenity::model::voice::VoiceState;

/// What a row records of a voice state. Anything else changing (suppress, request to speak, a
/// new voice session id) is not a change for the raw table.
fn tracked(state: &VoiceState) -> impl PartialEq {
    (
        state.channel_id,
        state.self_mute,
        state.self_deaf,
        state.mute,
        state.deaf,
        state.self_stream.unwrap_or(false),
        state.self_video,
    )
}

/// One update. `old` is serenity's cached previous state (filled by GUILD_CREATE), `None` when
/// the user was not known to be in voice. `is_bot` comes from the payload's member or the cache:
/// bots (music bots, this bot) are not community voice time and are not recorded.
pub fn voice_event_rows(
    old: Option<&VoiceState>,
    new: &VoiceState,
    is_bot: bool,
    received_at: &str,
    opt_out: &OptOut,
) -> Vec<Row> {
    let Some(guild_id) = new.guild_id else {
        return Vec::new(); // a call outside any guild
    };
    if is_bot || opt_out.contains(guild_id, new.user_id) {
        return Vec::new();
    }
    if old.is_some_and(|old| tracked(old) == tracked(new)) {
        return Vec::new();
    }
    // A first-seen user leaving (no cached state, no channel) is still written: the snapshot
    // may list them, and the builder closes their session with it.
    vec![Row::new(&RAW_VOICE_EVENTS)
        .set("guild_id", sf(guild_id))
        .set("user_id", sf(new.user_id))
        .set("channel_id", opt_sf(new.channel_id))
        .set("event_ts", received_at)
        .set("self_mute", new.self_mute)
        .set("self_deaf", new.self_deaf)
        .set("server_mute", new.mute)
        .set("server_deaf", new.deaf)
        .set("self_stream", new.self_stream.unwrap_or(false))
        .set("self_video", new.self_video)]
}

/// The bot flag as far as the payload tells.
pub fn payload_says_bot(state: &VoiceState) -> Option<bool> {
    state.member.as_ref().map(|m| m.user.bot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::fixtures::{member, parse, voice_state};
    use serde_json::{json, Value};

    const AT: &str = "2026-11-01T20:00:00.000000Z";

    fn state(user: &str, channel: Option<&str>) -> VoiceState {
        parse(voice_state(user, channel, true))
    }

    fn one(rows: Vec<Row>) -> serde_json::Map<String, Value> {
        assert_eq!(rows.len(), 1, "{rows:?}");
        rows.into_iter().next().unwrap().values
    }

    #[test]
    fn a_join_is_a_row_with_the_channel_and_every_flag() {
        let mut payload = voice_state("42", Some("500"), true);
        payload["self_mute"] = json!(true);
        payload["deaf"] = json!(true);
        payload["self_stream"] = json!(true);
        let new: VoiceState = parse(payload);
        let row = one(voice_event_rows(None, &new, false, AT, &OptOut::default()));
        assert_eq!(row["guild_id"], json!(100));
        assert_eq!(row["user_id"], json!(42));
        assert_eq!(row["channel_id"], json!(500));
        assert_eq!(row["event_ts"], json!(AT));
        assert_eq!(row["self_mute"], json!(true));
        assert_eq!(row["self_deaf"], json!(false));
        assert_eq!(row["server_mute"], json!(false));
        assert_eq!(row["server_deaf"], json!(true));
        assert_eq!(row["self_stream"], json!(true));
        assert_eq!(row["self_video"], json!(false));
    }

    #[test]
    fn a_move_names_the_new_channel() {
        let old = state("42", Some("500"));
        let new = state("42", Some("600"));
        let row = one(voice_event_rows(
            Some(&old),
            &new,
            false,
            AT,
            &OptOut::default(),
        ));
        assert_eq!(row["channel_id"], json!(600));
    }

    #[test]
    fn a_flag_only_change_is_a_row_in_the_same_channel() {
        let old = state("42", Some("600"));
        let mut payload = voice_state("42", Some("600"), true);
        payload["self_deaf"] = json!(true);
        let new: VoiceState = parse(payload);
        let row = one(voice_event_rows(
            Some(&old),
            &new,
            false,
            AT,
            &OptOut::default(),
        ));
        assert_eq!(
            (&row["channel_id"], &row["self_deaf"]),
            (&json!(600), &json!(true))
        );
    }

    #[test]
    fn a_leave_from_the_afk_channel_has_no_channel() {
        let old = state("43", Some("999"));
        let new = state("43", None);
        let row = one(voice_event_rows(
            Some(&old),
            &new,
            false,
            AT,
            &OptOut::default(),
        ));
        assert_eq!(row["channel_id"], Value::Null);
    }

    #[test]
    fn a_leave_of_a_user_never_seen_is_still_written() {
        let new = state("43", None);
        let row = one(voice_event_rows(None, &new, false, AT, &OptOut::default()));
        assert_eq!(row["channel_id"], Value::Null);
    }

    #[test]
    fn an_update_that_changes_nothing_tracked_is_no_row() {
        let old = state("42", Some("600"));
        let mut payload = voice_state("42", Some("600"), true);
        payload["suppress"] = json!(true);
        payload["session_id"] = json!("another");
        let new: VoiceState = parse(payload);
        assert!(voice_event_rows(Some(&old), &new, false, AT, &OptOut::default()).is_empty());
    }

    #[test]
    fn bots_opted_out_users_and_calls_outside_guilds_are_not_recorded() {
        let mut payload = voice_state("77", Some("500"), true);
        payload["member"] = member("77", true);
        let bot: VoiceState = parse(payload);
        assert_eq!(payload_says_bot(&bot), Some(true));
        assert!(voice_event_rows(None, &bot, true, AT, &OptOut::default()).is_empty());

        let opted = state("46", Some("500"));
        assert!(voice_event_rows(None, &opted, false, AT, &OptOut::new([46])).is_empty());

        let dm_call: VoiceState = parse(voice_state("42", Some("800"), false));
        assert_eq!(dm_call.guild_id, None);
        assert!(voice_event_rows(None, &dm_call, false, AT, &OptOut::default()).is_empty());
    }

    #[test]
    fn a_payload_without_member_says_nothing_about_bots() {
        let mut payload = voice_state("42", Some("500"), true);
        payload.as_object_mut().unwrap().remove("member");
        let new: VoiceState = parse(payload);
        assert_eq!(payload_says_bot(&new), None);
        assert_eq!(
            voice_event_rows(None, &new, false, AT, &OptOut::default()).len(),
            1
        );
    }
}
