//! The target driver shared by the conformance runner and the load
//! generator: target profiles (where the target is and how to cause each
//! domain change on it, as HTTP request templates — [`profile`]), the
//! actions they define ([`Action`]), the template grammar of profiles and
//! scenarios ([`template`]), and the HTTP execution of a profile action
//! (every step of an action with [`perform`], or [`call`] with the
//! default bound).

pub mod action;
pub mod handshake;
pub mod identity;
pub mod profile;
pub mod target;
pub mod template;

pub use action::Action;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use profile::{Extract, Profile, Source, Vars};
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

/// An expanded request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Sent as `application/json`.
    Json(Value),
    /// Sent as `application/x-www-form-urlencoded`, fields in order.
    Form(Vec<(String, String)>),
}

impl Body {
    /// The body as it goes on the wire.
    pub fn text(&self) -> String {
        match self {
            Body::Json(v) => v.to_string(),
            Body::Form(fields) => {
                // The urlencoded serializer of the `url` crate reqwest
                // already carries, through a throwaway URL's query.
                let mut u = reqwest::Url::parse("http://form.invalid/").expect("static URL");
                u.query_pairs_mut().extend_pairs(fields);
                u.query().unwrap_or_default().to_owned()
            }
        }
    }
}

/// One step of a profile action with its templates expanded, ready to
/// send.
#[derive(Debug, Clone)]
pub struct Request {
    /// The action's name in the profile.
    pub action: String,
    /// 1-based step number (1 for a single-request action).
    pub step: usize,
    pub method: reqwest::Method,
    /// The base the step uses (`None`: the target).
    pub base: Option<String>,
    /// The expanded path (after the base URL).
    pub path: String,
    /// The base URL followed by [`Request::path`].
    pub url: String,
    /// Expanded headers: the base's, then the step's.
    pub headers: Vec<(String, String)>,
    pub body: Option<Body>,
    /// The success status; any 2xx when absent.
    pub expect: Option<u16>,
    /// What to read from the answer.
    pub extract: BTreeMap<String, Extract>,
}

impl Request {
    /// Expands step `index` (0-based) of the profile's `action` for
    /// `target` (the default base URL) with `vars` (every variable the
    /// step may use, maps applied).
    pub fn new(
        target: &str,
        profile: &Profile,
        action: &str,
        index: usize,
        vars: &Vars,
    ) -> Result<Request, DriverError> {
        let Some(a) = profile.actions.get(action) else {
            return Err(DriverError::MissingAction(action.to_owned()));
        };
        let Some(step) = a.steps.get(index) else {
            return Err(DriverError::Template {
                action: action.to_owned(),
                message: format!("no step {}", index + 1),
            });
        };
        let at = if a.steps.len() > 1 {
            format!("step {}: ", index + 1)
        } else {
            String::new()
        };
        let bad = |message: String| DriverError::Template {
            action: action.to_owned(),
            message: format!("{at}{message}"),
        };
        let expanded = |e: template::TemplateError| bad(e.to_string());
        let mut headers = Vec::new();
        let base_url = match &step.base {
            None => target.to_owned(),
            Some(name) => {
                let base = profile
                    .target
                    .bases
                    .get(name)
                    .ok_or_else(|| bad(format!("no base `{name}` in [target.bases]")))?;
                for (k, v) in &base.headers {
                    if !step.headers.keys().any(|h| h.eq_ignore_ascii_case(k)) {
                        headers.push((k.clone(), text(expand_string(v, vars).map_err(expanded)?)));
                    }
                }
                text(expand_string(&base.url, vars).map_err(expanded)?)
            }
        };
        let path = text(expand_string(&step.path, vars).map_err(expanded)?);
        let url = format!("{}{}", base_url.trim_end_matches('/'), path);
        let method = reqwest::Method::from_bytes(step.method.to_ascii_uppercase().as_bytes())
            .map_err(|e| bad(e.to_string()))?;
        for (k, v) in &step.headers {
            headers.push((k.clone(), text(expand_string(v, vars).map_err(expanded)?)));
        }
        let body = match (&step.body, &step.form) {
            (Some(b), _) => {
                let mut json = expand_toml(b, vars).map_err(expanded)?;
                if step.omit_empty
                    && let Value::Object(fields) = &mut json
                {
                    fields.retain(|_, v| v.as_str() != Some(""));
                }
                Some(Body::Json(json))
            }
            (None, Some(form)) => {
                let mut fields = Vec::with_capacity(form.len());
                for (k, v) in form {
                    let value = text(expand_string(v, vars).map_err(expanded)?);
                    if !(step.omit_empty && value.is_empty()) {
                        fields.push((k.clone(), value));
                    }
                }
                Some(Body::Form(fields))
            }
            (None, None) => None,
        };
        Ok(Request {
            action: action.to_owned(),
            step: index + 1,
            method,
            base: step.base.clone(),
            path,
            url,
            headers,
            body,
            expect: step.expect,
            extract: step.extract.clone(),
        })
    }

