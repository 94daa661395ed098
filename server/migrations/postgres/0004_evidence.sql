-- Evidence of each phone decision (issue 10): the exact signed approval/deny
-- message, the device's DER signature and public key, and the device's
-- attestation record as stored at decision time, written in the same
-- transaction as the decision. Relay-phishing defence: the optional
-- confirmation code's hash and its wrong attempts live on the login.
CREATE TABLE decision_evidence (login_id TEXT PRIMARY KEY REFERENCES logins(id),
  device_id TEXT NOT NULL REFERENCES devices(id), outcome TEXT NOT NULL, reason TEXT NOT NULL,
  message BYTEA NOT NULL, signature BYTEA NOT NULL, public_key BYTEA NOT NULL, attestation TEXT,
  decided_ms BIGINT NOT NULL);
ALTER TABLE logins ADD COLUMN confirmation_hash BYTEA;
ALTER TABLE logins ADD COLUMN confirmation_failures BIGINT NOT NULL DEFAULT 0;
