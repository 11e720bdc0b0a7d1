//! Writing a plan out a phase at a time, as JSON or text, byte for byte what building the whole
//! plan and then laying it out would give, without ever holding a large plan in memory.

use serde::Serialize;

use crate::config::Settings;
use crate::inputs::Resolved;
use crate::runbook::Loaded;

use super::types::{Plan, PlanPhase, PlanStep};
use super::{Renderer, RunInfo, StepRenderError, head, incident_rollback, render_phases};

/// How a plan reads as text. The plan decides what is in it and in which order; the text layout
/// belongs to the terminal UI, which implements this (`ui::plan_view`). Each method escapes the
/// control characters of the texts it is given, in place, before it lays them out. `Sync`:
/// phases are laid out on the threads that render them.
pub trait TextLayout: Sync {
    /// What comes before the phases (the plan's own `phases` are not used).
    fn head(&self, plan: &mut Plan) -> String;
    /// Phase `index` (from 0) of `total`.
    fn phase(&self, index: usize, total: usize, phase: &mut PlanPhase) -> String;
    /// What comes after the phases: `total` phases with `steps` steps.
    fn tail(&self, plan: &Plan, total: usize, steps: usize) -> String;
    /// What signers of a sign-off read, without colour, one line each: the phase's title and its
    /// steps laid out as the plan shows them (or, for a step that can only be rendered when it
    /// runs, its id and why). The digest binding their signatures is taken of these lines.
    fn signed_lines(
        &self,
        title: &str,
        steps: Vec<Result<PlanStep, (String, String)>>,
    ) -> Vec<String>;
}

/// How [`write`] lays out a plan.
pub enum Layout<'t> {
    /// What `serde_json::to_writer_pretty(out, &build(..)?)` writes, byte for byte.
    Json,
    /// The layout's head, each phase and its tail, byte for byte what laying out the whole of
    /// `build(..)?` would give.
    Text(&'t dyn TextLayout),
}

