//! Per-guild liveness. A beat says "the bot was connected and saw this guild's voice at this
//! instant"; the voice builder ends sessions open across a silence at the last beat. So beats run
//! only while the shard is connected and the guild is available, and stop at once otherwise.

use crate::rows::sf;
use guildstats_ingest::heartbeat::spawn_heartbeat;
use guildstats_ingest::sink::SinkHandle;
use serenity::model::id::GuildId;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

pub const SOURCE: &str = "discord";

pub struct Heartbeats {
    sink: SinkHandle,
    every: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Guilds seen in a GUILD_CREATE and not gone since.
    available: HashSet<GuildId>,
    /// The stop switch of each running beat.
    running: HashMap<GuildId, watch::Sender<bool>>,
}

impl Heartbeats {
    pub fn new(sink: SinkHandle, every: Duration) -> Heartbeats {
        Heartbeats {
            sink,
            every,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn guild_available(&self, guild: GuildId) {
        let mut state = self.state();
        state.available.insert(guild);
        self.start(&mut state, guild);
    }

    pub fn guild_gone(&self, guild: GuildId) {
        let mut state = self.state();
        state.available.remove(&guild);
        if let Some(stop) = state.running.remove(&guild) {
            let _ = stop.send(true);
        }
    }

    /// The shard is connected again (a resume brings no GUILD_CREATE): beat for every guild
    /// that was available.
    pub fn connected(&self) {
        let mut state = self.state();
        for guild in state.available.clone() {
            self.start(&mut state, guild);
        }
    }

    pub fn disconnected(&self) {
        for (_, stop) in self.state().running.drain() {
            let _ = stop.send(true);
        }
    }

    fn start(&self, state: &mut State, guild: GuildId) {
        if state.running.contains_key(&guild) {
            return;
        }
        let (stop, stopped) = watch::channel(false);
        spawn_heartbeat(
            self.sink.clone(),
            SOURCE.to_string(),
            Some(sf(guild)),
            self.every,
            stopped,
        );
        state.running.insert(guild, stop);
    }
}
