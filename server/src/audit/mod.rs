//! The audit log: every state change and every signature, hash-chained so
//! that edits, removals and reordering are detectable.

pub mod chain;
pub mod checkpoint;
