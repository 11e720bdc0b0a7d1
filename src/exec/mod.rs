//! Running steps: the engine walks the plan, processes run commands, gates ask people, checks
//! measure live systems. Everything here emits events; nothing here prints.

pub mod abort;
pub mod checks;
pub mod engine;
pub mod event;
pub mod gates;
pub mod interrupts;
pub mod leftovers;
pub mod masking;
pub mod preapproval;
pub mod probe;
pub mod process;
pub mod session;
pub mod signatures;
pub mod warden;
