-- Issue 14: the practitioner's signing log. One row per signed digest,
-- written in the same transaction as its `signature.create` audit entry,
-- whose sequence number it shares (`seq`: unique, and in commit order,
-- since the audit chain has one writer at a time). `format` is `hash`
-- (signHash), `xades` or `cms` (signDoc); `label` is the EHR's optional
-- document label. The phone lists it by grant or by practitioner, newest
-- first by seq, and follows it by seq: one index per access path, so a
-- page is an index range, never a scan (the practitioner's time index only
-- finds where "today" begins).
CREATE TABLE signatures (seq BIGINT PRIMARY KEY, grant_id TEXT NOT NULL REFERENCES grants(id),
  practitioner_id TEXT NOT NULL REFERENCES practitioners(id), terminal_id TEXT NOT NULL REFERENCES terminals(id),
  credential_id TEXT NOT NULL, at_ms BIGINT NOT NULL, sign_algo TEXT NOT NULL, format TEXT NOT NULL,
  digest BYTEA NOT NULL, label TEXT);
CREATE INDEX signatures_grant_seq ON signatures(grant_id, seq);
CREATE INDEX signatures_practitioner_seq ON signatures(practitioner_id, seq);
CREATE INDEX signatures_practitioner_time ON signatures(practitioner_id, at_ms);
-- Signatures made before this migration are in the audit log only: copy them.
INSERT INTO signatures (seq, grant_id, practitioner_id, terminal_id, credential_id, at_ms, sign_algo, format, digest, label)
  SELECT a.seq, g.id, g.practitioner_id, g.terminal_id, a.subject, a.at_ms, a.details::jsonb ->> 'sign_algo',
    CASE a.details::jsonb ->> 'format' WHEN 'X' THEN 'xades' WHEN 'C' THEN 'cms' ELSE 'hash' END,
    decode(a.details::jsonb ->> 'hash', 'hex'), NULL
  FROM audit a JOIN grants g ON g.id = a.details::jsonb ->> 'grant'
  WHERE a.action = 'signature.create';
