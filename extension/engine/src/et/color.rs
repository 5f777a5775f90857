//! ET:Legacy colour codes.
//!
//! The engine treats `^` followed by any character other than `^` (and NUL) as a colour code:
//! `^1`, `^a`, but also `^/`, `^?` or `^:`. A clean name drops every such pair. A `^` that is
//! followed by another `^`, or that ends the string, is an ordinary character.

/// The name without colour codes, as players see it in game.
///
/// ```
/// use guildstats_engine::et::color::strip_color_codes;
/// assert_eq!(strip_color_codes("^/fnx^d NO MERCY"), "fnx NO MERCY");
/// assert_eq!(strip_color_codes("a^^1b"), "a^b");
/// ```
pub fn strip_color_codes(name: &str) -> String {
    let mut clean = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '^' {
            if let Some(&next) = chars.peek() {
                if next != '^' && next != '\0' {
                    chars.next();
                    continue;
                }
            }
        }
        clean.push(c);
    }
    clean
}

/// True when the name contains at least one colour code.
pub fn has_color_codes(name: &str) -> bool {
    strip_color_codes(name).len() != name.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_letters_digits_and_punctuation_codes() {
        assert_eq!(strip_color_codes("^1Red^7White"), "RedWhite");
        // Five codes (^D ^4 ^? ^z ^P) leave three slashes.
        assert_eq!(
            strip_color_codes("^D/^4/^?/^zM.^PDemonslayer"),
            "///M.Demonslayer"
        );
        assert_eq!(
            strip_color_codes("^a#^7p^au^7rans^a.^7only"),
            "#purans.only"
        );
    }

    #[test]
    fn caret_pairs_and_trailing_caret_stay() {
        assert_eq!(strip_color_codes("^^"), "^^");
        assert_eq!(strip_color_codes("x^"), "x^");
        // The first caret of "^^1" is literal; the second starts the code "^1".
        assert_eq!(strip_color_codes("^^1a"), "^a");
    }

    #[test]
    fn multibyte_characters_after_a_caret_are_one_code() {
        assert_eq!(strip_color_codes("^éname"), "name");
        assert_eq!(strip_color_codes("ñ^1ñ"), "ññ");
    }

    #[test]
    fn empty_and_plain_names_are_unchanged() {
        assert_eq!(strip_color_codes(""), "");
        assert_eq!(strip_color_codes("plain name"), "plain name");
        assert!(!has_color_codes("plain name"));
        assert!(has_color_codes("^1x"));
    }
}
