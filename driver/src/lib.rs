//! The target driver shared by the conformance runner and the load
//! generator: target profiles (where the target is and how to cause each
//! domain change on it, as HTTP request templates — [`profile`]), the
//! actions they define ([`Action`]), the template grammar of profiles and
//! scenarios ([`template`]), and the HTTP execution of a profile action
//! ([`Request::new`] + [`execute`], or both at once with [`call`]).

pub mod action;
pub mod handshake;
pub mod identity;
pub mod profile;
pub mod template;

pub use action::Action;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use profile::{Profile, Vars};
use template::{expand_string, expand_toml};

/// The default bound of one driver request (connect, send, answer), used
/// by [`call`].
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a driver action failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DriverError {
    /// The profile has no such action.
    #[error("driver action `{0}` is not in the target profile")]
    MissingAction(String),
    /// A template of the action could not be expanded (missing variable,
    /// bad method).
    #[error("driver action `{action}`: {message}")]
    Template { action: String, message: String },
    /// No answer within `timeout` ([`REQUEST_TIMEOUT`] for [`call`]).
    #[error("driver action `{action}`: no answer within {}s", timeout.as_secs())]
    Timeout { action: String, timeout: Duration },
    /// Connection refused, reset, DNS, TLS...: the target may be gone.
    #[error("driver action `{action}`: {message}")]
    Transport { action: String, message: String },
    /// The target answered with another status than the action expects
    /// (its `expect`, else any 2xx).
    #[error("driver action `{action}` answered {status}: {body}")]
    Status {
        action: String,
        status: u16,
        body: Value,
    },
}

/// What kind of failure a [`DriverError`] is, for callers that count
/// failures by kind (the load generator names its counters from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind<'a> {
    MissingAction,
    Template,
    Timeout,
    Transport,
    /// An unexpected status whose body carries a REST error code
    /// (`{"error":{"code":..}}`).
    Rest(&'a str),
    /// An unexpected status without a REST error code.
    Status(u16),
}

impl DriverError {
    /// The kind of the failure (a REST error code when the answer has one).
    pub fn kind(&self) -> FailureKind<'_> {
        match self {
            DriverError::MissingAction(_) => FailureKind::MissingAction,
            DriverError::Template { .. } => FailureKind::Template,
            DriverError::Timeout { .. } => FailureKind::Timeout,
            DriverError::Transport { .. } => FailureKind::Transport,
            DriverError::Status { status, body, .. } => {
                match body.pointer("/error/code").and_then(Value::as_str) {
                    Some(code) => FailureKind::Rest(code),
                    None => FailureKind::Status(*status),
                }
            }
        }
    }

    /// Whether the failure says the target may be unreachable.
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            DriverError::Transport { .. } | DriverError::Timeout { .. }
        )
    }
}

fn text(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// A profile action with its templates expanded, ready to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// The action's name in the profile.
    pub action: String,
    pub method: reqwest::Method,
    /// The expanded path (after the target's base URL).
    pub path: String,
    /// The target's base URL followed by [`Request::path`].
    pub url: String,
    /// Expanded headers.
    pub headers: Vec<(String, String)>,
    /// The expanded JSON body, if the action has one.
    pub body: Option<Value>,
    /// The success status; any 2xx when absent.
    pub expect: Option<u16>,
    /// Variable name → JSON pointer into the response body.
    pub extract: BTreeMap<String, String>,
}

impl Request {
    /// Expands the profile's `action` for `target` (base URL) with
    /// `base_vars` (the profile's `[vars]`) overlaid by `vars`.
    pub fn new(
        target: &str,
        profile: &Profile,
        base_vars: &Vars,
        action: &str,
        vars: &Vars,
    ) -> Result<Request, DriverError> {
        let Some(a) = profile.actions.get(action) else {
            return Err(DriverError::MissingAction(action.to_owned()));
        };
        let mut all = base_vars.clone();
        all.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        let bad = |message: String| DriverError::Template {
            action: action.to_owned(),
            message,
        };
        let expanded = |e: template::TemplateError| bad(e.to_string());
        let path = text(expand_string(&a.path, &all).map_err(expanded)?);
        let url = format!("{}{}", target.trim_end_matches('/'), path);
        let method = reqwest::Method::from_bytes(a.method.to_ascii_uppercase().as_bytes())
            .map_err(|e| bad(e.to_string()))?;
        let mut headers = Vec::with_capacity(a.headers.len());
        for (k, v) in &a.headers {
            headers.push((k.clone(), text(expand_string(v, &all).map_err(expanded)?)));
        }
        let body = match &a.body {
            Some(b) => Some(expand_toml(b, &all).map_err(expanded)?),
            None => None,
        };
        Ok(Request {
            action: action.to_owned(),
            method,
            path,
            url,
            headers,
            body,
            expect: a.expect,
            extract: a.extract.clone(),
        })
    }
}

