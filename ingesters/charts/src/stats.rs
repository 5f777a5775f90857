//! `/stats`: the player's form over their last sessions (oldest left), two panels sharing one
//! time axis: K/D as bars (green from 1.0 up, red below, with the 1.0 line), DPM as a line with
//! its average. 1200x640.

use crate::draw::{
    finite, fit, fit_chars, line, num, panel, render_png, short_date, text, x_labels, Axis, Font,
    Palette, Rect, Root,
};
use crate::model::{FormPeriod, SessionForm, Stats};
use crate::{check_ok, ChartError, Theme};
use plotters::prelude::*;

pub(crate) const WIDTH: u32 = 1200;
pub(crate) const HEIGHT: u32 = 640;
const HEADER: i32 = 72;
const PAD: i32 = 12;
/// Sessions drawn at most, the newest ones.
pub const MAX_SESSIONS: usize = 20;

/// Draws the `/stats` form image from a parsed document.
pub fn render_stats_form(doc: &Stats, theme: Theme) -> Result<Vec<u8>, ChartError> {
    check_ok(doc)?;
    let name = doc
        .player
        .as_ref()
        .map(|p| p.name.trim())
        .unwrap_or_default();
    if doc.sessions.is_empty() {
        let who = if name.is_empty() { "this player" } else { name };
        return Err(ChartError::NoData(format!(
            "no sessions to draw for {}",
            who.chars().take(64).collect::<String>()
        )));
    }
    let sessions = &doc.sessions[doc.sessions.len().saturating_sub(MAX_SESSIONS)..];
    render_png(WIDTH, HEIGHT, theme, |root, pal| {
        header(root, doc, name, sessions.len(), pal)?;
        let w = WIDTH as i32 - 2 * PAD;
        let h = (HEIGHT as i32 - HEADER - 3 * PAD) / 2;
        let labels: Vec<String> = sessions
            .iter()
            .map(|s| short_date(s.date.as_deref()))
            .collect();
        kd_panel(
            root,
            Rect::new(PAD, HEADER + PAD, w, h),
            sessions,
            &labels,
            pal,
        )?;
        dpm_panel(
            root,
            Rect::new(PAD, HEADER + 2 * PAD + h, w, h),
            sessions,
            &labels,
            pal,
        )
    })
}

fn header(root: &Root, doc: &Stats, name: &str, n: usize, pal: &Palette) -> Result<(), ChartError> {
    let title_font = Font::new(26.0, pal.fg).bold();
    let title = if name.is_empty() {
        "Form".to_string()
    } else {
        format!("Form of {}", fit(root, name, title_font, 640))
    };
    text(root, &title, PAD + 4, 26, title_font)?;
    let period = |label: &str, p: &Option<FormPeriod>| {
        p.as_ref().map(|p| {
            format!(
                "{label}: K/D {}, DPM {} ({} rounds)",
                num(p.kd, 2),
                num(p.dpm, 0),
                num(p.rounds, 0)
            )
        })
    };
    let mut facts = vec![format!("last {n} session{}", if n == 1 { "" } else { "s" })];
    if let Some(form) = &doc.form {
        facts.extend(period("last 30 days", &form.last_30_days));
        facts.extend(period("before", &form.before));
    }
    let small = Font::new(15.0, pal.muted);
    text(
        root,
        &fit_chars(root, &facts.join(" · "), small, 1160, 300),
        PAD + 4,
        56,
        small,
    )
}

fn kd_panel(
    root: &Root,
    r: Rect,
    sessions: &[SessionForm],
    labels: &[String],
    pal: &Palette,
) -> Result<(), ChartError> {
    let body = panel(root, r, "K/D per session", pal)?;
    let values: Vec<Option<f64>> = sessions
        .iter()
        .map(|s| finite(s.kd).map(|v| v.max(0.0)))
        .collect();
    // Up to 1.5 at least, so that the even line sits visibly inside the panel.
    let max = values.iter().flatten().fold(1.5, |m: f64, v| m.max(*v));
    let axis = Axis::draw(root, body, max, 1, pal)?;
    let even = axis.y(1.0);
    let n = values.len();
    let label_font = Font::new(12.0, pal.fg).center();
    for (i, v) in values.iter().enumerate() {
        let (x, slot_w) = axis.slot(i, n);
        let Some(v) = v else { continue };
        let color = if *v >= 1.0 { pal.good } else { pal.bad };
        let y = axis.y(*v);
        axis.column(root, (x, slot_w), y, color)?;
        if slot_w >= 30 {
            text(root, &num(Some(*v), 2), x, y - 9, label_font)?;
        }
    }
    line(
        root,
        (axis.plot.x, even),
        (axis.plot.right(), even),
        pal.muted,
        1,
    )?;
    x_labels(root, &axis, labels, pal)
}

fn dpm_panel(
    root: &Root,
    r: Rect,
    sessions: &[SessionForm],
    labels: &[String],
    pal: &Palette,
) -> Result<(), ChartError> {
    let body = panel(root, r, "DPM per session", pal)?;
    let values: Vec<Option<f64>> = sessions
        .iter()
        .map(|s| finite(s.dpm).map(|v| v.max(0.0)))
        .collect();
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    let max = present.iter().fold(0.0, |m: f64, v| m.max(*v));
    let axis = Axis::draw(root, body, max, 0, pal)?;
    let n = values.len();
    if !present.is_empty() {
        // The mean of huge values must not overflow to infinity: average the scaled values.
        let mean = present
            .iter()
            .map(|v| v / present.len() as f64)
            .sum::<f64>();
        let y = axis.y(mean);
        line(root, (axis.plot.x, y), (axis.plot.right(), y), pal.muted, 1)?;
        let font = Font::new(12.0, pal.muted).right();
        text(
            root,
            &format!("average {}", num(Some(mean), 0)),
            axis.plot.right(),
            y - 9,
            font,
        )?;
    }
    let points: Vec<(i32, i32, f64)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (axis.slot(i, n).0, axis.y(v), v)))
        .collect();
    for pair in points.windows(2) {
        line(
            root,
            (pair[0].0, pair[0].1),
            (pair[1].0, pair[1].1),
            pal.dpm,
            3,
        )?;
    }
    let (_, slot_w) = axis.slot(0, n);
    let label_font = Font::new(12.0, pal.fg).center();
    for (x, y, v) in &points {
        root.draw(&Circle::new((*x, *y), 5, pal.dpm.filled()))
            .map_err(crate::draw::render_err)?;
        if slot_w >= 30 {
            text(root, &num(Some(*v), 0), *x, y - 14, label_font)?;
        }
    }
    x_labels(root, &axis, labels, pal)
}
