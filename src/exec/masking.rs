//! The run's listener and journal, seeing everything with the secrets' values masked: the
//! session wraps them in [`MaskedListener`] and [`MaskedJournal`], so neither the terminal, the
//! notifications nor the journal ever hold a secret. What counts as a secret's form, and how a
//! text is masked, is [`crate::redact`]'s.

use std::sync::Arc;

use crate::exec::event::{Event, Flushing, Listener};
use crate::redact::Redactor;
use crate::state::record::Envelope;
use crate::state::{Entry, Fence, Journal, Record, StoreFuture};

/// A copy of `event` with its text masked.
pub fn masked_event(redactor: &Redactor, event: &Event) -> Event {
    let mut e = event.clone();
    e.texts_mut(&mut |s| {
        redactor.mask_in_place(s);
    });
    e
}

/// The run's listener, seeing events with their text masked.
pub struct MaskedListener<'l> {
    inner: &'l mut dyn Listener,
    redactor: Arc<Redactor>,
}

impl<'l> MaskedListener<'l> {
    pub fn new(inner: &'l mut dyn Listener, redactor: Arc<Redactor>) -> Self {
        MaskedListener { inner, redactor }
    }
}

impl Listener for MaskedListener<'_> {
    fn on(&mut self, event: &Event) {
        if self.redactor.is_empty() || matches!(event, Event::Output { .. }) {
            self.inner.on(event);
        } else {
            let masked = masked_event(&self.redactor, event);
            self.inner.on(&masked);
        }
    }
    fn take_failures(&mut self) -> Vec<String> {
        let failures = self.inner.take_failures();
        failures
            .iter()
            .map(|f| self.redactor.text(f).into_owned())
            .collect()
    }
    fn flush(&mut self, limit: std::time::Duration) -> Flushing<'_> {
        Box::pin(async move {
            let failures = self.inner.flush(limit).await;
            failures
                .iter()
                .map(|f| self.redactor.text(f).into_owned())
                .collect()
        })
    }
}

/// The run's journal, recording entries with their text masked: secrets are never at rest.
pub struct MaskedJournal {
    inner: Box<dyn Journal>,
    redactor: Arc<Redactor>,
}

impl MaskedJournal {
    pub fn new(inner: Box<dyn Journal>, redactor: Arc<Redactor>) -> Self {
        MaskedJournal { inner, redactor }
    }
}

impl Journal for MaskedJournal {
    fn append(&mut self, entry: Entry) -> StoreFuture<'_, Record> {
        let masked = self.redactor.entry(entry);
        self.inner.append(masked)
    }
    fn seal(&mut self) -> StoreFuture<'_, Record> {
        self.inner.seal()
    }
    fn set_envelope(&mut self, envelope: Envelope) {
        self.inner.set_envelope(envelope);
    }
    fn location(&self) -> String {
        self.inner.location()
    }
    fn fence(&self) -> Option<Fence> {
        self.inner.fence()
    }
    fn approvals(&self) -> StoreFuture<'_, Vec<Result<crate::state::approval::Delivered, String>>> {
        self.inner.approvals()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::MASK;
    use crate::state::record::StepStatus;

    #[test]
    fn journal_entries_keep_their_identifiers() {
        let r = Redactor::new(&["deploy"]).unwrap();
        let entry = Entry::StepFinished {
            phase: "deploy".into(),
            step: "deploy".into(),
            attempt: 1,
            status: StepStatus::Failed,
            exit_code: Some(1),
            duration_ms: 3,
            reason: Some("deploy failed".into()),
            output_tail: Some("no deploy\n".into()),
            capture: Some(("out".into(), "deploy".into())),
            location: None,
        };
        let Entry::StepFinished {
            phase,
            step,
            reason,
            output_tail,
            capture,
            ..
        } = r.entry(entry)
        else {
            panic!("the entry changed kind");
        };
        assert_eq!((phase.as_str(), step.as_str()), ("deploy", "deploy"));
        assert_eq!(reason.as_deref(), Some("****** failed"));
        assert_eq!(output_tail.as_deref(), Some("no ******\n"));
        assert_eq!(capture, Some(("out".into(), MASK.into())));
    }
}
