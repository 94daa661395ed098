-- The audit log's seq becomes its table's rowid. Declared `BIGINT PRIMARY
-- KEY` (0001), it was a column beside SQLite's rowid with a unique index of
-- its own, so every entry went into two b-trees (the row, and its seq in
-- the index) and reading the chain's head — which every append and every
-- group commit of signatures does — went through the index to the row.
-- `INTEGER PRIMARY KEY` is SQLite's name for the rowid itself: the same
-- values, unique as before, one b-tree. SQLite cannot change a table's
-- primary key in place, so the table is rebuilt; nothing references it.
-- (PostgreSQL's `audit` keeps its primary key index: it has no rowid.)
CREATE TABLE audit_new (seq INTEGER PRIMARY KEY, at_ms BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
  subject TEXT NOT NULL, details TEXT NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL);
INSERT INTO audit_new (seq, at_ms, actor, action, subject, details, prev_hash, hash)
  SELECT seq, at_ms, actor, action, subject, details, prev_hash, hash FROM audit ORDER BY seq;
DROP TABLE audit;
ALTER TABLE audit_new RENAME TO audit;
