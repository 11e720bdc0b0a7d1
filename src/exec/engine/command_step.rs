//! A `run` or `kubectl` step: its process started with the run's environment, its output
//! streamed (masked) to the listener, its result, tail and capture recorded. "Starting" is
//! written to the journal before the process starts.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Attempt, Engine, RunEnd, display_lines};
use crate::exec::abort::Watch;
use crate::exec::event::{Event, OutputStream};
use crate::exec::process::{self, Outcome, ProcessSpec, Stream};
use crate::plan::{Action, PlanStep};
use crate::runbook::model::{Phase, Step};
use crate::state::record::StepStatus;
use crate::state::{Entry, StoreError};

const RECORD_TAIL: usize = 4096;

impl Engine<'_> {
    /// Runs `argv` (with the step's own `env`), the command of `real`.
    pub(super) async fn command(
        &mut self,
        phase: &Phase,
        step: &Step,
        shown: &PlanStep,
        real: &PlanStep,
        (argv, env): (&[String], &BTreeMap<String, String>),
        attempt: u32,
    ) -> Result<Attempt, StoreError> {
        let phase_id = phase.id.get_ref().clone();
        let id = step.id.get_ref().clone();
        let workdir = workdir_of(&real.action)
            .unwrap_or_else(|| crate::plan::runbook_dir(&self.loaded.source.path));
        let mut full_env: BTreeMap<String, String> = self.exported_env.iter().cloned().collect();
        full_env.insert("ROLLOUT_RUN_ID".into(), self.run_id.clone());
        full_env.insert("ROLLOUT_PHASE".into(), phase_id.clone());
        full_env.insert("ROLLOUT_STEP".into(), id.clone());
        full_env.extend(env.clone());
        let spec = ProcessSpec {
            argv: argv.to_vec(),
            // The shell, looked up once; kubectl, which a step may install, every time.
            lookup_once: matches!(real.action, Action::Run { .. }),
            env: full_env,
            workdir,
            timeout: real.timeout.map_or(Duration::from_secs(1800), |t| t.0),
            grace: self.options.grace,
            capture_stdout: step.capture.is_some(),
            stdin_null: true,
            warden: self.warden.clone(),
        };
        let command = display_lines(&shown.action)
            .iter()
            .map(|l| self.redact(l))
            .collect();
        self.record(Entry::StepStarted {
            phase: phase_id,
            step: id.clone(),
            attempt,
            command,
        })
        .await?;
        let cancel = self.fresh_step_cancel();
        let listener = &mut *self.listener;
        // A secret may be split across reads: each stream holds back what could be the
        // start of one until the next read or the end of the stream.
        let (mut out, mut err) = (self.redactor.stream(), self.redactor.stream());
        let mut on_output = |stream: Stream, data: &[u8]| {
            let (stream, data) = match stream {
                Stream::Stdout => (OutputStream::Stdout, out.push(data)),
                Stream::Stderr => (OutputStream::Stderr, err.push(data)),
            };
            if !data.is_empty() {
                listener.on(&Event::Output {
                    step: id.clone(),
                    stream,
                    data,
                });
            }
        };
        let finished = process::run(&spec, &cancel, &mut on_output).await;
        for (stream, data) in [
            (OutputStream::Stdout, out.finish()),
            (OutputStream::Stderr, err.finish()),
        ] {
            if !data.is_empty() {
                self.listener.on(&Event::Output {
                    step: id.clone(),
                    stream,
                    data,
                });
            }
        }
        // Each stream's kept tail is masked whole before it is cut to what is recorded.
        let full = |t: &[u8]| t.len() >= process::TAIL_BYTES;
        let tail = self.redact(&tail_text(
            &self
                .redactor
                .tail(&finished.stdout_tail, full(&finished.stdout_tail)),
            &self
                .redactor
                .tail(&finished.stderr_tail, full(&finished.stderr_tail)),
        ));
        let mut a = Attempt {
            status: StepStatus::Ok,
            exit_code: None,
            reason: None,
            tail: Some(tail),
            capture: None,
            end: None,
            duration: finished.duration,
            unfinished: false,
        };
        match finished.outcome {
            Outcome::Exited(0) => {}
            Outcome::Exited(code) => {
                a.status = StepStatus::Failed;
                a.exit_code = Some(code);
                a.reason = Some(format!("exited with code {code}"));
            }
            Outcome::Signaled(sig) => {
                a.status = StepStatus::Failed;
                a.exit_code = Some(128 + sig);
                a.reason = Some(format!("killed by signal {sig}"));
            }
            Outcome::TimedOut => {
                a.status = StepStatus::TimedOut;
                a.reason = Some(format!(
                    "timed out after {}",
                    real.timeout.map(|t| t.to_string()).unwrap_or_default()
                ));
            }
            Outcome::Interrupted if self.interrupts.pending().is_none() => {
                // Not a signal: an abort criterion tripped. The phase loop applies it.
                let why = self
                    .abort_watch
                    .as_ref()
                    .and_then(Watch::tripped)
                    .map_or_else(|| "stopped".to_string(), |t| t.reason);
                a.status = StepStatus::Failed;
                a.reason = Some(format!("stopped: {why}"));
                a.end = Some(RunEnd::Failed {
                    step: id.clone(),
                    reason: why,
                    check: true,
                });
            }
            Outcome::Interrupted => {
                a.status = StepStatus::Interrupted;
                a.end = Some(RunEnd::Interrupted {
                    signal: self.interrupts.pending().unwrap_or(2),
                });
            }
            Outcome::FailedToStart(why) => {
                a.status = StepStatus::Failed;
                a.reason = Some(why);
            }
        }
        if a.status == StepStatus::Ok {
            if let (Some(name), Some(captured)) = (&step.capture, finished.captured) {
                match captured.and_then(capture_text) {
                    Ok(v) => a.capture = Some((name.get_ref().clone(), v)),
                    Err(why) => {
                        a.status = StepStatus::Failed;
                        a.reason = Some(format!("cannot capture the output: {why}"));
                    }
                }
            }
        }
        Ok(a)
    }
}

fn workdir_of(action: &Action) -> Option<std::path::PathBuf> {
    match action {
        Action::Run { workdir, .. } => Some(workdir.clone()),
        _ => None,
    }
}

fn tail_text(stdout: &[u8], stderr: &[u8]) -> String {
    let cut = |b: &[u8]| {
        String::from_utf8_lossy(&b[b.len().saturating_sub(RECORD_TAIL / 2)..]).into_owned()
    };
    let mut out = String::new();
    if !stdout.is_empty() {
        out.push_str(&cut(stdout));
    }
    if !stderr.is_empty() {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&cut(stderr));
    }
    out
}

/// What a step captured, as text: UTF-8 without NUL, without its trailing line break.
pub(super) fn capture_text(bytes: Vec<u8>) -> Result<String, String> {
    let text = String::from_utf8(bytes).map_err(|_| "the output is not UTF-8 text".to_string())?;
    if text.contains('\0') {
        return Err("the output contains a NUL byte".into());
    }
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}