    /// `METHOD [base:]path body`, for transcripts.
    pub fn summary(&self) -> String {
        let base = self
            .base
            .as_ref()
            .map(|b| format!("{b}:"))
            .unwrap_or_default();
        let body = self.body.as_ref().map(Body::text).unwrap_or_default();
        format!("{} {base}{} {body}", self.method, self.path)
            .trim_end()
            .to_owned()
    }
}

/// What [`perform`] shows its observer: each request before it is sent,
/// each answer once read.
#[derive(Debug)]
pub enum Observed<'a> {
    Request(&'a Request),
    Response { status: u16, body: &'a Value },
}

/// Sends one expanded step and reads its answer, both within `timeout`.
///
/// Returns the status, the JSON body (`Null` when empty, a string when not
/// JSON) and the variables of the step's `extract` that were found (one
/// that is absent is left out; the caller decides whether it needed it).
/// A status other than the step's `expect` (any 2xx when absent) is
/// [`DriverError::Status`], with the status and body.
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
    match &req.body {
        Some(Body::Json(body)) => builder = builder.json(body),
        Some(form @ Body::Form(_)) => {
            builder = builder
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form.text());
        }
        None => {}
    }
    let exchange = async {
        let res = builder.send().await?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.text().await?;
        Ok::<_, reqwest::Error>((status, headers, body))
    };
    let (status, headers, body) = match tokio::time::timeout(timeout, exchange).await {
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
                message: sioclient::error_chain(&e),
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
    for (name, how) in &req.extract {
        let found = match &how.source {
            Source::Pointer(p) => value.pointer(p).cloned(),
            Source::Header(h) => headers
                .get(h.as_str())
                .and_then(|v| v.to_str().ok())
                .map(|v| Value::String(v.to_owned())),
            Source::Status => Some(Value::from(status)),
        };
        let found = match (found, &how.after) {
            (Some(v), Some(marker)) => {
                let t = text(v);
                t.rfind(marker.as_str())
                    .map(|i| Value::String(t[i + marker.len()..].to_owned()))
            }
            (found, None) => found,
            (None, Some(_)) => None,
        };
        if let Some(v) = found {
            extracted.insert(name.clone(), v);
        }
    }
    Ok((status, value, extracted))
}

/// Where and how actions run: the HTTP client, the target's base URL (the
/// default base), the profile and its expanded `[vars]`.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub http: &'a reqwest::Client,
    pub url: &'a str,
    pub profile: &'a Profile,
    pub base_vars: &'a Vars,
}

