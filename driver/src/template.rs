//! The template grammar of profiles and scenarios: `${NAME}` and
//! `${NAME:-default}` inside strings.
//!
//! One grammar for both tools, so that a string means the same in a target
//! profile (`driver::profile`) and in a load scenario. What differs between
//! callers is only where a name's value comes from: each caller passes a
//! lookup (a case's variables, a virtual user's scopes, ...); when the
//! lookup has no value the environment is asked, then the default is used.
//!
//! Rules:
//! * a name is ASCII letters, digits and `_`; a default may hold balanced
//!   braces (`${data:-{}}`);
//! * a string that is exactly one placeholder keeps the value's JSON type
//!   (a number stays a number; a default that parses as JSON is that JSON);
//!   inside a longer string a value is written as text (strings as they
//!   are, anything else as JSON);
//! * a default may itself hold placeholders (`${name:-${current}}`);
//! * a name with no value anywhere and no default is an error.

use serde_json::{Map, Value};

/// Variables by name (a case's, a profile's `[vars]`, a scenario's).
pub type Vars = std::collections::BTreeMap<String, Value>;

/// Why a template cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `${` without its closing `}`.
    #[error("unclosed ${{ in {template:?}")]
    Unclosed { template: String },
    /// A placeholder whose name is empty or not `[A-Za-z0-9_]+`.
    #[error("bad variable name {name:?} in {template:?}")]
    BadName { name: String, template: String },
    /// No value for a name without a default.
    #[error("no value for ${{{name}}}")]
    Missing { name: String },
}

/// A placeholder of a template, as static checks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    pub name: String,
    /// Whether it has a `:-default` (so it never lacks a value).
    pub has_default: bool,
}

/// A piece of a parsed template.
#[derive(Debug, PartialEq)]
enum Part<'a> {
    Text(&'a str),
    Var {
        name: &'a str,
        default: Option<&'a str>,
    },
}

/// Whether `s` contains a placeholder at all (a cheap test before parsing).
pub fn is_template(s: &str) -> bool {
    s.contains("${")
}

fn parse(template: &str) -> Result<Vec<Part<'_>>, TemplateError> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            parts.push(Part::Text(&rest[..start]));
        }
        let body = &rest[start + 2..];
        // The closing brace, allowing balanced braces in a default.
        let mut depth = 0usize;
        let mut end = None;
        for (i, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    end = Some(i);
                    break;
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
        let end = end.ok_or_else(|| TemplateError::Unclosed {
            template: template.to_owned(),
        })?;
        let inner = &body[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(TemplateError::BadName {
                name: name.to_owned(),
                template: template.to_owned(),
            });
        }
        parts.push(Part::Var { name, default });
        rest = &body[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest));
    }
    Ok(parts)
}

/// The placeholders of a template, in order, or why it is malformed (for
/// static checks that need the names without expanding anything).
pub fn placeholders(template: &str) -> Result<Vec<Placeholder>, TemplateError> {
    Ok(parse(template)?
        .into_iter()
        .filter_map(|p| match p {
            Part::Var { name, default } => Some(Placeholder {
                name: name.to_owned(),
                has_default: default.is_some(),
            }),
            Part::Text(_) => None,
        })
        .collect())
}

/// The value of one placeholder: `lookup`, else the environment, else the
/// default (as JSON when it parses as JSON).
fn resolve(
    name: &str,
    default: Option<&str>,
    lookup: &impl Fn(&str) -> Option<Value>,
) -> Result<Value, TemplateError> {
    if let Some(v) = lookup(name) {
        return Ok(v);
    }
    if let Ok(v) = std::env::var(name) {
        return Ok(Value::String(v));
    }
    match default {
        // A default may itself be a template (`${name:-${current}}`).
        Some(d) if is_template(d) => expand_str_with(d, lookup),
        Some(d) => Ok(serde_json::from_str(d).unwrap_or_else(|_| Value::String(d.to_owned()))),
        None => Err(TemplateError::Missing {
            name: name.to_owned(),
        }),
    }
}

/// Expands a template string with the values `lookup` gives (then the
/// environment, then defaults). A string that is one placeholder and
/// nothing else keeps the value's JSON type.
pub fn expand_str_with(
    template: &str,
    lookup: &impl Fn(&str) -> Option<Value>,
) -> Result<Value, TemplateError> {
    let parts = parse(template)?;
    if let [Part::Var { name, default }] = parts.as_slice() {
        return resolve(name, *default, lookup);
    }
    let mut out = String::with_capacity(template.len());
    for part in &parts {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Var { name, default } => match resolve(name, *default, lookup)? {
                Value::String(s) => out.push_str(&s),
                other => out.push_str(&other.to_string()),
            },
        }
    }
    Ok(Value::String(out))
}

/// [`expand_str_with`] over a map of variables.
pub fn expand_string(template: &str, vars: &Vars) -> Result<Value, TemplateError> {
    expand_str_with(template, &|n| vars.get(n).cloned())
}

/// Expands every string of a JSON value (keys are left alone) with the
/// values `lookup` gives.
pub fn expand_json_with(
    v: &Value,
    lookup: &impl Fn(&str) -> Option<Value>,
) -> Result<Value, TemplateError> {
    Ok(match v {
        Value::String(s) => expand_str_with(s, lookup)?,
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| expand_json_with(x, lookup))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => {
            let mut m = Map::new();
            for (k, x) in o {
                m.insert(k.clone(), expand_json_with(x, lookup)?);
            }
            Value::Object(m)
        }
        other => other.clone(),
    })
}

/// [`expand_json_with`] over a map of variables.
pub fn expand_json(v: &Value, vars: &Vars) -> Result<Value, TemplateError> {
    expand_json_with(v, &|n| vars.get(n).cloned())
}

