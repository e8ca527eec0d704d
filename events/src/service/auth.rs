//! Bearer authentication: JWTs signed with an HS256 secret or an RS256 key pair, with issuer,
//! audience and expiry checked. The token names the user (`sub`), their role and, for partner
//! users, their partner organisation.

use std::fmt;
use std::path::PathBuf;

use crate::metadata::Role;
use anyhow::{bail, Context};
use chrono::Utc;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Secret([redacted])")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Secret(value.to_owned()))
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct AuthSettings {
    /// HS256 signing secret (at least 32 bytes).
    #[arg(long, env = "CSTRACK_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,
    /// PEM file of an RS256 public key; tokens signed by its private key are accepted too.
    #[arg(long, env = "CSTRACK_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,
    #[arg(long, env = "CSTRACK_JWT_ISSUER", default_value = "cstrack")]
    pub jwt_issuer: String,
    #[arg(long, env = "CSTRACK_JWT_AUDIENCE", default_value = "cstrack-api")]
    pub jwt_audience: String,
}

/// Who is calling, as proven by their token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub role: Role,
    /// The partner organisation of a partner user.
    pub partner_id: Option<Uuid>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<Uuid>,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// What a verified token says about its caller.
#[derive(Debug, Deserialize)]
struct Caller {
    sub: String,
    role: Role,
    #[serde(default)]
    partner_id: Option<Uuid>,
}

/// Longest user id a token may carry: it is written into every event the user appends.
pub const MAX_SUBJECT_BYTES: usize = 200;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuthError {
    #[error("a bearer token is required")]
    Missing,
    #[error("the bearer token is invalid: {0}")]
    Invalid(String),
}

pub struct Authenticator {
    keys: Vec<(DecodingKey, Validation)>,
    /// Where deactivated partner users are looked up (see [`deactivated`]); none: not checked.
    directory: Option<sqlx::PgPool>,
}

impl Authenticator {
    /// Fails at start-up, naming the variable, when no key is configured.
    pub fn from_settings(settings: &AuthSettings) -> anyhow::Result<Self> {
        let validation = |algorithm| {
            let mut validation = Validation::new(algorithm);
            validation.set_issuer(&[&settings.jwt_issuer]);
            validation.set_audience(&[&settings.jwt_audience]);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            // A token that is not valid yet (`nbf` in the future) is refused like an expired one.
            validation.validate_nbf = true;
            validation.leeway = 30;
            validation
        };
        let mut keys = Vec::new();
        if let Some(secret) = &settings.jwt_secret {
            if secret.expose().len() < 32 {
                bail!("CSTRACK_JWT_SECRET must be at least 32 bytes long");
            }
            keys.push((
                DecodingKey::from_secret(secret.expose().as_bytes()),
                validation(Algorithm::HS256),
            ));
        }
        if let Some(path) = &settings.jwt_public_key_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading CSTRACK_JWT_PUBLIC_KEY_FILE {}", path.display()))?;
            let key = DecodingKey::from_rsa_pem(&pem)
                .context("CSTRACK_JWT_PUBLIC_KEY_FILE is not an RSA public key in PEM")?;
            keys.push((key, validation(Algorithm::RS256)));
        }
        if keys.is_empty() {
            bail!("set CSTRACK_JWT_SECRET (HS256) or CSTRACK_JWT_PUBLIC_KEY_FILE (RS256) to authenticate callers");
        }
        Ok(Authenticator { keys, directory: None })
    }

    /// Refuses partner users the partner directory in `pool` has deactivated.
    pub fn with_directory(mut self, pool: sqlx::PgPool) -> Self {
        self.directory = Some(pool);
        self
    }

    /// Why a verified caller is refused all the same: a deactivated partner user.
    pub async fn refused(&self, principal: &Principal) -> Result<Option<String>, sqlx::Error> {
        match &self.directory {
            Some(pool) => deactivated(pool, principal).await,
            None => Ok(None),
        }
    }

    /// Verifies a bearer token: signature, issuer, audience, expiry, and a partner id on partners.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|error| AuthError::Invalid(error.to_string()))?;
        let (key, validation) = self
            .keys
            .iter()
            .find(|(_, validation)| validation.algorithms.contains(&header.alg))
            .ok_or_else(|| AuthError::Invalid(format!("{:?} tokens are not accepted", header.alg)))?;
        // Issuer, audience (a string or, as RFC 7519 allows, an array), expiry and not-before are
        // checked by the validation; only what names the caller is read here.
        let claims = decode::<Caller>(token, key, validation)
            .map_err(|error| AuthError::Invalid(error.to_string()))?
            .claims;
        if claims.sub.trim().is_empty()
            || claims.sub.len() > MAX_SUBJECT_BYTES
            || claims.sub.chars().any(char::is_control)
        {
            return Err(AuthError::Invalid(format!(
                "sub must name the user in 1 to {MAX_SUBJECT_BYTES} bytes without control characters"
            )));
        }
        if claims.role == Role::Partner && claims.partner_id.is_none() {
            return Err(AuthError::Invalid("a partner token must carry partner_id".into()));
        }
        Ok(Principal {
            user_id: claims.sub,
            role: claims.role,
            partner_id: claims.partner_id,
        })
    }
}

