//! shomei-server integration tests, in ONE test binary (each extra file
//! under tests/ is another linked binary on a 2-core CI):
//! - `storage`: the same suite against SQLite (temp file) and PostgreSQL
//!   (fresh database per run from SHOMEI_TEST_DATABASE_URL);
//! - `attestation`: the Android Key Attestation and App Attest verifiers on
//!   real captured data (tests/data/attestation), refusals and property tests;
//! - `cli`: the `shomei` binary (serve on port 0, admin --json, bad config);
//! - `signing_log`: the phone's signing log over HTTP (issue 14);
//! - `http`: the real server on 127.0.0.1:0 driven over HTTP by reqwest,
//!   with a software P-256 key as the phone, one test per rejection rule;
//! - `user_code`: the typed-code fallback (protocol.md §4.6), every refusal;
//! - `waiting`: terminals waiting on a login (long-poll, SSE) on SQLite and
//!   PostgreSQL;
//! - `replicas`: two servers on one PostgreSQL database — LISTEN/NOTIFY
//!   wakes waiters and drops held keys across replicas, a killed listener
//!   reconnects and re-reads;
//! - `held_authorization`: signing calls admitted from held rows refuse as
//!   the store does, and nothing ended elsewhere is signed;
//! - `pkcs11`: the PKCS#11 backend on a real SoftHSM2 token (keys made in
//!   the token, signHash/signDoc verified, every refusal).

mod attestation;
mod attestation_corpus;
mod anchor;
mod cli;
mod confirmation;
mod connections;
mod csc_info;
mod common;
mod demo;
mod hardening;
mod held_authorization;
mod metrics;
mod http;
mod openapi;
mod pkcs11;
mod readiness;
mod record_first;
mod replicas;
mod signdoc;
mod signing_log;
mod storage;
mod tls;
mod user_code;
mod waiting;
