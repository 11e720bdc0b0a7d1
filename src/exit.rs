//! The one place where rollout's exit codes are defined. README.md documents the same table;
//! a test keeps the two in step.

/// A process exit status with a stable meaning for scripts and CI systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything asked for was done.
    Ok,
    /// An unexpected failure inside rollout (I/O error outside the runbook, a bug).
    Internal,
    /// The command line or the variable values given to it are wrong.
    Usage,
    /// The runbook was read but is not valid: every problem has been reported.
    InvalidRunbook,
    /// The runbook file could not be read as text: missing, too large, binary, not UTF-8, ...
    UnreadableRunbook,
}

impl ExitCode {
    pub const ALL: [ExitCode; 5] = [
        ExitCode::Ok,
        ExitCode::Internal,
        ExitCode::Usage,
        ExitCode::InvalidRunbook,
        ExitCode::UnreadableRunbook,
    ];

    pub fn code(self) -> u8 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::Internal => 1,
            ExitCode::Usage => 2,
            ExitCode::InvalidRunbook => 3,
            ExitCode::UnreadableRunbook => 4,
        }
    }

    pub fn meaning(self) -> &'static str {
        match self {
            ExitCode::Ok => "success",
            ExitCode::Internal => "unexpected internal or I/O error",
            ExitCode::Usage => "bad command line, or bad or missing variable values",
            ExitCode::InvalidRunbook => "the runbook is invalid (all problems are reported)",
            ExitCode::UnreadableRunbook => {
                "the runbook file cannot be read as text (missing, empty, too large, binary, not UTF-8, BOM)"
            }
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}
