//! The serenity event handler: stamps each event's receipt time first thing (serenity runs
//! handlers as separate tasks; on the ingester's single-threaded runtime they start in arrival
//! order, so the stamps follow the gateway's order), fills in from the cache what a payload
//! lacks, maps with `rows`, and hands the rows to the sink.

use crate::clock::ReceiptClock;
use crate::commands::Commands;
use crate::heartbeats::Heartbeats;
use crate::opt_out::OptOutList;
use crate::rows::{self, guild, members, messages, scheduled, voice};
use guildstats_ingest::sink::{SendError, SinkHandle};
use guildstats_ingest::Row;
use serenity::async_trait;
use serenity::gateway::{ConnectionStage, ShardStageUpdateEvent};
use serenity::model::prelude::*;
use serenity::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::mpsc;

pub struct Handler {
    sink: SinkHandle,
    clock: ReceiptClock,
    opt_out: Arc<OptOutList>,
    /// Empty: every guild.
    guilds: HashSet<u64>,
    pub beats: Heartbeats,
    /// Reports what makes going on pointless (rows can no longer be made durable).
    fatal: mpsc::UnboundedSender<String>,
    /// Slash commands, when `--commands` is on.
    commands: Option<Arc<Commands>>,
}

impl Handler {
    pub fn new(
        sink: SinkHandle,
        opt_out: Arc<OptOutList>,
        guilds: impl IntoIterator<Item = u64>,
        beats: Heartbeats,
        fatal: mpsc::UnboundedSender<String>,
    ) -> Handler {
        Handler {
            sink,
            clock: ReceiptClock::new(),
            opt_out,
            guilds: guilds.into_iter().collect(),
            beats,
            fatal,
            commands: None,
        }
    }

    pub fn with_commands(self, commands: Option<Arc<Commands>>) -> Handler {
        Handler { commands, ..self }
    }

    fn wanted(&self, guild: Option<GuildId>) -> bool {
        guild.is_some_and(|g| self.guilds.is_empty() || self.guilds.contains(&g.get()))
    }

    async fn write(&self, event: &'static str, rows: Vec<Row>) {
        if rows.is_empty() {
            return;
        }
        let keys: Vec<String> = if tracing::enabled!(tracing::Level::DEBUG) {
            rows.iter().map(rows::row_key).collect()
        } else {
            Vec::new()
        };
        match self.sink.send_all(rows).await {
            Ok(()) => {
                for key in keys {
                    tracing::debug!(event, row = %key, "spooled");
                }
            }
            // A row the sink refuses is a mapping bug: say so and go on with the next event.
            Err(e @ SendError::Invalid(_)) => {
                tracing::error!(event, error = %e, "rows not recorded");
            }
            // No spool (disk full, sink gone): events would be lost from here on, so stop and let
            // the supervisor restart the bot; the reconnect snapshot then covers the gap.
            Err(e) => {
                tracing::error!(event, error = %e, "rows not recorded");
                let _ = self.fatal.send(format!("cannot record {event} rows: {e}"));
            }
        }
    }

    /// The bot flag of a user in a guild: the payload's, else the cache's, else not a bot.
    fn cached_is_bot(ctx: &Context, guild: GuildId, user: UserId) -> Option<bool> {
        if let Some(g) = ctx.cache.guild(guild) {
            if let Some(m) = g.members.get(&user) {
                return Some(m.user.bot);
            }
        }
        ctx.cache.user(user).map(|u| u.bot)
    }

