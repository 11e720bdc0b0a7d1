//! Everything that writes for people: diagnostics and plan previews. Takes finished data
//! (diagnostics, plans) and renders it; decides nothing about what runs.

pub mod audit_view;
pub mod diagnostics;
pub mod notify;
pub mod plan_view;
pub mod prompt;
pub mod status;
pub mod terminal;

/// Whether to colour output written to stderr/stdout (`NO_COLOR` is part of the choice, see
/// [`crate::config::pick_color`]).
pub fn use_color(choice: crate::config::ColorChoice, is_terminal: bool) -> bool {
    match choice {
        crate::config::ColorChoice::Always => true,
        crate::config::ColorChoice::Never => false,
        crate::config::ColorChoice::Auto => is_terminal,
    }
}
