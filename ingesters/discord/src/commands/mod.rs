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
use serenity::http::{HttpError, StatusCode};
use std::future::Future;
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
/// The pause before the one retry of an answer Discord did not take for a passing reason.
const RETRY_AFTER: Duration = Duration::from_secs(1);

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

/// Why a request carrying an answer returned an error, and so what to do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// Discord took the request (serenity parses a reply only after a success status), but the
    /// message it echoed back did not parse: the answer is delivered. The test stand-in echoes
    /// its first attachment with id 0, which serenity's non-zero ids refuse ("number would be
    /// zero for non-zero type"); the echo is of no use to the bot anyway.
    EchoUnreadable,
    /// Worth one retry: no response (connection, timeout), Discord failing (5xx) or throttling.
    Transient,
    /// Discord refused the answer (4xx: token expired, message invalid) or it could not be built.
    Permanent,
}

fn classify(error: &serenity::Error) -> Failure {
    match error {
        // Serializing our own builders cannot fail: a JSON error is the reply's.
        serenity::Error::Json(_) => Failure::EchoUnreadable,
        serenity::Error::Http(HttpError::UnsuccessfulRequest(response)) => {
            refusal(response.status_code)
        }
        serenity::Error::Http(HttpError::Request(e)) if e.is_decode() => Failure::EchoUnreadable,
        serenity::Error::Http(HttpError::Request(_)) | serenity::Error::Io(_) => Failure::Transient,
        _ => Failure::Permanent,
    }
}

fn refusal(status: StatusCode) -> Failure {
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Failure::Transient
    } else {
        Failure::Permanent
    }
}

