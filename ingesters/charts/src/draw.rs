//! Drawing primitives shared by the charts: an opaque canvas encoded to PNG, themed colours,
//! text placed by its visual middle, truncation to a width, number formats and axes.
//!
//! Everything is placed in absolute pixels on one root area: the layouts are simple grids, and
//! absolute positions let the snapshot tests sample known pixels.

use crate::{font, ChartError, Theme};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub(crate) type Root<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

pub(crate) fn render_err<E: std::error::Error + Send + Sync>(e: E) -> ChartError {
    ChartError::Render(e.to_string())
}

/// Colours of one theme. Both themes paint their own opaque background, so an image stays
/// readable whichever Discord theme shows it; the light one is for servers that ask for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Palette {
    pub bg: RGBColor,
    pub panel: RGBColor,
    /// Every other row of a table, so that a name can be followed to its bars.
    pub stripe: RGBColor,
    pub fg: RGBColor,
    pub muted: RGBColor,
    pub grid: RGBColor,
    pub kills: RGBColor,
    pub dpm: RGBColor,
    pub given: RGBColor,
    pub received: RGBColor,
    pub time: RGBColor,
    pub team_a: RGBColor,
    pub team_b: RGBColor,
    pub good: RGBColor,
    pub bad: RGBColor,
    pub voice: RGBColor,
    pub voice_now: RGBColor,
}

impl Palette {
    pub(crate) fn of(theme: Theme) -> Palette {
        match theme {
            Theme::Dark => Palette {
                bg: RGBColor(0x1e, 0x1f, 0x22),
                panel: RGBColor(0x2b, 0x2d, 0x31),
                stripe: RGBColor(0x32, 0x34, 0x39),
                fg: RGBColor(0xf2, 0xf3, 0xf5),
                muted: RGBColor(0xb5, 0xba, 0xc1),
                grid: RGBColor(0x45, 0x47, 0x4e),
                kills: RGBColor(0xff, 0x9f, 0x43),
                dpm: RGBColor(0x8c, 0x9e, 0xff),
                given: RGBColor(0x43, 0xc4, 0x7f),
                received: RGBColor(0xf0, 0x61, 0x6d),
                time: RGBColor(0xb4, 0x8c, 0xff),
                team_a: RGBColor(0xf7, 0xc9, 0x48),
                team_b: RGBColor(0x4f, 0xc3, 0xf7),
                good: RGBColor(0x43, 0xc4, 0x7f),
                bad: RGBColor(0xf0, 0x61, 0x6d),
                voice: RGBColor(0x58, 0x65, 0xf2),
                voice_now: RGBColor(0x8c, 0x9e, 0xff),
            },
            Theme::Light => Palette {
                bg: RGBColor(0xe3, 0xe5, 0xe8),
                panel: RGBColor(0xff, 0xff, 0xff),
                stripe: RGBColor(0xf2, 0xf3, 0xf5),
                fg: RGBColor(0x1f, 0x21, 0x24),
                muted: RGBColor(0x4e, 0x50, 0x58),
                grid: RGBColor(0xd4, 0xd7, 0xdc),
                kills: RGBColor(0xe6, 0x77, 0x00),
                dpm: RGBColor(0x4c, 0x5f, 0xd5),
                given: RGBColor(0x1f, 0x9d, 0x57),
                received: RGBColor(0xd9, 0x3a, 0x49),
                time: RGBColor(0x7e, 0x4f, 0xd8),
                team_a: RGBColor(0xc9, 0x9a, 0x00),
                team_b: RGBColor(0x02, 0x88, 0xd1),
                good: RGBColor(0x1f, 0x9d, 0x57),
                bad: RGBColor(0xd9, 0x3a, 0x49),
                voice: RGBColor(0x58, 0x65, 0xf2),
                voice_now: RGBColor(0x34, 0x3e, 0xb8),
            },
        }
    }
}

/// A rectangle in pixels: left, top, width, height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rect {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

