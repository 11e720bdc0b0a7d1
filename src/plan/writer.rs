//! Writing a plan out a phase at a time, as JSON or text, byte for byte what building the whole
//! plan and then laying it out would give, without ever holding a large plan in memory.

use serde::Serialize;

use crate::inputs::Resolved;
use crate::runbook::Loaded;

use super::types::PlanPhase;
use super::{Renderer, RunInfo, StepRenderError, head, incident_rollback, render_phases};

/// How [`write`] lays out a plan.
pub enum Layout {
    /// What `serde_json::to_writer_pretty(out, &build(..)?)` writes, byte for byte.
    Json,
    /// What [`crate::ui::plan_view::render`] gives for `build(..)?`, byte for byte.
    Text { color: bool },
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
    kubectl_env: Option<&str>,
    layout: &Layout,
) -> Result<std::io::Result<()>, Vec<StepRenderError>> {
    use std::io::Write;
    let make = || Renderer::new(loaded, vars, run, kubectl_env.map(str::to_string));
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
        Layout::Text { color } => {
            let color = *color;
            write(crate::ui::plan_view::text_head(&mut head, color).as_bytes());
            let mut count = 0;
            let each = |k: usize, mut view: PlanPhase| {
                (
                    crate::ui::plan_view::text_phase(k, total, &mut view, color),
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
            write(crate::ui::plan_view::text_tail(&head, total, count, color).as_bytes());
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

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::path::Path;

    use super::*;
    use crate::plan::build;

    /// What `plan` writes, a phase at a time from two threads, is exactly what building the whole
    /// plan and then laying it out gives, in both layouts, and for a failing step, nothing.
    fn written_as_built(path: &Path) {
        use crate::runbook::model::{VarType, VarValue};
        let loaded = match crate::runbook::load(path) {
            Ok(loaded) => loaded,
            Err(crate::runbook::LoadError::Invalid(_, d)) => {
                panic!("{}: {:?}", path.display(), d.first().map(|d| &d.message))
            }
            Err(e) => panic!("{}: {e:?}", path.display()),
        };
        // A value for every variable that must be given.
        let assignments = loaded
            .runbook
            .vars
            .iter()
            .filter(|v| v.default.is_none() && v.secret.is_none())
            .map(|v| {
                let value = match (v.allowed.first(), v.ty) {
                    (Some(VarValue::String(s)), _) => s.clone(),
                    (Some(other), _) => other.to_string(),
                    (None, VarType::Integer) => "1".into(),
                    (None, VarType::Boolean) => "true".into(),
                    (None, VarType::Duration) => "1m".into(),
                    (None, _) => "test".into(),
                };
                format!("{}={value}", v.name.get_ref())
            })
            .collect();
        let inputs = crate::inputs::VarInputs {
            assignments,
            files: Vec::new(),
        };
        let resolved =
            crate::inputs::resolve(&loaded.runbook, &inputs, &|_| None).expect("variables");
        let run = RunInfo::preview("ops".into());
        // The JSON layout comes first: the text layouts escape the built plan in place.
        let mut built = build(&loaded, &resolved, &run, None);
        for (layout, name) in [
            (Layout::Json, "json"),
            (Layout::Text { color: false }, "text"),
            (Layout::Text { color: true }, "color text"),
        ] {
            let mut out = Vec::new();
            let written = write(&mut out, &loaded, &resolved, &run, None, &layout);
            match (&mut built, written) {
                (Ok(plan), Ok(Ok(()))) => {
                    let expected = match layout {
                        Layout::Json => {
                            let mut json = serde_json::to_vec_pretty(&*plan).expect("json");
                            json.push(b'\n');
                            json
                        }
                        Layout::Text { color } => {
                            crate::ui::plan_view::render(plan, color).into_bytes()
                        }
                    };
                    assert!(
                        out == expected,
                        "{name} plan of {} differs from the built plan",
                        path.display()
                    );
                }
                (Err(expected), Err(errors)) => {
                    assert!(out.is_empty(), "nothing is written when a step fails");
                    let steps = |e: &[StepRenderError]| -> Vec<String> {
                        e.iter().map(|e| e.step.clone()).collect()
                    };
                    assert_eq!(steps(&errors), steps(expected));
                }
                (b, w) => panic!(
                    "{}: built {:?}, written {:?}",
                    path.display(),
                    b.as_ref().map(|_| ()).map_err(Vec::len),
                    w.map(|_| ()).map_err(|e| e.len())
                ),
            }
        }
    }

    #[test]
    fn streamed_plans_are_the_built_plans() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("runbooks/") {
            written_as_built(&entry.expect("entry").path());
            seen += 1;
        }
        assert!(seen >= 4);
        // Captures flow from phase to phase (each thread renders every other phase), phases
        // without steps, a big enough plan to spill past what is held in memory, and steps that
        // cannot be rendered in several phases.
        let dir = tempfile::tempdir().expect("temp dir");
        let mut text = String::from(
            "[runbook]\nname = \"t\"\n[vars]\nflag = \"-x\"\nok = \"fine\"\n[defaults]\nenv = { LAST = \"{{ ok }}\" }\n",
        );
        for p in 0..40 {
            let _ = write!(text, "[[phases]]\nid = \"p{p}\"\ntitle = \"P{p}\"\n");
            if p % 7 == 3 {
                text.push_str("[[phases.steps]]\nwait = \"1s\"\n");
                continue;
            }
            for s in 0..60 {
                let _ = write!(
                    text,
                    "[[phases.steps]]\nid = \"p{p}s{s}\"\nrun = \"echo {{{{ ok }}}} {p} {s} and a long line of text to make the plan large enough\"\ncapture = \"c{p}_{s}\"\n"
                );
            }
            if p > 0 && p % 7 != 4 {
                let _ = write!(
                    text,
                    "[[phases.steps]]\nrun = \"echo {{{{ c{}_{} }}}}\"\n[[phases.rollback]]\nrun = \"undo {{{{ c{p}_1 }}}}\"\ncapture = \"r{p}\"\n[[phases.rollback]]\nrun = \"undo {{{{ r{p} }}}}\"\n",
                    p - 1,
                    if p % 7 == 0 { 0 } else { 59 }
                );
            }
        }
        let good = dir.path().join("good.toml");
        std::fs::write(&good, &text).expect("write");
        written_as_built(&good);
        let bad = dir.path().join("bad.toml");
        let failing = text
            .replace(
                "id = \"p5s7\"\nrun = \"echo",
                "id = \"p5s7\"\nrun = \"ls {{ flag }} ; echo",
            )
            .replace(
                "id = \"p30s2\"\nrun = \"echo",
                "id = \"p30s2\"\nrun = \"ls {{ flag }} ; echo",
            );
        std::fs::write(&bad, failing).expect("write");
        written_as_built(&bad);
    }
}
