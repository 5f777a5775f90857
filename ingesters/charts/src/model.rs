//! The parts of the command functions' JSON answers that the charts draw (see the contract in
//! docs/commands.md). Deserialisation is lenient on purpose: unknown fields are ignored (the SQL
//! side may add some), and a missing or `null` field reads as absent, so that an older or newer
//! extension still gets a picture. Only a wrong type (a string where a number belongs) is an
//! error, and it names the field.
//!
//! Numbers stay `Option<f64>` here; the drawing code treats NaN and infinities as absent (a
//! typed caller can build such values even though JSON cannot carry them).

use serde::{Deserialize, Deserializer};

/// `null` and a missing field both become the type's default (an empty list or string).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// What every command answer has: `ok` and, when it is false, the error text for the user.
pub(crate) trait Answer {
    fn outcome(&self) -> (Option<bool>, Option<&str>);
}

macro_rules! answer {
    ($($t:ty),*) => {$(
        impl Answer for $t {
            fn outcome(&self) -> (Option<bool>, Option<&str>) {
                (self.ok, self.error.as_deref())
            }
        }
    )*};
}
answer!(LastSession, Stats, Voice);

/// `command_last_session(guild_id)`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LastSession {
    pub ok: Option<bool>,
    pub error: Option<String>,
    pub session: Option<SessionInfo>,
    #[serde(deserialize_with = "nullable")]
    pub maps: Vec<MapResult>,
    #[serde(deserialize_with = "nullable")]
    pub players: Vec<PlayerLine>,
    pub mvp: Option<Mvp>,
    #[serde(deserialize_with = "nullable")]
    pub awards: Vec<AwardLine>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SessionInfo {
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub server: Option<String>,
    pub rounds: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MapResult {
    #[serde(deserialize_with = "nullable")]
    pub map: String,
    pub round1_winner: Option<String>,
    pub round2_winner: Option<String>,
    pub round1_time_s: Option<f64>,
    pub round2_time_s: Option<f64>,
    pub result: Option<String>,
    /// "a", "b", "draw" or absent (unfinished map).
    pub winner_team: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PlayerLine {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// "a", "b" or absent.
    pub team: Option<String>,
    pub kills: Option<f64>,
    pub deaths: Option<f64>,
    pub kd: Option<f64>,
    pub dpm: Option<f64>,
    pub damage_given: Option<f64>,
    pub damage_received: Option<f64>,
    pub gibs: Option<f64>,
    pub time_played_s: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Mvp {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AwardLine {
    #[serde(deserialize_with = "nullable")]
    pub award: String,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    pub value: Option<f64>,
}

/// `command_stats(guild_id, player, user_id)`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Stats {
    pub ok: Option<bool>,
    pub error: Option<String>,
    pub player: Option<PlayerRef>,
    pub form: Option<Form>,
    /// The last 20 sessions the player played, oldest first.
    #[serde(deserialize_with = "nullable")]
    pub sessions: Vec<SessionForm>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PlayerRef {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Form {
    pub last_30_days: Option<FormPeriod>,
    pub before: Option<FormPeriod>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FormPeriod {
    pub rounds: Option<f64>,
    pub kd: Option<f64>,
    pub dpm: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SessionForm {
    /// A date ("2026-11-01") or a timestamp; only its date part is shown.
    pub date: Option<String>,
    pub kills: Option<f64>,
    pub deaths: Option<f64>,
    pub kd: Option<f64>,
    pub dpm: Option<f64>,
}

/// `command_voice(guild_id, user_id)`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Voice {
    pub ok: Option<bool>,
    pub error: Option<String>,
    /// The member's display name (added by cmdsql at 13:05; may be null).
    pub name: Option<String>,
    pub hours_week: Option<f64>,
    pub hours_month: Option<f64>,
    pub rank_week: Option<f64>,
    pub rank_month: Option<f64>,
    /// Members ranked this month (`rank_month` is out of these).
    pub members_ranked: Option<f64>,
    /// Members ranked this week (`rank_week` is out of these); older answers lack it.
    pub members_ranked_week: Option<f64>,
    /// The last 12 weeks, oldest first.
    #[serde(deserialize_with = "nullable")]
    pub weeks: Vec<VoiceWeek>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct VoiceWeek {
    pub week_start: Option<String>,
    pub hours: Option<f64>,
}