impl Rect {
    pub(crate) fn new(x: i32, y: i32, w: i32, h: i32) -> Rect {
        Rect {
            x,
            y,
            w: w.max(0),
            h: h.max(0),
        }
    }
    pub(crate) fn right(&self) -> i32 {
        self.x + self.w
    }
    pub(crate) fn bottom(&self) -> i32 {
        self.y + self.h
    }
}

/// Draws into an opaque `width` x `height` RGB canvas and returns it as a PNG.
pub(crate) fn render_png(
    width: u32,
    height: u32,
    theme: Theme,
    draw: impl FnOnce(&Root, &Palette) -> Result<(), ChartError>,
) -> Result<Vec<u8>, ChartError> {
    font::ensure()?;
    let palette = Palette::of(theme);
    let mut buf = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        root.fill(&palette.bg).map_err(render_err)?;
        draw(&root, &palette)?;
        root.present().map_err(render_err)?;
    }
    encode_png(&buf, width, height)
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, ChartError> {
    // The fast level: for the 24-player image 10 ms and ~300 KB, against 50 ms and ~170 KB at
    // "balanced" (chart_render in the bench crate); the render time is the bot's to keep.
    let mut out = Vec::with_capacity(rgb.len() / 8);
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(render_err)?;
    writer.write_image_data(rgb).map_err(render_err)?;
    writer.finish().map_err(render_err)?;
    Ok(out)
}

pub(crate) fn fill(root: &Root, r: Rect, color: RGBColor) -> Result<(), ChartError> {
    if r.w <= 0 || r.h <= 0 {
        return Ok(());
    }
    root.draw(&Rectangle::new(
        [(r.x, r.y), (r.right() - 1, r.bottom() - 1)],
        color.filled(),
    ))
    .map_err(render_err)
}

pub(crate) fn line(
    root: &Root,
    from: (i32, i32),
    to: (i32, i32),
    color: RGBColor,
    width: u32,
) -> Result<(), ChartError> {
    root.draw(&PathElement::new(vec![from, to], color.stroke_width(width)))
        .map_err(render_err)
}

/// How a piece of text looks: size in pixels, weight, colour and horizontal anchor.
#[derive(Clone, Copy)]
pub(crate) struct Font {
    pub size: f64,
    pub bold: bool,
    pub color: RGBColor,
    pub align: HPos,
}

impl Font {
    pub(crate) fn new(size: f64, color: RGBColor) -> Font {
        Font {
            size,
            bold: false,
            color,
            align: HPos::Left,
        }
    }
    pub(crate) fn bold(self) -> Font {
        Font { bold: true, ..self }
    }
    pub(crate) fn right(self) -> Font {
        Font {
            align: HPos::Right,
            ..self
        }
    }
    pub(crate) fn center(self) -> Font {
        Font {
            align: HPos::Center,
            ..self
        }
    }
    fn style(&self) -> TextStyle<'static> {
        let style = if self.bold {
            FontStyle::Bold
        } else {
            FontStyle::Normal
        };
        TextStyle {
            font: FontDesc::new(FontFamily::Name(font::FAMILY), self.size, style),
            color: self.color.to_backend_color(),
            pos: Pos::new(self.align, VPos::Top),
        }
    }
}

/// Draws `s` with the middle of its capitals on `mid_y`. plotters' ab_glyph text puts the
/// baseline half a size below the anchor whatever VPos says, so the anchor is set from the
/// baseline: capitals of DejaVu rise 0.73 size above it.
pub(crate) fn text(root: &Root, s: &str, x: i32, mid_y: i32, font: Font) -> Result<(), ChartError> {
    if s.is_empty() {
        return Ok(());
    }
    let baseline = mid_y as f64 + 0.365 * font.size;
    let top = (baseline - 0.5 * font.size).round() as i32;
    root.draw_text(s, &font.style(), (x, top))
        .map_err(render_err)
}

