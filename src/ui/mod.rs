//! Everything that writes for people: diagnostics and plan previews. Takes finished data
//! (diagnostics, plans) and renders it; decides nothing about what runs.

pub mod audit_view;
pub mod diagnostics;
pub mod notify;
pub mod plan_view;
pub mod prompt;
pub mod status;
pub mod terminal;

/// Whether to colour output written to stderr/stdout.
pub fn use_color(choice: crate::cli::ColorChoice, is_terminal: bool) -> bool {
    match choice {
        crate::cli::ColorChoice::Always => true,
        crate::cli::ColorChoice::Never => false,
        crate::cli::ColorChoice::Auto => {
            is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}
