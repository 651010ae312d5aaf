//! The driver: one HTTP request per domain change on the target, from the
//! target profile's request templates (modelled on the conformance
//! runner's `Ctx::act_raw`/`act`, without transcripts).
//!
//! Everything is in [`call`] so it can move to the shared `driver` crate
//! later.

use std::time::Duration;

use conformance::profile::{Profile, Vars, expand_string};
use serde_json::Value;

/// Bound of one driver request (connect, send, answer).
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
    /// No answer within [`REQUEST_TIMEOUT`].
    #[error("driver action `{action}`: no answer within {}s", REQUEST_TIMEOUT.as_secs())]
    Timeout { action: String },
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

impl DriverError {
    /// The counter a failure adds to: `errors.<CODE>` with the REST
    /// error code of the answer (`{"error":{"code":..}}`), else
    /// `errors.http_<status>`; `errors.timeout`, `errors.http_transport`,
    /// `errors.template`, `errors.missing_action`.
    pub fn counter(&self) -> String {
        match self {
            DriverError::MissingAction(_) => "errors.missing_action".into(),
            DriverError::Template { .. } => "errors.template".into(),
            DriverError::Timeout { .. } => "errors.timeout".into(),
            DriverError::Transport { .. } => "errors.http_transport".into(),
            DriverError::Status { status, body, .. } => {
                match body.pointer("/error/code").and_then(Value::as_str) {
                    Some(code) => format!("errors.{code}"),
                    None => format!("errors.http_{status}"),
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

/// Runs the profile's `action` against `target` (base URL) with
/// `base_vars` (the profile's `[vars]`) overlaid by `vars`.
///
/// Returns the status, the JSON body (`Null` when empty, a string when not
/// JSON) and the variables of the action's `extract` that were found in the
/// body (a pointer that is absent is left out; the caller decides whether
/// it needed it). A status other than the action's `expect` (any 2xx when
/// absent) is [`DriverError::Status`]. Bounded by [`REQUEST_TIMEOUT`].
pub async fn call(
    http: &reqwest::Client,
    target: &str,
    profile: &Profile,
    base_vars: &Vars,
    action: &str,
    vars: &Vars,
) -> Result<(u16, Value, Vars), DriverError> {
    let Some(a) = profile.actions.get(action) else {
        return Err(DriverError::MissingAction(action.to_owned()));
    };
    let mut all = base_vars.clone();
    all.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    let template = |message: String| DriverError::Template {
        action: action.to_owned(),
        message,
    };
    let path = text(expand_string(&a.path, &all).map_err(template)?);
    let url = format!("{}{}", target.trim_end_matches('/'), path);
    let method = reqwest::Method::from_bytes(a.method.to_ascii_uppercase().as_bytes())
        .map_err(|e| template(e.to_string()))?;
    let mut req = http.request(method, &url).timeout(REQUEST_TIMEOUT);
    for (k, v) in &a.headers {
        req = req.header(k, text(expand_string(v, &all).map_err(template)?));
    }
    if let Some(b) = &a.body {
        let body = conformance::profile::expand_value(b, &all).map_err(template)?;
        req = req.json(&body);
    }
    let exchange = async {
        let res = req.send().await?;
        let status = res.status().as_u16();
        let body = res.text().await?;
        Ok::<_, reqwest::Error>((status, body))
    };
    let (status, body) = match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
        Err(_) => {
            return Err(DriverError::Timeout {
                action: action.to_owned(),
            });
        }
        Ok(Err(e)) if e.is_timeout() => {
            return Err(DriverError::Timeout {
                action: action.to_owned(),
            });
        }
        Ok(Err(e)) => {
            return Err(DriverError::Transport {
                action: action.to_owned(),
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
    let ok = match a.expect {
        Some(code) => status == code,
        None => (200..300).contains(&status),
    };
    if !ok {
        return Err(DriverError::Status {
            action: action.to_owned(),
            status,
            body: value,
        });
    }
    let mut extracted = Vars::new();
    for (name, pointer) in &a.extract {
        if let Some(v) = value.pointer(pointer) {
            extracted.insert(name.clone(), v.clone());
        }
    }
    Ok((status, value, extracted))
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
