-- Version 3 (SQLite's migration 9): what the detectors reported for each result (JSON), so a
-- policy's change can be previewed on recent results; and results asked for in the console.

ALTER TABLE results ADD COLUMN observations TEXT;
ALTER TABLE results DROP CONSTRAINT results_origin_check;
ALTER TABLE results ADD CONSTRAINT results_origin_check CHECK (origin IN ('sync', 'async', 'console'));
