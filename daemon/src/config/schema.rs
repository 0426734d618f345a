//! A validator for the JSON Schema subset plugin manifests use for their
//! `config_schema`: `type` (one or several), `properties`, `required`,
//! `additionalProperties` (bool or schema), `enum`, `const`, `minimum`,
//! `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `minLength`,
//! `maxLength`, `items`, `minItems`, `maxItems`, and the `x-secret` marker.
//! Other keywords (`description`, `default`, `format`, `pattern`, `$schema`,
//! ...) are accepted and not checked. Numbers are compared as decimals, never
//! as floats. Every violation is reported, each with its settings path.

use rust_decimal::Decimal;
use serde_json::Value;
use std::str::FromStr;

/// One violation: the path inside `settings` and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Path relative to `settings`, e.g. `accounts[0].id` (empty = the table).
    pub path: String,
    /// What was wrong.
    pub message: String,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "table",
    }
}

fn matches_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "integer" => v.as_i64().is_some() || v.as_u64().is_some(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true,
    }
}

fn dec(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => Decimal::from_str(&n.to_string())
            .or_else(|_| Decimal::from_scientific(&n.to_string()))
            .ok(),
        _ => None,
    }
}

fn sub(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Whether the schema marks `key` (a top-level property) as a secret.
pub fn is_secret(schema: &Value, key: &str) -> bool {
    schema
        .get("properties")
        .and_then(|p| p.get(key))
        .and_then(|p| p.get("x-secret"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Names of the top-level properties the schema declares.
pub fn property_names(schema: &Value) -> Vec<String> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// An `if` schema made of `const` properties, as text: `` `mode` = "files" ``.
fn condition_text(cond: &Value) -> Option<String> {
    let props = cond.get("properties")?.as_object()?;
    let parts: Vec<String> = props
        .iter()
        .filter_map(|(k, v)| v.get("const").map(|c| format!("`{k}` = {c}")))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" and "))
}

/// What a string must be under a `format` the validator knows: `None`
/// when it is, else why not. Unknown formats are not checked (JSON
/// Schema's rule).
///
/// - `currency`: an ISO-4217 code, upper case (QA29-D M2: the orders
///   plugin's `default_currency = "localhost"` passed `config check`, and
///   its sync blamed a data file's line);
/// - `http-url`: an absolute http(s) URL with a host, no user or
///   password and no query or fragment, as `base_url` must be (QA29-D M4:
///   Google's `token_url` took `ftp://…` and `http://u:p@…`; QA31-C F8).
fn format_problem(format: &str, st: &str) -> Option<String> {
    match format {
        // Any case: the plugin reads it as upper case.
        "currency" => (!plugin_api::currency::is_known(&st.to_ascii_uppercase()))
            .then(|| format!("{st:?} is not an ISO-4217 currency code (e.g. USD)")),
        "http-url" => match url::Url::parse(st) {
            Err(e) => Some(format!("{st:?} is not a URL ({e}); expected an absolute http(s) URL such as `https://api.example.net`")),
            Ok(u) if !matches!(u.scheme(), "http" | "https") => Some(format!(
                "{st:?} has the scheme `{}`; only http and https are used",
                u.scheme()
            )),
            Ok(u) if u.host_str().is_none() => Some(format!("{st:?} has no host")),
            Ok(u) if !u.username().is_empty() || u.password().is_some() => Some(format!(
                "{st:?} carries a user or password; put credentials in the plugin's secret settings, as references such as {{ secret = \"env:NAME\" }}"
            )),
            // Not echoed: a query may hold a key (QA31-C F8).
            Ok(u) if u.query().is_some() || u.fragment().is_some() => Some(
                "must not carry a query (`?...`) or fragment (`#...`): a key in it would be shown in every error; give the URL up to its path and put keys in the plugin's secret settings, as references such as { secret = \"env:NAME\" }".to_owned(),
            ),
            Ok(_) => None,
        },
        _ => None,
    }
}

/// Validates `value` against `schema`, appending every violation. Supports
/// the JSON Schema subset plugins use: `type`, `enum`, `const`, numeric and
/// length bounds, `pattern` (the `regex` crate's syntax, unanchored as in
/// JSON Schema: anchor it with `^…$`), `format` (see [`format_problem`]),
/// `items`, `properties`, `required`, `additionalProperties`, `allOf` and
/// `if`/`then`/`else`.
pub fn validate(schema: &Value, value: &Value, path: &str, out: &mut Vec<Violation>) {
    let mut push = |p: &str, m: String| {
        out.push(Violation {
            path: p.to_owned(),
            message: m,
        })
    };
    let Some(s) = schema.as_object() else {
        return;
    };
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(t) => vec![t.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !types.is_empty() && !types.iter().any(|t| matches_type(value, t)) {
            let want = types
                .iter()
                .map(|t| if *t == "object" { "table" } else { t })
                .collect::<Vec<_>>()
                .join(" or ");
            push(path, format!("expected {want}, found {}", type_name(value)));
            return;
        }
    }
    if let Some(Value::Array(allowed)) = s.get("enum") {
        if !allowed.contains(value) {
            let list: Vec<String> = allowed.iter().map(|v| v.to_string()).collect();
            push(
                path,
                format!("expected one of {}, found {value}", list.join(", ")),
            );
        }
    }
    if let Some(c) = s.get("const") {
        if c != value {
            push(path, format!("expected {c}, found {value}"));
        }
    }
    if let Some(x) = dec(value) {
        let bound = |k: &str| s.get(k).and_then(dec);
        if let Some(m) = bound("minimum") {
            if x < m {
                push(path, format!("must be at least {m}, found {x}"));
            }
        }
        if let Some(m) = bound("maximum") {
            if x > m {
                push(path, format!("must be at most {m}, found {x}"));
            }
        }
        if let Some(m) = bound("exclusiveMinimum") {
            if x <= m {
                push(path, format!("must be greater than {m}, found {x}"));
            }
        }
        if let Some(m) = bound("exclusiveMaximum") {
            if x >= m {
                push(path, format!("must be less than {m}, found {x}"));
            }
        }
    }
    if let Value::String(st) = value {
        let n = st.chars().count() as u64;
        if let Some(m) = s.get("minLength").and_then(Value::as_u64) {
            if n < m {
                push(path, format!("must be at least {m} characters long"));
            }
        }
        if let Some(m) = s.get("maxLength").and_then(Value::as_u64) {
            if n > m {
                push(path, format!("must be at most {m} characters long"));
            }
        }
        // QA29-D M4: plugins declared patterns the validator skipped, so
        // `customer_id = "../x"` passed and went into a URL path.
        if let Some(pattern) = s.get("pattern").and_then(Value::as_str) {
            match regex::Regex::new(pattern) {
                Ok(re) if !re.is_match(st) => {
                    let what = s
                        .get("description")
                        .and_then(Value::as_str)
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default();
                    push(
                        path,
                        format!("{st:?} does not match the pattern `{pattern}`{what}"),
                    );
                }
                Ok(_) => {}
                Err(e) => push(
                    path,
                    format!(
                        "the plugin's schema gives an invalid pattern `{pattern}` ({e}); report it to the plugin's authors"
                    ),
                ),
            }
        }
        if let Some(problem) = s
            .get("format")
            .and_then(Value::as_str)
            .and_then(|f| format_problem(f, st))
        {
            push(path, problem);
        }
    }
    if let Value::Array(items) = value {
        let n = items.len() as u64;
        if let Some(m) = s.get("minItems").and_then(Value::as_u64) {
            if n < m {
                push(path, format!("needs at least {m} items, found {n}"));
            }
        }
        if let Some(m) = s.get("maxItems").and_then(Value::as_u64) {
            if n > m {
                push(path, format!("takes at most {m} items, found {n}"));
            }
        }
        if let Some(item_schema) = s.get("items") {
            for (i, it) in items.iter().enumerate() {
                validate(item_schema, it, &format!("{path}[{i}]"), out);
            }
        }
    }
    // `allOf` and `if`/`then`/`else` (e.g. a setting required in one mode).
    if let Some(Value::Array(all)) = s.get("allOf") {
        for sub_schema in all {
            validate(sub_schema, value, path, out);
        }
    }
    if let Some(cond) = s.get("if") {
        let mut probe = Vec::new();
        validate(cond, value, path, &mut probe);
        let (branch, when) = if probe.is_empty() {
            (s.get("then"), condition_text(cond))
        } else {
            (s.get("else"), None)
        };
        if let Some(b) = branch {
            let mut found = Vec::new();
            validate(b, value, path, &mut found);
            for mut v in found {
                if let Some(w) = &when {
                    v.message.push_str(&format!(" (when {w})"));
                }
                out.push(v);
            }
        }
    }
    if let Value::Object(map) = value {
        let props = s.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(req)) = s.get("required") {
            for r in req.iter().filter_map(Value::as_str) {
                if !map.contains_key(r) {
                    let what = props
                        .and_then(|p| p.get(r))
                        .and_then(|p| p.get("description"))
                        .and_then(Value::as_str)
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default();
                    out.push(Violation {
                        path: path.to_owned(),
                        message: format!("missing required setting `{r}`{what}"),
                    });
                }
            }
        }
        for (k, v) in map {
            let p = sub(path, k);
            match props.and_then(|p| p.get(k)) {
                Some(ps) => validate(ps, v, &p, out),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        let names: Vec<&str> = props
                            .map(|m| m.keys().map(String::as_str).collect())
                            .unwrap_or_default();
                        out.push(Violation {
                            path: p,
                            message: unknown_setting(k, &names),
                        });
                    }
                    Some(extra @ Value::Object(_)) => validate(extra, v, &p, out),
                    _ => {}
                },
            }
        }
    }
}