/// Mints an HS256 token, for development and tests (`command-service token`).
pub fn mint(
    settings: &AuthSettings,
    user_id: &str,
    role: Role,
    partner_id: Option<Uuid>,
    ttl: chrono::Duration,
) -> anyhow::Result<String> {
    let secret = settings
        .jwt_secret
        .as_ref()
        .context("minting needs CSTRACK_JWT_SECRET")?;
    let now = Utc::now().timestamp();
    let claims = Claims {
        sub: user_id.to_owned(),
        role,
        partner_id,
        iss: settings.jwt_issuer.clone(),
        aud: settings.jwt_audience.clone(),
        iat: now,
        exp: now + ttl.num_seconds(),
    };
    Ok(encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.expose().as_bytes()),
    )?)
}

/// Why a partner user's valid token is refused: the partner directory (kept from the Partner
/// streams) has the user invited and not yet activated, or deactivated. Other callers, and
/// partner users the directory does not know (tokens are issued by the operator), are not
/// refused here.
pub async fn deactivated(pool: &sqlx::PgPool, principal: &Principal) -> Result<Option<String>, sqlx::Error> {
    let Some(partner_id) = principal.partner_id.filter(|_| principal.role == Role::Partner) else {
        return Ok(None);
    };
    let status: Option<(String, Option<String>)> =
        match sqlx::query_as("SELECT status, reason FROM partner_users WHERE partner_id = $1 AND user_id = $2")
            .bind(partner_id)
            .bind(&principal.user_id)
            .fetch_optional(pool)
            .await
        {
            // The directory is the projection service's: until it has migrated, nobody is known.
            Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("42P01") => None,
            other => other?,
        };
    Ok(match status {
        Some((status, reason)) if status == "deactivated" => Some(format!(
            "this partner user was deactivated{}",
            reason.map(|reason| format!(": {reason}")).unwrap_or_default()
        )),
        Some((status, _)) if status == "invited" => {
            Some("this partner user is invited but not activated yet; an admin or manager activates them".into())
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AuthSettings {
        AuthSettings {
            jwt_secret: Some(Secret("0123456789abcdef0123456789abcdef".into())),
            jwt_public_key_file: None,
            jwt_issuer: "cstrack".into(),
            jwt_audience: "cstrack-api".into(),
        }
    }

    #[test]
    fn a_minted_token_verifies() {
        let settings = settings();
        let token = mint(&settings, "u-1", Role::Csm, None, chrono::Duration::hours(1)).unwrap();
        let principal = Authenticator::from_settings(&settings).unwrap().verify(&token).unwrap();
        assert_eq!(
            principal,
            Principal {
                user_id: "u-1".into(),
                role: Role::Csm,
                partner_id: None
            }
        );
    }

    #[test]
    fn expired_wrong_issuer_wrong_audience_and_wrong_secret_are_refused() {
        let settings = settings();
        let authenticator = Authenticator::from_settings(&settings).unwrap();
        let expired = mint(&settings, "u", Role::Admin, None, chrono::Duration::hours(-1)).unwrap();
        assert!(matches!(authenticator.verify(&expired), Err(AuthError::Invalid(_))));
        let other_issuer = AuthSettings {
            jwt_issuer: "someone-else".into(),
            ..settings.clone()
        };
        let token = mint(&other_issuer, "u", Role::Admin, None, chrono::Duration::hours(1)).unwrap();
        assert!(authenticator.verify(&token).is_err());
        let other_audience = AuthSettings {
            jwt_audience: "other".into(),
            ..settings.clone()
        };
        let token = mint(&other_audience, "u", Role::Admin, None, chrono::Duration::hours(1)).unwrap();
        assert!(authenticator.verify(&token).is_err());
        let other_secret = AuthSettings {
            jwt_secret: Some(Secret("x".repeat(40))),
            ..settings.clone()
        };
        let token = mint(&other_secret, "u", Role::Admin, None, chrono::Duration::hours(1)).unwrap();
        assert!(authenticator.verify(&token).is_err());
        assert!(authenticator.verify("not-a-token").is_err());
    }

    #[test]
    fn a_partner_token_needs_its_organisation() {
        let settings = settings();
        let token = mint(&settings, "p", Role::Partner, None, chrono::Duration::hours(1)).unwrap();
        assert!(Authenticator::from_settings(&settings).unwrap().verify(&token).is_err());
    }

    #[test]
    fn rs256_tokens_verify_with_the_public_key() {
        let fixtures = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let settings = AuthSettings {
            jwt_secret: None,
            jwt_public_key_file: Some(fixtures.join("rs256-test-public.pem")),
            ..settings()
        };
        let private = std::fs::read(fixtures.join("rs256-test-private.pem")).unwrap();
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: "idp-user".into(),
            role: Role::Manager,
            partner_id: None,
            iss: "cstrack".into(),
            aud: "cstrack-api".into(),
            iat: now,
            exp: now + 600,
        };
        let token = encode(
            &Header::new(Algorithm::RS256),
            &claims,
            &EncodingKey::from_rsa_pem(&private).unwrap(),
        )
        .unwrap();
        let principal = Authenticator::from_settings(&settings).unwrap().verify(&token).unwrap();
        assert_eq!(principal.role, Role::Manager);
        // An HS256 token is not accepted when only the public key is configured.
        let hs = mint(
            &AuthSettings {
                jwt_secret: Some(Secret("0123456789abcdef0123456789abcdef".into())),
                ..settings.clone()
            },
            "u",
            Role::Admin,
            None,
            chrono::Duration::hours(1),
        )
        .unwrap();
        assert!(Authenticator::from_settings(&settings).unwrap().verify(&hs).is_err());
    }

    /// Signs `claims` as they are, with the test secret.
    fn signed(claims: serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .unwrap()
    }

    fn claims(extra: serde_json::Value) -> serde_json::Value {
        let now = Utc::now().timestamp();
        let mut claims = serde_json::json!({"sub": "u-1", "role": "csm", "iss": "cstrack", "aud": "cstrack-api",
            "iat": now, "exp": now + 600});
        for (key, value) in extra.as_object().unwrap() {
            claims[key] = value.clone();
        }
        claims
    }

    #[test]
    fn a_token_not_valid_yet_is_refused() {
        let authenticator = Authenticator::from_settings(&settings()).unwrap();
        let later = Utc::now().timestamp() + 3600;
        let error = authenticator
            .verify(&signed(claims(serde_json::json!({"nbf": later}))))
            .unwrap_err();
        assert_eq!(error, AuthError::Invalid("ImmatureSignature".into()));
        let now = Utc::now().timestamp();
        assert!(authenticator
            .verify(&signed(claims(serde_json::json!({"nbf": now}))))
            .is_ok());
    }

    #[test]
    fn an_empty_or_unprintable_subject_is_refused() {
        let authenticator = Authenticator::from_settings(&settings()).unwrap();
        for sub in [
            serde_json::json!(""),
            serde_json::json!("  "),
            serde_json::json!("a\u{0}b"),
            serde_json::json!("x".repeat(201)),
        ] {
            assert!(
                matches!(authenticator.verify(&signed(claims(serde_json::json!({"sub": sub})))), Err(AuthError::Invalid(message)) if message.starts_with("sub must")),
                "{sub}"
            );
        }
        let error = authenticator
            .verify(&signed(claims(serde_json::json!({"sub": null}))))
            .unwrap_err();
        assert!(matches!(error, AuthError::Invalid(_)));
    }

    #[test]
    fn an_audience_array_naming_this_api_is_accepted() {
        let authenticator = Authenticator::from_settings(&settings()).unwrap();
        let principal = authenticator
            .verify(&signed(claims(serde_json::json!({"aud": ["billing", "cstrack-api"]}))))
            .unwrap();
        assert_eq!(principal.user_id, "u-1");
        let error = authenticator
            .verify(&signed(claims(serde_json::json!({"aud": ["billing", "crm"]}))))
            .unwrap_err();
        assert_eq!(error, AuthError::Invalid("InvalidAudience".into()));
    }

    #[test]
    fn an_unsigned_or_foreign_algorithm_token_is_refused() {
        let authenticator = Authenticator::from_settings(&settings()).unwrap();
        let genuine = signed(claims(serde_json::json!({"role": "admin"})));
        let payload = genuine.split('.').nth(1).unwrap();
        // Headers {"alg": X, "typ": "JWT"} for none, None, HS512 and RS256, base64url.
        for header in [
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0",
            "eyJhbGciOiJOb25lIiwidHlwIjoiSldUIn0",
            "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9",
            "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9",
        ] {
            let token = format!("{header}.{payload}.");
            assert!(authenticator.verify(&token).is_err(), "{header}");
        }
    }

    #[test]
    fn start_up_fails_without_a_key_or_with_a_short_secret() {
        let none = AuthSettings {
            jwt_secret: None,
            ..settings()
        };
        assert!(Authenticator::from_settings(&none).is_err());
        let short = AuthSettings {
            jwt_secret: Some(Secret("short".into())),
            ..settings()
        };
        assert!(Authenticator::from_settings(&short).is_err());
    }
}
