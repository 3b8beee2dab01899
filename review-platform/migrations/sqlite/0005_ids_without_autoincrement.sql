-- Event and outbox ids come from the rowid, as SQLite gives it (one more than the
-- largest): rows are never deleted here, so ids still only grow. AUTOINCREMENT kept a
-- counter in sqlite_sequence besides, a page more written by every transaction that
-- inserts into either table. SQLite cannot drop the keyword from a table, so each is
-- rebuilt with its rows and indexes.
CREATE TABLE review_events_rowid (
    id                 INTEGER PRIMARY KEY,
    task_id            TEXT NOT NULL REFERENCES review_tasks (id),
    declaration_number TEXT NOT NULL,
    action             TEXT NOT NULL,
    actor              TEXT NOT NULL,
    sub_centre         TEXT NOT NULL,
    reason             TEXT NOT NULL,
    -- Unix milliseconds, for period queries on both backends.
    occurred_ms        INTEGER NOT NULL,
    occurred_at        TEXT NOT NULL
);
INSERT INTO review_events_rowid
    (id, task_id, declaration_number, action, actor, sub_centre, reason, occurred_ms, occurred_at)
SELECT id, task_id, declaration_number, action, actor, sub_centre, reason, occurred_ms, occurred_at
FROM review_events;
DROP TABLE review_events;
ALTER TABLE review_events_rowid RENAME TO review_events;
CREATE INDEX review_events_task ON review_events (task_id, id);
CREATE INDEX review_events_time ON review_events (occurred_ms);

CREATE TABLE review_outbox_rowid (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    locked_until    INTEGER,
    done_at         TEXT,
    job_key         TEXT
);
INSERT INTO review_outbox_rowid
    (id, kind, payload, attempts, last_error, created_at, next_attempt_at, locked_until, done_at, job_key)
SELECT id, kind, payload, attempts, last_error, created_at, next_attempt_at, locked_until, done_at, job_key
FROM review_outbox;
DROP TABLE review_outbox;
ALTER TABLE review_outbox_rowid RENAME TO review_outbox;
CREATE INDEX review_outbox_pending ON review_outbox (id) WHERE done_at IS NULL;
CREATE INDEX review_outbox_pending_by_key ON review_outbox (job_key, id) WHERE done_at IS NULL;

DELETE FROM sqlite_sequence WHERE name IN ('review_events', 'review_outbox');
