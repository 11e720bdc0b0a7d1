//! The one integration-test binary. Every test runs the real `rollout` binary in its own temp
//! directory with HOME, CI and every ROLLOUT_* variable cleared.

mod harness;

mod checks;
mod files;
mod gates;
mod incident;
mod injection;
mod notify;
mod plan;
mod run;
mod runbooks;
mod secrets;
mod validate;