/// Expands every string of a TOML value (a profile's `body`) into JSON.
pub fn expand_toml(v: &toml::Value, vars: &Vars) -> Result<Value, TemplateError> {
    Ok(match v {
        toml::Value::String(s) => expand_string(s, vars)?,
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Value::from(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| expand_toml(x, vars))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(t) => {
            let mut m = Map::new();
            for (k, x) in t {
                m.insert(k.clone(), expand_toml(x, vars)?);
            }
            Value::Object(m)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(pairs: &[(&str, Value)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn whole_placeholder_keeps_type() {
        let v = vars(&[("n", json!(3)), ("o", json!({"a": 1}))]);
        assert_eq!(expand_string("${n}", &v).unwrap(), json!(3));
        assert_eq!(expand_string("${o}", &v).unwrap(), json!({"a": 1}));
        assert_eq!(expand_string("n=${n}", &v).unwrap(), json!("n=3"));
        assert_eq!(
            expand_string("${o} and ${n}", &v).unwrap(),
            json!(r#"{"a":1} and 3"#)
        );
        assert_eq!(expand_string("plain", &v).unwrap(), json!("plain"));
    }

    #[test]
    fn defaults_and_missing() {
        let v = Vars::new();
        assert_eq!(expand_string("${ttl:-3600}", &v).unwrap(), json!(3600));
        assert_eq!(expand_string("${d:-{}}", &v).unwrap(), json!({}));
        assert_eq!(expand_string("${s:-}", &v).unwrap(), json!(""));
        assert_eq!(expand_string("${s:-abc}", &v).unwrap(), json!("abc"));
        assert_eq!(expand_string("a-${x:-9}", &v).unwrap(), json!("a-9"));
        let cur = vars(&[("cur", json!(false)), ("n", json!("x"))]);
        assert_eq!(expand_string("${p:-${cur}}", &cur).unwrap(), json!(false));
        assert_eq!(expand_string("${n:-${cur}}", &cur).unwrap(), json!("x"));
        assert_eq!(expand_string("${p:-a ${n}}", &cur).unwrap(), json!("a x"));
        assert_eq!(
            expand_string("${nope_driver_template_var}", &v),
            Err(TemplateError::Missing {
                name: "nope_driver_template_var".into()
            })
        );
        assert_eq!(
            expand_string("${nope_driver_template_var}", &v)
                .unwrap_err()
                .to_string(),
            "no value for ${nope_driver_template_var}"
        );
        let unclosed = expand_string("${unclosed", &v).unwrap_err();
        assert!(matches!(unclosed, TemplateError::Unclosed { .. }));
        assert_eq!(unclosed.to_string(), r#"unclosed ${ in "${unclosed""#);
        assert!(matches!(
            expand_string("${bad name}", &v),
            Err(TemplateError::BadName { name, .. }) if name == "bad name"
        ));
        assert!(matches!(
            expand_string("${}", &v),
            Err(TemplateError::BadName { .. })
        ));
    }

    #[test]
    fn a_variable_wins_over_the_environment_which_wins_over_the_default() {
        // PATH is set in every test environment.
        let path = std::env::var("PATH").unwrap();
        assert_eq!(expand_string("${PATH}", &Vars::new()).unwrap(), json!(path));
        assert_eq!(
            expand_string("${PATH:-none}", &Vars::new()).unwrap(),
            json!(path)
        );
        let v = vars(&[("PATH", json!("mine"))]);
        assert_eq!(expand_string("${PATH}", &v).unwrap(), json!("mine"));
    }

    #[test]
    fn placeholders_are_listed_with_their_defaults() {
        let ps = placeholders("/rooms/${roomId}/x/${n:-{}}").unwrap();
        assert_eq!(
            ps,
            vec![
                Placeholder {
                    name: "roomId".into(),
                    has_default: false
                },
                Placeholder {
                    name: "n".into(),
                    has_default: true
                },
            ]
        );
        assert_eq!(placeholders("no placeholder").unwrap(), vec![]);
        assert!(placeholders("${oops").is_err());
        assert!(placeholders("${a b}").is_err());
        assert!(is_template("x${y}") && !is_template("x$y{}"));
    }

    #[test]
    fn json_and_toml_values_expand_every_string() {
        let v = vars(&[("q", json!("qst_1")), ("n", json!(3))]);
        assert_eq!(
            expand_json(
                &json!({"questionId": "${q}", "count": "${n}", "label": "n=${n}", "k": [true, 1, "${q}"]}),
                &v
            )
            .unwrap(),
            json!({"questionId": "qst_1", "count": 3, "label": "n=3", "k": [true, 1, "qst_1"]})
        );
        let body: toml::Value = toml::from_str(
            "id = \"${q}\"\nn = \"${n}\"\nk = [1, 2.5, true]\nt = { x = \"${q}-x\" }",
        )
        .unwrap();
        assert_eq!(
            expand_toml(&body, &v).unwrap(),
            json!({"id": "qst_1", "n": 3, "k": [1, 2.5, true], "t": {"x": "qst_1-x"}})
        );
        assert!(expand_json(&json!(["${missing_driver_template_var}"]), &v).is_err());
    }

    #[test]
    fn lookups_decide_which_names_exist() {
        let lookup = |n: &str| (n == "vu").then(|| json!(7));
        assert_eq!(
            expand_json_with(&json!({"n": "${vu}", "t": "vu ${vu}"}), &lookup).unwrap(),
            json!({"n": 7, "t": "vu 7"})
        );
        assert!(expand_str_with("${runId_driver_template_var}", &lookup).is_err());
    }
}
