//! `/last_session`: one image, four panels, the players in the document's order (kills first)
//! in every player panel so that a name sits on the same row in each:
//!
//! ```text
//! +------------------------------------------------------------+
//! | Last session            date · server · rounds     MVP name |
//! +-----------------------------+------------------------------+
//! | Kills and DPM               | Damage given vs received     |
//! +-----------------------------+------------------------------+
//! | Time played                 | Maps (results, teams)        |
//! +-----------------------------+------------------------------+
//! ```
//!
//! 1200 pixels wide, 800 high up to 17 players; more players make it taller (17 pixels a row),
//! and past 32 the rest are left out and the header says so.

use crate::draw::{
    clock, duration, empty_note, fill, finite, fit, fit_chars, num, panel, render_png, text,
    text_width, Font, Palette, Rect, Root,
};
use crate::model::{LastSession, PlayerLine};
use crate::{check_ok, ChartError, Theme};
use plotters::style::RGBColor;

pub(crate) const WIDTH: u32 = 1200;
const MIN_HEIGHT: i32 = 800;
pub(crate) const HEADER: i32 = 72;
pub(crate) const PAD: i32 = 12;
/// A panel's title row and bottom margin.
const CHROME: i32 = 44;
const MIN_ROW: i32 = 17;
/// Players drawn at most; a clan evening has up to about 24.
pub const MAX_PLAYERS: usize = 32;

/// Draws the `/last_session` image from a parsed document.
pub fn render_last_session(doc: &LastSession, theme: Theme) -> Result<Vec<u8>, ChartError> {
    check_ok(doc)?;
    if doc.players.is_empty() && doc.maps.is_empty() {
        return Err(ChartError::NoData(
            "the last session has no players and no maps to draw".into(),
        ));
    }
    let players = &doc.players[..doc.players.len().min(MAX_PLAYERS)];
    let (panel_w, panel_h, height) = layout(players.len());
    render_png(WIDTH, height as u32, theme, |root, pal| {
        header(root, doc, pal)?;
        let left = PAD;
        let right = PAD * 2 + panel_w;
        let top = HEADER + PAD;
        let bottom = top + panel_h + PAD;
        let rows: Vec<Row> = players.iter().map(|p| Row::of(p, pal)).collect();
        let kills = [
            Column::bar("Kills", pal.kills, players, |p| p.kills, |v| num(v, 0)),
            Column::bar("DPM", pal.dpm, players, |p| p.dpm, |v| num(v, 0)),
            Column::text("K/D", pal.muted, players, |p| p.kd, |v| num(v, 2)),
        ];
        bar_panel(
            root,
            Rect::new(left, top, panel_w, panel_h),
            "Kills and DPM",
            &rows,
            &kills,
            false,
            pal,
        )?;
        let damage = [
            Column::bar(
                "Given",
                pal.given,
                players,
                |p| p.damage_given,
                |v| num(v, 0),
            ),
            Column::bar(
                "Received",
                pal.received,
                players,
                |p| p.damage_received,
                |v| num(v, 0),
            ),
        ];
        bar_panel(
            root,
            Rect::new(right, top, panel_w, panel_h),
            "Damage given vs received",
            &rows,
            &damage,
            true,
            pal,
        )?;
        let time = [Column::bar(
            "Time",
            pal.time,
            players,
            |p| p.time_played_s,
            duration,
        )];
        bar_panel(
            root,
            Rect::new(left, bottom, panel_w, panel_h),
            "Time played",
            &rows,
            &time,
            false,
            pal,
        )?;
        maps_panel(root, Rect::new(right, bottom, panel_w, panel_h), doc, pal)
    })
}

/// Panel width, panel height and image height for `players` rows.
pub(crate) fn layout(players: usize) -> (i32, i32, i32) {
    let panel_w = (WIDTH as i32 - 3 * PAD) / 2;
    let fixed = HEADER + 3 * PAD;
    let panel_h = ((MIN_HEIGHT - fixed) / 2).max(CHROME + players as i32 * MIN_ROW);
    (panel_w, panel_h, fixed + 2 * panel_h)
}

