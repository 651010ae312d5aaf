//! Target profiles: where the target is and how to cause each domain change
//! on it (HTTP request templates), loaded from TOML.
//!
//! The reference server's REST API is the built-in profile
//! (`profiles/reference.toml`); `--profile FILE` replaces it.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

/// The built-in profile.
pub const REFERENCE: &str = include_str!("../profiles/reference.toml");

/// Variables of a case: name → JSON value.
pub type Vars = BTreeMap<String, Value>;

/// A parsed profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub target: TargetSection,
    /// Values every template may use; themselves templates over the
    /// environment.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    #[serde(default)]
    pub actions: BTreeMap<String, Action>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    /// The target's base URL, when the profile pins one (`--target` wins).
    pub url: Option<String>,
    /// The Socket.IO path.
    #[serde(default = "default_socket_path")]
    pub socket_path: String,
}

impl Default for TargetSection {
    fn default() -> Self {
        TargetSection {
            url: None,
            socket_path: default_socket_path(),
        }
    }
}

fn default_socket_path() -> String {
    "/socket.io/".into()
}

/// One HTTP request template.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Any TOML value; strings in it are templates.
    pub body: Option<toml::Value>,
    /// Variable name → JSON pointer into the response body.
    #[serde(default)]
    pub extract: BTreeMap<String, String>,
    /// The success status; any 2xx when absent.
    pub expect: Option<u16>,
}

/// Why a profile cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profile {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid profile {path}: {message}")]
    Parse { path: String, message: String },
    #[error("profile action {action}: {message}")]
    Action { action: String, message: String },
}

impl Profile {
    pub fn parse(text: &str, path: &str) -> Result<Profile, ProfileError> {
        let profile: Profile = toml::from_str(text).map_err(|e| ProfileError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        for (name, a) in &profile.actions {
            let method = a.method.to_ascii_uppercase();
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                return Err(ProfileError::Action {
                    action: name.clone(),
                    message: format!("unsupported method {}", a.method),
                });
            }
            if !a.path.starts_with('/') {
                return Err(ProfileError::Action {
                    action: name.clone(),
                    message: format!("path must start with '/': {}", a.path),
                });
            }
        }
        Ok(profile)
    }

    pub fn load(path: &str) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn reference() -> Profile {
        Self::parse(REFERENCE, "built-in reference profile").expect("the built-in profile parses")
    }

    /// The profile's `[vars]`, expanded over the environment.
    pub fn base_vars(&self) -> Result<Vars, String> {
        let mut vars = Vars::new();
        for (k, v) in &self.vars {
            vars.insert(k.clone(), expand_string(v, &Vars::new())?);
        }
        Ok(vars)
    }
}

/// Expands `${NAME}` / `${NAME:-default}` in a template: a case variable,
/// else an environment variable, else the default. A string that is one
/// placeholder and nothing else keeps the variable's JSON type (a default
/// that parses as JSON is taken as that JSON).
pub fn expand_string(template: &str, vars: &Vars) -> Result<Value, String> {
    let parts = split_template(template)?;
    if let [Part::Var { name, default }] = parts.as_slice() {
        return lookup(name, default.as_deref(), vars);
    }
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Text(t) => out.push_str(&t),
            Part::Var { name, default } => match lookup(&name, default.as_deref(), vars)? {
                Value::String(s) => out.push_str(&s),
                other => out.push_str(&other.to_string()),
            },
        }
    }
    Ok(Value::String(out))
}

fn lookup(name: &str, default: Option<&str>, vars: &Vars) -> Result<Value, String> {
    if let Some(v) = vars.get(name) {
        return Ok(v.clone());
    }
    if let Ok(v) = std::env::var(name) {
        return Ok(Value::String(v));
    }
    match default {
        Some(d) => Ok(serde_json::from_str(d).unwrap_or_else(|_| Value::String(d.to_owned()))),
        None => Err(format!("no value for ${{{name}}}")),
    }
}

#[derive(Debug, PartialEq)]
enum Part {
    Text(String),
    Var {
        name: String,
        default: Option<String>,
    },
}

fn split_template(s: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            parts.push(Part::Text(rest[..start].to_owned()));
        }
        let body = &rest[start + 2..];
        // Find the closing brace, allowing balanced braces in a default.
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
        let end = end.ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
        let inner = &body[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d.to_owned())),
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad variable name {name:?} in {s:?}"));
        }
        parts.push(Part::Var {
            name: name.to_owned(),
            default,
        });
        rest = &body[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_owned()));
    }
    Ok(parts)
}

/// Expands every string of a TOML value into JSON.
pub fn expand_value(v: &toml::Value, vars: &Vars) -> Result<Value, String> {
    Ok(match v {
        toml::Value::String(s) => expand_string(s, vars)?,
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Value::from(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| expand_value(x, vars))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(t) => {
            let mut m = Map::new();
            for (k, x) in t {
                m.insert(k.clone(), expand_value(x, vars)?);
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
    }

    #[test]
    fn defaults_and_missing() {
        let v = Vars::new();
        assert_eq!(expand_string("${ttl:-3600}", &v).unwrap(), json!(3600));
        assert_eq!(expand_string("${d:-{}}", &v).unwrap(), json!({}));
        assert_eq!(expand_string("${s:-}", &v).unwrap(), json!(""));
        assert_eq!(expand_string("${s:-abc}", &v).unwrap(), json!("abc"));
        assert!(expand_string("${nope_conformance_test_var}", &v).is_err());
        assert!(expand_string("${unclosed", &v).is_err());
        assert!(expand_string("${bad name}", &v).is_err());
    }

    #[test]
    fn environment_expansion() {
        // PATH is set in every test environment.
        let path = std::env::var("PATH").unwrap();
        assert_eq!(expand_string("${PATH}", &Vars::new()).unwrap(), json!(path));
    }

    #[test]
    fn builtin_profile_parses_and_rejects_garbage() {
        let p = Profile::reference();
        assert!(p.actions.contains_key("create_room"));
        assert_eq!(p.target.socket_path, "/socket.io/");
        assert!(Profile::parse("[actions.x]\nmethod='FETCH'\npath='/'", "t").is_err());
        assert!(Profile::parse("[actions.x]\nmethod='GET'\npath='x'", "t").is_err());
        assert!(Profile::parse("nonsense = [", "t").is_err());
        assert!(Profile::parse("[unknown]\na=1", "t").is_err());
    }
}
