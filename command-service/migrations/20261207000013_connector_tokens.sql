-- Refresh tokens a vendor rotated, kept so a restart uses the newest one (the provider may have
-- revoked the one in the configuration). Encrypted with XChaCha20-Poly1305 under
-- CSTRACK_TOKEN_KEY; `origin` is the SHA-256 of the configured token the rotations started
-- from, so configuring a new token starts a new chain.
CREATE TABLE connector_tokens (
    connector  text PRIMARY KEY,
    origin     text NOT NULL,
    nonce      bytea NOT NULL,
    ciphertext bytea NOT NULL,
    rotated_at timestamptz NOT NULL DEFAULT now()
);
