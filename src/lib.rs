//! rollout: an interactive runbook executor. The pipeline, one module per stage:
//!
//! runbook text --[`runbook`]--> validated model --[`plan`]--> rendered steps --> [`ui`] / JSON
//!
//! `main.rs` only parses the command line ([`cli`]) and maps outcomes to [`exit`] codes.

pub mod app;
pub mod cli;
pub mod completion;
pub mod config;
pub mod escape;
pub mod exec;
pub mod exit;
pub mod inputs;
pub mod plan;
pub mod redact;
pub mod report;
pub mod runbook;
pub mod scaffold;
pub mod state;
pub mod tooling;
pub mod ui;
