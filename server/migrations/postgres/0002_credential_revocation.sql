-- Credential revocation (issue 8): the operator can stop a credential from signing.
ALTER TABLE credentials ADD COLUMN revoked_ms BIGINT;
ALTER TABLE credentials ADD COLUMN revoked_reason TEXT;
