//! The host's checks of a plugin's manifest, made when the library is loaded
//! (`plugins check`, `config check`, `sync`, `run`) and by
//! [`crate::testing::FakeHost`], so a plugin's own tests meet them: what
//! the rest of the daemon relies on. A manifest failing one is refused with the reason
//! (`<file>: manifest: <reason>`), so a developer's mistake is named at
//! load time instead of showing up later as a refused setting, a refused
//! request or records counted where they do not belong.
//!
//! - `id`: lower-case letters, digits and `_`;
//! - `streams`: at least one, names non-empty and unique, each holding the
//!   record type of the plugin's `kind` (QA42a A-M1: an affiliate plugin
//!   whose stream declared orders passed every check, and its claims were
//!   counted as the shop's orders);
//! - `config_schema`: an object of the JSON Schema subset the settings
//!   validator (the daemon's `config::schema`) reads, each keyword of the
//!   right shape (a `pattern` compiles as the host's `pattern` check says)
//!   (QA42a A-L1: `{"type": "nonsense", "properties": 5}` was accepted, and
//!   `config check` then blamed the user's settings);
//! - `allowed_hosts`: host names, no wildcards, schemes, ports or paths
//!   (QA42a A-L2: `"*"` and `""` were accepted and never matched anything);
//! - `auth`: the settings it names are declared secrets
//!   ([`crate::validate::auth_settings`], QA7 F2, F3);
//! - `max_history_days`, when given, is at least 1 (0 would leave no day
//!   a scheduled run may read).
//!
//! What this is not: no check of a connector's settings against the schema
//! (that is `config::schema`), nor of what a plugin emits (`session`).

use crate::protocol::{Manifest, PluginKind, RecordKind};
use serde_json::Value;

/// Why a `pattern` of a settings schema is not a regular expression the
/// host reads (none: it is one). The daemon compiles it with its regex
/// engine; [`crate::testing::FakeHost`], without one, accepts any string.
pub type PatternCheck<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Sanity checks on a manifest that the host relies on (see the module
/// doc), `pattern` judging each settings `pattern`. The error names the
/// field and what to do.
pub fn check(m: &Manifest, pattern: PatternCheck<'_>) -> Result<(), String> {
    if m.id.is_empty()
        || !m
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!(
            "`id` `{}` must be non-empty lower-case letters, digits and `_`",
            m.id
        ));
    }
    if m.streams.is_empty() {
        return Err("`streams` is empty: a plugin must declare at least one stream".into());
    }
    let mut names = std::collections::BTreeSet::new();
    for s in &m.streams {
        if s.name.is_empty() || !names.insert(s.name.as_str()) {
            return Err(format!("stream name `{}` is empty or repeated", s.name));
        }
    }
    let wanted = record_of(m.kind);
    if let Some(s) = m.streams.iter().find(|s| s.record != wanted) {
        return Err(format!(
            "plugin `{}` is of kind `{}`, whose streams hold {} records, but its stream `{}` declares {} records: \
             a plugin produces one record type, and the daemon files its records by its kind. Declare the stream \
             with `record: RecordKind::{wanted:?}`, or, if the plugin does produce {}, set `kind: PluginKind::{:?}`",
            m.id,
            kind_name(m.kind),
            wanted.as_str(),
            s.name,
            s.record.as_str(),
            s.record.as_str(),
            kind_of(s.record),
        ));
    }
    if !m.config_schema.is_object() {
        return Err("`config_schema` is not a JSON object".into());
    }
    if let Some(t) = m.config_schema.get("type") {
        let object = match t {
            Value::String(t) => t == "object",
            Value::Array(a) => a.iter().any(|t| t == "object"),
            _ => false,
        };
        if !object {
            return Err(format!(
                "`config_schema.type` is {t}: a connector's settings are a table; make it \"object\" (or leave it out)"
            ));
        }
    }
    schema_problem(&m.config_schema, "config_schema", pattern).map_or(Ok(()), Err)?;
    for h in &m.allowed_hosts {
        if let Some(why) = host_problem(h) {
            return Err(format!(
                "`allowed_hosts` entry {h:?} {why}: each entry is one exact host name, such as \
                 \"api.example.net\", allowed over https on port 443; list every host the plugin calls \
                 (the configured base_url's host is allowed without an entry)"
            ));
        }
    }
    if m.max_history_days == Some(0) {
        return Err(
            "`max_history_days` is 0, which would leave no day to read: give the number of days \
             back the platform serves (e.g. 365 for \"only the prior 365 days\"), or None when \
             it has no such limit"
                .into(),
        );
    }
    // The settings `auth` names exist and hold secrets (QA7 F2, F3).
    crate::validate::auth_settings(m)
}

