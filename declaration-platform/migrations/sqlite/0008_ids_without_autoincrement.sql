-- Event and outbox ids come from the rowid, as SQLite gives it (one more than the
-- largest): rows are never deleted here, so ids still only grow. AUTOINCREMENT kept a
-- counter in sqlite_sequence besides, a page more written by every transaction that
-- inserts into either table (a tenth of what a gate check wrote). SQLite cannot drop
-- the keyword from a table, so each is rebuilt with its rows and indexes.
CREATE TABLE declaration_events_rowid (
    id                 INTEGER PRIMARY KEY,
    declaration_number TEXT NOT NULL REFERENCES declarations (declaration_number),
    from_stage         TEXT NOT NULL,
    to_stage           TEXT NOT NULL,
    actor              TEXT NOT NULL,
    house_code         TEXT NOT NULL,
    reason             TEXT NOT NULL,
    occurred_at        TEXT NOT NULL,
    note               TEXT NOT NULL DEFAULT '',
    note_key           TEXT NOT NULL DEFAULT ''
);
INSERT INTO declaration_events_rowid
    (id, declaration_number, from_stage, to_stage, actor, house_code, reason, occurred_at, note, note_key)
SELECT id, declaration_number, from_stage, to_stage, actor, house_code, reason, occurred_at, note, note_key
FROM declaration_events;
DROP TABLE declaration_events;
ALTER TABLE declaration_events_rowid RENAME TO declaration_events;
CREATE INDEX declaration_events_number ON declaration_events (declaration_number, id);
CREATE UNIQUE INDEX declaration_events_note ON declaration_events (declaration_number, note_key) WHERE note_key <> '';

CREATE TABLE outbox_rowid (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL,
    -- Unix milliseconds: compared, so kept as integers on both backends.
    next_attempt_at INTEGER NOT NULL,
    locked_until    INTEGER,
    done_at         TEXT,
    job_key         TEXT
);
INSERT INTO outbox_rowid
    (id, kind, payload, attempts, last_error, created_at, next_attempt_at, locked_until, done_at, job_key)
SELECT id, kind, payload, attempts, last_error, created_at, next_attempt_at, locked_until, done_at, job_key
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_rowid RENAME TO outbox;
CREATE INDEX outbox_pending ON outbox (id) WHERE done_at IS NULL;
CREATE INDEX outbox_pending_by_key ON outbox (job_key, id) WHERE done_at IS NULL;

DELETE FROM sqlite_sequence WHERE name IN ('declaration_events', 'outbox');