/// Runs every step of the profile's `action` against the target with its
/// `base_vars` (the profile's `[vars]`) overlaid by
/// `vars` (and the fields of a `patch` object in `vars`, each as a
/// variable), value maps applied; a step sees what earlier ones extracted.
/// Each step is bounded by `timeout`; `observe` sees every request and
/// answer. Returns the last step's status and body and everything the
/// steps extracted; the first step that fails ends the action with its
/// error.
pub async fn perform(
    target: Target<'_>,
    action: &str,
    vars: &Vars,
    timeout: Duration,
    observe: &mut (dyn FnMut(Observed<'_>) + Send),
) -> Result<(u16, Value, Vars), DriverError> {
    let Target {
        http,
        url: target,
        profile,
        base_vars,
    } = target;
    let Some(a) = profile.actions.get(action) else {
        return Err(DriverError::MissingAction(action.to_owned()));
    };
    let mut all = base_vars.clone();
    all.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    // Each field of a `patch` is also a variable of its own, for a target
    // whose update takes fields rather than a patch object.
    if let Some(Value::Object(patch)) = vars.get("patch") {
        for (k, v) in patch.iter().filter(|(k, _)| !vars.contains_key(*k)) {
            all.insert(k.clone(), v.clone());
        }
    }
    let mut out = Vars::new();
    let mut last = (0, Value::Null);
    for index in 0..a.steps.len() {
        profile
            .apply_maps(&mut all)
            .map_err(|e| DriverError::Template {
                action: action.to_owned(),
                message: e.to_string(),
            })?;
        let req = Request::new(target, profile, action, index, &all)?;
        observe(Observed::Request(&req));
        let result = execute(http, &req, timeout).await;
        match &result {
            Ok((status, body, _)) | Err(DriverError::Status { status, body, .. }) => {
                observe(Observed::Response {
                    status: *status,
                    body,
                });
            }
            Err(_) => {}
        }
        let (status, body, extracted) = result?;
        all.extend(extracted.iter().map(|(k, v)| (k.clone(), v.clone())));
        out.extend(extracted);
        last = (status, body);
    }
    Ok((last.0, last.1, out))
}

/// Runs the profile's `action` against `target` (base URL) with
/// `base_vars` (the profile's `[vars]`) overlaid by `vars`: [`perform`]
/// with every step bounded by [`REQUEST_TIMEOUT`].
pub async fn call(
    http: &reqwest::Client,
    target: &str,
    profile: &Profile,
    base_vars: &Vars,
    action: &str,
    vars: &Vars,
) -> Result<(u16, Value, Vars), DriverError> {
    let target = Target {
        http,
        url: target,
        profile,
        base_vars,
    };
    perform(target, action, vars, REQUEST_TIMEOUT, &mut |_| {}).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A request as the stub server saw it: method and path, the
    /// `content-type` and `authorization` headers, the body.
    type Seen = (String, Option<String>, Option<String>, String);

    /// A loopback HTTP/1.1 server that answers each request with
    /// `answer(method path)` (status, extra header lines, body) and keeps
    /// what it saw. Bounded: one read per request, small bodies.
    async fn stub(
        answer: fn(&str) -> (u16, &'static str, &'static str),
    ) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = vec![0u8; 16 * 1024];
                let mut len = 0;
                // Read the head, then the body its Content-Length announces.
                let (head, body) = loop {
                    let n = conn.read(&mut buf[len..]).await.unwrap();
                    len += n;
                    let text = String::from_utf8_lossy(&buf[..len]).into_owned();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let head = text[..end].to_owned();
                        let want: usize = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse().ok())?
                            })
                            .unwrap_or(0);
                        if len - end - 4 >= want || n == 0 {
                            break (head, text[end + 4..].to_owned());
                        }
                    }
                    assert!(n > 0, "request cut short");
                };
                let header = |name: &str| {
                    head.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                    })
                };
                let line = head.lines().next().unwrap_or("");
                let request = line.rsplit_once(' ').map_or(line, |(r, _)| r).to_owned();
                let (status, extra, reply) = answer(&request);
                log.lock().unwrap().push((
                    request,
                    header("content-type"),
                    header("authorization"),
                    body,
                ));
                let out = format!(
                    "HTTP/1.1 {status} X\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                conn.write_all(out.as_bytes()).await.unwrap();
            }
        });
        (url, seen)
    }

    fn foreign(admin: &str) -> Profile {
        let text = format!(
            r#"
[target.bases.admin]
url = "{admin}/admin"
headers = {{ Authorization = "Token ${{key}}" }}

[maps.isPrivate]
from = "visibility"
values = {{ private = true, public = false }}

[[actions.create_room.steps]]
base = "admin"
method = "POST"
path = "/rooms"
body = {{ title = "${{name}}", isPrivate = "${{isPrivate}}" }}
extract = {{ roomId = {{ header = "Location", after = "/rooms/" }}, created = {{ status = true }} }}

[[actions.create_room.steps]]
base = "admin"
method = "GET"
path = "/rooms/${{roomId}}"
extract = {{ roomName = "/title", absent = "/nope" }}

[actions.create_user]
base = "admin"
method = "POST"
path = "/users"
form = {{ display_name = "${{name}}", avatar_url = "${{avatar:-}}" }}
omit_empty = true
extract = {{ userId = "/user/uid" }}

[actions.update_room]
method = "PUT"
path = "/api/rooms/${{roomId}}"
body = {{ title = "${{name:-kept}}", status = "${{status}}" }}
"#
        );
        Profile::parse(&text, "t").unwrap()
    }

    fn answer(request: &str) -> (u16, &'static str, &'static str) {
        match request {
            "POST /admin/rooms" => (201, "location: /admin/rooms/r-42\r\n", ""),
            "GET /admin/rooms/r-42" => (200, "", r#"{"title":"Lobby, as kept"}"#),
            "POST /admin/users" => (201, "", r#"{"user":{"uid":"u-1"}}"#),
            "PUT /api/rooms/r-9" => (409, "", r#"{"code":"conflict"}"#),
            _ => (404, "", ""),
        }
    }

    fn vars(pairs: &[(&str, Value)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    /// Two steps on a named base with its headers, a value map, a header
    /// with `after`, the status, and a later step using an earlier
    /// extraction; every request observed.
    #[tokio::test]
    async fn multi_step_actions_on_a_base_extract_from_headers_status_and_body() {
        let (url, seen) = stub(answer).await;
        let profile = foreign(&url);
        let http = reqwest::Client::new();
        let mut observed = Vec::new();
        let base_vars = vars(&[("key", json!("K"))]);
        let target = Target {
            http: &http,
            url: "http://127.0.0.1:9",
            profile: &profile,
            base_vars: &base_vars,
        };
        let (status, body, out) = perform(
            target,
            "create_room",
            &vars(&[("name", json!("Lobby")), ("visibility", json!("private"))]),
            REQUEST_TIMEOUT,
            &mut |o| match o {
                Observed::Request(r) => observed.push(r.summary()),
                Observed::Response { status, .. } => observed.push(status.to_string()),
            },
        )
        .await
        .unwrap();
        assert_eq!((status, &body), (200, &json!({"title": "Lobby, as kept"})));
        assert_eq!(
            out,
            vars(&[
                ("roomId", json!("r-42")),
                ("created", json!(201)),
                ("roomName", json!("Lobby, as kept")),
            ]),
            "an absent pointer is left out"
        );
        assert_eq!(
            observed,
            [
                r#"POST admin:/rooms {"isPrivate":true,"title":"Lobby"}"#,
                "201",
                "GET admin:/rooms/r-42",
                "200"
            ]
        );
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0, "POST /admin/rooms");
        assert_eq!(seen[0].1.as_deref(), Some("application/json"));
        assert_eq!(seen[0].2.as_deref(), Some("Token K"));
        assert_eq!(
            serde_json::from_str::<Value>(&seen[0].3).unwrap(),
            json!({"title": "Lobby", "isPrivate": true})
        );
        assert_eq!(seen[1].0, "GET /admin/rooms/r-42");
        assert_eq!(seen[1].2.as_deref(), Some("Token K"));
    }

    #[tokio::test]
    async fn form_bodies_are_urlencoded_and_omit_empty_fields() {
        let (url, seen) = stub(answer).await;
        let profile = foreign(&url);
        let (_, _, out) = call(
            &reqwest::Client::new(),
            "http://127.0.0.1:9",
            &profile,
            &vars(&[("key", json!("K"))]),
            "create_user",
            &vars(&[("name", json!("Ann & Bo"))]),
        )
        .await
        .unwrap();
        assert_eq!(out, vars(&[("userId", json!("u-1"))]));
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen[0].1.as_deref(),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(seen[0].3, "display_name=Ann+%26+Bo", "avatar_url omitted");
    }

    /// The fields of `patch` are variables too (a caller's own win); an
    /// unexpected status is an error with the status and the body.
    #[tokio::test]
    async fn patch_fields_are_variables_and_a_refusal_keeps_its_body() {
        let (url, seen) = stub(answer).await;
        let profile = foreign(&url);
        let err = call(
            &reqwest::Client::new(),
            &url,
            &profile,
            &Vars::new(),
            "update_room",
            &vars(&[
                ("roomId", json!("r-9")),
                ("patch", json!({"status": "ended", "roomId": "ignored"})),
            ]),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, DriverError::Status { status: 409, body, .. } if body["code"] == "conflict"),
            "{err:?}"
        );
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen[0].0, "PUT /api/rooms/r-9");
        assert_eq!(
            serde_json::from_str::<Value>(&seen[0].3).unwrap(),
            json!({"title": "kept", "status": "ended"})
        );
    }

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
