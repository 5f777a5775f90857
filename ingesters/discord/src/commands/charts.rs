//! The images of /last_session, /stats and /voice, drawn by guildstats-charts from the same
//! answer the text shows. Drawing is CPU work: it runs on the blocking pool, never on the
//! runtime thread the gateway and the ingesting side share.

use super::render::Chart;
use guildstats_charts::Theme;
use serde_json::Value;
use tokio::sync::Semaphore;

/// One chart at a time: each takes a few MB while it is drawn (the RGB canvas, the PNG), and
/// answers queueing up must not multiply that into the bot's peak memory. Drawing takes tens
/// of milliseconds, so the wait is short.
static DRAWING: Semaphore = Semaphore::const_new(1);

/// The PNG for `chart`, or `None` (the answer then goes without an image) when drawing fails.
pub async fn png(chart: Chart, answer: Value) -> Option<Vec<u8>> {
    let _turn = DRAWING.acquire().await.ok()?;
    let drawn = tokio::task::spawn_blocking(move || {
        let png = draw(chart, &answer);
        release_freed_memory();
        png
    })
    .await;
    match drawn {
        Ok(Ok(png)) => Some(png),
        Ok(Err(e)) => {
            tracing::warn!(chart = chart.file_name(), error = %e, "cannot draw the chart");
            None
        }
        Err(e) => {
            tracing::error!(chart = chart.file_name(), error = %e, "the chart task failed");
            None
        }
    }
}

/// Hands the canvas's freed pages back to the system: glibc keeps freed heap memory for reuse,
/// so without this every chart would leave the bot's resident size at its drawing peak.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the heap to the kernel; it touches no
    // memory in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The answer's own member name titles the voice chart; the dark theme paints its own
/// background, so it reads in both of Discord's themes.
fn draw(chart: Chart, answer: &Value) -> Result<Vec<u8>, String> {
    let theme = Theme::default();
    match chart {
        Chart::LastSession => guildstats_charts::last_session_png(answer, theme),
        Chart::StatsForm => guildstats_charts::stats_form_png(answer, theme),
        Chart::VoiceWeeks => guildstats_charts::voice_weekly_png(
            answer,
            answer.get("name").and_then(Value::as_str),
            theme,
        ),
    }
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn an_answer_becomes_a_png_and_a_refusal_none() {
        let voice = json!({"ok": true, "user_id": "42", "hours_week": 2.0, "hours_month": 3.0,
            "rank_week": 1, "rank_month": 1, "members_ranked": 2, "partners": [],
            "weeks": [{"week_start": "2026-11-02", "hours": 1.0},
                      {"week_start": "2026-11-09", "hours": 2.0}]});
        let drawn = png(Chart::VoiceWeeks, voice).await.expect("a chart");
        assert!(drawn.starts_with(b"\x89PNG\r\n\x1a\n"));
        let refused = json!({"ok": false, "error": "no such member"});
        assert!(png(Chart::VoiceWeeks, refused).await.is_none());
    }
}
