//! Refresh tokens a vendor rotates, kept in the store (`connector_tokens`), encrypted: after a
//! restart the connector uses the newest token, not the configured one the provider may have
//! revoked since. XChaCha20-Poly1305 under `CSTRACK_TOKEN_KEY` (32 bytes, hex), a fresh random
//! nonce per token, and the connector's name and the configured token's fingerprint as the
//! associated data, so a row is good for one connector and one configured token only.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::vendor::Secret;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("CSTRACK_TOKEN_KEY is 64 hexadecimal characters (32 bytes; `openssl rand -hex 32` makes one)")]
    BadKey,
    #[error("the stored token of {0} does not decrypt under CSTRACK_TOKEN_KEY (was the key changed?)")]
    Undecryptable(&'static str),
    #[error("the token store is unavailable: {0}")]
    Database(#[from] sqlx::Error),
}

/// The key tokens are encrypted with.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::str::FromStr for TokenKey {
    type Err = VaultError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(text.trim()).map_err(|_| VaultError::BadKey)?;
        Ok(TokenKey(bytes.try_into().map_err(|_| VaultError::BadKey)?))
    }
}

/// One connector's rotated tokens.
pub struct TokenVault {
    pool: PgPool,
    connector: &'static str,
    key: TokenKey,
    /// SHA-256 (hex) of the configured token the rotations started from.
    origin: String,
}

impl TokenVault {
    pub fn new(pool: PgPool, connector: &'static str, key: TokenKey, configured: &Secret) -> Self {
        TokenVault {
            pool,
            connector,
            key,
            origin: hex::encode(Sha256::digest(configured.expose().as_bytes())),
        }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new_from_slice(&self.key.0).expect("the key is 32 bytes")
    }

    fn associated(&self) -> Vec<u8> {
        format!("cstrack connector token {} {}", self.connector, self.origin).into_bytes()
    }

    /// The newest token rotated from the configured one, if any.
    pub async fn load(&self) -> Result<Option<Secret>, VaultError> {
        let row: Option<(Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT nonce, ciphertext FROM connector_tokens WHERE connector = $1 AND origin = $2")
                .bind(self.connector)
                .bind(&self.origin)
                .fetch_optional(&self.pool)
                .await?;
        let Some((nonce, ciphertext)) = row else {
            return Ok(None);
        };
        if nonce.len() != 24 {
            return Err(VaultError::Undecryptable(self.connector));
        }
        let plain = self
            .cipher()
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &self.associated(),
                },
            )
            .map_err(|_| VaultError::Undecryptable(self.connector))?;
        let token = String::from_utf8(plain).map_err(|_| VaultError::Undecryptable(self.connector))?;
        Ok(Some(Secret::new(token)))
    }

    /// Keeps `token` as the newest, in place of any earlier one.
    pub async fn keep(&self, token: &Secret) -> Result<(), VaultError> {
        // 24 random bytes from the operating system's generator (two version-4 UUIDs).
        let mut nonce = [0u8; 24];
        nonce[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        nonce[16..].copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
        let ciphertext = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: token.expose().as_bytes(),
                    aad: &self.associated(),
                },
            )
            .expect("encrypting into memory does not fail");
        sqlx::query(
            "INSERT INTO connector_tokens (connector, origin, nonce, ciphertext) VALUES ($1, $2, $3, $4)
             ON CONFLICT (connector) DO UPDATE SET origin = EXCLUDED.origin, nonce = EXCLUDED.nonce,
                 ciphertext = EXCLUDED.ciphertext, rotated_at = now()",
        )
        .bind(self.connector)
        .bind(&self.origin)
        .bind(&nonce[..])
        .bind(&ciphertext)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
