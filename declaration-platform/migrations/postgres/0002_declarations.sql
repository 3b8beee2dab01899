-- Declarations 报关单; their content is the v1 DeclarationContent message, encoded.
CREATE TABLE declarations (
    declaration_number TEXT PRIMARY KEY,
    request_id         TEXT NOT NULL UNIQUE,
    enterprise_code    TEXT NOT NULL,
    broker_code        TEXT NOT NULL DEFAULT '',
    declaring_office   TEXT NOT NULL,
    stage              TEXT NOT NULL,
    handling_house     TEXT NOT NULL,
    lane               TEXT NOT NULL DEFAULT '',
    review_sub_centre  TEXT NOT NULL DEFAULT '',
    content            BYTEA NOT NULL,
    submitted_at       TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    version            BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX declarations_enterprise ON declarations (enterprise_code, submitted_at);
CREATE INDEX declarations_office ON declarations (declaring_office, submitted_at);

-- Every lifecycle transition: who, which house, when and why.
CREATE TABLE declaration_events (
    id                 BIGSERIAL PRIMARY KEY,
    declaration_number TEXT NOT NULL REFERENCES declarations (declaration_number),
    from_stage         TEXT NOT NULL,
    to_stage           TEXT NOT NULL,
    actor              TEXT NOT NULL,
    house_code         TEXT NOT NULL,
    reason             TEXT NOT NULL,
    occurred_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX declaration_events_number ON declaration_events (declaration_number, id);

-- The last sequence used per site, year and direction: incremented in the same
-- transaction as the declaration it numbers, so numbers never repeat nor skip.
CREATE TABLE declaration_sequences (
    site       TEXT NOT NULL,
    year       INTEGER NOT NULL,
    direction  TEXT NOT NULL,
    last_value BIGINT NOT NULL,
    PRIMARY KEY (site, year, direction)
);

-- Transactional outbox: hand-offs to other platforms, committed with the change that
-- causes them and retried until the receiver accepts them.
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL,
    -- Unix milliseconds: compared, so kept as integers on both backends.
    next_attempt_at BIGINT NOT NULL,
    locked_until    BIGINT,
    done_at         TIMESTAMPTZ
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE done_at IS NULL;
