//! Where the users and access tokens of a run come from: the profile's
//! `[identity]` section, the same for the conformance runner and the load
//! generator.
//!
//! * `mint` (the default, the reference server's way): the `create_user`
//!   and `mint_token` actions of the profile;
//! * `sign`: tokens signed here, HS256 from a secret or RS256 from a PEM
//!   key, with claims from a template, for deployments that verify tokens
//!   an identity provider signed. Users come from `create_user` when the
//!   profile has it, else from `[[identity.users]]`;
//! * `static`: `[[identity.users]]` with ready-made tokens (optionally an
//!   expired and a revoked one); what they cannot give (a token of another
//!   lifetime, a new user) makes the case that needs it skip, saying so.
//!
//! Why: real deployments get tokens from an identity provider, not from an
//! admin API that mints them for users a test creates.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::action::Action;
use crate::template::{TemplateError, Vars, expand_json_with, expand_string};

/// How tokens are obtained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityMode {
    #[default]
    Mint,
    Sign,
    Static,
}

/// One user of `[[identity.users]]`. Strings are templates over `[vars]`
/// and the environment (`token = "${ANN_TOKEN}"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticUser {
    pub id: String,
    pub name: Option<String>,
    /// A valid access token (needed by `static`, unused by `sign`).
    pub token: Option<String>,
    /// An access token of this user that has expired.
    pub expired_token: Option<String>,
    /// An access token of this user that was revoked.
    pub revoked_token: Option<String>,
}

/// The profile's `[identity]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySection {
    #[serde(default)]
    pub mode: IdentityMode,
    /// `HS256` or `RS256` [default: HS256 with `secret`, RS256 with
    /// `key_file`].
    pub algorithm: Option<String>,
    /// The HS256 secret (a template: `${JWT_SECRET}`).
    pub secret: Option<String>,
    /// The RS256 private key, PEM (a template).
    pub key_file: Option<String>,
    /// The claims; strings are templates over `${user_id}`, `${iat}`,
    /// `${exp}`, `${jti}`, `[vars]` and the environment [default:
    /// `{sub = "${user_id}", iat = "${iat}", exp = "${exp}", jti =
    /// "${jti}"}`].
    pub claims: Option<toml::Table>,
    /// `sign` only, optional: the claims of a refresh token signed beside
    /// each access token, for a target whose refresh tokens are JWTs it
    /// verifies (e.g. `{sub = "${user_id}", iat = "${iat}", exp =
    /// "${exp}", jti = "${jti}", typ = "refresh"}`); it lives a day. Without
    /// it a signed user has no refresh token and the refresh case skips.
    pub refresh_claims: Option<toml::Table>,
    #[serde(default)]
    pub users: Vec<StaticUser>,
}

impl IdentitySection {
    /// Whether the identity gives what `action` would, so a case needing
    /// it can run without it in the profile.
    pub fn provides(&self, action: Action) -> bool {
        match (self.mode, action) {
            (IdentityMode::Mint, _) => false,
            (IdentityMode::Sign, Action::MintToken) => true,
            (IdentityMode::Sign, Action::CreateUser) => !self.users.is_empty(),
            (IdentityMode::Static, Action::CreateUser | Action::MintToken) => true,
            (IdentityMode::Static, Action::RevokeToken) => {
                self.users.iter().any(|u| u.revoked_token.is_some())
            }
            _ => false,
        }
    }
}

impl IdentitySection {
    /// Why a case needing `action` cannot run with this identity, if it
    /// cannot: a user of the static list is shared by the whole run (and
    /// beyond it), so no case deletes one.
    pub fn refuses(&self, action: Action) -> Option<&'static str> {
        let fixed_users = match self.mode {
            IdentityMode::Mint => false,
            IdentityMode::Sign => !self.users.is_empty(),
            IdentityMode::Static => true,
        };
        (fixed_users && action == Action::DeleteUser).then_some(
            "deletes its user: the profile's identity has fixed users, which are never deleted",
        )
    }
}

/// Why an identity cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("identity: {0}")]
    Config(String),
    #[error("identity {what}: {source}")]
    Template { what: String, source: TemplateError },
    #[error("identity: signing a token: {0}")]
    Sign(String),
}

/// A static user with its templates expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub id: String,
    pub name: String,
    pub token: Option<String>,
    pub expired_token: Option<String>,
    pub revoked_token: Option<String>,
}

/// The resolved identity of a run.
pub struct Identity {
    pub mode: IdentityMode,
    /// `[[identity.users]]`, expanded.
    pub users: Vec<Known>,
    signer: Option<(Header, EncodingKey)>,
    claims: Value,
    refresh_claims: Option<Value>,
    base_vars: Vars,
}

