-- Notes on a declaration's timeline: steps another platform takes that do not change
-- the declaration's stage (the transit 转关 steps of a TRANSIT declaration). A note is
-- an event whose from_stage and to_stage are both the stage it was at; `note` names
-- it ('' for a stage change) and `note_key` is the reporter's request id, so that a
-- repeated report records nothing more.
ALTER TABLE declaration_events ADD COLUMN note TEXT NOT NULL DEFAULT '';
ALTER TABLE declaration_events ADD COLUMN note_key TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX declaration_events_note ON declaration_events (declaration_number, note_key) WHERE note_key <> '';
