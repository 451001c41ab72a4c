-- pow.do DVM schema, version 1.
-- Times are INTEGER Unix milliseconds (UTC); NULL means unset. Hex keys are lowercase TEXT.
-- Kimai ids are NULL when there is none.

CREATE TABLE workers (
    pubkey        TEXT PRIMARY KEY CHECK (length(pubkey) = 64),
    name          TEXT NOT NULL,
    kimai_user_id INTEGER CHECK (kimai_user_id > 0),
    joined_at     INTEGER NOT NULL,
    removed_at    INTEGER
) STRICT;

CREATE TABLE invites (
    pubkey        TEXT PRIMARY KEY CHECK (length(pubkey) = 64),
    name          TEXT NOT NULL,
    kimai_user_id INTEGER CHECK (kimai_user_id > 0),
    quota         INTEGER NOT NULL DEFAULT 0 CHECK (quota >= 0),
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    consumed_at   INTEGER,
    consumed_by   TEXT REFERENCES workers (pubkey),
    CHECK ((consumed_at IS NULL) = (consumed_by IS NULL))
) STRICT;

CREATE TABLE processed_wraps (
    wrap_id TEXT PRIMARY KEY,
    seen_at INTEGER NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'duplicate', 'rejected', 'ignored')),
    reason  TEXT NOT NULL DEFAULT ''
) STRICT, WITHOUT ROWID;
CREATE INDEX processed_wraps_seen ON processed_wraps (seen_at);

CREATE TABLE relay_cursors (
    relay_url  TEXT PRIMARY KEY,
    cursor     INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
    id                 TEXT PRIMARY KEY CHECK (length(id) = 32),
    worker             TEXT NOT NULL REFERENCES workers (pubkey),
    project            INTEGER NOT NULL,
    activity           INTEGER NOT NULL,
    memo               TEXT NOT NULL DEFAULT '',
    started_at         INTEGER NOT NULL,
    stopped_at         INTEGER,
    last_segment_end   INTEGER,
    kimai_timesheet_id INTEGER,
    state              TEXT NOT NULL CHECK (state IN ('open', 'stopped', 'expired')),
    announced          INTEGER NOT NULL DEFAULT 0 CHECK (announced IN (0, 1)),
    declared_segments  INTEGER NOT NULL DEFAULT -1
) STRICT;
CREATE INDEX sessions_worker ON sessions (worker, started_at);
CREATE INDEX sessions_open ON sessions (started_at) WHERE state = 'open';

CREATE TABLE segments (
    id                 INTEGER PRIMARY KEY,
    worker             TEXT NOT NULL REFERENCES workers (pubkey),
    session            TEXT NOT NULL REFERENCES sessions (id),
    idx                INTEGER NOT NULL CHECK (idx >= 0),
    start_at           INTEGER NOT NULL,
    end_at             INTEGER NOT NULL,
    project            INTEGER NOT NULL,
    activity           INTEGER NOT NULL,
    memo               TEXT NOT NULL,
    app_version        TEXT NOT NULL,
    policy             TEXT NOT NULL, -- JSON, as in the manifest
    source             TEXT NOT NULL,
    rumor_id           TEXT NOT NULL,
    x                  TEXT NOT NULL CHECK (length(x) = 64),
    ox                 TEXT NOT NULL CHECK (length(ox) = 64),
    prev               TEXT NOT NULL CHECK (prev = '' OR length(prev) = 64),
    chain_status       TEXT NOT NULL CHECK (chain_status IN ('verified', 'gap', 'broken')),
    received_at        INTEGER NOT NULL,
    active_seconds     INTEGER NOT NULL CHECK (active_seconds >= 0),
    screenshot_count   INTEGER NOT NULL DEFAULT 0,
    bundle_kept        INTEGER NOT NULL DEFAULT 0 CHECK (bundle_kept IN (0, 1)),
    kimai_state        TEXT NOT NULL DEFAULT 'pending' CHECK (kimai_state IN ('pending', 'synced', 'skipped')),
    kimai_timesheet_id INTEGER,
    CHECK (end_at > start_at),
    UNIQUE (session, idx)
) STRICT;
-- Day and week totals read only this index (it covers every column they need).
CREATE INDEX segments_worker_start ON segments (worker, start_at, end_at, active_seconds,
    screenshot_count, chain_status, kimai_state);