impl std::fmt::Debug for Identity {
    // The key stays out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("mode", &self.mode)
            .field("users", &self.users.len())
            .field("signs", &self.signer.is_some())
            .finish()
    }
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            mode: IdentityMode::Mint,
            users: Vec::new(),
            signer: None,
            claims: Value::Null,
            refresh_claims: None,
            base_vars: Vars::new(),
        }
    }
}

impl Identity {
    /// Checks and expands the section over `base_vars` (the profile's
    /// `[vars]`) and the environment; reads the key file.
    pub fn resolve(section: &IdentitySection, base_vars: &Vars) -> Result<Identity, IdentityError> {
        let expand = |what: &str, s: &str| -> Result<String, IdentityError> {
            expand_string(s, base_vars)
                .map(|v| match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
                .map_err(|source| IdentityError::Template {
                    what: what.to_owned(),
                    source,
                })
        };
        let opt =
            |what: &str, s: &Option<String>| s.as_deref().map(|s| expand(what, s)).transpose();
        let mut users = Vec::with_capacity(section.users.len());
        for (i, u) in section.users.iter().enumerate() {
            let what = |field: &str| format!("users[{i}].{field}");
            users.push(Known {
                id: expand(&what("id"), &u.id)?,
                name: opt(&what("name"), &u.name)?.unwrap_or_else(|| u.id.clone()),
                token: opt(&what("token"), &u.token)?,
                expired_token: opt(&what("expired_token"), &u.expired_token)?,
                revoked_token: opt(&what("revoked_token"), &u.revoked_token)?,
            });
        }
        let mut identity = Identity {
            mode: section.mode,
            users,
            signer: None,
            claims: Value::Null,
            refresh_claims: None,
            base_vars: base_vars.clone(),
        };
        if section.refresh_claims.is_some() && section.mode != IdentityMode::Sign {
            return Err(IdentityError::Config(
                "`refresh_claims` is for mode \"sign\"".into(),
            ));
        }
        match section.mode {
            IdentityMode::Mint => {}
            IdentityMode::Static => {
                if identity.users.is_empty() {
                    return Err(IdentityError::Config(
                        "mode \"static\" needs [[identity.users]]".into(),
                    ));
                }
                if let Some(u) = identity.users.iter().find(|u| u.token.is_none()) {
                    return Err(IdentityError::Config(format!(
                        "mode \"static\": user {} has no token",
                        u.id
                    )));
                }
            }
            IdentityMode::Sign => {
                let secret = opt("secret", &section.secret)?;
                let key_file = opt("key_file", &section.key_file)?;
                let algorithm = match (section.algorithm.as_deref(), &secret, &key_file) {
                    (Some(a), _, _) => a.to_ascii_uppercase(),
                    (None, Some(_), None) => "HS256".into(),
                    (None, None, Some(_)) => "RS256".into(),
                    _ => {
                        return Err(IdentityError::Config(
                            "mode \"sign\" needs `secret` (HS256) or `key_file` (RS256)".into(),
                        ));
                    }
                };
                let (alg, key) = match (algorithm.as_str(), secret, key_file) {
                    ("HS256", Some(secret), _) => (
                        Algorithm::HS256,
                        EncodingKey::from_secret(secret.as_bytes())
                            .map_err(|e| IdentityError::Config(format!("secret: {e}")))?,
                    ),
                    ("RS256", _, Some(path)) => {
                        let pem = std::fs::read(&path)
                            .map_err(|e| IdentityError::Config(format!("key_file {path}: {e}")))?;
                        let der = rsa_private_der(&pem).ok_or_else(|| {
                            IdentityError::Config(format!(
                                "key_file {path}: not an RSA private key in PEM (PKCS#1 or PKCS#8)"
                            ))
                        })?;
                        (Algorithm::RS256, EncodingKey::from_rsa_der(&der))
                    }
                    (other, _, _) => {
                        return Err(IdentityError::Config(format!(
                            "algorithm {other} needs {}",
                            match other {
                                "HS256" => "`secret`",
                                "RS256" => "`key_file`",
                                _ => "to be HS256 or RS256",
                            }
                        )));
                    }
                };
                identity.signer = Some((Header::new(alg), key));
                identity.claims = match &section.claims {
                    Some(t) => serde_json::to_value(t)
                        .map_err(|e| IdentityError::Config(format!("claims: {e}")))?,
                    None => json!({
                        "sub": "${user_id}", "iat": "${iat}", "exp": "${exp}", "jti": "${jti}"
                    }),
                };
                identity.refresh_claims = section
                    .refresh_claims
                    .as_ref()
                    .map(serde_json::to_value)
                    .transpose()
                    .map_err(|e| IdentityError::Config(format!("refresh_claims: {e}")))?;
                // A claim naming an unknown variable fails now, not per token.
                identity.sign("user", 60)?;
                identity.sign_refresh("user").transpose()?;
            }
        }
        Ok(identity)
    }

    /// Whether users come from the profile's `create_user` (else from the
    /// static list).
    pub fn creates_users(&self) -> bool {
        match self.mode {
            IdentityMode::Mint => true,
            IdentityMode::Sign => self.users.is_empty(),
            IdentityMode::Static => false,
        }
    }

    /// Static user number `n`, round the list.
    pub fn user(&self, n: u64) -> Option<&Known> {
        (!self.users.is_empty()).then(|| &self.users[(n % self.users.len() as u64) as usize])
    }

    /// A token for `user_id` valid for `ttl_secs` from now (negative: one
    /// that expired that long ago), signed with the profile's key; and its
    /// `jti`. An error when the identity does not sign.
    pub fn sign(&self, user_id: &str, ttl_secs: i64) -> Result<(String, String), IdentityError> {
        self.sign_claims(&self.claims, user_id, ttl_secs)
    }

    /// A refresh token for `user_id` (a day's lifetime) when the profile
    /// gives `refresh_claims`.
    pub fn sign_refresh(&self, user_id: &str) -> Option<Result<String, IdentityError>> {
        const REFRESH_TTL_SECS: i64 = 24 * 3600;
        let claims = self.refresh_claims.as_ref()?;
        Some(
            self.sign_claims(claims, user_id, REFRESH_TTL_SECS)
                .map(|(token, _)| token),
        )
    }

    fn sign_claims(
        &self,
        template: &Value,
        user_id: &str,
        ttl_secs: i64,
    ) -> Result<(String, String), IdentityError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let Some((header, key)) = &self.signer else {
            return Err(IdentityError::Config("the identity does not sign".into()));
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let exp = now.saturating_add(ttl_secs);
        // An expired token was also issued in the past.
        let iat = now.min(exp - 60);
        let jti = format!(
            "t{:x}-{:x}-{}",
            std::process::id(),
            now,
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let vars: Vars = [
            ("user_id", json!(user_id)),
            ("userId", json!(user_id)),
            ("iat", json!(iat)),
            ("exp", json!(exp)),
            ("jti", json!(jti)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let claims = expand_json_with(template, &|n| {
            vars.get(n).or_else(|| self.base_vars.get(n)).cloned()
        })
        .map_err(|source| IdentityError::Template {
            what: "claims".into(),
            source,
        })?;
        let token = jsonwebtoken::encode(header, &claims, key)
            .map_err(|e| IdentityError::Sign(e.to_string()))?;
        Ok((token, jti))
    }
}

/// The PKCS#1 DER of an RSA private key in PEM, PKCS#1 (`BEGIN RSA
/// PRIVATE KEY`) or unencrypted PKCS#8 (`BEGIN PRIVATE KEY`, what
/// `openssl genpkey` writes). Done here because jsonwebtoken's own PEM
/// reader is a feature that brings two more crates for these few lines.
fn rsa_private_der(pem: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let text = std::str::from_utf8(pem).ok()?;
    let pkcs1 = text.contains("-----BEGIN RSA PRIVATE KEY-----");
    if !pkcs1 && !text.contains("-----BEGIN PRIVATE KEY-----") {
        return None;
    }
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.trim().chars())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    if pkcs1 {
        return Some(der);
    }
    // PrivateKeyInfo ::= SEQUENCE { version INTEGER, algorithm SEQUENCE,
    // privateKey OCTET STRING (the PKCS#1 key), ... }
    let (tag, info, _) = der_item(&der)?;
    let (version, _, rest) = der_item(info).filter(|_| tag == 0x30)?;
    let (algorithm, _, rest) = der_item(rest).filter(|_| version == 0x02)?;
    let (octets, key, _) = der_item(rest).filter(|_| algorithm == 0x30)?;
    (octets == 0x04).then(|| key.to_vec())
}

/// One DER item: tag, content, what follows.
fn der_item(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = buf.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    fn section(text: &str) -> IdentitySection {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn hs256_tokens_carry_the_claims_template() {
        let s = section(
            r#"
            mode = "sign"
            secret = "${secret}"
            claims = { userId = "${user_id}", exp = "${exp}", iat = "${iat}", aud = "${aud}", jti = "${jti}" }
            "#,
        );
        let vars: Vars = [("secret", "s3cret"), ("aud", "rt")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        let id = Identity::resolve(&s, &vars).unwrap();
        assert!(id.creates_users(), "no static users: create_user");
        assert!(s.provides(Action::MintToken) && !s.provides(Action::CreateUser));
        let (token, jti) = id.sign("ann", 3600).unwrap();
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&["rt"]);
        v.set_required_spec_claims(&["exp"]);
        v.leeway = 0;
        let data = jsonwebtoken::decode::<Value>(
            &token,
            &DecodingKey::from_secret(b"s3cret").unwrap(),
            &v,
        )
        .unwrap();
        assert_eq!(data.claims["userId"], "ann");
        assert_eq!(data.claims["jti"], json!(jti));
        let exp = data.claims["exp"].as_i64().unwrap();
        let iat = data.claims["iat"].as_i64().unwrap();
        assert_eq!(exp - iat, 3600);
        // An expired one: exp in the past, issued before it.
        let (old, _) = id.sign("ann", -60).unwrap();
        let err =
            jsonwebtoken::decode::<Value>(&old, &DecodingKey::from_secret(b"s3cret").unwrap(), &v)
                .unwrap_err();
        assert_eq!(
            err.kind(),
            &jsonwebtoken::errors::ErrorKind::ExpiredSignature
        );
        assert_ne!(id.sign("ann", 5).unwrap().1, jti, "a fresh jti each time");
    }

    #[test]
    fn rs256_from_a_pkcs8_key_file() {
        let dir = std::env::temp_dir().join(format!("driver-rs256-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (key, public) = (dir.join("key.pem"), dir.join("pub.pem"));
        let openssl = |args: &[&str]| {
            let ok = std::process::Command::new("openssl")
                .args(args)
                .stderr(std::process::Stdio::null())
                .status()
                .expect("the `openssl` command (Debian package openssl)")
                .success();
            assert!(ok, "openssl {args:?}");
        };
        let (k, p) = (key.to_str().unwrap(), public.to_str().unwrap());
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            k,
        ]);
        openssl(&["rsa", "-in", k, "-RSAPublicKey_out", "-out", p]);
        let s = section(&format!("mode = \"sign\"\nkey_file = \"{k}\""));
        let id = Identity::resolve(&s, &Vars::new()).unwrap();
        let (token, _) = id.sign("ann", 60).unwrap();
        let public_der = {
            use base64::Engine as _;
            let text = std::fs::read_to_string(&public).unwrap();
            let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap()
        };
        let data = jsonwebtoken::decode::<Value>(
            &token,
            &DecodingKey::from_rsa_der(&public_der),
            &Validation::new(Algorithm::RS256),
        )
        .expect("verifies with the public key");
        assert_eq!(data.claims["sub"], "ann");
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = Identity::resolve(&s, &Vars::new()).unwrap_err();
        assert!(err.to_string().contains("not an RSA private key"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn static_users_and_what_they_provide() {
        let s = section(
            r#"
            mode = "static"
            [[users]]
            id = "ann"
            token = "t-ann"
            revoked_token = "r-ann"
            [[users]]
            id = "bob"
            name = "Bob"
            token = "t-bob"
            "#,
        );
        let id = Identity::resolve(&s, &Vars::new()).unwrap();
        assert!(!id.creates_users());
        assert_eq!(id.user(0).unwrap().name, "ann");
        assert_eq!(id.user(3).unwrap().name, "Bob");
        assert!(s.provides(Action::RevokeToken) && s.provides(Action::CreateUser));
        assert!(!s.provides(Action::DeleteUser));
        assert!(s.refuses(Action::DeleteUser).is_some());
        assert!(
            IdentitySection::default()
                .refuses(Action::DeleteUser)
                .is_none()
        );
        assert!(matches!(id.sign("ann", 1), Err(IdentityError::Config(_))));
        assert!(!IdentitySection::default().provides(Action::MintToken));
    }

    #[test]
    fn bad_sections_are_refused() {
        let err = |text: &str| Identity::resolve(&section(text), &Vars::new()).unwrap_err();
        assert!(
            err(r#"mode = "static""#)
                .to_string()
                .contains("[[identity.users]]")
        );
        assert!(
            err("mode = \"static\"\n[[users]]\nid = \"a\"")
                .to_string()
                .contains("no token")
        );
        assert!(err(r#"mode = "sign""#).to_string().contains("secret"));
        assert!(
            err(r#"mode = "sign"
            key_file = "/nonexistent.pem""#)
            .to_string()
            .contains("/nonexistent.pem")
        );
        assert!(matches!(
            err(r#"mode = "sign"
                secret = "s"
                claims = { sub = "${nope_identity_var}" }"#),
            IdentityError::Template { .. }
        ));
        assert!(toml::from_str::<IdentitySection>(r#"mode = "oauth""#).is_err());
    }
}
