//! Slash commands, behind `--commands`: each command is answered by one SQL function of the
//! extension (`request`), its jsonb answer rendered as a message (`render`) with a chart
//! (`charts`). Commands use their own login and connection and run on their own tasks, so an
//! ingest outage (database for ingest down, spool full) does not stop the answers, and a slow
//! answer never holds up an event the ingesting side is recording.

pub mod charts;
pub mod ratelimit;
pub mod render;
pub mod request;

use guildstats_ingest::sink::{connect, error_text};
use guildstats_ingest::SinkOptions;
use ratelimit::RateLimiter;
use render::Reply;
use request::{Caller, Opt, Param, Request};
use serde_json::Value;
use serenity::all::{
    CommandDataOptionValue, CommandInteraction, CommandOptionType, CommandType,
    ComponentInteraction, ComponentInteractionDataKind, Context, CreateAllowedMentions,
    CreateAttachment, CreateCommand, CreateCommandOption, CreateInteractionResponse,
    CreateInteractionResponseFollowup, CreateInteractionResponseMessage, EditInteractionResponse,
    GuildId, Member, Permissions,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

/// Longest wait for the commands' database: Discord drops a deferred answer after 15 minutes,
/// but a player gives up long before.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// The database gives up a command's query before the bot gives up waiting for it. Dropping the
/// answer's future does not stop the query on the server: one blocked on a lock (a builder's
/// TRUNCATE queued behind a long read, an admin's open transaction) would run on for as long
/// as the lock is held, and every later command, queued behind it on the same connection,
/// would time out too. So the connection gets a statement_timeout a second shorter.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(9);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Commands answered at once; the others wait their turn (bounded memory).
const CONCURRENT: usize = 4;
/// Users whose rate-limit state is remembered.
const TRACKED_USERS: usize = 10_000;

pub const GENERIC_FAULT: &str =
    "Sorry, the stats database could not answer right now. Try again in a minute.";

pub struct CommandSettings {
    pub database: SinkOptions,
    pub burst: u32,
    pub per_minute: u32,
}

pub struct Commands {
    database: SinkOptions,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
    limiter: Mutex<RateLimiter>,
    slots: Semaphore,
}

/// The command definitions registered in each guild.
pub fn definitions() -> Vec<CreateCommand> {
    let text = |name: &str, description: &str, required: bool| {
        CreateCommandOption::new(CommandOptionType::String, name, description)
            .required(required)
            .max_length(request::MAX_TEXT as u16)
    };
    let member = |description: &str| {
        CreateCommandOption::new(CommandOptionType::User, "member", description).required(false)
    };
    let mut metric =
        CreateCommandOption::new(CommandOptionType::String, "metric", "What to rank by")
            .required(true);
    for m in request::METRICS {
        metric = metric.add_string_choice(m, m);
    }
    let mut period =
        CreateCommandOption::new(CommandOptionType::String, "period", "Over which time")
            .required(false);
    for p in request::PERIODS {
        period = period.add_string_choice(p, p);
    }
    // The type is Discord's default, but written out: a registration echo without it (the
    // test stand-in's) does not parse.
    let guild_only = |c: CreateCommand| c.kind(CommandType::ChatInput).dm_permission(false);
    vec![
        guild_only(CreateCommand::new("last_session").description(
            "The last gaming session: maps, results, every player's numbers, MVP and awards",
        )),
        guild_only(
            CreateCommand::new("stats")
                .description("A player's ET totals, recent form, voice hours and ranks")
                .add_option(text(
                    "player",
                    "ET name (colour codes optional) or @mention",
                    false,
                ))
                .add_option(member("A Discord member (through their linked GUID)")),
        ),
        guild_only(
            CreateCommand::new("top")
                .description("The leaderboard of a metric")
                .add_option(metric)
                .add_option(period)
                .add_option(text("map", "Only rounds on this map", false)),
        ),
        guild_only(
            CreateCommand::new("link")
                .description("Claim your ET GUID: give your name, then pick yours from the list")
                .add_option(text("name", "Your ET name", true))
                .add_option(text(
                    "guid",
                    "The GUID, if you know it (else pick from the list)",
                    false,
                ))
                .add_option(member("Admins: confirm the link of this member")),
        ),
        guild_only(
            CreateCommand::new("server")
                .description("The game servers now: map, players, who of them is in voice"),
        ),
        guild_only(
            CreateCommand::new("voice")
                .description("Voice hours this week and month, rank and top partners")
                .add_option(member("Whose voice hours (default: yours)")),
        ),
        guild_only(
            CreateCommand::new("community")
                .description("Admins: DAU/MAU, retention, economy alerts, health problems")
                .default_member_permissions(Permissions::MANAGE_GUILD),
        ),
    ]
}

fn options(interaction: &CommandInteraction) -> Vec<(String, Opt)> {
    interaction
        .data
        .options
        .iter()
        .filter_map(|o| match &o.value {
            CommandDataOptionValue::String(s) => Some((o.name.clone(), Opt::Text(s.clone()))),
            CommandDataOptionValue::User(u) => Some((o.name.clone(), Opt::User(u.get()))),
            _ => None,
        })
        .collect()
}

/// Manage Server or Administrator, from the permissions Discord computed for this interaction
/// (`default_member_permissions` hides /community from others, but a guild's admins can
/// override that, so the bot checks again).
fn is_admin(member: Option<&Member>) -> bool {
    member
        .and_then(|m| m.permissions)
        .is_some_and(|p| p.administrator() || p.manage_guild())
}

/// The refusal the SQL function returned, with the candidates of an ambiguous name.
fn refusal_reply(error: String, answer: &Value) -> Reply {
    let candidates: Vec<String> = answer
        .get("candidates")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .take(10)
        .map(|c| {
            format!(
                "• {} ({} rounds)",
                render::plain(c.get("name").and_then(Value::as_str).unwrap_or("?")),
                render::num(c.get("rounds").unwrap_or(&Value::Null))
            )
        })
        .collect();
    if candidates.is_empty() {
        Reply::private(error)
    } else {
        Reply::private(format!("{error}\n{}", candidates.join("\n")))
    }
}

impl Commands {
    pub fn new(settings: CommandSettings) -> Commands {
        Commands {
            database: settings.database,
            client: tokio::sync::Mutex::new(None),
            limiter: Mutex::new(RateLimiter::new(
                settings.burst,
                settings.per_minute,
                TRACKED_USERS,
            )),
            slots: Semaphore::new(CONCURRENT),
        }
    }

    /// Registers the commands in a guild (a bulk overwrite: idempotent on every reconnect).
    pub async fn register(&self, ctx: &Context, guild: GuildId) {
        match guild.set_commands(&ctx.http, definitions()).await {
            Ok(registered) => {
                tracing::info!(guild = %guild, commands = registered.len(), "slash commands registered")
            }
            Err(e) => {
                tracing::error!(guild = %guild, error = %e, "cannot register the slash commands")
            }
        }
    }

    /// The commands' connection, reopened when it has closed.
    async fn client(&self) -> Result<Arc<Client>, String> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let client = tokio::time::timeout(CONNECT_TIMEOUT, connect(&self.database))
            .await
            .map_err(|_| "connecting timed out".to_string())??;
        let limit = format!("SET statement_timeout = {}", STATEMENT_TIMEOUT.as_millis());
        tokio::time::timeout(CONNECT_TIMEOUT, client.batch_execute(&limit))
            .await
            .map_err(|_| "setting the statement timeout timed out".to_string())?
            .map_err(|e| error_text(&e))?;
        let client = Arc::new(client);
        *slot = Some(client.clone());
        Ok(client)
    }

    async fn ask(&self, request: &Request, guild: u64) -> Result<Value, String> {
        let (sql, params) = request.sql(guild);
        let params: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| match p {
                Param::Int(v) => v as &(dyn ToSql + Sync),
                Param::Text(v) => v as &(dyn ToSql + Sync),
            })
            .collect();
        let client = self.client().await?;
        let row = client.query_one(sql, &params).await.map_err(|e| {
            if client.is_closed() {
                tracing::debug!("the commands' connection closed");
            }
            error_text(&e)
        })?;
        row.try_get::<_, Option<Value>>(0)
            .map_err(|e| error_text(&e))?
            .ok_or_else(|| "the function returned NULL".to_string())
    }

    /// Answers one interaction; runs on its own task.
    pub async fn handle(self: Arc<Self>, ctx: Context, interaction: CommandInteraction) {
        let started = Instant::now();
        let command = interaction.data.name.clone();
        let Some(guild) = interaction.guild_id else {
            return self
                .respond_now(
                    &ctx,
                    &interaction,
                    Reply::private("Commands work in a server only."),
                )
                .await;
        };
        let caller = Caller {
            guild: guild.get(),
            user: interaction.user.id.get(),
            admin: is_admin(interaction.member.as_deref()),
        };
        if let Err(slow_down) = self.admit(caller.user, &command) {
            return self
                .respond_now(&ctx, &interaction, Reply::private(slow_down))
                .await;
        }
        let request = match request::parse(&command, &options(&interaction), caller) {
            Ok(request) => request,
            Err(why) => {
                return self
                    .respond_now(&ctx, &interaction, Reply::private(why))
                    .await
            }
        };
        // Discord wants a first answer within 3 s; the real one follows as an edit.
        let private = matches!(
            request,
            Request::Community | Request::Link { .. } | Request::LinkCandidates { .. }
        );
        let defer = CreateInteractionResponse::Defer(
            CreateInteractionResponseMessage::new().ephemeral(private),
        );
        if let Err(e) = interaction.create_response(&ctx.http, defer).await {
            tracing::warn!(command, error = %e, "cannot defer the interaction");
            return;
        }
        let reply = match self.slots.acquire().await {
            Ok(_permit) => self.answer(&request, caller.guild).await,
            Err(_) => Reply::private(GENERIC_FAULT),
        };
        self.finish(&ctx, &interaction, reply, private).await;
        tracing::info!(
            command,
            interaction = %interaction.id,
            user = caller.user,
            ms = started.elapsed().as_millis() as u64,
            "command answered"
        );
    }

    /// The rate limit, shared by commands and menu picks: the refusal when the user must wait.
    fn admit(&self, user: u64, command: &str) -> Result<(), String> {
        let limited = self
            .limiter
            .lock()
            .map(|mut l| l.try_take(user, Instant::now()))
            .unwrap_or(Ok(()));
        limited.map_err(|wait| {
            tracing::info!(user, command, "rate limited");
            format!(
                "Slow down: you can ask again in {} s.",
                wait.as_secs().max(1)
            )
        })
    }

    /// A GUID picked from the menu of a `/link name:` answer (a MESSAGE_COMPONENT interaction):
    /// claimed through command_link like a typed `/link guid:`; the menu's message is replaced
    /// by the outcome. Runs on its own task.
    pub async fn handle_pick(self: Arc<Self>, ctx: Context, interaction: ComponentInteraction) {
        let started = Instant::now();
        // The bot sends menus only in guilds, from /link.
        let Some(guild) = interaction.guild_id else {
            return;
        };
        let caller = Caller {
            guild: guild.get(),
            user: interaction.user.id.get(),
            admin: is_admin(interaction.member.as_ref()),
        };
        let values: &[String] = match &interaction.data.kind {
            ComponentInteractionDataKind::StringSelect { values } => values,
            _ => &[],
        };
        let request = self
            .admit(caller.user, "link")
            .and_then(|()| request::parse_pick(&interaction.data.custom_id, values, caller));
        let request = match request {
            Ok(request) => request,
            Err(why) => {
                let message = CreateInteractionResponseMessage::new()
                    .ephemeral(true)
                    .allowed_mentions(CreateAllowedMentions::new())
                    .content(why);
                let response = CreateInteractionResponse::Message(message);
                if let Err(e) = interaction.create_response(&ctx.http, response).await {
                    tracing::warn!(error = %e, "cannot answer the menu pick");
                }
                return;
            }
        };
        // Acknowledged at once; the answer then replaces the menu's (private) message.
        if let Err(e) = interaction
            .create_response(&ctx.http, CreateInteractionResponse::Acknowledge)
            .await
        {
            tracing::warn!(error = %e, "cannot acknowledge the menu pick");
            return;
        }
        let reply = match self.slots.acquire().await {
            Ok(_permit) => self.answer(&request, caller.guild).await,
            Err(_) => Reply::private(GENERIC_FAULT),
        };
        let edit = EditInteractionResponse::new()
            .allowed_mentions(CreateAllowedMentions::new())
            .content(reply.content.unwrap_or_default())
            .components(Vec::new());
        if let Err(e) = interaction.edit_response(&ctx.http, edit).await {
            tracing::warn!(error = %e, "cannot answer the menu pick");
        }
        tracing::info!(
            command = "link",
            pick = true,
            interaction = %interaction.id,
            user = caller.user,
            ms = started.elapsed().as_millis() as u64,
            "command answered"
        );
    }

    async fn answer(&self, request: &Request, guild: u64) -> Reply {
        let answer = match tokio::time::timeout(ANSWER_TIMEOUT, self.ask(request, guild)).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                tracing::error!(command = request.name(), error = %e, "command failed in the database");
                return Reply::private(GENERIC_FAULT);
            }
            Err(_) => {
                tracing::error!(command = request.name(), "command timed out");
                return Reply::private(GENERIC_FAULT);
            }
        };
        match request::refusal(&answer) {
            Some(error) => refusal_reply(error, &answer),
            None => render::render(request, &answer).with_answer(answer),
        }
    }

    /// Refusals before the defer: an immediate, private message.
    async fn respond_now(&self, ctx: &Context, interaction: &CommandInteraction, reply: Reply) {
        let mut message = CreateInteractionResponseMessage::new()
            .ephemeral(reply.ephemeral)
            .allowed_mentions(CreateAllowedMentions::new())
            .embeds(reply.embeds)
            .components(reply.components);
        if let Some(content) = reply.content {
            message = message.content(content);
        }
        let response = CreateInteractionResponse::Message(message);
        if let Err(e) = interaction.create_response(&ctx.http, response).await {
            tracing::warn!(command = %interaction.data.name, error = %e, "cannot answer the interaction");
        }
    }

    /// The answer after the defer: the deferred message edited, or, for a private answer to a
    /// public defer, the placeholder deleted and a private follow-up sent.
    async fn finish(
        &self,
        ctx: &Context,
        interaction: &CommandInteraction,
        reply: Reply,
        deferred_private: bool,
    ) {
        let png = match (reply.chart, &reply.answer) {
            (Some(chart), Some(answer)) => charts::png(chart, answer.clone()).await,
            _ => None,
        };
        let result = if reply.ephemeral && !deferred_private {
            let _ = interaction.delete_response(&ctx.http).await;
            let mut followup = CreateInteractionResponseFollowup::new()
                .ephemeral(true)
                .allowed_mentions(CreateAllowedMentions::new())
                .embeds(reply.embeds)
                .components(reply.components);
            if let Some(content) = reply.content {
                followup = followup.content(content);
            }
            interaction
                .create_followup(&ctx.http, followup)
                .await
                .map(|_| ())
        } else {
            let mut edit = EditInteractionResponse::new()
                .allowed_mentions(CreateAllowedMentions::new())
                .embeds(reply.embeds.clone())
                .components(reply.components);
            if let Some(content) = reply.content {
                edit = edit.content(content);
            }
            if let (Some(chart), Some(png)) = (reply.chart, png) {
                // The image goes into the first embed, which references it by file name.
                let mut embeds = reply.embeds;
                if !embeds.is_empty() {
                    let first = embeds.remove(0).attachment(chart.file_name());
                    embeds.insert(0, first);
                }
                edit = edit
                    .embeds(embeds)
                    .new_attachment(CreateAttachment::bytes(png, chart.file_name()));
            }
            interaction.edit_response(&ctx.http, edit).await.map(|_| ())
        };
        if let Err(e) = result {
            tracing::warn!(command = %interaction.data.name, error = %e, "cannot send the answer");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serenity::all::Command;

    /// What Discord answers to the bulk overwrite is our definitions with ids: serenity must
    /// read that back, or registration reports a failure.
    #[test]
    fn the_registered_definitions_read_back_as_commands() {
        let mut sent = serde_json::to_value(definitions()).unwrap();
        for (i, c) in sent.as_array_mut().unwrap().iter_mut().enumerate() {
            c["id"] = serde_json::json!((900 + i).to_string());
            c["application_id"] = serde_json::json!("1");
            c["version"] = serde_json::json!("1");
        }
        let commands: Vec<Command> = serde_json::from_value(sent).expect("commands parse");
        let names: Vec<&str> = commands.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "last_session",
                "stats",
                "top",
                "link",
                "server",
                "voice",
                "community"
            ]
        );
        let community = &commands[6];
        assert_eq!(
            community.default_member_permissions,
            Some(Permissions::MANAGE_GUILD)
        );
    }
}