/// The record type a plugin of `kind` produces.
fn record_of(kind: PluginKind) -> RecordKind {
    match kind {
        PluginKind::AdNetwork => RecordKind::Spend,
        PluginKind::Affiliate => RecordKind::Conversion,
        PluginKind::Orders => RecordKind::Order,
    }
}

/// The kind of plugin that produces `record`.
fn kind_of(record: RecordKind) -> PluginKind {
    match record {
        RecordKind::Spend => PluginKind::AdNetwork,
        RecordKind::Conversion => PluginKind::Affiliate,
        RecordKind::Order => PluginKind::Orders,
    }
}

/// `kind` as the manifest's JSON spells it.
fn kind_name(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::AdNetwork => "ad_network",
        PluginKind::Affiliate => "affiliate",
        PluginKind::Orders => "orders",
    }
}

/// JSON Schema's type names.
const TYPES: [&str; 7] = [
    "null", "boolean", "integer", "number", "string", "array", "object",
];

/// What JSON holds, in words.
fn found(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// The first thing wrong with the schema `s` at `at` (its path inside the
/// manifest, `config_schema.properties.api_key`), for the keywords the
/// settings validator reads (`config::schema`); other keywords are left
/// alone, as JSON Schema ignores keywords it does not know.
fn schema_problem(s: &Value, at: &str, pattern: PatternCheck<'_>) -> Option<String> {
    let Some(map) = s.as_object() else {
        return Some(format!(
            "`{at}` must be a schema (a JSON object), found {}",
            found(s)
        ));
    };
    let bad = |key: &str, what: &str, v: &Value| {
        Some(format!("`{at}.{key}` must be {what}, found {}", found(v)))
    };
    for (key, v) in map {
        let wrong = match key.as_str() {
            "type" => {
                let names: Vec<&Value> = match v {
                    Value::Array(a) if !a.is_empty() => a.iter().collect(),
                    _ => vec![v],
                };
                names
                    .into_iter()
                    .find(|t| !t.as_str().is_some_and(|t| TYPES.contains(&t)))
                    .map(|t| {
                        format!(
                            "`{at}.type` must be a JSON Schema type ({}) or a non-empty array of them, found {}",
                            TYPES.join(", "),
                            found(t)
                        )
                    })
            }
            "properties" => match v {
                Value::Object(props) => props.iter().find_map(|(name, p)| {
                    schema_problem(p, &format!("{at}.properties.{name}"), pattern)
                }),
                _ => bad(
                    key,
                    "an object mapping each setting's name to its schema",
                    v,
                ),
            },
            "required" => match v {
                Value::Array(a) if a.iter().all(Value::is_string) => None,
                _ => bad(key, "an array of setting names (strings)", v),
            },
            "additionalProperties" => match v {
                Value::Bool(_) => None,
                _ => schema_problem(v, &format!("{at}.{key}"), pattern),
            },
            "items" | "if" | "then" | "else" => schema_problem(v, &format!("{at}.{key}"), pattern),
            "allOf" => match v {
                Value::Array(all) => all
                    .iter()
                    .enumerate()
                    .find_map(|(i, sub)| schema_problem(sub, &format!("{at}.allOf[{i}]"), pattern)),
                _ => bad(key, "an array of schemas", v),
            },
            "enum" => match v {
                Value::Array(a) if !a.is_empty() => None,
                _ => bad(key, "a non-empty array of the allowed values", v),
            },
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => match v {
                Value::Number(_) => None,
                _ => bad(key, "a number", v),
            },
            "minLength" | "maxLength" | "minItems" | "maxItems" => match v {
                Value::Number(n) if n.is_u64() => None,
                _ => bad(key, "a whole number, 0 or more", v),
            },
            "pattern" => match v {
                Value::String(p) => pattern(p).map(|e| {
                    format!("`{at}.pattern` {p:?} is not a valid regular expression: {e}")
                }),
                _ => bad(key, "a regular expression (a string)", v),
            },
            "format" | "description" => match v {
                Value::String(_) => None,
                _ => bad(key, "a string", v),
            },
            "x-secret" => match v {
                Value::Bool(_) => None,
                _ => bad(key, "true or false", v),
            },
            _ => None,
        };
        if wrong.is_some() {
            return wrong;
        }
    }
    None
}

/// Why `h` is not a host name `allowed_hosts` can hold: letters, digits,
/// `-` and `.` in non-empty labels (an IPv4 address is one), or an IPv6
/// address in brackets, as a URL's host is written.
fn host_problem(h: &str) -> Option<&'static str> {
    if h.is_empty() {
        return Some("is empty");
    }
    if h.contains('*') {
        return Some("is a wildcard, and allowed hosts have none");
    }
    if h.contains("://") || h.contains('/') {
        return Some("is a URL, not a host name (write the host alone, without scheme or path)");
    }
    if let Some(inner) = h.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .is_err()
            .then_some("is not an IPv6 address in brackets");
    }
    if h.contains(':') {
        return Some("has a port or is an IPv6 address without brackets (only port 443 is allowed; write an IPv6 address as [::1])");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if h.len() > 253 || !h.split('.').all(label_ok) {
        return Some("is not a host name (letters, digits and `-`, in labels separated by `.`; an internationalised name in its `xn--` form)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`check`] with a pattern check that refuses an unclosed group, as
    /// a regex engine would.
    fn check_manifest(m: &Manifest) -> Result<(), String> {
        check(m, &|p| {
            p.contains("([").then(|| "unclosed group".to_owned())
        })
    }
    use serde_json::json;

    fn manifest() -> Manifest {
        serde_json::from_value(json!({
            "id": "acmeaff", "name": "n", "version": "1", "kind": "affiliate",
            "description": "d",
            "config_schema": { "type": "object", "properties": {
                "api_token": { "type": "string", "x-secret": true },
                "per_page": { "type": "integer", "minimum": 1, "maximum": 500 }
            }, "required": ["api_token"], "additionalProperties": false },
            "streams": [{ "name": "transactions", "record": "conversion",
                "primary_key": ["external_id"], "cursor": null, "default_lookback_days": 1 }],
            "allowed_hosts": ["api.acmeaff.example", "127.0.0.1", "[::1]"],
            "default_base_url": null,
            "auth": { "scheme": "bearer", "token": "api_token" },
            "max_window_days": null
        }))
        .unwrap()
    }

    #[test]
    fn a_sound_manifest_passes() {
        assert_eq!(check_manifest(&manifest()), Ok(()));
        // An empty schema is a schema.
        let m = Manifest {
            config_schema: json!({}),
            auth: None,
            ..manifest()
        };
        assert_eq!(check_manifest(&m), Ok(()));
    }

    /// QA42a A-M1: kind `affiliate` with a stream of orders passed every
    /// check, and its claims were counted as the shop's orders.
    #[test]
    fn a_stream_whose_record_type_is_not_the_plugins_kinds_is_refused() {
        let mut m = manifest();
        m.streams[0].record = RecordKind::Order;
        assert_eq!(
            check_manifest(&m).unwrap_err(),
            "plugin `acmeaff` is of kind `affiliate`, whose streams hold conversions records, but its stream \
             `transactions` declares orders records: a plugin produces one record type, and the daemon files its \
             records by its kind. Declare the stream with `record: RecordKind::Conversion`, or, if the plugin does \
             produce orders, set `kind: PluginKind::Orders`"
        );
        // The other way round, and for spend.
        let mut m = manifest();
        m.kind = PluginKind::Orders;
        let e = check_manifest(&m).unwrap_err();
        assert!(e.starts_with("plugin `acmeaff` is of kind `orders`, whose streams hold orders records, but its stream `transactions` declares conversions records"), "{e}");
        assert!(e.ends_with("set `kind: PluginKind::Affiliate`"), "{e}");
        let mut m = manifest();
        m.kind = PluginKind::AdNetwork;
        assert!(check_manifest(&m)
            .unwrap_err()
            .contains("with `record: RecordKind::Spend`"));
    }

    /// QA42a A-L1: `{"type": "nonsense", "properties": 5}` was accepted.
    #[test]
    fn a_config_schema_that_is_not_a_schema_is_refused_naming_the_keyword() {
        let with = |schema: Value| {
            check_manifest(&Manifest {
                config_schema: schema,
                auth: None,
                ..manifest()
            })
        };
        assert_eq!(
            with(json!({"type": "nonsense", "properties": 5})).unwrap_err(),
            "`config_schema.type` is \"nonsense\": a connector's settings are a table; make it \"object\" (or leave it out)"
        );
        assert_eq!(
            with(json!({"type": "object", "properties": 5})).unwrap_err(),
            "`config_schema.properties` must be an object mapping each setting's name to its schema, found the number 5"
        );
        assert_eq!(
            with(json!({"properties": {"per_page": {"type": "int"}}})).unwrap_err(),
            "`config_schema.properties.per_page.type` must be a JSON Schema type (null, boolean, integer, number, \
             string, array, object) or a non-empty array of them, found the string \"int\""
        );
        assert_eq!(
            with(json!({"properties": {"per_page": "integer"}})).unwrap_err(),
            "`config_schema.properties.per_page` must be a schema (a JSON object), found the string \"integer\""
        );
        let cases = [
            (
                json!({"required": "api_token"}),
                "`config_schema.required` must be an array of setting names",
            ),
            (
                json!({"additionalProperties": "no"}),
                "`config_schema.additionalProperties` must be a schema",
            ),
            (
                json!({"properties": {"a": {"minimum": "1"}}}),
                "`config_schema.properties.a.minimum` must be a number, found the string \"1\"",
            ),
            (
                json!({"properties": {"a": {"maxLength": -1}}}),
                "`config_schema.properties.a.maxLength` must be a whole number",
            ),
            (
                json!({"properties": {"a": {"pattern": "(["}}}),
                "`config_schema.properties.a.pattern` \"([\" is not a valid regular expression",
            ),
            (
                json!({"properties": {"a": {"enum": []}}}),
                "`config_schema.properties.a.enum` must be a non-empty array",
            ),
            (
                json!({"properties": {"a": {"x-secret": "yes"}}}),
                "`config_schema.properties.a.x-secret` must be true or false",
            ),
            (
                json!({"properties": {"a": {"type": "array", "items": 3}}}),
                "`config_schema.properties.a.items` must be a schema",
            ),
            (
                json!({"allOf": [{"if": {"properties": {"m": {"const": 1}}}, "then": {"required": [1]}}]}),
                "`config_schema.allOf[0].then.required` must be an array of setting names",
            ),
            (
                json!({"type": "string"}),
                "`config_schema.type` is \"string\": a connector's settings are a table",
            ),
        ];
        for (schema, needle) in cases {
            let e = with(schema.clone()).unwrap_err();
            assert!(e.starts_with(needle), "{schema}: {e}");
        }
        // Keywords the validator does not read are left alone.
        assert_eq!(
            with(json!({"type": ["object"], "$schema": "x", "title": 5,
                "properties": {"a": {"type": ["string", "null"], "default": 3, "examples": []}}})),
            Ok(())
        );
    }

    /// QA42a A-L2: `"*"` and `""` were accepted (and listed as the origins
    /// `https://*:443`, `https://:443`), and never matched any request.
    #[test]
    fn a_max_history_of_zero_days_is_refused() {
        let mut m = manifest();
        m.max_history_days = Some(0);
        let e = check_manifest(&m).unwrap_err();
        assert!(e.starts_with("`max_history_days` is 0"), "{e}");
        m.max_history_days = Some(365);
        assert_eq!(check_manifest(&m), Ok(()));
    }

    #[test]
    fn an_allowed_host_that_is_not_a_host_name_is_refused() {
        let with = |host: &str| {
            check_manifest(&Manifest {
                allowed_hosts: vec!["api.acmeaff.example".into(), host.into()],
                ..manifest()
            })
        };
        assert_eq!(
            with("*").unwrap_err(),
            "`allowed_hosts` entry \"*\" is a wildcard, and allowed hosts have none: each entry is one exact host \
             name, such as \"api.example.net\", allowed over https on port 443; list every host the plugin calls \
             (the configured base_url's host is allowed without an entry)"
        );
        for (host, why) in [
            ("", "is empty"),
            ("*.acmeaff.example", "is a wildcard"),
            ("https://api.acmeaff.example", "is a URL"),
            ("api.acmeaff.example/v1", "is a URL"),
            ("api.acmeaff.example:8443", "has a port"),
            ("::1", "has a port or is an IPv6 address without brackets"),
            ("[nope]", "is not an IPv6 address"),
            ("api..example", "is not a host name"),
            ("api acme.example", "is not a host name"),
            ("bücher.example", "is not a host name"),
        ] {
            let e = with(host).unwrap_err();
            assert!(
                e.starts_with(&format!("`allowed_hosts` entry {host:?} {why}")),
                "{host}: {e}"
            );
        }
        for host in [
            "API.Acmeaff.Example",
            "xn--bcher-kva.example",
            "10.0.0.1",
            "[2001:db8::1]",
            "localhost",
        ] {
            assert_eq!(with(host), Ok(()), "{host}");
        }
    }
}
