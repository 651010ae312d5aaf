//! Access tokens: HS256 JWTs with `sub`, `jti`, `iat`, `exp`, and the
//! connect-time checks of the protocol (signature and expiry, user exists,
//! token issued here and not revoked), in that order.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use protocol::error::AuthFailure;
use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError, User};

/// Why a token was not accepted: the token itself (a protocol
/// `Authentication failed: <reason>`), or the server could not check it.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{}", .0.message())]
    Refused(AuthFailure),
    /// The store failed while checking the user or the revocation: says
    /// nothing about the token, so it must not read as a bad one (protocol
    /// notes N18).
    #[error("the token could not be checked: {0}")]
    Unavailable(#[from] StoreError),
}

impl From<AuthFailure> for AuthError {
    fn from(f: AuthFailure) -> Self {
        AuthError::Refused(f)
    }
}

/// The longest lifetime of an access token, either way (a negative one
/// mints an expired token, for tests): ten years. Far from where `exp` in
/// milliseconds would overflow.
pub const MAX_TOKEN_TTL_SECS: i64 = 10 * 366 * 86_400;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The token id, the key of revocation.
    pub jti: String,
    pub iat: i64,
    /// Expiry, Unix seconds.
    pub exp: i64,
}

/// Mints and verifies access tokens.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    pub fn new(secret: &str, ttl: Duration) -> anyhow::Result<Tokens> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Tokens {
            encoding: EncodingKey::from_secret(secret.as_bytes())?,
            decoding: DecodingKey::from_secret(secret.as_bytes())?,
            validation,
            ttl,
        })
    }

    /// The default lifetime of a minted token.
    pub fn default_ttl(&self) -> Duration {
        self.ttl
    }

    /// Signs a token for `user_id` that expires `ttl_secs` from now (may be
    /// negative, to mint an already-expired token for tests).
    pub fn mint(&self, user_id: &str, jti: String, ttl_secs: i64) -> (String, Claims) {
        let claims = Tokens::claims(user_id, jti, ttl_secs);
        (self.sign(&claims), claims)
    }

    /// The claims of a token for `user_id` that expires `ttl_secs` from
    /// now, to record before signing (the refresh learns the user from the
    /// store in the transaction that records the token).
    pub fn claims(user_id: &str, jti: String, ttl_secs: i64) -> Claims {
        let now = unix_now();
        Claims {
            sub: user_id.to_owned(),
            jti,
            iat: now,
            exp: now + ttl_secs,
        }
    }

    /// Signs `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing cannot fail")
    }

    /// Checks signature, shape and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthFailure> {
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            // jsonwebtoken accepts a token during the second `exp` itself
            // (`exp < now` is expired); RFC 7519 says "on or after", and the
            // connection's expiry timer fires at `exp`, so `exp == now` is
            // expired too.
            Ok(data) if data.claims.exp <= unix_now() => Err(AuthFailure::TokenExpired),
            Ok(data) => Ok(data.claims),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                Err(AuthFailure::TokenExpired)
            }
            Err(_) => Err(AuthFailure::InvalidToken),
        }
    }

    /// The full connect-time check: token, then user, then revocation.
    pub async fn authenticate(
        &self,
        store: &Store,
        token: Option<&str>,
    ) -> Result<(Claims, User), AuthError> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(AuthFailure::MissingToken)?;
        let claims = self.verify(token)?;
        let user = store
            .get_user(&claims.sub)
            .await?
            .ok_or(AuthFailure::UserNotFound)?;
        match store.token_state(&claims.jti).await? {
            Some(state) if state.revoked => Err(AuthFailure::TokenRevoked.into()),
            Some(state) if state.user_id == claims.sub => Ok((claims, user)),
            // A jti this server never issued (or issued to someone else):
            // signed with a leaked or guessed secret (protocol notes N10).
            _ => Err(AuthFailure::InvalidToken.into()),
        }
    }
}

/// Now, Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Now, Unix milliseconds.
pub fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new("secret", Duration::from_secs(60)).unwrap()
    }

    #[test]
    fn mint_then_verify() {
        let t = tokens();
        let (jwt, claims) = t.mint("usr_1", "jti_1".into(), 60);
        assert_eq!(t.verify(&jwt), Ok(claims));
    }

    #[test]
    fn expired_and_forged_tokens() {
        let t = tokens();
        let (expired, _) = t.mint("usr_1", "j".into(), -5);
        assert_eq!(t.verify(&expired), Err(AuthFailure::TokenExpired));
        // `exp` is "on or after": a token is expired during its `exp` second.
        let (at_exp, _) = t.mint("usr_1", "j".into(), 0);
        assert_eq!(t.verify(&at_exp), Err(AuthFailure::TokenExpired));
        let other = Tokens::new("other", Duration::from_secs(60)).unwrap();
        let (forged, _) = other.mint("usr_1", "j".into(), 60);
        assert_eq!(t.verify(&forged), Err(AuthFailure::InvalidToken));
        assert_eq!(t.verify("not.a.jwt"), Err(AuthFailure::InvalidToken));
        // A forged token that is also expired is reported as invalid: the
        // signature is checked first.
        let (forged_expired, _) = other.mint("usr_1", "j".into(), -5);
        assert_eq!(t.verify(&forged_expired), Err(AuthFailure::InvalidToken));
    }
}
