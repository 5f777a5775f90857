//! Flags with environment fallbacks; the bot token from the environment or a file only (a flag
//! would show it in the process list), held in a type that never prints it.

use crate::commands::CommandSettings;
use clap::Parser;
use guildstats_ingest::config::SinkArgs;
use serenity::model::gateway::GatewayIntents;
use std::path::PathBuf;

/// What the bot asks the gateway for. No MESSAGE_CONTENT: message text is never wanted.
/// GUILD_MODERATION carries the ban and unban events.
pub fn intents() -> GatewayIntents {
    GatewayIntents::GUILDS
        | GatewayIntents::GUILD_VOICE_STATES
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::GUILD_MEMBERS
        | GatewayIntents::GUILD_SCHEDULED_EVENTS
        | GatewayIntents::GUILD_MODERATION
}

/// The intents by name, for logs and `--check`.
pub fn intent_names() -> String {
    let names: Vec<&str> = intents().iter_names().map(|(name, _)| name).collect();
    names.join(", ")
}

#[derive(Parser)]
#[command(
    version,
    about = "Discord bot that records voice, message metadata, members and scheduled events into guildstats",
    after_help = "The bot token comes from GUILDSTATS_DISCORD_TOKEN (or DISCORD_TOKEN) or from --token-file; it is never logged."
)]
pub struct Args {
    /// File whose first line is the bot token (else GUILDSTATS_DISCORD_TOKEN or DISCORD_TOKEN).
    #[arg(long, env = "GUILDSTATS_DISCORD_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Send Discord REST requests to this base URL instead of Discord (an HTTP proxy such as
    /// twilight-http-proxy, or a test stand-in).
    #[arg(long, env = "GUILDSTATS_DISCORD_API_PROXY")]
    pub api_proxy: Option<String>,
    /// Record only these guilds (repeatable or comma-separated); default: every guild the bot is in.
    #[arg(
        long = "guild",
        env = "GUILDSTATS_DISCORD_GUILDS",
        value_delimiter = ','
    )]
    pub guilds: Vec<u64>,
    /// A user id whose rows are never written (repeatable or comma-separated).
    #[arg(long = "opt-out", env = "GUILDSTATS_OPT_OUT", value_delimiter = ',')]
    pub opt_out: Vec<u64>,
    /// File of opted-out user ids, one per line (# comments); re-read when it changes.
    #[arg(long, env = "GUILDSTATS_OPT_OUT_FILE")]
    pub opt_out_file: Option<PathBuf>,
    /// Seconds between checks of the opt-out file for changes.
    #[arg(long, default_value_t = 30)]
    pub opt_out_reload_secs: u64,
    /// Check the database, the token and the opt-out list, print what would be recorded, and exit.
    #[arg(long)]
    pub check: bool,
    #[command(flatten)]
    pub sink: SinkArgs,
    #[command(flatten)]
    pub commands: CommandArgs,
}

/// Slash commands: off unless asked for, so that a pure ingester registers none.
#[derive(clap::Args, Clone)]
pub struct CommandArgs {
    /// Register and answer the slash commands (/stats, /top, /last_session, ...).
    #[arg(long = "commands", env = "GUILDSTATS_COMMANDS")]
    pub enabled: bool,
    /// The commands' own login (reader role plus EXECUTE on the command functions), never the
    /// ingest one: libpq-style connection string or URL.
    #[arg(long, env = "GUILDSTATS_COMMANDS_DSN", hide_env_values = true)]
    pub commands_dsn: Option<String>,
    /// File whose first line is the commands login's password.
    #[arg(long, env = "GUILDSTATS_COMMANDS_PASSWORD_FILE")]
    pub commands_password_file: Option<PathBuf>,
    /// Commands one user may fire at once before being rate-limited.
    #[arg(long, env = "GUILDSTATS_COMMANDS_BURST", default_value_t = 3)]
    pub commands_burst: u32,
    /// Commands a user gets back per minute after the burst.
    #[arg(long, env = "GUILDSTATS_COMMANDS_PER_MINUTE", default_value_t = 6)]
    pub commands_per_minute: u32,
}

impl Args {
    /// The commands' settings when `--commands` is on. Errors never contain the DSN.
    pub fn command_settings(&self) -> Result<Option<CommandSettings>, String> {
        let c = &self.commands;
        if !c.enabled {
            return Ok(None);
        }
        let dsn = c.commands_dsn.as_deref().ok_or(
            "--commands needs --commands-dsn (or GUILDSTATS_COMMANDS_DSN): a login of its own with the \
             guildstats_commands role, not the ingest login",
        )?;
        let database = self
            .sink
            .options_for(dsn, c.commands_password_file.as_deref())
            .map_err(|e| format!("the commands' database: {e}"))?;
        Ok(Some(CommandSettings {
            database,
            burst: c.commands_burst,
            per_minute: c.commands_per_minute,
        }))
    }
}

/// The bot token. No `Debug`/`Display`: it cannot reach a log by accident.
pub struct Token(String);

impl Token {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Args {
    /// The token from the file, else the environment. Errors never contain the token.
    pub fn token(&self) -> Result<Token, String> {
        let token = match &self.token_file {
            Some(file) => std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read the token file {}: {e}", file.display()))?
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string(),
            None => std::env::var("GUILDSTATS_DISCORD_TOKEN")
                .or_else(|_| std::env::var("DISCORD_TOKEN"))
                .map_err(|_| {
                    "no bot token: set GUILDSTATS_DISCORD_TOKEN (or DISCORD_TOKEN) or --token-file"
                        .to_string()
                })?
                .trim()
                .to_string(),
        };
        if token.is_empty() {
            return Err("the bot token is empty".into());
        }
        Ok(Token(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_from_the_first_line_of_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "  abc.def.ghi \nsecond line\n").unwrap();
        let args = Args::parse_from([
            "guildstats-discord",
            "--token-file",
            file.to_str().unwrap(),
            "--dsn",
            "host=/tmp",
        ]);
        assert_eq!(args.token().unwrap().expose(), "abc.def.ghi");
        std::fs::write(&file, "\n").unwrap();
        assert_eq!(args.token().err().unwrap(), "the bot token is empty");
    }

    #[test]
    fn flags_parse_lists() {
        let args = Args::parse_from([
            "guildstats-discord",
            "--guild",
            "100,200",
            "--opt-out",
            "42",
            "--opt-out",
            "43",
        ]);
        assert_eq!(args.guilds, [100, 200]);
        assert_eq!(args.opt_out, [42, 43]);
        assert!(!intents().contains(GatewayIntents::MESSAGE_CONTENT));
        assert!(
            args.command_settings().unwrap().is_none(),
            "commands are off by default"
        );
    }

    #[test]
    fn commands_need_a_login_of_their_own() {
        let args = Args::parse_from(["guildstats-discord", "--dsn", "host=/tmp", "--commands"]);
        let err = args.command_settings().err().unwrap();
        assert!(err.contains("--commands-dsn"), "{err}");
        let args = Args::parse_from([
            "guildstats-discord",
            "--dsn",
            "host=/tmp user=ingest",
            "--commands",
            "--commands-dsn",
            "host=/tmp user=bot_commands",
            "--commands-burst",
            "5",
        ]);
        let settings = args.command_settings().unwrap().unwrap();
        assert!(settings.database.dsn.contains("bot_commands"));
        assert_eq!(settings.burst, 5);
    }
}
