//! shomei-server: the remote-signing service (enrollment, QR logins shaped
//! as RFC 8628, daily grants, CSC v2 signHash, hash-chained audit) and the
//! `shomei` operator CLI. See docs/api.md for the HTTP contract.
pub use shomei_attestation as attestation;
pub mod audit;
pub mod signing;
pub mod cms;
pub mod xades;
pub mod store;
pub mod service;
pub mod http;
pub mod metrics;
pub mod qr;
pub mod config;
pub mod demo;
pub mod run;
pub mod tls;
pub mod cli;
