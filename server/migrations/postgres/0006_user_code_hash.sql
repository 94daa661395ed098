-- Issue 13 (typed-code fallback, docs/protocol.md §4.6): the RFC 8628
-- user code becomes a credential a phone can present, so it is no longer
-- stored in clear. `user_code_hash` is HMAC-SHA256 of the code's eight
-- letters under a server key sealed by the KEK (settings `user_code_key`):
-- a copy of the database alone cannot be searched for live codes (a plain
-- hash of 34.6 bits would be reversed in seconds). Lookups go through the
-- index by that hash. `code_device_id` names the device that resolved the
-- login by its code (the evidence's `via: "code"`). Codes of logins
-- started before this migration are dropped; they expired long ago.
ALTER TABLE logins ADD COLUMN user_code_hash BYTEA;
ALTER TABLE logins ADD COLUMN code_device_id TEXT;
ALTER TABLE logins DROP COLUMN user_code;
CREATE INDEX logins_user_code_hash ON logins(user_code_hash);
