//! Notifications: a listener that turns run events into webhook messages (generic JSON, or
//! Slack-compatible `{"text": ...}`) and posts them from a task of the runtime, one after the
//! other, so a slow or dead endpoint never holds up the run. Failures come back through [`Listener::take_failures`] for
//! the journal and the terminal; a notification that fails never stops the run.
//!
//! Messages are built from events, which carry secrets masked already. Webhook URLs often embed
//! a token, so a failure names only the URL's scheme and host.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use serde_json::json;

use crate::config::{NotifyTarget, webhook_label};
use crate::exec::event::{Event, Flushing, Listener};
use crate::runbook::model::{NotifyFormat, NotifyOn};

/// How long one delivery may take.
const TIMEOUT: Duration = Duration::from_secs(5);

struct Job {
    url: String,
    body: serde_json::Value,
}

pub struct Notifier {
    targets: Vec<NotifyTarget>,
    tx: UnboundedSender<Job>,
    pending: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    run_id: String,
    runbook: String,
}

impl Notifier {
    /// A notifier posting to `targets` from a task on `runtime`.
    pub fn new(targets: Vec<NotifyTarget>, runtime: &tokio::runtime::Handle) -> Self {
        let pending = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = unbounded_channel();
        runtime.spawn(deliver(rx, pending.clone(), failures.clone()));
        Notifier {
            targets,
            tx,
            pending,
            failures,
            run_id: String::new(),
            runbook: String::new(),
        }
    }

    fn send(&mut self, kind: NotifyOn, text: &str, details: &Event) {
        for t in &self.targets {
            if !t.on.contains(&kind) {
                continue;
            }
            let body = match t.format {
                NotifyFormat::Slack => json!({ "text": format!("*rollout* · {text}") }),
                NotifyFormat::Json => json!({
                    "event": kind.name(),
                    "run_id": self.run_id,
                    "runbook": self.runbook,
                    "text": text,
                    "details": details,
                }),
            };
            self.pending.fetch_add(1, Ordering::SeqCst);
            if self
                .tx
                .send(Job {
                    url: t.url.clone(),
                    body,
                })
                .is_err()
            {
                self.pending.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

/// How long something took, as a person reads it: `0.4s`, `12.0s`, `3m12s`.
fn took(ms: u64) -> String {
    if ms < 60_000 {
        format!("{:.1}s", Duration::from_millis(ms).as_secs_f64())
    } else {
        crate::runbook::duration::Duration(Duration::from_millis(ms - ms % 1000)).to_string()
    }
}

/// The message for an event, if it is one to notify about.
fn message(n: &Notifier, e: &Event) -> Option<(NotifyOn, String)> {
    let run = format!("run {} of `{}`", n.run_id, n.runbook);
    Some(match e {
        Event::RunStarted { resumed, .. } => (
            NotifyOn::RunStarted,
            format!("{run} {}", if *resumed { "resumed" } else { "started" }),
        ),
        // A phase that stopped to wait has not finished: the message about the wait says so.
        Event::PhaseFinished { stopped: true, .. } => return None,
        Event::PhaseFinished {
            phase,
            succeeded,
            duration_ms,
            ..
        } => (
            NotifyOn::PhaseFinished,
            format!(
                "{run}: phase `{phase}` {} after {}",
                if *succeeded { "succeeded" } else { "failed" },
                took(*duration_ms)
            ),
        ),
        Event::Paused {
            reason,
            resume_with,
            waiting_for_approval: true,
        } => (
            NotifyOn::GateWaiting,
            format!("{run} is waiting for someone: {reason}. To go on, run: `{resume_with}`"),
        ),
        Event::AbortTripped { reason, .. } => (NotifyOn::Aborted, format!("{run}: {reason}")),
        Event::RollbackPlanned { reason, phases, .. } => (
            NotifyOn::Rollback,
            format!(
                "{run} rolls back {} ({reason})",
                phases
                    .iter()
                    .map(|p| p.phase.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Event::RollbackFinished {
            complete,
            not_undone,
            ..
        } => (
            NotifyOn::Rollback,
            if *complete {
                format!("{run}: rollback complete")
            } else {
                format!(
                    "{run}: rollback INCOMPLETE; not undone: {}",
                    not_undone.join("; ")
                )
            },
        ),
        Event::RunFinished {
            outcome,
            duration_ms,
            ..
        } => {
            let secs = Duration::from_millis(*duration_ms).as_secs_f64();
            let text = format!("{run}: {} after {secs:.1}s", outcome.replace('_', " "));
            let kind = if *outcome == "failed" {
                NotifyOn::Aborted
            } else {
                NotifyOn::RunFinished
            };
            (kind, text)
        }
        _ => return None,
    })
}

impl Listener for Notifier {
    fn on(&mut self, event: &Event) {
        if let Event::RunStarted { run_id, name, .. } = event {
            self.run_id.clone_from(run_id);
            self.runbook.clone_from(name);
        }
        if let Some((kind, text)) = message(self, event) {
            self.send(kind, &text, event);
            // A failed run is also a finished one.
            if let (NotifyOn::Aborted, Event::RunFinished { .. }) = (kind, event) {
                self.send(NotifyOn::RunFinished, &text, event);
            }
        }
    }

    fn take_failures(&mut self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .failures
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    fn flush(&mut self, limit: Duration) -> Flushing<'_> {
        Box::pin(async move {
            let deadline = Instant::now() + limit;
            while self.pending.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let mut failed = self.take_failures();
            let left = self.pending.load(Ordering::SeqCst);
            if left > 0 {
                failed.push(format!(
                    "{left} notification(s) still unsent after {}s; given up",
                    limit.as_secs()
                ));
            }
            failed
        })
    }
}

/// The delivery task: posts each message in turn, with a timeout, and reports failures.
async fn deliver(
    mut rx: UnboundedReceiver<Job>,
    pending: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
) {
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent(concat!("rollout/", env!("CARGO_PKG_VERSION")))
        .build();
    while let Some(job) = rx.recv().await {
        let result = match &client {
            Ok(client) => match client.post(&job.url).json(&job.body).send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("the endpoint answered {}", r.status())),
                Err(e) => Err(e.without_url().to_string()),
            },
            Err(_) => Err("cannot start an HTTP client".to_string()),
        };
        if let Err(why) = result {
            failures
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(format!(
                    "notification to {} failed: {why}",
                    webhook_label(&job.url)
                ));
        }
        pending.fetch_sub(1, Ordering::SeqCst);
    }
}