fn header(root: &Root, doc: &LastSession, pal: &Palette) -> Result<(), ChartError> {
    text(
        root,
        "Last session",
        PAD + 4,
        26,
        Font::new(26.0, pal.fg).bold(),
    )?;
    let mut facts = Vec::new();
    if let Some(s) = &doc.session {
        let start = s.started_at.as_deref().map(date_time);
        let end = s.ended_at.as_deref().and_then(|e| e.get(11..16));
        match (start, end) {
            (Some(start), Some(end)) => facts.push(format!("{start}–{end}")),
            (Some(start), None) => facts.push(start),
            _ => {}
        }
        if let Some(server) = s.server.as_deref().filter(|s| !s.trim().is_empty()) {
            facts.push(server.to_string());
        }
        if let Some(rounds) = finite(s.rounds) {
            facts.push(format!("{} rounds", num(Some(rounds), 0)));
        }
    }
    let shown = doc.players.len().min(MAX_PLAYERS);
    facts.push(if shown < doc.players.len() {
        format!("top {shown} of {} players by kills", doc.players.len())
    } else {
        format!("{} players", doc.players.len())
    });
    let small = Font::new(15.0, pal.muted);
    let right = WIDTH as i32 - PAD - 4;
    // The MVP's reason (right) gets up to 560 pixels; the session's facts (left) the rest.
    let mut reason_w = 0;
    if let Some(mvp) = doc.mvp.as_ref().filter(|m| !m.name.trim().is_empty()) {
        let name_font = Font::new(20.0, pal.kills).bold().right();
        let name = fit(root, &mvp.name, name_font, 330);
        text(root, &format!("MVP  {name}"), right, 26, name_font)?;
        if let Some(reason) = mvp.reason.as_deref() {
            let reason = fit_chars(root, reason, small.right(), 560, 200);
            reason_w = text_width(root, &reason, small);
            text(root, &reason, right, 56, small.right())?;
        }
    }
    let facts_w = right - reason_w - 24 - (PAD + 4);
    let facts = fit_chars(root, &facts.join(" · "), small, facts_w, 200);
    text(root, &facts, PAD + 4, 56, small)?;
    Ok(())
}

/// The awards, one a line, in what room the maps leave; the rest are counted.
fn awards(root: &Root, r: Rect, doc: &LastSession, pal: &Palette) -> Result<(), ChartError> {
    const LINE: i32 = 21;
    let lines = (r.h / LINE).max(0) as usize;
    if doc.awards.is_empty() || lines < 2 {
        return Ok(());
    }
    text(
        root,
        "Awards",
        r.x + 22,
        r.y + LINE / 2,
        Font::new(14.0, pal.fg).bold(),
    )?;
    let fits = lines - 1;
    let shown = if doc.awards.len() > fits {
        fits - 1
    } else {
        doc.awards.len()
    };
    let label = Font::new(13.0, pal.muted);
    let name = Font::new(13.0, pal.fg).bold();
    for (i, a) in doc.awards.iter().take(shown).enumerate() {
        let mid = r.y + LINE * (i as i32 + 1) + LINE / 2;
        let value = finite(a.value)
            .map(|v| format!("  {}", num(Some(v), if v.fract() == 0.0 { 0 } else { 1 })));
        let award = fit(root, &a.award, label, 230);
        text(root, &award, r.x + 22, mid, label)?;
        let who = fit(root, &a.name, name, 200);
        text(
            root,
            &format!("{who}{}", value.unwrap_or_default()),
            r.x + 262,
            mid,
            name,
        )?;
    }
    if shown < doc.awards.len() {
        let mid = r.y + LINE * (shown as i32 + 1) + LINE / 2;
        text(
            root,
            &format!("+{} more", doc.awards.len() - shown),
            r.x + 22,
            mid,
            label,
        )?;
    }
    Ok(())
}

/// "2026-11-28T20:05:00+01:00" as "2026-11-28 20:05"; anything else as given, shortened.
fn date_time(s: &str) -> String {
    match (s.get(0..10), s.get(11..16)) {
        (Some(d), Some(t)) => format!("{d} {t}"),
        _ => s.chars().take(25).collect(),
    }
}

struct Row {
    name: String,
    team: Option<RGBColor>,
}

impl Row {
    fn of(p: &PlayerLine, pal: &Palette) -> Row {
        Row {
            name: p.name.clone(),
            team: team_color(p.team.as_deref(), pal),
        }
    }
}

fn team_color(team: Option<&str>, pal: &Palette) -> Option<RGBColor> {
    match team {
        Some("a") => Some(pal.team_a),
        Some("b") => Some(pal.team_b),
        _ => None,
    }
}

