//! Target profiles: where the target is and how to cause each domain change
//! on it (HTTP request templates), loaded from TOML.
//!
//! The reference server's REST API is the built-in profile
//! (`profiles/reference.toml`); `--profile FILE` replaces it. Strings in a
//! profile are templates ([`crate::template`]).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::action::Action;
pub use crate::template::Vars;
use crate::template::{TemplateError, expand_string, placeholders};

/// The built-in profile.
pub const REFERENCE: &str = include_str!("../profiles/reference.toml");

/// `refresh_token` where a profile does not define it: the protocol's
/// `POST /api/auth/refresh` with `{refreshToken}`, its `accessToken` as the
/// new `token` (Security: Token Refresh).
const PROTOCOL_REFRESH: &str = r#"
method = "POST"
path = "/api/auth/refresh"
body = { refreshToken = "${refreshToken}" }
extract = { token = "/accessToken" }
"#;

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
    /// Value maps by the name of the variable they define: a variable
    /// derived from another one's value (`visibility = "private"` →
    /// `isPrivate = true`), usable in any template.
    #[serde(default)]
    pub maps: BTreeMap<String, ValueMap>,
    /// Request templates by action name: the names of [`Action`], and
    /// any other a load scenario calls.
    #[serde(default)]
    pub actions: BTreeMap<String, ActionTemplate>,
    /// How clients connect: auth object, headers, query, Origin,
    /// transports, TLS ([`crate::handshake`]).
    #[serde(default)]
    pub handshake: crate::handshake::HandshakeSection,
    /// Where users and tokens come from: mint, sign, static
    /// ([`crate::identity`]).
    #[serde(default)]
    pub identity: crate::identity::IdentitySection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    /// The target's base URL, when the profile pins one (`--target` wins).
    pub url: Option<String>,
    /// The Socket.IO path.
    #[serde(default = "default_socket_path")]
    pub socket_path: String,
    /// Other base URLs by name (an admin API on another host or port),
    /// each with its own default headers; a step picks one with `base`.
    #[serde(default)]
    pub bases: BTreeMap<String, Base>,
}

impl Default for TargetSection {
    fn default() -> Self {
        TargetSection {
            url: None,
            socket_path: default_socket_path(),
            bases: BTreeMap::new(),
        }
    }
}

fn default_socket_path() -> String {
    "/socket.io/".into()
}

/// A named base URL (`[target.bases.NAME]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Base {
    /// A template (`"${ADMIN_URL}"`); a path after it is kept
    /// (`http://host:9000/admin/v2`).
    pub url: String,
    /// Headers every request on this base sends (a step's own headers of
    /// the same name win).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// A value map (`[maps.NAME]`): the variable NAME is `values[text of
/// from]` whenever the variable `from` has a value.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueMap {
    /// The variable whose value is looked up.
    pub from: String,
    /// Its value (as text: `true`, `3` and `"3"` are the key `3`) → the
    /// value NAME takes (any TOML value).
    pub values: BTreeMap<String, toml::Value>,
    /// The value for one missing from `values`; without it such a value is
    /// an error naming the map.
    pub default: Option<toml::Value>,
}

/// One action: the requests it sends, in order. A later step may use what
/// an earlier one extracted.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawAction")]
pub struct ActionTemplate {
    pub steps: Vec<Step>,
}

/// One HTTP request template.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// A base of `[target.bases]`; the target itself when absent.
    pub base: Option<String>,
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body: any TOML value; strings in it are templates.
    pub body: Option<toml::Value>,
    /// A form body (`application/x-www-form-urlencoded`): field → template
    /// (a value that is not a string is written as JSON).
    pub form: Option<BTreeMap<String, String>>,
    /// Variable name → where in the answer its value is.
    #[serde(default)]
    pub extract: BTreeMap<String, Extract>,
    /// The success status; any 2xx when absent.
    pub expect: Option<u16>,
    /// Leave out the top-level fields of `body` or `form` whose value
    /// expands to `""` (an optional field: `label = "${name:-}"` sends
    /// `label` only when the caller gave a `name`).
    #[serde(default)]
    pub omit_empty: bool,
}