/// Sends `req` and reads its answer, both within `timeout`.
///
/// Returns the status, the JSON body (`Null` when empty, a string when not
/// JSON) and the variables of the action's `extract` that were found in the
/// body (a pointer that is absent is left out; the caller decides whether
/// it needed it). A status other than the action's `expect` (any 2xx when
/// absent) is [`DriverError::Status`], with the status and body.
pub async fn execute(
    http: &reqwest::Client,
    req: &Request,
    timeout: Duration,
) -> Result<(u16, Value, Vars), DriverError> {
    let action = &req.action;
    let mut builder = http.request(req.method.clone(), &req.url).timeout(timeout);
    for (k, v) in &req.headers {
        builder = builder.header(k, v);
    }
    if let Some(body) = &req.body {
        builder = builder.json(body);
    }
    let exchange = async {
        let res = builder.send().await?;
        let status = res.status().as_u16();
        let body = res.text().await?;
        Ok::<_, reqwest::Error>((status, body))
    };
    let (status, body) = match tokio::time::timeout(timeout, exchange).await {
        Err(_) => {
            return Err(DriverError::Timeout {
                action: action.clone(),
                timeout,
            });
        }
        Ok(Err(e)) if e.is_timeout() => {
            return Err(DriverError::Timeout {
                action: action.clone(),
                timeout,
            });
        }
        Ok(Err(e)) => {
            return Err(DriverError::Transport {
                action: action.clone(),
                message: error_chain(&e),
            });
        }
        Ok(Ok(x)) => x,
    };
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap_or(Value::String(body))
    };
    let ok = match req.expect {
        Some(code) => status == code,
        None => (200..300).contains(&status),
    };
    if !ok {
        return Err(DriverError::Status {
            action: action.clone(),
            status,
            body: value,
        });
    }
    let mut extracted = Vars::new();
    for (name, pointer) in &req.extract {
        if let Some(v) = value.pointer(pointer) {
            extracted.insert(name.clone(), v.clone());
        }
    }
    Ok((status, value, extracted))
}

/// Runs the profile's `action` against `target` (base URL) with
/// `base_vars` (the profile's `[vars]`) overlaid by `vars`: [`Request::new`]
/// then [`execute`] bounded by [`REQUEST_TIMEOUT`].
pub async fn call(
    http: &reqwest::Client,
    target: &str,
    profile: &Profile,
    base_vars: &Vars,
    action: &str,
    vars: &Vars,
) -> Result<(u16, Value, Vars), DriverError> {
    let req = Request::new(target, profile, base_vars, action, vars)?;
    execute(http, &req, REQUEST_TIMEOUT).await
}

/// The error and its sources on one line (reqwest's own `Display` hides
/// "connection refused" in the source chain).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_the_rest_error_code() {
        let status = |body: Value| DriverError::Status {
            action: "a".into(),
            status: 429,
            body,
        };
        let coded = status(serde_json::json!({"error": {"code": "RATE_LIMIT_EXCEEDED"}}));
        assert_eq!(coded.kind(), FailureKind::Rest("RATE_LIMIT_EXCEEDED"));
        assert_eq!(status(Value::Null).kind(), FailureKind::Status(429));
        let timeout = DriverError::Timeout {
            action: "a".into(),
            timeout: REQUEST_TIMEOUT,
        };
        assert_eq!(timeout.kind(), FailureKind::Timeout);
        assert_eq!(
            DriverError::MissingAction("a".into()).kind(),
            FailureKind::MissingAction
        );
    }
}
