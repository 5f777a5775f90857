//! The one font every chart uses, compiled in so that a bot on a bare container (no fontconfig,
//! no fonts installed) draws the same pixels as a developer's machine.
//!
//! DejaVu Sans Condensed 2.37, from the `dejavu` crate on crates.io. Licence: the Bitstream Vera
//! Fonts licence (free to use, embed and redistribute with its notice; the name may not be reused
//! for modified fonts), DejaVu's changes are in the public domain; the full text ships in that
//! crate (assets/dejavu-fonts-ttf-2.37/LICENSE) and is summarised in docs/commands-images.md.
//! The condensed cut fits about 10% more of a long player name in the same width.

use crate::ChartError;
use plotters::style::{register_font, FontStyle};
use std::sync::OnceLock;

/// The family name the charts ask plotters for; registered once per process.
pub(crate) const FAMILY: &str = "guildstats-sans";

static REGISTERED: OnceLock<bool> = OnceLock::new();

/// Registers the font with plotters on first use. Idempotent and cheap afterwards; the bytes are
/// static, so nothing is copied.
pub(crate) fn ensure() -> Result<(), ChartError> {
    let ok = *REGISTERED.get_or_init(|| {
        register_font(FAMILY, FontStyle::Normal, dejavu::sans_condensed::regular()).is_ok()
            && register_font(FAMILY, FontStyle::Bold, dejavu::sans_condensed::bold()).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(ChartError::Render(
            "the bundled DejaVu font could not be loaded".into(),
        ))
    }
}