    /// The parent channel when `channel` is a thread the cache knows.
    fn thread_parent(ctx: &Context, guild: GuildId, channel: ChannelId) -> Option<ChannelId> {
        let g = ctx.cache.guild(guild)?;
        if let Some(thread) = g.threads.iter().find(|t| t.id == channel) {
            return thread.parent_id;
        }
        g.channels
            .get(&channel)
            .filter(|c| guild::is_thread(c.kind))
            .and_then(|c| c.parent_id)
    }
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        tracing::info!(
            guilds = ready.guilds.len(),
            "identified with the gateway; waiting for the guilds"
        );
    }

    async fn shard_stage_update(&self, _ctx: Context, event: ShardStageUpdateEvent) {
        tracing::info!(stage = %event.new, "gateway connection");
        if event.new == ConnectionStage::Connected {
            self.beats.connected();
        } else {
            self.beats.disconnected();
        }
    }

    async fn guild_create(&self, ctx: Context, g: Guild, _is_new: Option<bool>) {
        let at = self.clock.stamp();
        if !self.wanted(Some(g.id)) {
            return;
        }
        if let Some(commands) = &self.commands {
            // On its own task: registering must not delay the snapshot's rows.
            let (commands, ctx, guild) = (commands.clone(), ctx.clone(), g.id);
            tokio::spawn(async move { commands.register(&ctx, guild).await });
        }
        tracing::info!(guild = %g.id, in_voice = g.voice_states.len(), "guild available; snapshot taken");
        let rows = guild::guild_create_rows(&g, &at, &self.opt_out.current());
        self.write("guild_create", rows).await;
        self.beats.guild_available(g.id);
    }

    async fn guild_delete(
        &self,
        _ctx: Context,
        incomplete: UnavailableGuild,
        _full: Option<Guild>,
    ) {
        tracing::info!(guild = %incomplete.id, unavailable = incomplete.unavailable, "guild gone");
        self.beats.guild_gone(incomplete.id);
    }

    async fn guild_update(&self, _ctx: Context, _old: Option<Guild>, new: PartialGuild) {
        let at = self.clock.stamp();
        if self.wanted(Some(new.id)) {
            self.write("guild_update", guild::guild_update_rows(&new, &at))
                .await;
        }
    }

    async fn channel_create(&self, _ctx: Context, channel: GuildChannel) {
        let at = self.clock.stamp();
        self.channel_changed("channel_create", &channel, false, &at)
            .await;
    }

    async fn category_create(&self, _ctx: Context, category: GuildChannel) {
        let at = self.clock.stamp();
        self.channel_changed("category_create", &category, false, &at)
            .await;
    }

    async fn channel_update(&self, _ctx: Context, _old: Option<GuildChannel>, new: GuildChannel) {
        let at = self.clock.stamp();
        self.channel_changed("channel_update", &new, false, &at)
            .await;
    }

    async fn channel_delete(&self, _ctx: Context, channel: GuildChannel, _m: Option<Vec<Message>>) {
        let at = self.clock.stamp();
        self.channel_changed("channel_delete", &channel, true, &at)
            .await;
    }

    async fn category_delete(&self, _ctx: Context, category: GuildChannel) {
        let at = self.clock.stamp();
        self.channel_changed("category_delete", &category, true, &at)
            .await;
    }

    async fn thread_create(&self, _ctx: Context, thread: GuildChannel) {
        let at = self.clock.stamp();
        self.channel_changed("thread_create", &thread, false, &at)
            .await;
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let Some(commands) = &self.commands else {
            return;
        };
        match interaction {
            Interaction::Command(command) if self.wanted(command.guild_id) => {
                tokio::spawn(commands.clone().handle(ctx, command));
            }
            // A pick from the /link menu.
            Interaction::Component(pick) if self.wanted(pick.guild_id) => {
                tokio::spawn(commands.clone().handle_pick(ctx, pick));
            }
            _ => {}
        }
    }

    async fn voice_state_update(&self, ctx: Context, old: Option<VoiceState>, new: VoiceState) {
        let at = self.clock.stamp();
        if !self.wanted(new.guild_id) {
            return;
        }
        let is_bot = voice::payload_says_bot(&new)
            .or_else(|| {
                new.guild_id
                    .and_then(|g| Self::cached_is_bot(&ctx, g, new.user_id))
            })
            .unwrap_or(false);
        let rows =
            voice::voice_event_rows(old.as_ref(), &new, is_bot, &at, &self.opt_out.current());
        self.write("voice_state_update", rows).await;
    }

    async fn message(&self, ctx: Context, message: Message) {
        if !self.wanted(message.guild_id) {
            return;
        }
        let parent = message
            .guild_id
            .and_then(|g| Self::thread_parent(&ctx, g, message.channel_id));
        let rows = messages::message_rows(&message, parent, &self.opt_out.current());
        self.write("message", rows).await;
    }

    async fn guild_member_addition(&self, _ctx: Context, member: Member) {
        let at = self.clock.stamp();
        if self.wanted(Some(member.guild_id)) {
            let rows = members::member_join_rows(&member, &at, &self.opt_out.current());
            self.write("guild_member_add", rows).await;
        }
    }

    async fn guild_member_removal(
        &self,
        _ctx: Context,
        guild_id: GuildId,
        user: User,
        _m: Option<Member>,
    ) {
        let at = self.clock.stamp();
        self.member_changed(guild_id, &user, members::MemberChange::Leave, &at)
            .await;
    }

    async fn guild_ban_addition(&self, _ctx: Context, guild_id: GuildId, banned_user: User) {
        let at = self.clock.stamp();
        self.member_changed(guild_id, &banned_user, members::MemberChange::Ban, &at)
            .await;
    }

    async fn guild_ban_removal(&self, _ctx: Context, guild_id: GuildId, unbanned_user: User) {
        let at = self.clock.stamp();
        self.member_changed(guild_id, &unbanned_user, members::MemberChange::Unban, &at)
            .await;
    }

    async fn guild_scheduled_event_create(&self, _ctx: Context, event: ScheduledEvent) {
        let at = self.clock.stamp();
        self.event_changed("scheduled_event_create", &event, false, &at)
            .await;
    }

    async fn guild_scheduled_event_update(&self, _ctx: Context, event: ScheduledEvent) {
        let at = self.clock.stamp();
        self.event_changed("scheduled_event_update", &event, false, &at)
            .await;
    }

    async fn guild_scheduled_event_delete(&self, _ctx: Context, event: ScheduledEvent) {
        let at = self.clock.stamp();
        self.event_changed("scheduled_event_delete", &event, true, &at)
            .await;
    }

    async fn guild_scheduled_event_user_add(
        &self,
        _ctx: Context,
        s: GuildScheduledEventUserAddEvent,
    ) {
        self.interest_changed(
            "scheduled_event_user_add",
            (s.guild_id, s.scheduled_event_id, s.user_id),
            scheduled::Interest::Add,
        )
        .await;
    }

    async fn guild_scheduled_event_user_remove(
        &self,
        _ctx: Context,
        s: GuildScheduledEventUserRemoveEvent,
    ) {
        self.interest_changed(
            "scheduled_event_user_remove",
            (s.guild_id, s.scheduled_event_id, s.user_id),
            scheduled::Interest::Remove,
        )
        .await;
    }
}