pub(crate) fn text_width(root: &Root, s: &str, font: Font) -> i32 {
    root.estimate_text_size(s, &font.style())
        .map(|(w, _)| w.min(i32::MAX as u32) as i32)
        .unwrap_or(i32::MAX)
}

/// Longest names kept before measuring: no chart shows more than this many characters, and
/// measuring a 500-character name glyph by glyph repeatedly would be wasted time.
const MAX_CHARS: usize = 60;

/// `s` without control characters, shortened with an ellipsis to fit `max_w` pixels.
pub(crate) fn fit(root: &Root, s: &str, font: Font, max_w: i32) -> String {
    fit_chars(root, s, font, max_w, MAX_CHARS)
}

/// `fit` for lines longer than a name (a team's names joined), at most `max_chars` characters.
pub(crate) fn fit_chars(root: &Root, s: &str, font: Font, max_w: i32, max_chars: usize) -> String {
    let chars: Vec<char> = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max_chars + 1)
        .collect();
    let whole: String = chars.iter().take(max_chars).collect();
    let whole = whole.trim();
    if chars.len() <= max_chars && text_width(root, whole, font) <= max_w {
        return whole.to_string();
    }
    // The longest prefix that fits with its ellipsis, by bisection on the character count.
    let (mut lo, mut hi) = (0usize, chars.len().min(max_chars));
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let candidate: String = chars[..mid].iter().collect::<String>() + "…";
        if text_width(root, &candidate, font) <= max_w {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    if lo == 0 {
        return String::new();
    }
    chars[..lo]
        .iter()
        .collect::<String>()
        .trim_end()
        .to_string()
        + "…"
}

/// A finite value or nothing: NaN and infinities from a typed caller read as absent.
pub(crate) fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

/// A number for a label: `decimals` places below ten thousand, then k/M/G, then scientific, so
/// that no value, however large, makes a label wider than a few characters.
pub(crate) fn num(v: Option<f64>, decimals: usize) -> String {
    let Some(v) = finite(v) else {
        return "–".into();
    };
    let a = v.abs();
    if a >= 1e12 {
        format!("{v:.1e}")
    } else if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e5 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e4 {
        format!("{v:.0}")
    } else {
        // Half away from zero, as people round (format! rounds 2.25 to "2.2").
        let scale = 10f64.powi(decimals.min(6) as i32);
        let rounded = (v * scale).round() / scale;
        // No "-0.0" for a tiny negative.
        let rounded = if rounded == 0.0 { 0.0 } else { rounded };
        format!("{rounded:.decimals$}")
    }
}

/// Seconds as "1h 05m" or "42m", for time played.
pub(crate) fn duration(secs: Option<f64>) -> String {
    let Some(s) = finite(secs).filter(|s| *s >= 0.0) else {
        return "–".into();
    };
    if s >= 360_000.0 {
        return format!("{}h", num(Some(s / 3600.0), 0));
    }
    let minutes = (s / 60.0).round() as u64;
    if minutes >= 60 {
        format!("{}h {:02}m", minutes / 60, minutes % 60)
    } else {
        format!("{minutes}m")
    }
}

/// Seconds as "9:05", for a stopwatch time.
pub(crate) fn clock(secs: Option<f64>) -> String {
    let Some(s) = finite(secs).filter(|s| *s >= 0.0 && *s < 360_000.0) else {
        return "–".into();
    };
    let s = s.round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

/// "2026-10-05" (or a timestamp starting so) as "Oct 05"; anything else as given, shortened.
pub(crate) fn short_date(s: Option<&str>) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let Some(s) = s else {
        return String::new();
    };
    let month = s.get(5..7).and_then(|m| m.parse::<usize>().ok());
    let day = s
        .get(8..10)
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
    match (month, day) {
        (Some(m @ 1..=12), Some(d)) if s.as_bytes().get(4) == Some(&b'-') => {
            format!("{} {d}", MONTHS[m - 1])
        }
        _ => s.chars().take(10).collect(),
    }
}

