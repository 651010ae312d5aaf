-- Reference server schema (SQLite). Keep in step with ../postgres/0001_init.sql:
-- same tables, columns and constraints; only INTEGER vs BIGINT and STRICT differ.
-- Times are Unix milliseconds (INTEGER), flags 0/1, JSON as TEXT.

CREATE TABLE users (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    avatar      TEXT,
    created_at  INTEGER NOT NULL
) STRICT;

-- Access tokens (JWTs are minted elsewhere; only their ids live here).
CREATE TABLE access_tokens (
    jti         TEXT    NOT NULL PRIMARY KEY,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  INTEGER NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX access_tokens_user ON access_tokens (user_id);

-- Refresh tokens: only a keyed SHA-256 digest (HMAC-SHA256) of the secret is
-- stored; a row is deleted when the token is used (rotation).
CREATE TABLE refresh_tokens (
    token_hash  TEXT    NOT NULL PRIMARY KEY,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE rooms (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('draft', 'active', 'paused', 'ended')),
    visibility  TEXT    NOT NULL CHECK (visibility IN ('public', 'private')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE participants (
    id          TEXT    NOT NULL PRIMARY KEY,
    room_id     TEXT    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT    NOT NULL CHECK (role IN ('participant', 'moderator')),
    joined_at   INTEGER NOT NULL,
    UNIQUE (room_id, user_id)
) STRICT;
CREATE INDEX participants_user ON participants (user_id);

CREATE TABLE prizes (
    id                  TEXT    NOT NULL PRIMARY KEY,
    room_id             TEXT    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    name                TEXT    NOT NULL,
    description         TEXT    NOT NULL DEFAULT '',
    image_url           TEXT    NOT NULL DEFAULT '',
    quantity            INTEGER NOT NULL CHECK (quantity >= 0),
    quantity_remaining  INTEGER NOT NULL CHECK (quantity_remaining >= 0 AND quantity_remaining <= quantity),
    created_at          INTEGER NOT NULL
) STRICT;
CREATE INDEX prizes_room ON prizes (room_id);

-- A participant wins at most one prize per room (N12).
CREATE TABLE winners (
    id              TEXT    NOT NULL PRIMARY KEY,
    room_id         TEXT    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    prize_id        TEXT    NOT NULL REFERENCES prizes (id) ON DELETE CASCADE,
    participant_id  TEXT    NOT NULL REFERENCES participants (id) ON DELETE CASCADE,
    created_at      INTEGER NOT NULL,
    UNIQUE (room_id, participant_id)
) STRICT;
CREATE INDEX winners_prize ON winners (prize_id);
CREATE INDEX winners_participant ON winners (participant_id);

CREATE TABLE notifications (
    id          TEXT    NOT NULL PRIMARY KEY,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,
    title       TEXT    NOT NULL,
    message     TEXT    NOT NULL,
    data_json   TEXT    NOT NULL DEFAULT '{}',
    is_read     INTEGER NOT NULL DEFAULT 0 CHECK (is_read IN (0, 1)),
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX notifications_user ON notifications (user_id, created_at);

-- Applications; only a keyed SHA-256 digest of the app token is stored.
CREATE TABLE apps (
    id                TEXT    NOT NULL PRIMARY KEY,
    name              TEXT    NOT NULL,
    permissions_json  TEXT    NOT NULL DEFAULT '[]',
    token_hash        TEXT    NOT NULL,
    created_at        INTEGER NOT NULL
) STRICT;

-- Quiz questions (N3); the answer key never leaves the server.
CREATE TABLE questions (
    id               TEXT    NOT NULL PRIMARY KEY,
    room_id          TEXT    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    question         TEXT    NOT NULL,
    options_json     TEXT    NOT NULL,
    answer           TEXT    NOT NULL,
    time_limit_secs  INTEGER NOT NULL CHECK (time_limit_secs > 0),
    question_number  INTEGER NOT NULL CHECK (question_number > 0),
    total_questions  INTEGER NOT NULL CHECK (total_questions > 0),
    start_time       INTEGER,
    answer_count     INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX questions_room ON questions (room_id);

-- One answer per user per question. participant_id is kept without a foreign
-- key so that ranks stay stable when a participant later leaves the room.
CREATE TABLE answers (
    question_id       TEXT    NOT NULL REFERENCES questions (id) ON DELETE CASCADE,
    user_id           TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    participant_id    TEXT    NOT NULL,
    answer            TEXT    NOT NULL,
    correct           INTEGER NOT NULL CHECK (correct IN (0, 1)),
    response_time_ms  INTEGER NOT NULL,
    correct_rank      INTEGER,
    received_at       INTEGER NOT NULL,
    PRIMARY KEY (question_id, user_id)
) STRICT;