/// "unknown setting `k`; did you mean `n`? (valid settings: ...)": a key
/// the schema does not declare, given as a value or as a secret reference.
pub fn unknown_setting(k: &str, names: &[&str]) -> String {
    let hint = match super::source::nearest(k, names.iter().copied()) {
        Some(n) => format!("; did you mean `{n}`?"),
        None => String::new(),
    };
    format!(
        "unknown setting `{k}`{hint} (valid settings: {})",
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_every_violation_with_its_path() {
        let schema = json!({
            "type": "object", "additionalProperties": false, "required": ["api_key", "mode"],
            "properties": {
                "api_key": {"type": "string", "x-secret": true},
                "mode": {"enum": ["a", "b"]},
                "page_size": {"type": "integer", "minimum": 1, "maximum": 1000},
                "ids": {"type": "array", "items": {"type": "string"}, "minItems": 1}
            }
        });
        let mut out = Vec::new();
        validate(
            &schema,
            &json!({"page_sise": 5, "page_size": 0, "ids": ["x", 3], "mode": "c"}),
            "",
            &mut out,
        );
        let got: Vec<String> = out
            .iter()
            .map(|v| format!("{}: {}", v.path, v.message))
            .collect();
        assert_eq!(
            got,
            vec![
                ": missing required setting `api_key`",
                "ids[1]: expected string, found integer",
                "mode: expected one of \"a\", \"b\", found \"c\"",
                "page_sise: unknown setting `page_sise`; did you mean `page_size`? (valid settings: `api_key`, `ids`, `mode`, `page_size`)",
                "page_size: must be at least 1, found 0",
            ]
        );
        assert!(is_secret(&schema, "api_key"));
        assert!(!is_secret(&schema, "mode"));
    }

    /// QA29-D M2, M4: `pattern` was not checked (an id of `../x` went into
    /// URL paths), nor what a currency or a URL setting holds.
    #[test]
    fn patterns_and_formats_are_checked() {
        let schema = json!({
            "type": "object",
            "properties": {
                "customer_id": {"type": "string", "pattern": "^[0-9-]+$", "description": "digits"},
                "currency": {"type": "string", "format": "currency"},
                "token_url": {"type": "string", "format": "http-url"},
                "other": {"type": "string", "format": "no-such-format"}
            }
        });
        let check = |v: serde_json::Value| {
            let mut out = Vec::new();
            validate(&schema, &v, "", &mut out);
            out.iter()
                .map(|v| format!("{}: {}", v.path, v.message))
                .collect::<Vec<_>>()
        };
        assert!(check(json!({
            "customer_id": "123-456-7890", "currency": "EUR",
            "token_url": "https://oauth2.example.com/token", "other": "x"
        }))
        .is_empty());
        assert_eq!(
            check(json!({"customer_id": "../x", "currency": "localhost"})),
            [
                "currency: \"localhost\" is not an ISO-4217 currency code (e.g. USD)",
                "customer_id: \"../x\" does not match the pattern `^[0-9-]+$` (digits)",
            ]
        );
        for (url, want) in [
            ("ftp://x/y", "has the scheme `ftp`"),
            (
                "http://u:p@evil.example/token",
                "carries a user or password",
            ),
            ("1900-01-01", "is not a URL"),
            (
                "https://oauth2.example.com/token?key=sk_Q1",
                "must not carry a query (`?...`) or fragment (`#...`)",
            ),
            (
                "https://oauth2.example.com/token#sk_Q1",
                "must not carry a query",
            ),
        ] {
            let got = check(json!({ "token_url": url }));
            assert!(got.len() == 1 && got[0].contains(want), "{url}: {got:?}");
            assert!(!got[0].contains("sk_Q1"), "{url}: {got:?}");
        }
        assert!(check(json!({"currency": "eur"})).is_empty());
        assert!(check(json!({"currency": "ZZZ"}))[0].contains("not an ISO-4217"));
    }
}
