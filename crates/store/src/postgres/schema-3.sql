-- Version 3 (SQLite's migration 9): what the detectors reported for each result (JSON), so a
-- policy's change can be previewed on recent results; and results asked for in the console.

ALTER TABLE results ADD COLUMN observations TEXT;
ALTER TABLE results DROP CONSTRAINT results_origin_check;
ALTER TABLE results ADD CONSTRAINT results_origin_check CHECK (origin IN ('sync', 'async', 'console'));
-- Listings read this index alone (the filters' columns are in it), then the page's rows.
DROP INDEX results_by_owner;
CREATE INDEX results_for_listing ON results(owner_id, created_at, seq)
    INCLUDE (request_id, suggestion, label, biz_type, corrected_at, flagged);
CREATE INDEX results_by_data_id ON results(owner_id, data_id, created_at);
