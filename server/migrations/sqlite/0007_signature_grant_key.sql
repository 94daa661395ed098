-- A signing-log row names its grant, and the grant's practitioner and
-- terminal: one composite key onto the grant (as in PostgreSQL's 0007),
-- so that no row can pair a grant with another practitioner or terminal.
-- SQLite cannot change a table's constraints in place, so the table is
-- rebuilt; nothing references it.
CREATE UNIQUE INDEX grants_id_practitioner_terminal ON grants(id, practitioner_id, terminal_id);
CREATE TABLE signatures_new (seq INTEGER PRIMARY KEY, grant_id TEXT NOT NULL,
  practitioner_id TEXT NOT NULL, terminal_id TEXT NOT NULL,
  credential_id TEXT NOT NULL, at_ms BIGINT NOT NULL, sign_algo TEXT NOT NULL, format TEXT NOT NULL,
  digest BLOB NOT NULL, label TEXT,
  FOREIGN KEY (grant_id, practitioner_id, terminal_id) REFERENCES grants (id, practitioner_id, terminal_id));
INSERT INTO signatures_new (seq, grant_id, practitioner_id, terminal_id, credential_id, at_ms, sign_algo, format, digest, label)
  SELECT seq, grant_id, practitioner_id, terminal_id, credential_id, at_ms, sign_algo, format, digest, label FROM signatures;
DROP TABLE signatures;
ALTER TABLE signatures_new RENAME TO signatures;
CREATE INDEX signatures_grant_seq ON signatures(grant_id, seq);
CREATE INDEX signatures_practitioner_seq ON signatures(practitioner_id, seq);
CREATE INDEX signatures_practitioner_time ON signatures(practitioner_id, at_ms);
