//! Click ids and UTM fields from URL query strings and name/value pairs.
//!
//! Shared by the Shopify parser (`landing_site`, `note_attributes`) and the
//! file parser (`click_ids`, `utm_*` columns). Pure string work, no I/O.

use crate::config::Settings;
use plugin_api::Utm;

/// Click ids and UTM fields collected from several places, first value wins
/// for UTM, click ids deduplicated in order of appearance.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Attribution {
    /// Click ids, deduplicated.
    pub click_ids: Vec<String>,
    /// UTM fields.
    pub utm: Utm,
}

impl Attribution {
    /// Adds one parameter: a click id, a `utm_*` field, or something ignored.
    pub fn add(&mut self, settings: &Settings, name: &str, value: &str) {
        let value = value.trim();
        if value.is_empty() {
            return;
        }
        let name = name.trim();
        if settings.is_click_param(name) {
            self.add_click_id(value);
            return;
        }
        let slot = match name.to_ascii_lowercase().as_str() {
            "utm_source" => &mut self.utm.source,
            "utm_medium" => &mut self.utm.medium,
            "utm_campaign" => &mut self.utm.campaign,
            "utm_content" => &mut self.utm.content,
            "utm_term" => &mut self.utm.term,
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(value.to_owned());
        }
    }

    /// Adds a click id unless already present.
    pub fn add_click_id(&mut self, value: &str) {
        let value = value.trim();
        if !value.is_empty() && !self.click_ids.iter().any(|c| c == value) {
            self.click_ids.push(value.to_owned());
        }
    }

    /// Adds every parameter of a URL or path's query string
    /// (`/products/x?utm_source=a&gclid=b#frag`).
    pub fn add_url(&mut self, settings: &Settings, url: &str) {
        let Some((_, query)) = url.split_once('?') else {
            return;
        };
        let query = query.split('#').next().unwrap_or("");
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            self.add(settings, &percent_decode(k), &percent_decode(v));
        }
    }
}

/// Decodes `%XX` escapes and `+` (form encoding) leniently: a malformed
/// escape is kept as text, invalid UTF-8 is replaced.
pub fn percent_decode(s: &str) -> String {
    if !s.contains(['%', '+']) {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;

    fn settings() -> Settings {
        Settings {
            mode: Mode::Shopify,
            base_url: None,
            page_size: 250,
            max_throttle_retries: 3,
            click_id_params: vec!["sub_id".into()],
            directory: None,
            default_currency: None,
        }
    }

    #[test]
    fn landing_site_query_gives_click_ids_and_utm() {
        let mut a = Attribution::default();
        a.add_url(
            &settings(),
            "/products/tee?utm_source=impact&utm_medium=affiliate&irclickid=Q%2Fx1&GCLID=g+1&sub_id=s9&x=1#top",
        );
        assert_eq!(a.click_ids, ["Q/x1", "g 1", "s9"]);
        assert_eq!(a.utm.source.as_deref(), Some("impact"));
        assert_eq!(a.utm.medium.as_deref(), Some("affiliate"));
        assert_eq!(a.utm.campaign, None);
    }

    #[test]
    fn malformed_escapes_are_kept_not_panicked_on() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }
}
