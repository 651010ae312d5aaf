-- Token families and revocation (keep in step with ../sqlite/0002_token_families.sql).
--
-- A family is the access and refresh tokens that descend from one minted
-- pair through refresh: revoking any of them revokes them all, and a
-- rotated refresh token presented again (reuse: it was stolen) revokes its
-- family. A rotated refresh token is therefore kept, marked used, until it
-- expires, instead of being deleted.
ALTER TABLE access_tokens ADD COLUMN family TEXT;
-- When the token was revoked (Unix ms): every node re-reads the recent
-- revocations and drops their sockets, for a node that missed the
-- cluster command.
ALTER TABLE access_tokens ADD COLUMN revoked_at BIGINT;
ALTER TABLE refresh_tokens ADD COLUMN family TEXT;
-- When the token was used (rotated); NULL while it is unused.
ALTER TABLE refresh_tokens ADD COLUMN used_at BIGINT;

-- Tokens from before families each form their own.
UPDATE access_tokens SET family = jti WHERE family IS NULL;
UPDATE refresh_tokens SET family = token_hash WHERE family IS NULL;

CREATE INDEX access_tokens_family ON access_tokens (family);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX access_tokens_revoked_at ON access_tokens (revoked_at);
