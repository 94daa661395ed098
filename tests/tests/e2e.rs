//! End-to-end tests: a practitioner's whole day across the real `shomei` binary (spawned on an
//! ephemeral loopback port with a temp data dir), the real desktop phone (shomei-core's client,
//! scanner and software key), and an EHR terminal speaking plain HTTP.
//!
//! One test binary for the whole suite (modules below), because every extra file under
//! tests/ links another binary and CI has two cores.

#[path = "e2e/server.rs"]
mod server;
#[path = "e2e/terminal.rs"]
mod terminal;
#[path = "e2e/world.rs"]
mod world;
#[path = "e2e/documents.rs"]
mod documents;

#[path = "e2e/day.rs"]
mod day;
#[path = "e2e/refusals.rs"]
mod refusals;
#[path = "e2e/postgres.rs"]
mod postgres;
#[path = "e2e/replicas.rs"]
mod replicas;
#[path = "e2e/phone_cli.rs"]
mod phone_cli;
#[path = "e2e/attestation.rs"]
mod attestation;
#[path = "e2e/evidence.rs"]
mod evidence;
#[path = "e2e/relay.rs"]
mod relay;
#[path = "e2e/anchor.rs"]
mod anchor;
#[path = "e2e/secrets.rs"]
mod secrets;
#[path = "e2e/ehr_script.rs"]
mod ehr_script;
#[path = "e2e/oauth_clients.rs"]
mod oauth_clients;
#[path = "e2e/signing_log.rs"]
mod signing_log;
#[path = "e2e/crash.rs"]
mod crash;
#[path = "e2e/browser.rs"]
mod browser;
