//! How a client connects to the target: the `auth` object of the
//! Socket.IO CONNECT, extra headers, query parameters, `Origin`, the
//! transports the target offers, and TLS trust. From the profile's
//! `[handshake]` section and per-run flags ([`HandshakeArgs`], shared by
//! both tools), resolved once into a [`Handshake`] that turns a
//! [`sioclient::ClientConfig`] into what the target expects.
//!
//! Why: a deployment is not the reference server. It may read the token
//! as `auth.access_token`, want a tenant header or query parameter, check
//! `Origin`, turn long-polling off, or sit behind a private CA. The HTTP
//! proxy needs no setting here: sioclient honours `HTTPS_PROXY` /
//! `HTTP_PROXY` / `NO_PROXY` on every transport, as reqwest does for
//! driver calls.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sioclient::{ClientConfig, TlsConfig, Transport};

use crate::template::{TemplateError, Vars, expand_json_with, expand_string};

/// The profile's `[handshake]` section. Strings are templates over the
/// profile's `[vars]` and the environment; `auth` also over `${token}` and
/// `${userId}` (the connecting user's).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandshakeSection {
    /// The CONNECT `auth` object [default: `{token = "${token}"}`].
    pub auth: Option<toml::Value>,
    /// Extra HTTP headers on the WebSocket handshake and polling requests.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Extra query parameters on every Engine.IO request.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// The `Origin` header.
    pub origin: Option<String>,
    /// The transports the target offers: `websocket`, `polling`
    /// [default: both].
    pub transports: Option<Vec<String>>,
    /// Also trust the certificates of this PEM file.
    pub ca_file: Option<String>,
    /// Accept any TLS certificate (staging only).
    #[serde(default)]
    pub insecure_tls: bool,
}

