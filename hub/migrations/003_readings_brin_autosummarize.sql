-- BRIN only covers block ranges it has summarized; ranges filled since are scanned in full by
-- every time-range query until the next VACUUM summarizes them. autosummarize asks for the
-- summary as soon as a range is full, so "the last hour" stays an index lookup on a busy
-- insert-only table. See hub/docs/storage.md.
ALTER INDEX IF EXISTS readings_ts_brin SET (autosummarize = on);