/// Sends an answer (`send` makes the request again for the retry): true when Discord has it.
/// An answer is never dropped quietly: a transient failure is retried once, and an answer that
/// does not get through is logged as an error naming the interaction and its user.
async fn deliver<F, Fut>(command: &str, interaction: u64, user: u64, mut send: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = serenity::Result<()>>,
{
    for attempt in 1..=2 {
        let Err(e) = send().await else {
            return true;
        };
        match classify(&e) {
            Failure::EchoUnreadable => {
                tracing::debug!(command, interaction, error = %e, "answer delivered; its echo did not parse");
                return true;
            }
            Failure::Transient if attempt == 1 => {
                tracing::warn!(command, interaction, user, error = %e, "sending the answer failed, retrying once");
                tokio::time::sleep(RETRY_AFTER).await;
            }
            _ => {
                tracing::error!(command, interaction, user, error = %e, "the answer was NOT delivered");
                return false;
            }
        }
    }
    false
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
        let deferred = deliver(&command, interaction.id.get(), caller.user, || {
            interaction.create_response(&ctx.http, defer.clone())
        });
        if !deferred.await {
            return;
        }
        let reply = match self.slots.acquire().await {
            Ok(_permit) => self.answer(&request, caller.guild).await,
            Err(_) => Reply::private(GENERIC_FAULT),
        };
        if !self.finish(&ctx, &interaction, reply, private).await {
            return;
        }
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
                deliver("link", interaction.id.get(), caller.user, || {
                    interaction.create_response(&ctx.http, response.clone())
                })
                .await;
                return;
            }
        };
        // Acknowledged at once; the answer then replaces the menu's (private) message.
        let acknowledged = deliver("link", interaction.id.get(), caller.user, || {
            interaction.create_response(&ctx.http, CreateInteractionResponse::Acknowledge)
        });
        if !acknowledged.await {
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
        let sent = deliver("link", interaction.id.get(), caller.user, || async {
            interaction
                .edit_response(&ctx.http, edit.clone())
                .await
                .map(|_| ())
        });
        if !sent.await {
            return;
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
        let (id, user) = (interaction.id.get(), interaction.user.id.get());
        deliver(&interaction.data.name, id, user, || {
            interaction.create_response(&ctx.http, response.clone())
        })
        .await;
    }

    /// The answer after the defer: the deferred message edited, or, for a private answer to a
    /// public defer, the placeholder deleted and a private follow-up sent. True when delivered.
    async fn finish(
        &self,
        ctx: &Context,
        interaction: &CommandInteraction,
        reply: Reply,
        deferred_private: bool,
    ) -> bool {
        let png = match (reply.chart, &reply.answer) {
            (Some(chart), Some(answer)) => charts::png(chart, answer.clone()).await,
            _ => None,
        };
        let (command, id, user) = (
            interaction.data.name.as_str(),
            interaction.id.get(),
            interaction.user.id.get(),
        );
        if reply.ephemeral && !deferred_private {
            // A placeholder left behind is harmless; the private answer is what matters.
            if let Err(e) = interaction.delete_response(&ctx.http).await {
                tracing::debug!(command, interaction = id, error = %e, "cannot delete the placeholder");
            }
            let mut followup = CreateInteractionResponseFollowup::new()
                .ephemeral(true)
                .allowed_mentions(CreateAllowedMentions::new())
                .embeds(reply.embeds)
                .components(reply.components);
            if let Some(content) = reply.content {
                followup = followup.content(content);
            }
            deliver(command, id, user, || async {
                interaction
                    .create_followup(&ctx.http, followup.clone())
                    .await
                    .map(|_| ())
            })
            .await
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
            // Editing the deferred message again with the same answer is harmless, so a retry
            // after a lost response cannot show the answer twice.
            deliver(command, id, user, || async {
                interaction
                    .edit_response(&ctx.http, edit.clone())
                    .await
                    .map(|_| ())
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serenity::all::{Command, Message};

    fn transient() -> serenity::Error {
        serenity::Error::Io(std::io::Error::other("connection reset"))
    }

    fn permanent() -> serenity::Error {
        serenity::Error::Other("refused")
    }

    /// The test stand-in's reply to an edit with one image: its attachment has id "0", which
    /// serenity refuses to read. The edit was taken (the reply has a success status), so the
    /// answer counts as delivered, and is not sent again.
    #[test]
    fn an_unreadable_echo_of_an_accepted_answer_is_a_delivery() {
        let echo = serde_json::json!({"id": "1400000000000000001", "channel_id": "510", "type": 20,
            "content": "", "embeds": [], "attachments": [{"id": "0", "filename": "last_session.png",
            "size": 1, "url": "http://127.0.0.1/a", "proxy_url": "http://127.0.0.1/a"}],
            "author": {"id": "1", "username": "bot", "discriminator": "0", "avatar": null, "bot": true},
            "timestamp": "2026-11-01T20:15:00.000000+00:00", "edited_timestamp": null, "tts": false,
            "mention_everyone": false, "mentions": [], "mention_roles": [], "pinned": false, "flags": 0});
        let e = serde_json::from_value::<Message>(echo).unwrap_err();
        assert!(e.to_string().contains("zero for non-zero"), "{e}");
        assert_eq!(classify(&serenity::Error::Json(e)), Failure::EchoUnreadable);
    }

    #[test]
    fn discord_failing_is_retried_and_a_refusal_is_not() {
        let status = |code| StatusCode::from_u16(code).unwrap();
        assert_eq!(refusal(status(503)), Failure::Transient);
        assert_eq!(refusal(status(500)), Failure::Transient);
        assert_eq!(refusal(status(429)), Failure::Transient);
        assert_eq!(refusal(status(404)), Failure::Permanent);
        assert_eq!(refusal(status(400)), Failure::Permanent);
        assert_eq!(classify(&transient()), Failure::Transient);
        assert_eq!(classify(&permanent()), Failure::Permanent);
    }

    /// `deliver` with its sends answered by `outcomes` in turn: whether it took the answer as
    /// delivered, and how many times it sent it.
    async fn sends(outcomes: Vec<serenity::Result<()>>) -> (bool, usize) {
        let outcomes = std::cell::RefCell::new(outcomes.into_iter());
        let tries = std::cell::Cell::new(0);
        let delivered = deliver("top", 1, 2, || {
            tries.set(tries.get() + 1);
            let next = outcomes
                .borrow_mut()
                .next()
                .expect("no more sends than outcomes");
            async move { next }
        })
        .await;
        (delivered, tries.get())
    }

    /// One retry, then an error: a transient failure twice is not delivered, a refusal is not
    /// retried, an unreadable echo is not sent twice.
    #[tokio::test]
    async fn an_answer_is_sent_at_most_twice() {
        let unreadable = serenity::Error::Json(serde_json::from_str::<u8>("x").unwrap_err());
        assert_eq!(
            sends(vec![Err(transient()), Err(transient())]).await,
            (false, 2)
        );
        assert_eq!(sends(vec![Err(transient()), Ok(())]).await, (true, 2));
        assert_eq!(sends(vec![Err(permanent())]).await, (false, 1));
        assert_eq!(sends(vec![Err(unreadable)]).await, (true, 1));
    }

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
