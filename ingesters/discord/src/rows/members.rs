//! Membership changes to `raw_member_events`: join, leave, ban, unban.

use super::sf;
use crate::opt_out::OptOut;
use guildstats_ingest::raw_tables::RAW_MEMBER_EVENTS;
use guildstats_ingest::Row;
use serenity::model::guild::Member;
use serenity::model::id::GuildId;
use serenity::model::user::User;

/// GUILD_MEMBER_ADD. The time is Discord's `joined_at`, so a join seen twice is one row; the
/// receipt time only when Discord gives none.
pub fn member_join_rows(member: &Member, received_at: &str, opt_out: &OptOut) -> Vec<Row> {
    let at = member
        .joined_at
        .map_or_else(|| received_at.to_string(), |t| t.to_string());
    let name = member
        .nick
        .as_deref()
        .or(member.user.global_name.as_deref())
        .unwrap_or(&member.user.name);
    member_row(
        member.guild_id,
        &member.user,
        "join",
        &at,
        Some(name),
        opt_out,
    )
}

/// GUILD_MEMBER_REMOVE (left or kicked), GUILD_BAN_ADD and GUILD_BAN_REMOVE: Discord gives no
/// time, so the receipt time.
pub fn member_change_rows(
    guild_id: GuildId,
    user: &User,
    event_type: MemberChange,
    received_at: &str,
    opt_out: &OptOut,
) -> Vec<Row> {
    let name = user.global_name.as_deref().unwrap_or(&user.name);
    member_row(
        guild_id,
        user,
        event_type.as_str(),
        received_at,
        Some(name),
        opt_out,
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberChange {
    Leave,
    Ban,
    Unban,
}

impl MemberChange {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberChange::Leave => "leave",
            MemberChange::Ban => "ban",
            MemberChange::Unban => "unban",
        }
    }
}

fn member_row(
    guild_id: GuildId,
    user: &User,
    event_type: &str,
    at: &str,
    display_name: Option<&str>,
    opt_out: &OptOut,
) -> Vec<Row> {
    if opt_out.contains(guild_id, user.id) {
        return Vec::new();
    }
    let row = Row::new(&RAW_MEMBER_EVENTS)
        .set("guild_id", sf(guild_id))
        .set("user_id", sf(user.id))
        .set("event_type", event_type)
        .set("event_ts", at)
        .set("is_bot", user.bot);
    vec![match display_name {
        Some(name) => row.set("display_name", name),
        None => row,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::fixtures::{member, parse, user};
    use serde_json::json;

    const AT: &str = "2026-11-01T20:00:00.000000Z";

    #[test]
    fn a_join_uses_discords_join_time_so_a_replay_is_the_same_row() {
        let mut p = member("45", false);
        p["nick"] = json!("Rookie");
        let m: Member = parse(p);
        let rows = member_join_rows(&m, AT, &OptOut::default());
        let row = &rows[0].values;
        assert_eq!(row["event_type"], json!("join"));
        assert_eq!(row["event_ts"], json!("2024-01-02T03:04:05Z"));
        assert_eq!(row["display_name"], json!("Rookie"));
        assert_eq!(row["is_bot"], json!(false));
        assert_eq!(
            rows,
            member_join_rows(&m, "2026-11-02T00:00:00Z", &OptOut::default())
        );
    }

    #[test]
    fn a_join_without_join_time_uses_the_receipt_time() {
        let mut p = member("45", true);
        p.as_object_mut().unwrap().remove("joined_at");
        let m: Member = parse(p);
        let row = &member_join_rows(&m, AT, &OptOut::default())[0].values;
        assert_eq!(row["event_ts"], json!(AT));
        assert_eq!(row["is_bot"], json!(true));
        assert_eq!(row["display_name"], json!("u45"));
    }

    #[test]
    fn leave_ban_and_unban() {
        let u: User = parse(user("45", false));
        for (change, name) in [
            (MemberChange::Leave, "leave"),
            (MemberChange::Ban, "ban"),
            (MemberChange::Unban, "unban"),
        ] {
            let rows = member_change_rows(GuildId::new(100), &u, change, AT, &OptOut::default());
            assert_eq!(rows[0].values["event_type"], json!(name));
            assert_eq!(rows[0].values["event_ts"], json!(AT));
            assert_eq!(rows[0].values["guild_id"], json!(100));
        }
    }

    #[test]
    fn opted_out_members_are_not_recorded() {
        let m: Member = parse(member("46", false));
        assert!(member_join_rows(&m, AT, &OptOut::new([46])).is_empty());
        let u: User = parse(user("46", false));
        let rows = member_change_rows(
            GuildId::new(100),
            &u,
            MemberChange::Ban,
            AT,
            &OptOut::new([46]),
        );
        assert!(rows.is_empty());
    }
}