/// One value per player: a bar (with its number at the right) or only the number.
struct Column {
    header: &'static str,
    color: RGBColor,
    bar: bool,
    values: Vec<Option<f64>>,
    label: fn(Option<f64>) -> String,
}

impl Column {
    fn bar(
        header: &'static str,
        color: RGBColor,
        players: &[PlayerLine],
        value: fn(&PlayerLine) -> Option<f64>,
        label: fn(Option<f64>) -> String,
    ) -> Column {
        Column {
            header,
            color,
            bar: true,
            values: players.iter().map(|p| finite(value(p))).collect(),
            label,
        }
    }
    fn text(
        header: &'static str,
        color: RGBColor,
        players: &[PlayerLine],
        value: fn(&PlayerLine) -> Option<f64>,
        label: fn(Option<f64>) -> String,
    ) -> Column {
        Column {
            bar: false,
            ..Column::bar(header, color, players, value, label)
        }
    }
    fn max(&self) -> f64 {
        self.values.iter().flatten().fold(0.0, |m, v| m.max(*v))
    }
}

/// Width of one number column at a panel's right edge.
const VALUE_W: i32 = 62;
const NAME_X: i32 = 18;
const NAME_W: i32 = 150;

/// The x range of a panel's bars: from after the names to before the number columns.
pub(crate) fn bar_span(r: Rect, columns: usize) -> (i32, i32) {
    let x = r.x + NAME_X + NAME_W + 8;
    (x, r.right() - 10 - columns as i32 * VALUE_W - 8 - x)
}

#[allow(clippy::too_many_arguments)]
fn bar_panel(
    root: &Root,
    r: Rect,
    title: &str,
    rows: &[Row],
    columns: &[Column],
    shared_scale: bool,
    pal: &Palette,
) -> Result<(), ChartError> {
    let body = panel(root, r, title, pal)?;
    let value_right = |i: usize| r.right() - 10 - (columns.len() - 1 - i) as i32 * VALUE_W;
    for (i, c) in columns.iter().enumerate() {
        text(
            root,
            c.header,
            value_right(i),
            r.y + 18,
            Font::new(13.0, c.color).bold().right(),
        )?;
    }
    if rows.is_empty() {
        return empty_note(root, body, "no players", pal);
    }
    let shared_max = columns
        .iter()
        .filter(|c| c.bar)
        .map(Column::max)
        .fold(0.0, f64::max);
    let (bar_x, bar_w) = bar_span(r, columns.len());
    let bars = columns.iter().filter(|c| c.bar).count().max(1) as i32;
    let row_h = ((body.h - 8) / rows.len() as i32).clamp(1, 26);
    let thickness = ((row_h - 4 - (bars - 1)) / bars).max(1);
    let name_font = Font::new(f64::from((row_h - 3).clamp(8, 14)), pal.fg);
    let value_font = Font::new(f64::from((row_h - 4).clamp(8, 13)), pal.fg);
    for (i, row) in rows.iter().enumerate() {
        let y = body.y + i as i32 * row_h;
        let mid = y + row_h / 2;
        if i % 2 == 1 {
            fill(root, Rect::new(r.x + 4, y, r.w - 8, row_h), pal.stripe)?;
        }
        if let Some(team) = row.team {
            fill(root, Rect::new(r.x + 8, y + 2, 4, row_h - 4), team)?;
        }
        let name = fit(root, &row.name, name_font, NAME_W);
        text(root, &name, r.x + NAME_X, mid, name_font)?;
        let mut bar_index = 0;
        for (j, c) in columns.iter().enumerate() {
            let v = c.values.get(i).copied().flatten();
            text(
                root,
                &(c.label)(v),
                value_right(j),
                mid,
                Font {
                    color: c.color,
                    ..value_font
                }
                .right(),
            )?;
            if !c.bar {
                continue;
            }
            let max = if shared_scale { shared_max } else { c.max() };
            let len = bar_len(v, max, bar_w);
            let top = y + 2 + bar_index * (thickness + 1);
            fill(root, Rect::new(bar_x, top, len, thickness), c.color)?;
            bar_index += 1;
        }
    }
    Ok(())
}

