-- A signing-log row names its grant, and the grant's practitioner and
-- terminal. Three separate foreign keys let a row pair a grant with some
-- other practitioner or terminal; one composite key onto the grant cannot,
-- and it is one check per row instead of three. The checks are most of
-- what PostgreSQL spends on a signature at commit (each is a lookup that
-- also share-locks the parent row): measured with pgbench on the group
-- commit's statements, 26 signatures per transaction, the three keys cost
-- 1.4–1.6× the transaction's other work (docs/performance.md).
-- Practitioners and terminals stay checked through the grant, whose own
-- keys reference them.
ALTER TABLE grants ADD CONSTRAINT grants_id_practitioner_terminal UNIQUE (id, practitioner_id, terminal_id);
ALTER TABLE signatures DROP CONSTRAINT signatures_grant_id_fkey,
  DROP CONSTRAINT signatures_practitioner_id_fkey,
  DROP CONSTRAINT signatures_terminal_id_fkey;
ALTER TABLE signatures ADD CONSTRAINT signatures_grant_fkey FOREIGN KEY (grant_id, practitioner_id, terminal_id)
  REFERENCES grants (id, practitioner_id, terminal_id);