/// A y axis from zero: the top tick and the step, four or five round steps.
pub(crate) fn ticks(max: f64) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / 4.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let top = (max / step).ceil() * step;
    if step.is_finite() && step > 0.0 && top.is_finite() && top > 0.0 {
        (top, step)
    } else {
        (1.0, 0.25)
    }
}

/// Panel background and bold title; returns the area below the title.
pub(crate) fn panel(root: &Root, r: Rect, title: &str, pal: &Palette) -> Result<Rect, ChartError> {
    fill(root, r, pal.panel)?;
    let font = Font::new(17.0, pal.fg).bold();
    let title = fit(root, title, font, r.w - 24);
    text(root, &title, r.x + 12, r.y + 18, font)?;
    Ok(Rect::new(r.x, r.y + 36, r.w, r.h - 36))
}

/// A muted sentence in the middle of an area that has nothing to show.
pub(crate) fn empty_note(
    root: &Root,
    r: Rect,
    note: &str,
    pal: &Palette,
) -> Result<(), ChartError> {
    let font = Font::new(15.0, pal.muted).center();
    let note = fit(root, note, font, r.w - 20);
    text(root, &note, r.x + r.w / 2, r.y + r.h / 2, font)
}

/// A vertical chart inside `area`: horizontal grid lines with their labels on the left, from 0
/// to the rounded-up maximum. Returns the plot rectangle and the scale.
pub(crate) struct Axis {
    pub plot: Rect,
    pub top: f64,
}

impl Axis {
    pub(crate) fn draw(
        root: &Root,
        area: Rect,
        max: f64,
        decimals: usize,
        pal: &Palette,
    ) -> Result<Axis, ChartError> {
        let (top, step) = ticks(max);
        let plot = Rect::new(area.x + 64, area.y + 10, area.w - 64 - 16, area.h - 10 - 30);
        let axis = Axis { plot, top };
        let font = Font::new(12.0, pal.muted).right();
        let steps = (top / step).round().clamp(1.0, 12.0) as i32;
        for i in 0..=steps {
            let v = step * f64::from(i);
            let y = axis.y(v);
            line(root, (plot.x, y), (plot.right(), y), pal.grid, 1)?;
            text(
                root,
                &num(Some(v), decimals_for(step, decimals)),
                plot.x - 8,
                y,
                font,
            )?;
        }
        Ok(axis)
    }

    /// The pixel row of value `v`, clamped to the plot.
    pub(crate) fn y(&self, v: f64) -> i32 {
        let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
        let frac = (v / self.top).min(1.0);
        self.plot.bottom() - (frac * f64::from(self.plot.h)).round() as i32
    }

    /// The centre and width of slot `i` of `n` equal slots across the plot.
    pub(crate) fn slot(&self, i: usize, n: usize) -> (i32, i32) {
        let n = n.max(1) as i32;
        let w = self.plot.w / n;
        (self.plot.x + w * i as i32 + w / 2, w)
    }

    /// A bar of slot `(x, slot_w)` from `top_y` down to the plot's floor, three fifths of the
    /// slot wide so that neighbours keep a gap.
    pub(crate) fn column(
        &self,
        root: &Root,
        (x, slot_w): (i32, i32),
        top_y: i32,
        color: RGBColor,
    ) -> Result<(), ChartError> {
        let bar_w = (slot_w * 3 / 5).max(1);
        let floor = self.plot.bottom();
        fill(
            root,
            Rect::new(x - bar_w / 2, top_y, bar_w, floor - top_y),
            color,
        )
    }
}

