-- Issue 9: what the server verified about a device's key attestation at enrollment
-- (JSON of attestation::DeviceAttestation); NULL for devices enrolled before.
ALTER TABLE devices ADD COLUMN attestation_facts TEXT;
