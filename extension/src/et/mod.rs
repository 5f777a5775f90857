//! ET:Legacy functions in SQL.

use pgrx::prelude::*;

/// `et_clean_name(name)`: the player name without ET:Legacy colour codes.
#[pg_extern(immutable, parallel_safe, strict)]
fn et_clean_name(name: &str) -> String {
    guildstats_engine::et::color::strip_color_codes(name)
}

extension_sql!(
    r#"
COMMENT ON FUNCTION et_clean_name(text) IS
    'The ET:Legacy name without colour codes: every ^ followed by another character than ^ is dropped with that character. Example: SELECT guildstats.et_clean_name(''^1Red^7Fox'') returns RedFox.';
"#,
    name = "et_clean_name_comment",
    requires = [et_clean_name]
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn clean_name_strips_every_colour_code() {
        let clean =
            Spi::get_one::<String>("SELECT guildstats.et_clean_name('^D/^4/^?/^zM.^PDemonslayer')")
                .expect("SPI");
        assert_eq!(clean.as_deref(), Some("///M.Demonslayer"));
    }
}
