//! MESSAGE_CREATE to `raw_messages`: who wrote how much, where and when. The text is never kept:
//! only its length in characters and words (what the gateway sends: without the privileged
//! MESSAGE_CONTENT intent, which this bot never asks for, Discord sends the text only of
//! messages that mention the bot, so most counts are 0).

use super::{opt_sf, sf};
use crate::opt_out::OptOut;
use guildstats_ingest::raw_tables::RAW_MESSAGES;
use guildstats_ingest::Row;
use serenity::model::channel::{Message, MessageType};
use serenity::model::id::ChannelId;

/// `thread_parent`: the parent channel when the message was posted in a thread (from the cache;
/// the message itself does not say). Only messages people write are recorded: system notices
/// (joins, pins, boosts, "thread created") are not chat.
pub fn message_rows(
    message: &Message,
    thread_parent: Option<ChannelId>,
    opt_out: &OptOut,
) -> Vec<Row> {
    let Some(guild_id) = message.guild_id else {
        return Vec::new(); // a direct message
    };
    if opt_out.contains(guild_id, message.author.id) || !written_by_someone(message.kind) {
        return Vec::new();
    }
    let (channel_id, thread_id) = match thread_parent {
        Some(parent) => (parent, Some(message.channel_id)),
        None => (message.channel_id, None),
    };
    vec![Row::new(&RAW_MESSAGES)
        .set("guild_id", sf(guild_id))
        .set("channel_id", sf(channel_id))
        .set("user_id", sf(message.author.id))
        .set("message_id", sf(message.id))
        .set("sent_at", message.timestamp.to_string())
        .set("char_count", message.content.chars().count())
        .set("word_count", message.content.split_whitespace().count())
        .set("attachment_count", message.attachments.len())
        .set("mention_count", message.mentions.len())
        .set(
            "is_reply",
            message.kind == MessageType::InlineReply || message.referenced_message.is_some(),
        )
        .set("is_bot", message.author.bot || message.webhook_id.is_some())
        .set("thread_id", opt_sf(thread_id))]
}

fn written_by_someone(kind: MessageType) -> bool {
    matches!(
        kind,
        MessageType::Regular
            | MessageType::InlineReply
            | MessageType::ChatInputCommand
            | MessageType::ContextMenuCommand
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::fixtures::{parse, user};
    use serde_json::{json, Value};

    fn payload(id: &str, author: &str, content: &str) -> Value {
        json!({"id": id, "channel_id": "510", "guild_id": "100", "author": user(author, false),
            "member": {"roles": [], "joined_at": "2024-01-02T03:04:05.000000+00:00", "deaf": false,
                       "mute": false, "flags": 0},
            "content": content, "timestamp": "2026-11-01T20:15:00.123000+00:00",
            "edited_timestamp": null, "tts": false, "mention_everyone": false, "mentions": [],
            "mention_roles": [], "attachments": [], "embeds": [], "pinned": false, "type": 0})
    }

    fn attachment(id: &str) -> Value {
        json!({"id": id, "filename": "demo.png", "size": 10, "url": "https://cdn.invalid/a",
               "proxy_url": "https://cdn.invalid/a"})
    }

    #[test]
    fn metadata_only_never_the_text() {
        let mut p = payload("1300000000000000001", "42", "gg wp, rematch at 9?");
        p["attachments"] = json!([attachment("1"), attachment("2")]);
        p["mentions"] = json!([user("43", false)]);
        let message: Message = parse(p);
        let rows = message_rows(&message, None, &OptOut::default());
        assert_eq!(rows.len(), 1);
        let row = &rows[0].values;
        assert_eq!(row["message_id"], json!(1300000000000000001i64));
        assert_eq!(row["channel_id"], json!(510));
        assert_eq!(row["sent_at"], json!("2026-11-01T20:15:00.123Z"));
        assert_eq!(row["char_count"], json!(20));
        assert_eq!(row["word_count"], json!(5));
        assert_eq!(row["attachment_count"], json!(2));
        assert_eq!(row["mention_count"], json!(1));
        assert_eq!(row["is_reply"], json!(false));
        assert_eq!(row["thread_id"], Value::Null);
        let text = serde_json::to_string(&rows).unwrap();
        assert!(!text.contains("rematch"), "the text leaked: {text}");
        assert!(!row.contains_key("content"));
    }

    #[test]
    fn characters_not_bytes() {
        let message: Message = parse(payload("5", "42", "grüße 🎮"));
        assert_eq!(
            message_rows(&message, None, &OptOut::default())[0].values["char_count"],
            json!(7)
        );
    }

    #[test]
    fn a_reply_and_a_thread_message() {
        let mut p = payload("6", "42", "");
        p["type"] = json!(19);
        p["message_reference"] = json!({"message_id": "5", "channel_id": "520", "guild_id": "100"});
        p["channel_id"] = json!("520");
        let message: Message = parse(p);
        let row = &message_rows(&message, Some(ChannelId::new(510)), &OptOut::default())[0].values;
        assert_eq!(row["is_reply"], json!(true));
        assert_eq!(row["channel_id"], json!(510));
        assert_eq!(row["thread_id"], json!(520));
    }

    #[test]
    fn bots_are_kept_and_flagged() {
        let mut p = payload("7", "77", "now playing");
        p["author"] = user("77", true);
        let message: Message = parse(p);
        let rows = message_rows(&message, None, &OptOut::default());
        assert_eq!(rows[0].values["is_bot"], json!(true));
    }

    #[test]
    fn direct_messages_opted_out_authors_and_system_notices_are_not_recorded() {
        let mut dm = payload("8", "42", "hi");
        dm.as_object_mut().unwrap().remove("guild_id");
        dm.as_object_mut().unwrap().remove("member");
        let dm: Message = parse(dm);
        assert!(message_rows(&dm, None, &OptOut::default()).is_empty());

        let opted: Message = parse(payload("9", "46", "hello"));
        assert!(message_rows(&opted, None, &OptOut::new([46])).is_empty());

        let mut join_notice = payload("10", "45", "");
        join_notice["type"] = json!(7);
        let join_notice: Message = parse(join_notice);
        assert!(message_rows(&join_notice, None, &OptOut::default()).is_empty());
    }
}