/// Writes the plan, exactly as [`build`] followed by `layout` would, but never holds the whole
/// plan: a 10,000-step plan is rendered and written a phase at a time.
///
/// Each step is rendered once, on another core, while this thread writes the phases already
/// rendered. A step that cannot be rendered must stop the plan before any of it is written, so
/// what is written goes first into a [`Hold`], which lets it out only once every step has been
/// rendered (and drops it if one could not be). The hold keeps a small plan in memory and spills
/// a large one to an unnamed temporary file, which is gone when the process ends.
pub fn write<W: std::io::Write>(
    out: W,
    loaded: &Loaded,
    vars: &[Resolved],
    run: &RunInfo,
    settings: &Settings,
    layout: &Layout<'_>,
) -> Result<std::io::Result<()>, Vec<StepRenderError>> {
    use std::io::Write;
    let make = || Renderer::new(loaded, vars, run, settings);
    let mut errors = Vec::new();
    let r = make();
    let rollback = incident_rollback(&r, vars, run, &mut errors);
    // Everything but the phases, laid out as the whole plan would be.
    let mut head = head(&r, vars, Vec::new(), rollback, &mut errors);
    drop(r);
    let total = loaded.runbook.phases.len();
    let mut hold = std::io::BufWriter::with_capacity(
        64 * 1024,
        Hold {
            memory: Vec::new(),
            spill: None,
        },
    );
    let mut written = Ok(());
    let mut write = |bytes: &[u8]| {
        if written.is_ok() {
            written = hold.write_all(bytes);
        }
    };
    match layout {
        Layout::Json => {
            let whole = serde_json::to_string_pretty(&head).map_err(std::io::Error::from);
            let (before, after) = match &whole {
                // No raw line break can be inside a JSON string: this is the `phases` key.
                Ok(text) => text
                    .split_once("\n  \"phases\": []")
                    .unwrap_or((text.as_str(), "")),
                Err(_) => ("", ""),
            };
            write(before.as_bytes());
            write(b"\n  \"phases\": [");
            let mut failed_json = None;
            let mut first = true;
            // Each phase as `to_writer_pretty` lays it out inside the plan: two levels deeper.
            let each = |_: usize, view: PlanPhase| {
                let mut element = Vec::new();
                let mut json =
                    serde_json::Serializer::with_formatter(&mut element, Nested::at_depth(2));
                view.serialize(&mut json).map(|()| element)
            };
            errors.splice(
                0..0,
                render_phases(
                    loaded,
                    &make,
                    &each,
                    |element: serde_json::Result<Vec<u8>>| {
                        write(if first { b"\n    " } else { b",\n    " });
                        match element {
                            Ok(element) => write(&element),
                            Err(e) => failed_json = Some(e),
                        }
                        first = false;
                    },
                ),
            );
            write(if first { b"]" } else { b"\n  ]" });
            write(after.as_bytes());
            write(b"\n");
            if let Err(e) = whole {
                written = Err(e);
            }
            if let Some(e) = failed_json {
                written = Err(e.into());
            }
        }
        Layout::Text(text) => {
            write(text.head(&mut head).as_bytes());
            let mut count = 0;
            let each = |k: usize, mut view: PlanPhase| {
                (
                    text.phase(k, total, &mut view),
                    view.steps.len() + view.gate.len(),
                )
            };
            errors.splice(
                0..0,
                render_phases(loaded, &make, &each, |(text, steps): (String, usize)| {
                    write(text.as_bytes());
                    count += steps;
                }),
            );
            write(text.tail(&head, total, count).as_bytes());
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(written
        .and_then(|()| {
            hold.into_inner()
                .map_err(std::io::IntoInnerError::into_error)
        })
        .and_then(|hold| hold.release(out)))
}

/// `serde_json`'s pretty layout (two spaces a level) for a value written `depth` levels down
/// in a larger document: what `to_writer_pretty` of the whole document writes for it.
struct Nested {
    depth: usize,
    has_value: bool,
}

impl Nested {
    fn at_depth(depth: usize) -> Self {
        Nested {
            depth,
            has_value: false,
        }
    }

    fn newline<W: ?Sized + std::io::Write>(&self, w: &mut W, comma: bool) -> std::io::Result<()> {
        // Two spaces a level, written in one go for the usual depths.
        const SPACES: &[u8; 32] = b"                                ";
        w.write_all(if comma { b",\n" } else { b"\n" })?;
        let mut indent = 2 * self.depth;
        while indent > 0 {
            let n = indent.min(SPACES.len());
            w.write_all(&SPACES[..n])?;
            indent -= n;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for Nested {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"[")
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.newline(w, false)?;
        }
        w.write_all(b"]")
    }

    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.newline(w, !first)
    }

    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.newline(w, false)?;
        }
        w.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.newline(w, !first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// The most plan bytes a [`Hold`] keeps in memory before it spills to a temporary file.
const HOLD: usize = 256 * 1024;

/// Holds what is written until it may go out.
struct Hold {
    memory: Vec<u8>,
    /// An unnamed temporary file (see [`tempfile::tempfile`]): nothing is left on disk.
    spill: Option<std::fs::File>,
}

impl Hold {
    /// Writes out everything held, in order.
    fn release(mut self, mut out: impl std::io::Write) -> std::io::Result<()> {
        use std::io::Seek;
        if let Some(mut file) = self.spill.take() {
            file.seek(std::io::SeekFrom::Start(0))?;
            std::io::copy(&mut file, &mut out)?;
        }
        out.write_all(&self.memory)?;
        out.flush()
    }
}

impl std::io::Write for Hold {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Some(file) = &mut self.spill {
            return file.write(data);
        }
        if self.memory.len() + data.len() > HOLD {
            // Without a usable temporary directory, everything stays in memory.
            if let Ok(mut file) = tempfile::tempfile() {
                if file.write_all(&self.memory).is_ok() {
                    self.memory = Vec::new();
                    self.spill = Some(file);
                    return self.write(data);
                }
            }
        }
        self.memory.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
