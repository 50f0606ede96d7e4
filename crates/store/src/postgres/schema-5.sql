-- Version 5 (SQLite's migration 11): the service each result was metered as (issue 20):
-- image-analysis (tiia) calls are kept beside moderation results. Results from before were
-- moderations.

ALTER TABLE results ADD COLUMN service TEXT NOT NULL DEFAULT 'IMAGE';
-- Listings still read this index alone: the service is one of the filters now.
DROP INDEX results_for_listing;
CREATE INDEX results_for_listing ON results(owner_id, created_at, seq)
    INCLUDE (request_id, suggestion, label, biz_type, corrected_at, flagged, service);
