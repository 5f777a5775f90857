//! PNG charts for the Discord commands (issue 14), drawn from the JSON documents that the
//! extension's command functions return: no browser, no system fonts, no database.
//!
//! - [`last_session_png`]: one image of four panels for `/last_session`;
//! - [`stats_form_png`]: K/D and DPM over the player's last sessions for `/stats`;
//! - [`voice_weekly_png`]: voice hours per week for `/voice`.
//!
//! Each takes the command's document as returned by SQL and a [`Theme`]. An answer with
//! `"ok": false`, a document of the wrong shape, or one with nothing to draw gives a
//! [`ChartError`] whose text can be shown to the user; nothing here panics on any input, and
//! NaN, infinities, huge numbers and very long names are drawn bounded or as "–".

mod draw;
mod font;
mod last_session;
pub mod model;
mod stats;
mod voice;

use model::Answer;
use serde::de::DeserializeOwned;
use std::fmt;

pub use last_session::render_last_session;
pub use stats::render_stats_form;
pub use voice::render_voice_weekly;

/// The colours of an image. Both paint an opaque background of their own, so either reads in
/// Discord's dark and light themes; dark is the default because most clients use it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Theme {
    #[default]
    Dark,
    Light,
}

impl std::str::FromStr for Theme {
    type Err = String;
    fn from_str(s: &str) -> Result<Theme, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "dark" => Ok(Theme::Dark),
            "light" => Ok(Theme::Light),
            other => Err(format!(
                "unknown chart theme {other:?}: expected dark or light"
            )),
        }
    }
}

/// Why no image was made. `Display` gives a sentence fit for a Discord reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChartError {
    /// The command answered `"ok": false`; its error text, meant for the user.
    NotOk(String),
    /// The answer has nothing to draw (no players, no sessions, no weeks); says what is missing.
    NoData(String),
    /// The document does not have the agreed shape; names the field and the problem.
    BadDocument(String),
    /// Drawing or PNG encoding failed (not expected; reported rather than panicking).
    Render(String),
}

impl fmt::Display for ChartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChartError::NotOk(e) | ChartError::NoData(e) => f.write_str(e),
            ChartError::BadDocument(e) => write!(f, "unexpected command answer: {e}"),
            ChartError::Render(e) => write!(f, "chart drawing failed: {e}"),
        }
    }
}

impl std::error::Error for ChartError {}

/// The `/last_session` image from `command_last_session`'s document.
pub fn last_session_png(doc: &serde_json::Value, theme: Theme) -> Result<Vec<u8>, ChartError> {
    render_last_session(&parse(doc, "command_last_session")?, theme)
}

/// The `/stats` form image from `command_stats`'s document.
pub fn stats_form_png(doc: &serde_json::Value, theme: Theme) -> Result<Vec<u8>, ChartError> {
    render_stats_form(&parse(doc, "command_stats")?, theme)
}

/// The `/voice` weekly image from `command_voice`'s document. `member` names the member in the
/// title; `None` takes the document's `name`, and without either the title has no name.
pub fn voice_weekly_png(
    doc: &serde_json::Value,
    member: Option<&str>,
    theme: Theme,
) -> Result<Vec<u8>, ChartError> {
    render_voice_weekly(&parse(doc, "command_voice")?, member, theme)
}

/// Reads `doc` as `T`, naming the field path on a type error.
fn parse<T: DeserializeOwned + Answer>(
    doc: &serde_json::Value,
    what: &str,
) -> Result<T, ChartError> {
    if !doc.is_object() {
        return Err(ChartError::BadDocument(format!(
            "{what}: expected a JSON object"
        )));
    }
    let parsed: T = serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        ChartError::BadDocument(format!("{what}: {path}: {}", e.into_inner()))
    })?;
    Ok(parsed)
}

pub(crate) fn check_ok(answer: &impl Answer) -> Result<(), ChartError> {
    match answer.outcome() {
        (Some(false), error) => Err(ChartError::NotOk(
            error
                .filter(|e| !e.trim().is_empty())
                .unwrap_or("the command found nothing to show")
                .to_string(),
        )),
        _ => Ok(()),
    }
}
