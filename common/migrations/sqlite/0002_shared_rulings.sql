-- Rulings in the embedded shared store.
CREATE TABLE shared_ruling (
    id              TEXT PRIMARY KEY,
    record          TEXT NOT NULL,
    revoked         INTEGER NOT NULL DEFAULT 0,
    remaining_milli INTEGER CHECK (remaining_milli IS NULL OR remaining_milli >= 0)
);

CREATE TABLE shared_ruling_draw (
    id                 TEXT NOT NULL REFERENCES shared_ruling (id) ON DELETE CASCADE,
    declaration_number TEXT NOT NULL,
    quantity_milli     INTEGER NOT NULL CHECK (quantity_milli > 0),
    PRIMARY KEY (id, declaration_number)
);
