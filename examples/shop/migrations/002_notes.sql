-- v4: notes, and the one the app shows. Not idempotent on purpose: run
-- twice, it would fail (the table exists) — the deployer runs it once.
CREATE TABLE notes (id serial PRIMARY KEY, note text NOT NULL);
INSERT INTO notes (note) VALUES ('hello from the v4 migration');
