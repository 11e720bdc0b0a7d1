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
    /// A step failed and the run stopped.
    StepFailed,
    /// A metric or HTTP check failed and the run stopped.
    CheckFailed,
    /// A gate or decision needs someone who can answer; the run is saved, waiting.
    WaitingForApproval,
    /// The run paused (a pause step, or a failure whose action is pause); resume it later.
    Paused,
    /// A rollback is needed and was not performed: declined, or nobody here could confirm it.
    RollbackRequested,
    /// The run failed and was rolled back: every rollback step succeeded.
    RolledBack,
    /// A rollback ran and did not undo everything: the report lists what is left.
    RollbackIncomplete,
    /// Another rollout process holds the run's target lock.
    Locked,
    /// `rollout audit verify` found the audit log altered, cut short or unsealed.
    AuditFailed,
    /// `run` or `resume` outside the runbook's change window, without `--outside-window`.
    OutsideWindow,
    /// Stopped by SIGINT (Ctrl-C); saved as paused.
    Interrupted,
    /// Stopped by SIGTERM; saved as paused.
    Terminated,
}

impl ExitCode {
    pub const ALL: [ExitCode; 17] = [
        ExitCode::Ok,
        ExitCode::Internal,
        ExitCode::Usage,
        ExitCode::InvalidRunbook,
        ExitCode::UnreadableRunbook,
        ExitCode::StepFailed,
        ExitCode::CheckFailed,
        ExitCode::WaitingForApproval,
        ExitCode::Paused,
        ExitCode::RollbackRequested,
        ExitCode::RolledBack,
        ExitCode::RollbackIncomplete,
        ExitCode::Locked,
        ExitCode::AuditFailed,
        ExitCode::OutsideWindow,
        ExitCode::Interrupted,
        ExitCode::Terminated,
    ];

    pub fn code(self) -> u8 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::Internal => 1,
            ExitCode::Usage => 2,
            ExitCode::InvalidRunbook => 3,
            ExitCode::UnreadableRunbook => 4,
            ExitCode::StepFailed => 5,
            ExitCode::CheckFailed => 6,
            ExitCode::WaitingForApproval => 7,
            ExitCode::Paused => 8,
            ExitCode::RollbackRequested => 9,
            ExitCode::RolledBack => 10,
            ExitCode::RollbackIncomplete => 11,
            ExitCode::Locked => 12,
            ExitCode::AuditFailed => 13,
            ExitCode::OutsideWindow => 14,
            ExitCode::Interrupted => 130,
            ExitCode::Terminated => 143,
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
            ExitCode::StepFailed => "a step failed and the run stopped",
            ExitCode::CheckFailed => "a metric or HTTP check failed and the run stopped",
            ExitCode::WaitingForApproval => {
                "the run waits for an approval or decision; resume it with the approval"
            }
            ExitCode::Paused => "the run paused; `rollout resume` continues it",
            ExitCode::RollbackRequested => {
                "a rollback is needed and was not performed (declined, or nobody to confirm it)"
            }
            ExitCode::RolledBack => "the run failed and was rolled back completely",
            ExitCode::RollbackIncomplete => {
                "a rollback did not undo everything; its report lists what is left"
            }
            ExitCode::Locked => "another rollout process holds the run's lock (it is named)",
            ExitCode::AuditFailed => {
                "the audit log failed verification (altered, cut short or unsealed)"
            }
            ExitCode::OutsideWindow => {
                "outside the runbook's change window; nothing was run (it names the next opening)"
            }
            ExitCode::Interrupted => "interrupted by Ctrl-C (SIGINT); the run is saved as paused",
            ExitCode::Terminated => "stopped by SIGTERM; the run is saved as paused",
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}
