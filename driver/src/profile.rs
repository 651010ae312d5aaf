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
use crate::template::{TemplateError, expand_string};

/// The built-in profile.
pub const REFERENCE: &str = include_str!("../profiles/reference.toml");

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
pub struct ActionTemplate {
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
