-- Shomei schema v1. Times are Unix milliseconds; ids are text.
CREATE TABLE settings (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE facilities (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_ms BIGINT NOT NULL);
CREATE TABLE terminals (id TEXT PRIMARY KEY, facility_id TEXT NOT NULL REFERENCES facilities(id), name TEXT NOT NULL,
  secret_hash BLOB NOT NULL, created_ms BIGINT NOT NULL, revoked_ms BIGINT);
CREATE TABLE practitioners (id TEXT PRIMARY KEY, display_name TEXT NOT NULL, role TEXT NOT NULL, created_ms BIGINT NOT NULL);
CREATE TABLE practitioner_facilities (practitioner_id TEXT NOT NULL REFERENCES practitioners(id),
  facility_id TEXT NOT NULL REFERENCES facilities(id), PRIMARY KEY (practitioner_id, facility_id));
CREATE TABLE credentials (id TEXT PRIMARY KEY, practitioner_id TEXT NOT NULL REFERENCES practitioners(id),
  algorithm TEXT NOT NULL, sealed_key BLOB NOT NULL, certificate_chain TEXT NOT NULL, created_ms BIGINT NOT NULL);
CREATE TABLE enrollments (id TEXT PRIMARY KEY, practitioner_id TEXT NOT NULL REFERENCES practitioners(id),
  secret_hash BLOB NOT NULL, password_hash BLOB NOT NULL, password_salt BLOB NOT NULL,
  failed_attempts BIGINT NOT NULL DEFAULT 0, status TEXT NOT NULL, created_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL, device_id TEXT);
CREATE TABLE devices (id TEXT PRIMARY KEY, practitioner_id TEXT NOT NULL REFERENCES practitioners(id),
  name TEXT NOT NULL, platform TEXT NOT NULL, public_key BLOB NOT NULL, token_hash BLOB NOT NULL UNIQUE,
  attestation TEXT, created_ms BIGINT NOT NULL, revoked_ms BIGINT);
CREATE INDEX devices_practitioner ON devices(practitioner_id);
CREATE TABLE logins (id TEXT PRIMARY KEY, terminal_id TEXT NOT NULL REFERENCES terminals(id),
  device_code_hash BLOB NOT NULL UNIQUE, user_code TEXT NOT NULL, secret_hash BLOB NOT NULL, secret_sealed BLOB NOT NULL, challenge BLOB NOT NULL,
  number_choices TEXT NOT NULL, match_number BIGINT NOT NULL, status TEXT NOT NULL, created_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL, last_poll_ms BIGINT, poll_interval_s BIGINT NOT NULL, decided_ms BIGINT,
  device_id TEXT, grant_id TEXT);
CREATE TABLE grants (id TEXT PRIMARY KEY, practitioner_id TEXT NOT NULL REFERENCES practitioners(id),
  terminal_id TEXT NOT NULL REFERENCES terminals(id), device_id TEXT NOT NULL REFERENCES devices(id),
  login_id TEXT NOT NULL, token_hash BLOB UNIQUE, created_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL,
  last_used_ms BIGINT NOT NULL, idle_timeout_s BIGINT, signature_cap BIGINT, signatures_made BIGINT NOT NULL DEFAULT 0,
  revoked_ms BIGINT, revoked_reason TEXT);
CREATE INDEX grants_practitioner ON grants(practitioner_id);
CREATE INDEX grants_device ON grants(device_id);
CREATE TABLE audit (seq BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
  subject TEXT NOT NULL, details TEXT NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL);