CREATE INDEX segments_start ON segments (start_at);
CREATE INDEX segments_ox ON segments (ox);
CREATE INDEX segments_timesheet ON segments (kimai_timesheet_id) WHERE kimai_timesheet_id IS NOT NULL;

CREATE TABLE segment_evidence (
    segment_id INTEGER PRIMARY KEY REFERENCES segments (id) ON DELETE CASCADE,
    manifest   BLOB,
    activity   BLOB,
    rumor      BLOB,
    seal       BLOB
) STRICT;

CREATE TABLE events (
    segment_id INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    bucket     TEXT NOT NULL CHECK (bucket IN ('window', 'afk', 'web', 'input')),
    seq        INTEGER NOT NULL,
    ts         INTEGER NOT NULL,
    duration   REAL NOT NULL CHECK (duration >= 0),
    data       TEXT NOT NULL, -- JSON
    PRIMARY KEY (segment_id, bucket, seq)
) STRICT;

CREATE TABLE minutes (
    segment_id INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    t          INTEGER NOT NULL,
    keys       INTEGER NOT NULL CHECK (keys >= 0),
    clicks     INTEGER NOT NULL CHECK (clicks >= 0),
    moves      INTEGER NOT NULL CHECK (moves >= 0),
    active     INTEGER NOT NULL CHECK (active IN (0, 1)),
    PRIMARY KEY (segment_id, t)
) STRICT, WITHOUT ROWID;

-- Top apps, titles and URLs per segment, computed once at insert.
CREATE TABLE segment_tops (
    segment_id INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('app', 'title', 'url')),
    rank       INTEGER NOT NULL,
    name       TEXT NOT NULL,
    seconds    REAL NOT NULL,
    PRIMARY KEY (segment_id, kind, rank)
) STRICT;

CREATE TABLE screenshots (
    segment_id INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    sha256     TEXT NOT NULL CHECK (length(sha256) = 64),
    size       INTEGER NOT NULL CHECK (size > 0),
    taken_at   INTEGER,
    PRIMARY KEY (segment_id, name)
) STRICT, WITHOUT ROWID;
CREATE INDEX screenshots_sha256 ON screenshots (sha256);

CREATE TABLE deleted_screenshots (
    segment_id INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    taken_at   INTEGER,
    deleted_at INTEGER,
    PRIMARY KEY (segment_id, name)
) STRICT, WITHOUT ROWID;

CREATE TABLE skipped_captures (
    segment_id INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    PRIMARY KEY (segment_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE kimai_jobs (
    id              INTEGER PRIMARY KEY,
    op              TEXT NOT NULL,
    grp             TEXT NOT NULL DEFAULT '',
    key             TEXT NOT NULL DEFAULT '',
    payload         TEXT NOT NULL, -- JSON
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease           TEXT,
    lease_until     INTEGER,
    version         INTEGER NOT NULL DEFAULT 1, -- bumped when a coalesced payload replaces it
    lease_version   INTEGER,                    -- version handed out with the lease
    kimai_id        INTEGER,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    done_at         INTEGER
) STRICT;
CREATE INDEX kimai_jobs_due ON kimai_jobs (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX kimai_jobs_group ON kimai_jobs (grp, id) WHERE state = 'pending';
CREATE UNIQUE INDEX kimai_jobs_key ON kimai_jobs (key) WHERE state = 'pending' AND key != '';

CREATE TABLE reviewers (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,
    reviewer   TEXT NOT NULL REFERENCES reviewers (username) ON DELETE CASCADE,
    csrf       TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
CREATE INDEX web_sessions_reviewer ON web_sessions (reviewer);
