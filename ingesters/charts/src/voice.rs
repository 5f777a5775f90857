//! `/voice`: hours in voice per week, oldest left, the current week in a brighter colour.
//! 1200x600.

use crate::draw::{
    empty_note, finite, fit, fit_chars, num, panel, render_png, short_date, text, x_labels, Axis,
    Font, Rect,
};
use crate::model::Voice;
use crate::{check_ok, ChartError, Theme};

pub(crate) const WIDTH: u32 = 1200;
pub(crate) const HEIGHT: u32 = 600;
const HEADER: i32 = 72;
const PAD: i32 = 12;
/// Weeks drawn at most, the newest ones (the contract sends 12).
pub const MAX_WEEKS: usize = 26;

/// Draws the `/voice` image from a parsed document; `member` is the name for the title.
pub fn render_voice_weekly(
    doc: &Voice,
    member: Option<&str>,
    theme: Theme,
) -> Result<Vec<u8>, ChartError> {
    check_ok(doc)?;
    if doc.weeks.is_empty() {
        return Err(ChartError::NoData("no voice weeks to draw".into()));
    }
    let weeks = &doc.weeks[doc.weeks.len().saturating_sub(MAX_WEEKS)..];
    render_png(WIDTH, HEIGHT, theme, |root, pal| {
        let title_font = Font::new(26.0, pal.fg).bold();
        let member = member.or(doc.name.as_deref());
        let title = match member.map(str::trim).filter(|m| !m.is_empty()) {
            Some(m) => format!("Voice hours of {}", fit(root, m, title_font, 640)),
            None => "Voice hours".to_string(),
        };
        text(root, &title, PAD + 4, 26, title_font)?;
        let rank = |rank: Option<f64>, of: Option<f64>| match (finite(rank), finite(of)) {
            (Some(r), Some(of)) => format!(" (#{} of {})", num(Some(r), 0), num(Some(of), 0)),
            (Some(r), None) => format!(" (#{})", num(Some(r), 0)),
            _ => String::new(),
        };
        let facts = format!(
            "this week {} h{} · this month {} h{}",
            num(doc.hours_week, 1),
            rank(doc.rank_week, doc.members_ranked_week),
            num(doc.hours_month, 1),
            rank(doc.rank_month, doc.members_ranked)
        );
        let small = Font::new(15.0, pal.muted);
        text(
            root,
            &fit_chars(root, &facts, small, 900, 200),
            PAD + 4,
            56,
            small,
        )?;

        let hours: Vec<Option<f64>> = weeks
            .iter()
            .map(|w| finite(w.hours).map(|h| h.max(0.0)))
            .collect();
        let total = hours
            .iter()
            .flatten()
            .map(|h| h / hours.len() as f64)
            .sum::<f64>()
            * hours.len() as f64;
        let total_font = Font::new(18.0, pal.fg).bold().right();
        let total_text = format!("{} h in {} weeks", num(Some(total), 1), weeks.len());
        text(root, &total_text, WIDTH as i32 - PAD - 4, 26, total_font)?;

        let r = Rect::new(
            PAD,
            HEADER + PAD,
            WIDTH as i32 - 2 * PAD,
            HEIGHT as i32 - HEADER - 2 * PAD,
        );
        let body = panel(root, r, "Hours per week", pal)?;
        let max = hours.iter().flatten().fold(0.0, |m: f64, h| m.max(*h));
        let axis = Axis::draw(root, body, max, 1, pal)?;
        let n = hours.len();
        let label_font = Font::new(13.0, pal.fg).center();
        for (i, h) in hours.iter().enumerate() {
            let (x, slot_w) = axis.slot(i, n);
            let Some(h) = *h else { continue };
            if h <= 0.0 {
                // An empty week still says so, rather than looking like missing data.
                text(root, "0", x, axis.plot.bottom() - 10, label_font)?;
                continue;
            }
            let color = if i + 1 == n { pal.voice_now } else { pal.voice };
            let y = axis.y(h).min(axis.plot.bottom() - 1);
            axis.column(root, (x, slot_w), y, color)?;
            if slot_w >= 30 {
                text(root, &num(Some(h), 1), x, y - 10, label_font)?;
            }
        }
        if max <= 0.0 {
            empty_note(root, axis.plot, "no time in voice in these weeks", pal)?;
        }
        let labels: Vec<String> = weeks
            .iter()
            .map(|w| short_date(w.week_start.as_deref()))
            .collect();
        x_labels(root, &axis, &labels, pal)
    })
}