/// Handshake flags, the same in both tools; each adds to or overrides the
/// profile's `[handshake]`.
// The field docs are clap's `--help` text (TOML tables and JSON as people
// read them), not rustdoc prose.
#[allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]
#[derive(Debug, Clone, Default, clap::Args, Serialize, Deserialize)]
pub struct HandshakeArgs {
    /// Extra header on every Socket.IO request, 'NAME: VALUE' (repeatable;
    /// added to the profile's [handshake] headers).
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Extra query parameter on every Engine.IO request, NAME=VALUE
    /// (repeatable).
    #[arg(long = "query", value_name = "NAME=VALUE", value_parser = parse_query)]
    pub query: Vec<(String, String)>,
    /// The Origin header of every Socket.IO request.
    #[arg(long, value_name = "URL")]
    pub origin: Option<String>,
    /// The CONNECT auth object as JSON; strings are templates over
    /// ${token} and ${userId} [default: {"token":"${token}"}].
    #[arg(long, value_name = "JSON", value_parser = parse_auth)]
    pub auth: Option<Value>,
    /// Transports the target offers, comma-separated: websocket, polling
    /// [default: both]. Cases or scenarios needing another one skip / are
    /// refused.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub transports: Vec<String>,
    /// Also trust the certificates of this PEM file (a private CA, a
    /// self-signed staging certificate) for Socket.IO and driver calls.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Accept ANY TLS certificate and host name, for Socket.IO and driver
    /// calls. Staging only: anyone on the path can read and change the
    /// traffic, tokens included.
    #[arg(long)]
    pub insecure_tls: bool,
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("expected 'NAME: VALUE', got `{s}`"))?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("bad header name `{name}`"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

fn parse_query(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got `{s}`"))?;
    if name.is_empty() {
        return Err(format!("empty parameter name in `{s}`"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

fn parse_auth(s: &str) -> Result<Value, String> {
    match serde_json::from_str(s) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err("the auth must be a JSON object".to_owned()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// Why the handshake settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("handshake {what}: {source}")]
    Template { what: String, source: TemplateError },
    #[error("handshake transports: unknown `{0}` (websocket, polling)")]
    UnknownTransport(String),
    #[error("handshake transports: the list is empty")]
    NoTransport,
    #[error("handshake auth must be a table (a JSON object), got {0}")]
    AuthNotObject(Value),
    #[error("handshake ca_file {path}: {message}")]
    CaFile { path: String, message: String },
}

/// The resolved handshake of a run: what every connection of both tools
/// sends.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// The `auth` template (a JSON object).
    auth: Value,
    /// Headers, `Origin` included.
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    websocket: bool,
    polling: bool,
    pub tls: TlsConfig,
    /// The CA file's certificates, read once, for driver calls.
    ca_certs: Vec<reqwest::Certificate>,
}

impl Default for Handshake {
    /// The reference server's: `{token}`, both transports, nothing else.
    fn default() -> Self {
        Handshake {
            auth: json!({"token": "${token}"}),
            headers: Vec::new(),
            query: Vec::new(),
            websocket: true,
            polling: true,
            tls: TlsConfig::default(),
            ca_certs: Vec::new(),
        }
    }
}

impl Handshake {
    /// The profile's section with the flags on top (headers and query
    /// parameters add up; the rest override), its strings expanded over
    /// `base_vars` (the profile's `[vars]`) and the environment. A CA file
    /// is read here, so a wrong path is a usage error before anything runs.
    pub fn resolve(
        section: &HandshakeSection,
        args: &HandshakeArgs,
        base_vars: &Vars,
    ) -> Result<Handshake, HandshakeError> {
        let expand = |what: &str, s: &str| {
            expand_string(s, base_vars)
                .map(|v| match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
                .map_err(|source| HandshakeError::Template {
                    what: what.to_owned(),
                    source,
                })
        };
        let auth = match (&args.auth, &section.auth) {
            (Some(a), _) => a.clone(),
            (None, Some(t)) => serde_json::to_value(t).unwrap_or(Value::Null),
            (None, None) => Handshake::default().auth,
        };
        if !auth.is_object() {
            return Err(HandshakeError::AuthNotObject(auth));
        }
        let mut headers = Vec::new();
        for (k, v) in &section.headers {
            headers.push((k.clone(), expand(&format!("header {k}"), v)?));
        }
        headers.extend(args.headers.iter().cloned());
        if let Some(origin) = args.origin.as_ref().or(section.origin.as_ref()) {
            headers.retain(|(k, _)| !k.eq_ignore_ascii_case("origin"));
            headers.push(("Origin".to_owned(), expand("origin", origin)?));
        }
        let mut query = Vec::new();
        for (k, v) in &section.query {
            query.push((k.clone(), expand(&format!("query {k}"), v)?));
        }
        query.extend(args.query.iter().cloned());
        let names = if args.transports.is_empty() {
            section.transports.clone()
        } else {
            Some(args.transports.clone())
        };
        let (mut websocket, mut polling) = (true, true);
        if let Some(names) = names {
            (websocket, polling) = (false, false);
            for name in names {
                match name.trim() {
                    "websocket" => websocket = true,
                    "polling" => polling = true,
                    other => return Err(HandshakeError::UnknownTransport(other.to_owned())),
                }
            }
            if !websocket && !polling {
                return Err(HandshakeError::NoTransport);
            }
        }
        let ca_file = match (&args.ca_file, &section.ca_file) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(p)) => Some(PathBuf::from(expand("ca_file", p)?)),
            (None, None) => None,
        };
        let mut ca_certs = Vec::new();
        if let Some(path) = &ca_file {
            let ca_error = |message: String| HandshakeError::CaFile {
                path: path.display().to_string(),
                message,
            };
            let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
            ca_certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(e.to_string()))?;
            if ca_certs.is_empty() {
                return Err(ca_error("no PEM certificate in it".to_owned()));
            }
        }
        Ok(Handshake {
            auth,
            headers,
            query,
            websocket,
            polling,
            tls: TlsConfig {
                ca_file,
                insecure: args.insecure_tls || section.insecure_tls,
            },
            ca_certs,
        })
    }

    /// The CONNECT `auth` for a user: the template expanded over `vars`
    /// (`token`, `userId`), then `base_vars`, then the environment.
    pub fn auth(&self, vars: &Vars, base_vars: &Vars) -> Result<Value, TemplateError> {
        expand_json_with(&self.auth, &|n| {
            vars.get(n).or_else(|| base_vars.get(n)).cloned()
        })
    }

    /// Whether the target offers `transport` (an upgrade needs both).
    pub fn allows(&self, transport: Transport) -> bool {
        self.excluded(transport).is_none()
    }

    /// The transport `transport` needs that the handshake excludes (for an
    /// upgrade: polling, else WebSocket), if any.
    pub fn excluded(&self, transport: Transport) -> Option<Transport> {
        let needs_polling = transport != Transport::WebSocket;
        let needs_websocket = transport != Transport::Polling;
        if needs_polling && !self.polling {
            Some(Transport::Polling)
        } else if needs_websocket && !self.websocket {
            Some(Transport::WebSocket)
        } else {
            None
        }
    }

    /// The transport a reachability probe starts with: polling when the
    /// target offers it (the probe falls back to WebSocket by itself).
    pub fn probe_transport(&self) -> Transport {
        if self.polling {
            Transport::Polling
        } else {
            Transport::WebSocket
        }
    }

    /// `config` with the handshake's query parameters, headers and TLS
    /// trust (auth and transport are the caller's: they vary per
    /// connection).
    pub fn apply(&self, mut config: ClientConfig) -> ClientConfig {
        if !self.query.is_empty()
            && let Ok(mut url) = reqwest::Url::parse(&config.url)
        {
            url.query_pairs_mut().extend_pairs(&self.query);
            config.url = url.to_string();
        }
        config.headers.extend(self.headers.iter().cloned());
        config.tls = self.tls.clone();
        config
    }

    /// `builder` with the TLS trust, for driver calls to the same target.
    pub fn http_builder(&self, mut builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        for cert in &self.ca_certs {
            builder = builder.add_root_certificate(cert.clone());
        }
        if self.tls.insecure {
            builder = builder
                .tls_danger_accept_invalid_certs(true)
                .tls_danger_accept_invalid_hostnames(true);
        }
        builder
    }

    /// The warning both tools print when certificate checks are off.
    pub fn insecure_warning(&self) -> Option<&'static str> {
        self.tls.insecure.then_some(
            "warning: --insecure-tls / insecure_tls: TLS certificates are NOT checked; anyone on the path can read and change this run's traffic, tokens included",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(text: &str) -> HandshakeSection {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn the_default_is_the_reference_servers() {
        let h = Handshake::resolve(&section(""), &HandshakeArgs::default(), &Vars::new()).unwrap();
        let vars: Vars = [("token".to_owned(), json!("T"))].into();
        assert_eq!(h.auth(&vars, &Vars::new()).unwrap(), json!({"token": "T"}));
        assert!(h.allows(Transport::PollingThenUpgrade));
        assert_eq!(h.probe_transport(), Transport::Polling);
        let config = h.apply(ClientConfig::new("http://h:1"));
        assert!(config.headers.is_empty());
        assert_eq!(config.url, "http://h:1");
    }

    #[test]
    fn profile_and_flags_combine() {
        let s = section(
            r#"
            auth = { access_token = "${token}", tenant = "${tenant}", v = 2 }
            headers = { "X-Tenant" = "${tenant}" }
            query = { tenant = "${tenant}" }
            origin = "https://app.example"
            transports = ["websocket"]
            "#,
        );
        let base: Vars = [("tenant".to_owned(), json!("acme"))].into();
        let h = Handshake::resolve(&s, &HandshakeArgs::default(), &base).unwrap();
        let vars: Vars = [("token".to_owned(), json!("T"))].into();
        assert_eq!(
            h.auth(&vars, &base).unwrap(),
            json!({"access_token": "T", "tenant": "acme", "v": 2})
        );
        assert!(!h.allows(Transport::Polling));
        assert_eq!(
            h.excluded(Transport::PollingThenUpgrade),
            Some(Transport::Polling)
        );
        assert_eq!(h.probe_transport(), Transport::WebSocket);
        let config = h.apply(ClientConfig::new("http://h:1"));
        assert_eq!(config.url, "http://h:1/?tenant=acme");
        assert_eq!(
            config.headers,
            [
                ("X-Tenant".to_owned(), "acme".to_owned()),
                ("Origin".to_owned(), "https://app.example".to_owned())
            ]
        );

        let args = HandshakeArgs {
            headers: vec![parse_header("X-Extra:  1").unwrap()],
            query: vec![parse_query("a=b=c").unwrap()],
            origin: Some("https://other".into()),
            auth: Some(parse_auth(r#"{"jwt":"${token}"}"#).unwrap()),
            transports: vec!["polling".into()],
            ..HandshakeArgs::default()
        };
        let h = Handshake::resolve(&s, &args, &base).unwrap();
        assert_eq!(h.auth(&vars, &base).unwrap(), json!({"jwt": "T"}));
        assert!(h.allows(Transport::Polling) && !h.allows(Transport::WebSocket));
        assert_eq!(
            h.excluded(Transport::PollingThenUpgrade),
            Some(Transport::WebSocket)
        );
        assert_eq!(
            h.headers,
            [
                ("X-Tenant".to_owned(), "acme".to_owned()),
                ("X-Extra".to_owned(), "1".to_owned()),
                ("Origin".to_owned(), "https://other".to_owned())
            ]
        );
        assert_eq!(h.query.last().unwrap(), &("a".to_owned(), "b=c".to_owned()));
    }

    #[test]
    fn bad_settings_are_refused() {
        let none = HandshakeArgs::default();
        let err = |text: &str| Handshake::resolve(&section(text), &none, &Vars::new()).unwrap_err();
        assert!(matches!(
            err(r#"transports = ["carrier-pigeon"]"#),
            HandshakeError::UnknownTransport(_)
        ));
        assert!(matches!(
            err("transports = []"),
            HandshakeError::NoTransport
        ));
        assert!(matches!(
            err(r#"auth = "x""#),
            HandshakeError::AuthNotObject(_)
        ));
        assert!(matches!(
            err(r#"ca_file = "/nonexistent/ca.pem""#),
            HandshakeError::CaFile { .. }
        ));
        assert!(matches!(
            err(r#"origin = "${no_such_handshake_var}""#),
            HandshakeError::Template { .. }
        ));
        assert!(parse_header("no colon").is_err());
        assert!(parse_query("novalue").is_err());
        assert!(parse_auth("[1]").is_err());
        assert!(toml::from_str::<HandshakeSection>("unknown = 1").is_err());
    }
}
