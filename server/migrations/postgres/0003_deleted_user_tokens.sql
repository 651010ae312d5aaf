-- Access tokens of deleted users (keep in step with ../sqlite/0003_deleted_user_tokens.sql).
--
-- Deleting a user deletes their access_tokens rows, and with them what
-- every node re-reads each 2 s for the revocations it may have missed
-- (access_tokens.revoked_at). The deletion first copies the user's tokens
-- here, revoked_at the deletion's time, and the re-read reads both tables:
-- a node that missed the deletion's cluster command still drops the
-- deleted user's sockets. No foreign key: the user is gone. A row goes
-- with the hourly purge of expired token records once its token expired.
CREATE TABLE deleted_user_tokens (
    jti         TEXT    NOT NULL PRIMARY KEY,
    expires_at  BIGINT  NOT NULL,
    revoked_at  BIGINT  NOT NULL
);
CREATE INDEX deleted_user_tokens_revoked_at ON deleted_user_tokens (revoked_at);
CREATE INDEX deleted_user_tokens_expires_at ON deleted_user_tokens (expires_at);