/// One label under each slot, skipping some when the slots are narrower than a label.
pub(crate) fn x_labels(
    root: &Root,
    axis: &Axis,
    labels: &[String],
    pal: &Palette,
) -> Result<(), ChartError> {
    let n = labels.len();
    let (_, slot_w) = axis.slot(0, n);
    let every = (52 / slot_w.max(1) + 1) as usize;
    let font = Font::new(12.0, pal.muted).center();
    // The newest slot is the one people look for, so the skipping counts back from it.
    for (i, label) in labels
        .iter()
        .enumerate()
        .filter(|(i, _)| (n - 1 - i).is_multiple_of(every))
    {
        let (x, w) = axis.slot(i, n);
        let label = fit(root, label, font, (w * every as i32 - 4).max(8));
        text(root, &label, x, axis.plot.bottom() + 14, font)?;
    }
    Ok(())
}

/// Tick labels need decimals only when the step is fractional.
fn decimals_for(step: f64, wanted: usize) -> usize {
    if step.fract().abs() < 1e-9 {
        0
    } else if (step * 10.0).fract().abs() < 1e-9 {
        wanted.max(1)
    } else {
        wanted.max(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_maximum() {
        assert_eq!(ticks(9.0), (10.0, 2.5));
        assert_eq!(ticks(100.0), (100.0, 25.0));
        assert_eq!(ticks(3.2), (4.0, 1.0));
        assert_eq!(ticks(0.0), (1.0, 0.25));
        assert_eq!(ticks(f64::NAN), (1.0, 0.25));
        let (top, step) = ticks(1e300);
        assert!(top >= 1e300 && step > 0.0 && (top / step) <= 5.0);
        let (top, step) = ticks(f64::MIN_POSITIVE / 4.0);
        assert!(top > 0.0 && step > 0.0);
    }

    #[test]
    fn numbers_stay_short() {
        assert_eq!(num(Some(1.234), 2), "1.23");
        assert_eq!(num(Some(2.25), 1), "2.3");
        assert_eq!(num(Some(-0.04), 1), "0.0");
        assert_eq!(num(Some(12345.0), 0), "12345");
        assert_eq!(num(Some(123456.0), 0), "123k");
        assert_eq!(num(Some(2.5e6), 0), "2.5M");
        assert_eq!(num(Some(1e300), 0), "1.0e300");
        assert_eq!(num(Some(f64::NAN), 0), "–");
        assert_eq!(num(None, 0), "–");
    }

    #[test]
    fn fit_cuts_to_the_width_with_an_ellipsis() {
        font::ensure().unwrap();
        let mut buf = vec![0u8; 10 * 10 * 3];
        let root = BitMapBackend::with_buffer(&mut buf, (10, 10)).into_drawing_area();
        let font = Font::new(14.0, RGBColor(0, 0, 0));
        assert_eq!(fit(&root, "  Rook  ", font, 150), "Rook");
        assert_eq!(fit(&root, "tab\there", font, 150), "tab here");
        let long = "W".repeat(500);
        let cut = fit(&root, &long, font, 150);
        assert!(cut.ends_with('…') && cut.chars().count() > 5, "{cut}");
        assert!(text_width(&root, &cut, font) <= 150);
        // One more character would not have fitted.
        let longer = "W".repeat(cut.chars().count()) + "…";
        assert!(text_width(&root, &longer, font) > 150);
        // Short enough in pixels but over the character cap: still cut.
        let dots = ".".repeat(MAX_CHARS + 5);
        assert!(fit(&root, &dots, font, 10_000).ends_with('…'));
        assert_eq!(fit(&root, "anything", font, 2), "");
    }

    #[test]
    fn durations_and_dates() {
        assert_eq!(duration(Some(1800.0)), "30m");
        assert_eq!(duration(Some(3900.0)), "1h 05m");
        assert_eq!(duration(Some(-1.0)), "–");
        assert_eq!(duration(Some(1e300)), "2.8e296h");
        assert_eq!(clock(Some(545.0)), "9:05");
        assert_eq!(short_date(Some("2026-10-05")), "Oct 05");
        assert_eq!(short_date(Some("2026-11-28T20:05:00+01:00")), "Nov 28");
        assert_eq!(short_date(Some("week 3")), "week 3");
        assert_eq!(short_date(Some("2026-1é-05")), "2026-1é-05");
    }
}
