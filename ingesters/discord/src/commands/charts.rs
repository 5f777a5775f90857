//! The images of /last_session, /stats and /voice, drawn by guildstats-charts from the same
//! answer the text shows. Drawing is CPU work: it runs on the blocking pool, never on the
//! runtime thread the gateway and the ingesting side share.

use super::render::Chart;
use serde_json::Value;

/// The PNG for `chart`, or `None` (the answer then goes without an image) when drawing fails.
pub async fn png(chart: Chart, answer: Value) -> Option<Vec<u8>> {
    let drawn = tokio::task::spawn_blocking(move || draw(chart, &answer)).await;
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

/// guildstats-charts is not in this tree yet: the answers go without images until it is.
fn draw(_chart: Chart, _answer: &Value) -> Result<Vec<u8>, String> {
    Err("no chart renderer in this build".into())
}