impl Handler {
    async fn channel_changed(
        &self,
        event: &'static str,
        c: &GuildChannel,
        deleted: bool,
        at: &str,
    ) {
        if self.wanted(Some(c.guild_id)) {
            self.write(event, guild::channel_rows(c, deleted, at)).await;
        }
    }

    async fn member_changed(
        &self,
        guild_id: GuildId,
        user: &User,
        change: members::MemberChange,
        at: &str,
    ) {
        if self.wanted(Some(guild_id)) {
            let rows =
                members::member_change_rows(guild_id, user, change, at, &self.opt_out.current());
            self.write(change.as_str(), rows).await;
        }
    }

    /// A user added to or removed from a scheduled event's interested list.
    async fn interest_changed(
        &self,
        what: &'static str,
        (guild_id, event_id, user_id): (GuildId, ScheduledEventId, UserId),
        interest: scheduled::Interest,
    ) {
        let at = self.clock.stamp();
        if self.wanted(Some(guild_id)) {
            let rows = scheduled::interest_rows(
                guild_id,
                event_id,
                user_id,
                interest,
                &at,
                &self.opt_out.current(),
            );
            self.write(what, rows).await;
        }
    }

    async fn event_changed(&self, what: &'static str, e: &ScheduledEvent, deleted: bool, at: &str) {
        if self.wanted(Some(e.guild_id)) {
            let rows = scheduled::scheduled_event_rows(e, deleted, at, &self.opt_out.current());
            self.write(what, rows).await;
        }
    }
}