/// Pixels for `v` on a scale whose longest bar is `max`; negative and absent values draw none.
pub(crate) fn bar_len(v: Option<f64>, max: f64, width: i32) -> i32 {
    match v {
        Some(v) if v > 0.0 && max > 0.0 => {
            ((v / max).min(1.0) * f64::from(width)).round().max(1.0) as i32
        }
        _ => 0,
    }
}

fn maps_panel(root: &Root, r: Rect, doc: &LastSession, pal: &Palette) -> Result<(), ChartError> {
    let body = panel(root, r, "Maps", pal)?;
    let won = |team: &str| {
        doc.maps
            .iter()
            .filter(|m| m.winner_team.as_deref() == Some(team))
            .count()
    };
    if !doc.maps.is_empty() {
        let score = format!("A {} : {} B", won("a"), won("b"));
        let draws = won("draw");
        let score = if draws > 0 {
            format!("{score} · {draws} draw")
        } else {
            score
        };
        text(
            root,
            &score,
            r.right() - 10,
            r.y + 18,
            Font::new(15.0, pal.fg).bold().right(),
        )?;
    }
    // The teams take the bottom lines; the maps the rows above them.
    let teams_h = 2 * 22;
    let table = Rect::new(body.x, body.y, body.w, body.h - teams_h - 8);
    let cols = [r.x + 22, r.x + 200, r.x + 262, r.x + 324];
    let head = Font::new(12.0, pal.muted);
    for (x, h) in cols.iter().zip(["map", "round 1", "round 2", "result"]) {
        text(root, h, *x, table.y + 6, head)?;
    }
    const MAP_ROW: i32 = 26;
    let rows_fit = ((table.h - 16) / MAP_ROW).max(0) as usize;
    if doc.maps.is_empty() {
        empty_note(root, table, "no maps", pal)?;
    }
    let shown = if doc.maps.len() > rows_fit {
        rows_fit.saturating_sub(1)
    } else {
        doc.maps.len()
    };
    let map_font = Font::new(14.0, pal.fg).bold();
    let cell = Font::new(14.0, pal.fg);
    for (i, m) in doc.maps.iter().take(shown).enumerate() {
        let y = table.y + 16 + i as i32 * MAP_ROW;
        let mid = y + MAP_ROW / 2;
        if i % 2 == 1 {
            fill(root, Rect::new(r.x + 4, y, r.w - 8, MAP_ROW), pal.stripe)?;
        }
        let chip = match m.winner_team.as_deref() {
            Some("draw") => Some(pal.muted),
            other => team_color(other, pal),
        };
        if let Some(chip) = chip {
            fill(root, Rect::new(r.x + 8, y + 4, 8, MAP_ROW - 8), chip)?;
        }
        text(
            root,
            &fit(root, &m.map, map_font, cols[1] - cols[0] - 8),
            cols[0],
            mid,
            map_font,
        )?;
        text(root, &clock(m.round1_time_s), cols[1], mid, cell)?;
        text(root, &clock(m.round2_time_s), cols[2], mid, cell)?;
        let result = m.result.as_deref().unwrap_or_default();
        text(
            root,
            &fit(root, result, cell, r.right() - 10 - cols[3]),
            cols[3],
            mid,
            cell,
        )?;
    }
    let mut below = table.y + 16 + shown as i32 * MAP_ROW;
    if shown < doc.maps.len() {
        let more = format!("+{} more maps", doc.maps.len() - shown);
        text(root, &more, cols[0], below + MAP_ROW / 2, head)?;
        below += MAP_ROW;
    }
    awards(
        root,
        Rect::new(r.x, below + 8, r.w, table.bottom() - below - 8),
        doc,
        pal,
    )?;
    for (i, (team, color)) in [("a", pal.team_a), ("b", pal.team_b)]
        .into_iter()
        .enumerate()
    {
        let y = body.bottom() - teams_h - 4 + i as i32 * 22;
        let names: Vec<&str> = doc
            .players
            .iter()
            .filter(|p| p.team.as_deref() == Some(team))
            .map(|p| p.name.trim())
            .collect();
        if names.is_empty() {
            continue;
        }
        fill(root, Rect::new(r.x + 8, y + 4, 8, 14), color)?;
        let line = format!("Team {}: {}", team.to_uppercase(), names.join(", "));
        let font = Font::new(13.0, pal.fg);
        text(
            root,
            &fit_chars(root, &line, font, r.w - 40, 240),
            cols[0],
            y + 11,
            font,
        )?;
    }
    Ok(())
}
