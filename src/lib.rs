//! rollout: an interactive runbook executor. The pipeline, one module per stage:
//!
//! runbook text --[`runbook`]--> validated model --[`plan`]--> rendered steps --[`exec`]-->
//! events --> [`ui`] (terminal, JSON lines, notifications) and [`state`] (journal) --> [`report`]
//!
//! `main.rs` only parses the command line ([`cli`]), resolves the settings once ([`config`])
//! and maps outcomes to [`exit`] codes; [`app`] turns each subcommand into calls on the stages.
//!
//! # Layers
//!
//! Imports flow one way: a module uses the modules of the layers below its own, never one of
//! its own layer or above. Lowest first:
//!
//! 1. [`escape`], [`exit`], [`sshsig`]: leaves, importing nothing of rollout;
//! 2. [`runbook`]: the file, parsed and validated; imports nothing of the crate above it;
//! 3. [`inputs`] (variable values), [`redact`] (masking secrets);
//! 4. [`state`]: journal, locks, audit chain, identity; nothing of `config`, `plan`, `exec`,
//!    `ui`, `report` or `app`;
//! 5. [`config`]: the invocation's [`config::Settings`], plain data handed down;
//! 6. [`plan`]: what will run, rendered; nothing of `exec` or `ui` (its text layout is a trait,
//!    [`plan::TextLayout`], that `ui` implements);
//! 7. [`exec`]: runs steps and emits events; nothing of `report`, `cli`, `ui` or `app` (the
//!    app hands the session its listeners, prompter and layout);
//! 8. [`report`]: a run's report from its journal; nothing of `cli`, `ui` or `app`;
//! 9. [`cli`]: the command line;
//! 10. [`ui`]: everything that writes for people;
//! 11. [`completion`], [`scaffold`];
//! 12. [`app`], [`tooling`]: one function per subcommand.
//!
//! A name two layers need lives in the lower one. `tests/layers.rs` reads every file under
//! `src/` and fails on a path that runs up the layers (`crate::x`, `crate::{x, y}`, or
//! `super::` climbing to the root), comments included.

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
pub mod sshsig;
pub mod state;
pub mod tooling;
pub mod ui;