/// Where an extracted value is in an answer: a JSON pointer into the body
/// (the string form, `"/user/uid"`), a header (`{ header = "Location" }`),
/// or the status (`{ status = true }`); `after` keeps only the text after
/// the last occurrence of a marker (`{ header = "Location", after =
/// "/rooms/" }` is the id at the end of the room's URL).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawExtract")]
pub struct Extract {
    pub source: Source,
    pub after: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Pointer(String),
    Header(String),
    Status,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawExtract {
    Pointer(String),
    Table(ExtractTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtractTable {
    pointer: Option<String>,
    header: Option<String>,
    #[serde(default)]
    status: bool,
    after: Option<String>,
}

impl TryFrom<RawExtract> for Extract {
    type Error = String;
    fn try_from(raw: RawExtract) -> Result<Extract, String> {
        let t = match raw {
            RawExtract::Pointer(p) => ExtractTable {
                pointer: Some(p),
                header: None,
                status: false,
                after: None,
            },
            RawExtract::Table(t) => t,
        };
        let source = match (t.pointer, t.header, t.status) {
            (Some(p), None, false) => {
                if !(p.is_empty() || p.starts_with('/')) {
                    return Err(format!("a JSON pointer is empty or starts with '/': {p:?}"));
                }
                Source::Pointer(p)
            }
            (None, Some(h), false) => Source::Header(h),
            (None, None, true) => Source::Status,
            _ => {
                return Err(
                    "an extraction is a JSON pointer, or exactly one of `pointer`, `header`, `status = true`"
                        .to_owned(),
                );
            }
        };
        Ok(Extract {
            source,
            after: t.after,
        })
    }
}

/// An action as written: one request inline, or `steps`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    base: Option<String>,
    method: Option<String>,
    path: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: Option<toml::Value>,
    form: Option<BTreeMap<String, String>>,
    #[serde(default)]
    extract: BTreeMap<String, Extract>,
    expect: Option<u16>,
    #[serde(default)]
    omit_empty: bool,
    steps: Option<Vec<Step>>,
}

impl TryFrom<RawAction> for ActionTemplate {
    type Error = String;
    fn try_from(r: RawAction) -> Result<ActionTemplate, String> {
        let inline = r.method.is_some()
            || r.path.is_some()
            || r.base.is_some()
            || !r.headers.is_empty()
            || r.body.is_some()
            || r.form.is_some()
            || !r.extract.is_empty()
            || r.expect.is_some()
            || r.omit_empty;
        match (r.steps, inline) {
            (Some(_), true) => Err("an action has `steps` or one inline request, not both".into()),
            (Some(steps), false) if steps.is_empty() => Err("`steps` is empty".into()),
            (Some(steps), false) => Ok(ActionTemplate { steps }),
            (None, _) => {
                let (Some(method), Some(path)) = (r.method, r.path) else {
                    return Err("an action needs `method` and `path` (or `steps`)".into());
                };
                Ok(ActionTemplate {
                    steps: vec![Step {
                        base: r.base,
                        method,
                        path,
                        headers: r.headers,
                        body: r.body,
                        form: r.form,
                        extract: r.extract,
                        expect: r.expect,
                        omit_empty: r.omit_empty,
                    }],
                })
            }
        }
    }
}

impl ActionTemplate {
    /// The names the action extracts, over all its steps.
    pub fn outputs(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .steps
            .iter()
            .flat_map(|s| s.extract.keys().map(String::as_str))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

impl Step {
    /// Every template string of the step (path, headers, body, form).
    pub fn templates(&self) -> Vec<&str> {
        fn strings<'a>(v: &'a toml::Value, out: &mut Vec<&'a str>) {
            match v {
                toml::Value::String(s) => out.push(s),
                toml::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
                toml::Value::Table(t) => t.values().for_each(|x| strings(x, out)),
                _ => {}
            }
        }
        let mut out = vec![self.path.as_str()];
        out.extend(self.headers.values().map(String::as_str));
        if let Some(b) = &self.body {
            strings(b, &mut out);
        }
        if let Some(f) = &self.form {
            out.extend(f.values().map(String::as_str));
        }
        out
    }
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
        let mut profile: Profile = toml::from_str(text).map_err(|e| ProfileError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        // Token refresh is the protocol's own endpoint unless the profile
        // says otherwise.
        profile
            .actions
            .entry(Action::RefreshToken.as_str().to_owned())
            .or_insert_with(|| {
                toml::from_str(PROTOCOL_REFRESH).expect("the protocol's refresh action parses")
            });
        for (name, a) in &profile.actions {
            let bad = |message: String| ProfileError::Action {
                action: name.clone(),
                message,
            };
            for (i, s) in a.steps.iter().enumerate() {
                let at = if a.steps.len() > 1 {
                    format!("step {}: ", i + 1)
                } else {
                    String::new()
                };
                let method = s.method.to_ascii_uppercase();
                if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                    return Err(bad(format!("{at}unsupported method {}", s.method)));
                }
                if !s.path.starts_with('/') {
                    return Err(bad(format!("{at}path must start with '/': {}", s.path)));
                }
                if s.body.is_some() && s.form.is_some() {
                    return Err(bad(format!("{at}`body` (JSON) or `form`, not both")));
                }
                if let Some(b) = &s.base
                    && !profile.target.bases.contains_key(b)
                {
                    let known: Vec<&str> =
                        profile.target.bases.keys().map(String::as_str).collect();
                    return Err(bad(format!(
                        "{at}base `{b}` is not in [target.bases] ({})",
                        if known.is_empty() {
                            "none defined".to_owned()
                        } else {
                            known.join(", ")
                        }
                    )));
                }
            }
        }
        for (name, m) in &profile.maps {
            if m.from == *name {
                return Err(ProfileError::Parse {
                    path: path.to_owned(),
                    message: format!("map `{name}` reads itself"),
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

    /// The template of `action`, if the profile defines it.
    pub fn action(&self, action: Action) -> Option<&ActionTemplate> {
        self.actions.get(action.as_str())
    }

    /// The names of the profile's actions that are not an [`Action`]
    /// (a typo, or an action only a load scenario calls).
    pub fn unknown_actions(&self) -> Vec<&str> {
        self.actions
            .keys()
            .map(String::as_str)
            .filter(|name| Action::parse(name).is_none())
            .collect()
    }

    /// The profile's `[vars]`, expanded over the environment.
    pub fn base_vars(&self) -> Result<Vars, TemplateError> {
        let mut vars = Vars::new();
        for (k, v) in &self.vars {
            vars.insert(k.clone(), expand_string(v, &Vars::new())?);
        }
        Ok(vars)
    }

    /// The variables the action `name` needs from its caller: the
    /// placeholders without a default of its steps and of the bases they
    /// use, less what earlier steps extract, with a mapped name replaced by
    /// the variable its map reads, sorted. `None` for an action the
    /// profile lacks.
    pub fn inputs(&self, name: &str) -> Option<Vec<String>> {
        let action = self.actions.get(name)?;
        let mut provided: Vec<&str> = Vec::new();
        let mut needed: Vec<String> = Vec::new();
        for step in &action.steps {
            let mut templates = step.templates();
            if let Some(base) = step.base.as_ref().and_then(|b| self.target.bases.get(b)) {
                templates.push(&base.url);
                templates.extend(base.headers.values().map(String::as_str));
            }
            for t in templates {
                for p in placeholders(t).unwrap_or_default() {
                    let name = match self.maps.get(&p.name) {
                        Some(m) => m.from.clone(),
                        None => p.name,
                    };
                    if !p.has_default
                        && !provided.contains(&name.as_str())
                        && !self.vars.contains_key(&name)
                        && !needed.contains(&name)
                    {
                        needed.push(name);
                    }
                }
            }
            provided.extend(step.extract.keys().map(String::as_str));
        }
        needed.sort();
        Some(needed)
    }

    /// Adds to `vars` the variable of every value map whose source has a
    /// value (and that `vars` does not already set).
    pub fn apply_maps(&self, vars: &mut Vars) -> Result<(), MapError> {
        for (name, m) in &self.maps {
            if vars.contains_key(name) {
                continue;
            }
            let Some(v) = vars.get(&m.from) else { continue };
            let key = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let mapped = match m.values.get(&key).or(m.default.as_ref()) {
                Some(x) => toml_to_json(x),
                None => {
                    return Err(MapError {
                        map: name.clone(),
                        from: m.from.clone(),
                        value: key,
                    });
                }
            };
            vars.insert(name.clone(), mapped);
        }
        Ok(())
    }
}

/// A value a map has no entry (and no default) for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("value map `{map}` has no entry for {from} = {value:?} (and no `default`)")]
pub struct MapError {
    pub map: String,
    pub from: String,
    pub value: String,
}

/// A TOML value as JSON, as written (a map's values are not templates).
fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn actions_outside_the_enum_are_kept_and_listed() {
        let p = Profile::parse(
            "[actions.create_user]\nmethod='POST'\npath='/u'\n[actions.create_rooom]\nmethod='POST'\npath='/r'",
            "t",
        )
        .unwrap();
        assert!(p.action(Action::CreateUser).is_some());
        assert!(p.action(Action::CreateRoom).is_none());
        assert_eq!(p.unknown_actions(), ["create_rooom"]);
        assert!(p.actions.contains_key("create_rooom"));
    }

    const FOREIGN: &str = r#"
[target.bases.admin]
url = "${ADMIN_URL:-http://127.0.0.1:9}/admin"
headers = { Authorization = "Token ${key}" }

[maps.isPrivate]
from = "visibility"
values = { private = true, public = false }

[maps.kind]
from = "role"
values = { participant = "player" }
default = "mod"

[[actions.create_room.steps]]
base = "admin"
method = "POST"
path = "/rooms"
body = { title = "${name}", isPrivate = "${isPrivate}" }
extract = { roomId = { header = "Location", after = "/rooms/" }, code = { status = true } }

[[actions.create_room.steps]]
base = "admin"
method = "GET"
path = "/rooms/${roomId}"
extract = { roomName = "/title" }

[actions.create_user]
base = "admin"
method = "POST"
path = "/users"
form = { display_name = "${name}", avatar = "${avatar:-}" }
omit_empty = true
extract = { userId = { pointer = "/user/uid" } }
"#;

    #[test]
    fn steps_bases_maps_forms_and_extractions_parse() {
        let p = Profile::parse(FOREIGN, "t").unwrap();
        let room = p.action(Action::CreateRoom).unwrap();
        assert_eq!(room.steps.len(), 2);
        assert_eq!(room.steps[0].base.as_deref(), Some("admin"));
        assert_eq!(
            room.steps[0].extract["roomId"],
            Extract {
                source: Source::Header("Location".into()),
                after: Some("/rooms/".into())
            }
        );
        assert_eq!(room.steps[0].extract["code"].source, Source::Status);
        assert_eq!(room.outputs(), ["code", "roomId", "roomName"]);
        let user = p.action(Action::CreateUser).unwrap();
        assert!(user.steps[0].form.is_some() && user.steps[0].omit_empty);
        assert_eq!(
            user.steps[0].extract["userId"].source,
            Source::Pointer("/user/uid".into())
        );
        // Inputs: what the caller must give (`roomId` comes from step 1,
        // `isPrivate` from `visibility`, `key` from the base's header).
        assert_eq!(
            p.inputs("create_room").unwrap(),
            ["key", "name", "visibility"]
        );
        assert_eq!(p.inputs("create_user").unwrap(), ["key", "name"]);
        assert_eq!(p.inputs("nope"), None);
    }

    #[test]
    fn malformed_foreign_profiles_are_refused_with_the_reason() {
        let err = |text: &str| Profile::parse(text, "t").unwrap_err().to_string();
        let e = err("[actions.x]\nbase='admin'\nmethod='GET'\npath='/'");
        assert!(e.contains("base `admin` is not in [target.bases]"), "{e}");
        let e = err("[actions.x]\nmethod='POST'\npath='/'\nbody={a=1}\nform={a='1'}");
        assert!(e.contains("not both"), "{e}");
        let e = err("[actions.x]\nmethod='POST'\npath='/'\nsteps=[{method='GET', path='/'}]");
        assert!(e.contains("`steps` or one inline request"), "{e}");
        let e = err("[actions.x]\nsteps=[]");
        assert!(e.contains("`steps` is empty"), "{e}");
        let e = err("[actions.x]\nmethod='GET'\npath='/'\nextract={a={header='L', status=true}}");
        assert!(e.contains("exactly one of"), "{e}");
        let e = err("[actions.x]\nmethod='GET'\npath='/'\nextract={a='id'}");
        assert!(e.contains("JSON pointer"), "{e}");
        let e = err("[actions.x]\npath='/'");
        assert!(e.contains("needs `method` and `path`"), "{e}");
        let e = err("[maps.a]\nfrom='a'\nvalues={}");
        assert!(e.contains("reads itself"), "{e}");
    }

    #[test]
    fn maps_derive_variables_and_refuse_unknown_values() {
        let p = Profile::parse(FOREIGN, "t").unwrap();
        let mut v: Vars = [
            ("visibility".to_owned(), serde_json::json!("private")),
            ("role".to_owned(), serde_json::json!("moderator")),
        ]
        .into();
        p.apply_maps(&mut v).unwrap();
        assert_eq!(v["isPrivate"], serde_json::json!(true));
        // Not in `values`: the default.
        assert_eq!(v["kind"], serde_json::json!("mod"));
        // A variable the caller set wins over the map.
        let mut given: Vars = [
            ("visibility".to_owned(), serde_json::json!("public")),
            ("isPrivate".to_owned(), serde_json::json!("as given")),
        ]
        .into();
        p.apply_maps(&mut given).unwrap();
        assert_eq!(given["isPrivate"], serde_json::json!("as given"));
        // No source, no variable.
        let mut none = Vars::new();
        p.apply_maps(&mut none).unwrap();
        assert!(none.is_empty());
        let mut bad: Vars = [("visibility".to_owned(), serde_json::json!("secret"))].into();
        let e = p.apply_maps(&mut bad).unwrap_err();
        assert_eq!(
            e.to_string(),
            "value map `isPrivate` has no entry for visibility = \"secret\" (and no `default`)"
        );
    }

    #[test]
    fn base_vars_expand_over_the_environment() {
        let p = Profile::parse(
            "[vars]\npath = \"${PATH}\"\nn = \"${n_driver_profile_var:-3}\"",
            "t",
        )
        .unwrap();
        let vars = p.base_vars().unwrap();
        assert_eq!(
            vars["path"],
            serde_json::json!(std::env::var("PATH").unwrap())
        );
        assert_eq!(vars["n"], serde_json::json!(3));
        let bad = Profile::parse("[vars]\nx = \"${missing_driver_profile_var}\"", "t").unwrap();
        assert!(matches!(
            bad.base_vars(),
            Err(TemplateError::Missing { .. })
        ));
    }
}
