-- A declaration's containers leave one truck at a time: each container's exit is
-- recorded, and the declaration leaves (releases.exited_at) with its last one.
-- Declarations that left before this recorded nothing per container: theirs left with
-- them.
ALTER TABLE release_containers ADD COLUMN exited_at TEXT;
ALTER TABLE release_containers ADD COLUMN exit_gate TEXT NOT NULL DEFAULT '';
UPDATE release_containers SET exited_at = (SELECT r.exited_at FROM releases r WHERE r.declaration_number = release_containers.declaration_number),
    exit_gate = (SELECT r.exit_gate FROM releases r WHERE r.declaration_number = release_containers.declaration_number)
WHERE EXISTS (SELECT 1 FROM releases r WHERE r.declaration_number = release_containers.declaration_number AND r.exited_at IS NOT NULL);
