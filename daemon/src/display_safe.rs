//! Text from outside (partner, campaign and claim names and ids as the
//! networks sent them) made safe to show to people: a character that
//! reorders or breaks the text around it is written as a visible escape,
//! `<U+202E>`.
//!
//! Escaped: the bidirectional formatting characters (U+061C, U+200E,
//! U+200F, U+202A–U+202E, U+2066–U+2069), the line and paragraph
//! separators (U+2028, U+2029) and the control characters (U+0000–U+001F,
//! U+007F–U+009F: newline, tab, escape...). A right-to-left override
//! (U+202E) in a partner's name makes everything after it on the line read
//! backwards, so `Acme<U+202E>00.001` could show as another partner or
//! amount; a newline would start a fake row of a text table.
//!
//! Used only where people read the text (CLI tables and warnings, HTML
//! pages). Not for CSV, JSON or anything stored: those keep the values as
//! the network sent them, for audit and for the systems that join on them.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` is written as an escape by [`visible`]: the one definition
/// in plugin-api, which also escapes these in log lines and errors
/// ([`plugin_api::validate::escape_controls`]).
pub use plugin_api::validate::is_hidden_control;

/// `s` with each character of [`is_hidden_control`] written as
/// `<U+XXXX>` (four or more upper-case hex digits); `s` itself when it has
/// none.
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_hidden_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if is_hidden_control(c) {
            let _ = write!(out, "<U+{:04X}>", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_and_control_characters_are_shown_as_escapes() {
        assert_eq!(visible("Acme\u{202E}gnp.exe"), "Acme<U+202E>gnp.exe");
        assert_eq!(
            visible("a\nb\tc\u{1b}[31m"),
            "a<U+000A>b<U+0009>c<U+001B>[31m"
        );
        for c in [
            '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}',
            '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{2028}', '\u{2029}',
            '\u{0085}', '\u{007F}', '\u{0000}',
        ] {
            let shown = visible(&format!("x{c}y")).into_owned();
            assert_eq!(shown, format!("x<U+{:04X}>y", u32::from(c)));
        }
    }

    #[test]
    fn ordinary_text_is_left_as_it_is() {
        // Right-to-left scripts, joiners and CJK are text, not controls.
        for s in [
            "Partner 12",
            "شريك",
            "שותף",
            "合作伙伴",
            "नमस्‍ते",
            "👩‍💻",
            "＝1+2",
        ] {
            assert!(matches!(visible(s), Cow::Borrowed(_)), "{s}");
        }
    }
}
