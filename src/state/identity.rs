//! Who and where: the OS account this process runs as, the host, and the person and machine a
//! session's records name. Low in the stack, so that the journal, the locks, the gates and the
//! app read the same answer from one place.

use super::record;

/// The OS account this process runs as.
pub fn os_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// The person and machine a session's records name.
pub fn who(operator: &str, os_user: &str) -> record::Who {
    record::Who {
        operator: operator.to_string(),
        os_user: os_user.to_string(),
        host: nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default(),
        pid: std::process::id(),
    }
}
