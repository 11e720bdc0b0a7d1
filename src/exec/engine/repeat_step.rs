//! A `repeat` step: the checks and gates it names, evaluated again as they are now; the first
//! that does not pass decides.

use std::time::Instant;

use super::{Attempt, Engine};
use crate::state::StoreError;
use crate::state::record::StepStatus;

impl Engine<'_> {
    pub(super) async fn repeat(
        &mut self,
        steps: &[String],
        attempt: u32,
        digest: Option<&str>,
        started: Instant,
    ) -> Result<Attempt, StoreError> {
        // Evaluate each target again as it is now; the first that does not pass decides.
        let mut passed = Vec::new();
        for target in steps {
            let Some((owner, original)) = self.find_step(target) else {
                return Ok(Attempt {
                    status: StepStatus::Failed,
                    reason: Some(format!("no step `{target}` to repeat")),
                    duration: started.elapsed(),
                    ..Attempt::default()
                });
            };
            let rendered = self
                .shown
                .step(Some(owner), original)
                .and_then(|s| Ok((s, self.real.step(Some(owner), original)?)));
            let (t_shown, t_real) = match rendered {
                Ok(pair) => pair,
                Err(e) => {
                    return Ok(Attempt {
                        status: StepStatus::Failed,
                        reason: Some(format!("cannot render `{target}`: {}", e.error.message)),
                        duration: started.elapsed(),
                        ..Attempt::default()
                    });
                }
            };
            let mut inner =
                Box::pin(self.attempt(owner, original, &t_shown, &t_real, attempt, digest)).await?;
            if inner.status != StepStatus::Ok || inner.end.is_some() || inner.unfinished {
                inner.reason = Some(format!(
                    "repeat of `{target}`: {}",
                    inner.reason.unwrap_or_else(|| "did not pass".into())
                ));
                inner.capture = None;
                inner.duration = started.elapsed();
                return Ok(inner);
            }
            passed.push(format!("`{target}`"));
        }
        Ok(Attempt {
            reason: Some(format!("passed again: {}", passed.join(", "))),
            duration: started.elapsed(),
            ..Attempt::default()
        })
    }
}
