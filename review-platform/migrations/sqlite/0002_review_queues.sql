-- Versions of the routing table by HS chapter; the one in force on a day is the
-- latest version whose effective date has come.
CREATE TABLE routing_tables (
    version        INTEGER PRIMARY KEY,
    effective_from TEXT NOT NULL,
    ranges         TEXT NOT NULL, -- JSON: [{first, last, sub_centre}]
    published_at   TEXT NOT NULL,
    published_by   TEXT NOT NULL
);

-- Review tasks in the sub-centres' queues.
CREATE TABLE review_tasks (
    id                 TEXT PRIMARY KEY,
    request_id         TEXT NOT NULL UNIQUE,
    kind               TEXT NOT NULL,
    state              TEXT NOT NULL,
    declaration_number TEXT NOT NULL,
    sub_centre         TEXT NOT NULL,
    post               TEXT NOT NULL DEFAULT '',
    lane               TEXT NOT NULL,
    claimed_by         TEXT,
    -- Unix milliseconds: compared, so kept as integers on both backends.
    claim_expires_at   INTEGER,
    change_request_id  TEXT NOT NULL DEFAULT '',
    routing            TEXT NOT NULL, -- JSON: the routing decision
    enqueued_at        TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX review_tasks_queue ON review_tasks (sub_centre, state, enqueued_at);
CREATE INDEX review_tasks_declaration ON review_tasks (declaration_number);

-- Every action on a task: who, where, when, why. The quality report is computed
-- from these.
CREATE TABLE review_events (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
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
CREATE INDEX review_events_task ON review_events (task_id, id);
CREATE INDEX review_events_time ON review_events (occurred_ms);

-- Hand-offs to the declaration and field platforms (customs_common::outbox).
CREATE TABLE review_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    locked_until    INTEGER,
    done_at         TEXT
);
CREATE INDEX review_outbox_due ON review_outbox (next_attempt_at) WHERE done_at IS NULL;

-- Post-clearance re-review batches and the declarations drawn into them (each once).
CREATE TABLE post_review_batches (
    id         TEXT PRIMARY KEY,
    house_code TEXT NOT NULL,
    drawn_at   TEXT NOT NULL,
    drawn_by   TEXT NOT NULL
);
CREATE TABLE post_review_items (
    declaration_number TEXT PRIMARY KEY,
    batch_id           TEXT NOT NULL REFERENCES post_review_batches (id),
    sub_centre         TEXT NOT NULL,
    lane               TEXT NOT NULL
);
CREATE INDEX post_review_items_batch ON post_review_items (batch_id);

CREATE TABLE post_review_findings (
    id                 TEXT PRIMARY KEY,
    request_id         TEXT NOT NULL UNIQUE,
    batch_id           TEXT NOT NULL REFERENCES post_review_batches (id),
    declaration_number TEXT NOT NULL REFERENCES post_review_items (declaration_number),
    kind               TEXT NOT NULL,
    description        TEXT NOT NULL,
    extra_duty_fen     INTEGER NOT NULL CHECK (extra_duty_fen >= 0),
    sub_centre         TEXT NOT NULL,
    recorded_ms        INTEGER NOT NULL,
    recorded_at        TEXT NOT NULL,
    recorded_by        TEXT NOT NULL
);
CREATE INDEX post_review_findings_time ON post_review_findings (recorded_ms);
