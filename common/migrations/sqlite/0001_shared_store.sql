-- The shared store kept in the embedded SQLite database (the default run).
CREATE TABLE shared_guarantee_state (
    reference    TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    access_hash  TEXT NOT NULL,
    amount_fen   INTEGER NOT NULL CHECK (amount_fen >= 0),
    reserved_fen INTEGER NOT NULL CHECK (reserved_fen >= 0),
    valid_from   INTEGER NOT NULL,
    valid_until  INTEGER NOT NULL,
    suspended    INTEGER NOT NULL DEFAULT 0,
    CHECK (reserved_fen <= amount_fen)
);

CREATE TABLE shared_guarantee_reservation (
    reference          TEXT NOT NULL REFERENCES shared_guarantee_state (reference) ON DELETE CASCADE,
    declaration_number TEXT NOT NULL,
    amount_fen         INTEGER NOT NULL CHECK (amount_fen > 0),
    released           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (reference, declaration_number)
);
