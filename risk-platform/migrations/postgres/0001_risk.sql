-- Control instructions 布控指令, issued by any house, applied by all.
CREATE TABLE control_instructions (
    id                TEXT PRIMARY KEY,
    request_id        TEXT NOT NULL UNIQUE,
    conditions        TEXT NOT NULL,
    lane              TEXT NOT NULL,
    order_inspection  BOOLEAN NOT NULL,
    valid_from        BIGINT NOT NULL,
    valid_until       BIGINT NOT NULL,
    issuing_house     TEXT NOT NULL,
    reason            TEXT NOT NULL,
    revoked           BOOLEAN NOT NULL DEFAULT FALSE,
    revocation_reason TEXT NOT NULL DEFAULT '',
    created_at        TIMESTAMPTZ NOT NULL,
    revoked_at        TIMESTAMPTZ
);

-- Risk parameters, versioned: a decision records the version it used.
CREATE TABLE risk_parameters (
    version    BIGINT PRIMARY KEY,
    parameters TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    updated_by TEXT NOT NULL
);

-- One decision per declaration: what hit, what was drawn, which lane.
CREATE TABLE screening_decisions (
    decision_id        TEXT PRIMARY KEY,
    declaration_number TEXT NOT NULL UNIQUE,
    decision           TEXT NOT NULL,
    parameters_version BIGINT NOT NULL,
    credit_class       TEXT NOT NULL,
    decided_at         TIMESTAMPTZ NOT NULL
);
