//! The one integration-test binary. Every test runs the real `rollout` binary in its own temp
//! directory with HOME, CI and every ROLLOUT_* variable cleared.

mod harness;

mod checks;
mod config;
mod criteria;
mod files;
mod gates;
mod generated;
mod hangs;
mod headers;
mod incident;
mod injection;
mod layers;
mod located;
mod notify;
mod operator;
mod params;
mod pg;
mod plan;
mod processes;
mod rehearsal;
mod report;
mod rollback;
mod run;
mod runbooks;
mod scaffold;
mod schema;
mod secrets;
mod seeds;
mod signatures;
mod team;
mod terminal;
mod time;
mod tls;
mod validate;
