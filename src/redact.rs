//! Masks the values of secret variables in everything rollout writes: the terminal, `--output
//! json`, the journal and error messages. It owns which forms of a secret are recognised — the
//! value, each line of a multi-line value, and their base64 (also wrapped across lines),
//! percent (also as the URL library writes them) and JSON-escaped encodings — and how a stream
//! of output is masked when a secret may arrive split across two reads.
//! It knows nothing of steps, events, terminals or files, and imports nothing of rollout but
//! `escape`: the executor wraps the run's listener and journal in masking ones (`exec::masking`),
//! and masks process output with a [`StreamMasker`] per pipe.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt::Write as _;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

/// What every masked secret reads as, wherever it is shown or recorded (and what a plan shows
/// for a secret's value).
pub const MASK: &str = "******";

/// Lines of a multi-line secret, and encoded forms of a secret, shorter than this many bytes
/// are not masked on their own: `}` or `ab` would mask half of every output and hide nothing.
/// The whole value of a secret is masked whatever its length.
pub const MIN_PART: usize = 4;

/// Up to this many bytes of patterns (all forms of all secrets), matching uses a DFA (about
/// 8 MiB at most); beyond, the slower but compact NFA. A 2048-bit PEM key has about 50 KiB.
const DFA_PATTERN_BYTES: usize = 16 * 1024;

/// Masks every known form of a run's secrets. Built once per session.
#[derive(Default)]
pub struct Redactor {
    /// `None` when there is nothing to mask: output then passes through untouched.
    matcher: Option<AhoCorasick>,
    /// The same patterns as a trie, to tell whether the end of a buffer may be the start of one.
    trie: Trie,
    /// Length in bytes of the longest pattern.
    longest: usize,
    /// The base64 forms again, found in text with its line breaks taken out.
    wrapped: Option<Wrapped>,
}

/// Base64 wrapped across lines (GNU `base64` breaks at 76 columns, PEM and `openssl` at 64,
/// with `\n` or `\r\n`): the base64 forms are looked for in each run of base64 characters and
/// line breaks with the breaks taken out, and a match that spans a break is masked line by line.
struct Wrapped {
    matcher: AhoCorasick,
    trie: Trie,
    longest: usize,
    shortest: usize,
}

/// Base64 forms shorter than this are not looked for across line breaks: a line ending and
/// the next line's start make up short strings of base64 characters all the time.
pub const MIN_WRAPPED: usize = 8;

/// A stretch of text to mask; `wrapped` when it spans line breaks, which are kept.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    wrapped: bool,
}

impl Redactor {
    /// A redactor for these secret values (empty values are ignored).
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Result<Self, String> {
        let secrets: Vec<&str> = secrets
            .iter()
            .map(AsRef::as_ref)
            .filter(|s| !s.is_empty())
            .collect();
        let patterns: BTreeSet<Vec<u8>> = secrets.iter().copied().flat_map(forms).collect();
        if patterns.is_empty() {
            return Ok(Self::default());
        }
        let wrapped: BTreeSet<Vec<u8>> = secrets
            .iter()
            .copied()
            .flat_map(wrapped_forms)
            .map(String::into_bytes)
            .collect();
        let wrapped = if wrapped.is_empty() {
            None
        } else {
            Some(Wrapped {
                matcher: matcher(&wrapped)?,
                trie: Trie::of(&wrapped),
                longest: wrapped.iter().map(Vec::len).max().unwrap_or(0),
                shortest: wrapped.iter().map(Vec::len).min().unwrap_or(0),
            })
        };
        Ok(Redactor {
            matcher: Some(matcher(&patterns)?),
            trie: Trie::of(&patterns),
            longest: patterns.iter().map(Vec::len).max().unwrap_or(0),
            wrapped,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// `data` with every form of every secret replaced by the mask.
    pub fn bytes<'d>(&self, data: &'d [u8]) -> Cow<'d, [u8]> {
        if self.matcher.is_none() {
            return Cow::Borrowed(data);
        }
        let spans = self.spans(data, data.len());
        if spans.is_empty() {
            return Cow::Borrowed(data);
        }
        let mut out = Vec::with_capacity(data.len());
        let done = masked(data, &spans, &mut out);
        out.extend_from_slice(&data[done..]);
        Cow::Owned(out)
    }

    /// Where `data` holds a form of a secret, in order and not overlapping, for matches that
    /// start before `limit`.
    fn spans(&self, data: &[u8], limit: usize) -> Vec<Span> {
        let mut spans = Vec::new();
        if let Some(matcher) = &self.matcher {
            for m in matcher.find_iter(data) {
                if m.start() >= limit {
                    break;
                }
                spans.push(Span {
                    start: m.start(),
                    end: m.end(),
                    wrapped: false,
                });
            }
        }
        if let Some(w) = &self.wrapped {
            let plain = spans.len();
            w.find(data, limit, &mut spans);
            if spans.len() > plain {
                spans.sort_by_key(|s| s.start);
                spans.dedup_by(|next, kept| {
                    if next.start < kept.end {
                        kept.end = kept.end.max(next.end);
                        kept.wrapped |= next.wrapped;
                        true
                    } else {
                        false
                    }
                });
            }
        }
        spans
    }

    /// `text` with every form of every secret replaced by the mask.
    pub fn text<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match self.bytes(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // Patterns are whole UTF-8 sequences, so matches start and end on char boundaries.
            Cow::Owned(b) => Cow::Owned(
                String::from_utf8(b)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
        }
    }

    /// A kept tail of output, masked whole. `cut` says the tail lost its beginning: its first
    /// bytes may be the end of a secret, which nothing could recognise, so they are dropped.
    pub fn tail<'d>(&self, tail: &'d [u8], cut: bool) -> Cow<'d, [u8]> {
        if self.is_empty() {
            return Cow::Borrowed(tail);
        }
        let from = if cut {
            self.longest.saturating_sub(1).min(tail.len())
        } else {
            0
        };
        match self.bytes(&tail[from..]) {
            Cow::Borrowed(_) if from == 0 => Cow::Borrowed(tail),
            other => Cow::Owned(other.into_owned()),
        }
    }

    pub fn mask_in_place(&self, s: &mut String) -> bool {
        let masked = match self.text(s) {
            Cow::Owned(m) => Some(m),
            Cow::Borrowed(_) => None,
        };
        if let Some(m) = masked {
            *s = m;
            true
        } else {
            false
        }
    }

    /// Masks one output stream read in pieces of any size; see [`StreamMasker`].
    pub fn stream(&self) -> StreamMasker<'_> {
        StreamMasker {
            redactor: self,
            held: Vec::new(),
        }
    }

    /// The earliest offset in `buf` from which the rest may be the start of a pattern that
    /// more data could complete (or lengthen): output from there on must wait.
    fn hold_from(&self, buf: &[u8]) -> usize {
        let window = buf.len().saturating_sub(self.longest.saturating_sub(1));
        let plain = (window..buf.len())
            .find(|&at| self.trie.starts(&buf[at..]))
            .unwrap_or(buf.len());
        match &self.wrapped {
            Some(w) => plain.min(w.hold_from(buf)),
            None => plain,
        }
    }

    /// A journal entry (any record serialised as a JSON object) with its text masked, except
    /// the fields that identify things (ids, statuses, digests) and the non-secret variables,
    /// which resume reads back as they were given.
    pub fn entry<T: serde::Serialize + serde::de::DeserializeOwned>(&self, entry: T) -> T {
        if self.is_empty() {
            return entry;
        }
        let Ok(mut value) = serde_json::to_value(&entry) else {
            return entry;
        };
        if !self.mask_json(&mut value) {
            return entry;
        }
        // Only strings of `String` fields changed, so this cannot fail.
        serde_json::from_value(value).unwrap_or(entry)
    }

    fn mask_json(&self, value: &mut serde_json::Value) -> bool {
        use serde_json::Value;
        /// Keys of identifiers and enumerations: masking them would break reading the journal.
        const KEEP: &[&str] = &[
            "type",
            "run_id",
            "runbook",
            "runbook_name",
            "digest",
            "phase",
            "step",
            "status",
            "kind",
            "outcome",
            "how",
            "verdict",
            "decision",
            "action",
            "criterion",
            "at",
            "vars",
            "phases",
            "lock_id",
            "target",
            "broken",
            "saved_as",
            "version",
            // A signed approval: its text, key and signature must stay byte for byte as signed
            // (the text shows the phase as signers saw it, secrets already masked).
            "signed",
        ];
        match value {
            Value::String(s) => self.mask_in_place(s),
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |changed, v| self.mask_json(v) | changed),
            Value::Object(fields) => fields
                .iter_mut()
                .filter(|(k, _)| !KEEP.contains(&k.as_str()))
                .fold(false, |changed, (_, v)| self.mask_json(v) | changed),
            _ => false,
        }
    }
}

/// Masks one output stream. A secret may be split across reads, so the end of what has arrived
/// is held back while it could be the start of a secret (never more than the longest pattern
/// less one byte, plus an unfinished UTF-8 character); [`StreamMasker::finish`] releases it when the
/// stream ends. Text that cannot start a secret passes at once, so live output is not delayed.
pub struct StreamMasker<'r> {
    redactor: &'r Redactor,
    held: Vec<u8>,
}

impl StreamMasker<'_> {
    /// Takes the next piece of the stream; returns what can be shown now, masked.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.redactor.is_empty() {
            return chunk.to_vec();
        }
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(chunk);
        let hold = self.redactor.hold_from(&buf);
        let mut out = Vec::with_capacity(buf.len());
        // A match that starts before `hold` cannot grow with more data (see `hold_from`).
        let spans = self.redactor.spans(&buf, hold);
        let done = masked(&buf, &spans, &mut out);
        let cut = if hold > done {
            char_boundary(&buf, done, hold)
        } else {
            done
        };
        out.extend_from_slice(&buf[done..cut]);
        buf.drain(..cut);
        self.held = buf;
        out
    }

    /// The stream ended: what was held back, masked.
    pub fn finish(&mut self) -> Vec<u8> {
        let held = std::mem::take(&mut self.held);
        self.redactor.bytes(&held).into_owned()
    }
}

/// `cut`, moved back (not below `floor`) so that `buf[..cut]` does not end inside a UTF-8
/// character: a listener turning each piece into text would otherwise show it as garbage.
fn char_boundary(buf: &[u8], floor: usize, cut: usize) -> usize {
    for back in 1..=3.min(cut - floor) {
        let b = buf[cut - back];
        if b & 0xC0 != 0x80 {
            let len = match b {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => 1,
            };
            return if len > back { cut - back } else { cut };
        }
    }
    cut
}

/// The matcher for `patterns`, leftmost-longest.
fn matcher(patterns: &BTreeSet<Vec<u8>>) -> Result<AhoCorasick, String> {
    // A DFA scans output several times faster than the default NFA on text like base64,
    // but costs about 500 bytes of memory per pattern byte: only for small pattern sets.
    let total: usize = patterns.iter().map(Vec::len).sum();
    let kind = (total <= DFA_PATTERN_BYTES).then_some(AhoCorasickKind::DFA);
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .kind(kind)
        .build(patterns)
        .map_err(|e| format!("cannot prepare the masking of secret values: {e}"))
}

/// Writes `data` up to the end of the last span to `out`, each span masked; returns where it
/// stopped. A wrapped span is masked line by line, its line breaks kept.
fn masked(data: &[u8], spans: &[Span], out: &mut Vec<u8>) -> usize {
    let mut done = 0;
    for span in spans {
        out.extend_from_slice(&data[done..span.start]);
        out.extend_from_slice(MASK.as_bytes());
        if span.wrapped {
            let inside = &data[span.start..span.end];
            for nl in memchr::memchr_iter(b'\n', inside) {
                if nl + 1 < inside.len() {
                    let cr = nl > 0 && inside[nl - 1] == b'\r';
                    out.extend_from_slice(if cr { b"\r\n" } else { b"\n" });
                    out.extend_from_slice(MASK.as_bytes());
                }
            }
        }
        done = span.end;
    }
    done
}

/// Whether `b` is a character of base64 (either alphabet, or padding).
fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'=')
}

/// The length of the line break (`\n` or `\r\n`) at `at` when it joins two runs of base64,
/// else 0. A break at the end of `data` joins when base64 precedes it (more may follow).
fn joint(data: &[u8], at: usize) -> usize {
    let len = match data.get(at..) {
        Some([b'\n', ..] | [b'\r']) => 1,
        Some([b'\r', b'\n', ..]) => 2,
        _ => return 0,
    };
    let before = at > 0 && is_base64(data[at - 1]);
    let after = data.get(at + len).is_none_or(|&b| is_base64(b));
    if before && after { len } else { 0 }
}

impl Wrapped {
    /// Adds the matches in `data` that span a line break and start before `limit`.
    fn find(&self, data: &[u8], limit: usize, spans: &mut Vec<Span>) {
        let mut joined = Vec::new();
        // Where each line of the run starts: (offset in `joined`, offset in `data`).
        let mut lines: Vec<(usize, usize)> = Vec::new();
        let mut searched = 0;
        for nl in memchr::memchr_iter(b'\n', data) {
            let brk = if nl > 0 && data[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            if brk < searched || joint(data, brk) == 0 {
                continue;
            }
            // The run: base64 before the break, then base64 and joining breaks after it.
            let start = data[..brk]
                .iter()
                .rposition(|&b| !is_base64(b))
                .map_or(0, |k| k + 1);
            if start >= limit {
                break;
            }
            // Most runs are a word at the end of a line and one at the start of the next: they
            // are measured first, and copied only when a form could fit.
            lines.clear();
            let (mut i, mut length) = (start, 0);
            loop {
                lines.push((length, i));
                let end = data[i..]
                    .iter()
                    .position(|&b| !is_base64(b))
                    .map_or(data.len(), |k| i + k);
                length += end - i;
                i = end;
                match joint(data, i) {
                    0 => break,
                    len => i += len,
                }
            }
            searched = i;
            if length < self.shortest || lines.len() < 2 {
                continue;
            }
            joined.clear();
            for (k, &(at, from)) in lines.iter().enumerate() {
                let len = lines.get(k + 1).map_or(length, |&(next, _)| next) - at;
                joined.extend_from_slice(&data[from..from + len]);
            }
            let raw = |k: usize| {
                let line = lines.partition_point(|&(j, _)| j <= k) - 1;
                lines[line].1 + (k - lines[line].0)
            };
            for m in self.matcher.find_iter(&joined) {
                let (from, to) = (raw(m.start()), raw(m.end() - 1) + 1);
                if from >= limit {
                    break;
                }
                if to - from > m.len() {
                    spans.push(Span {
                        start: from,
                        end: to,
                        wrapped: true,
                    });
                }
            }
        }
    }

    /// The earliest offset from which the end of `buf`, its line breaks taken out, may be the
    /// start of a base64 form that more data could complete.
    fn hold_from(&self, buf: &[u8]) -> usize {
        // The positions of the last base64 characters, back to a character that is neither
        // base64 nor a joining line break, at most as many as the longest form less one.
        let mut at = Vec::new();
        let mut i = buf.len();
        while i > 0 && at.len() + 1 < self.longest {
            let b = buf[i - 1];
            if is_base64(b) {
                at.push(i - 1);
                i -= 1;
            } else if b == b'\n' && i >= 2 && buf[i - 2] == b'\r' && joint(buf, i - 2) == 2 {
                i -= 2;
            } else if (b == b'\n' || b == b'\r') && joint(buf, i - 1) == 1 {
                i -= 1;
            } else {
                break;
            }
        }
        at.reverse();
        let joined: Vec<u8> = at.iter().map(|&k| buf[k]).collect();
        (0..joined.len())
            .find(|&k| self.trie.starts(&joined[k..]))
            .map_or(buf.len(), |k| at[k])
    }
}

/// A byte trie of the patterns; only asks "is this a prefix of some pattern?".
#[derive(Default)]
struct Trie {
    /// Children of each node but the root, as (byte, node index).
    nodes: Vec<Vec<(u8, u32)>>,
    /// The root's children by byte (0: none); the root is tried at every offset.
    root: Vec<u32>,
}

impl Trie {
    fn of(patterns: &BTreeSet<Vec<u8>>) -> Self {
        let mut trie = Trie::default();
        for p in patterns {
            trie.insert(p);
        }
        trie
    }

    fn insert(&mut self, pattern: &[u8]) {
        if self.root.is_empty() {
            self.root = vec![0; 256];
            // Index 0 is reserved so that 0 can mean "no child".
            self.nodes.push(Vec::new());
        }
        let Some((&first, rest)) = pattern.split_first() else {
            return;
        };
        let mut node = self.root[usize::from(first)];
        if node == 0 {
            node = self.new_node();
            self.root[usize::from(first)] = node;
        }
        for &b in rest {
            let found = self.nodes[node as usize]
                .iter()
                .find(|(c, _)| *c == b)
                .map(|&(_, n)| n);
            node = match found {
                Some(n) => n,
                None => {
                    let n = self.new_node();
                    self.nodes[node as usize].push((b, n));
                    n
                }
            };
        }
    }

    fn new_node(&mut self) -> u32 {
        self.nodes.push(Vec::new());
        u32::try_from(self.nodes.len() - 1).unwrap_or(u32::MAX)
    }

    /// Whether `text` is the start of (or all of) some pattern.
    fn starts(&self, text: &[u8]) -> bool {
        let Some((&first, rest)) = text.split_first() else {
            return false;
        };
        let Some(&node) = self.root.get(usize::from(first)) else {
            return false;
        };
        if node == 0 {
            return false;
        }
        let mut node = node as usize;
        for &b in rest {
            match self.nodes[node].iter().find(|(c, _)| *c == b) {
                Some(&(_, next)) => node = next as usize,
                None => return false,
            }
        }
        true
    }
}

/// The value and, for a multi-line value, each line long enough to mask on its own.
fn units(secret: &str) -> Vec<&str> {
    let mut units = vec![secret];
    if secret.contains('\n') {
        units.extend(
            secret
                .lines()
                .filter(|l| l.trim().len() >= MIN_PART)
                .filter(|l| *l != secret),
        );
    }
    units
}

/// The base64 forms of each unit of `secret` (standard and URL-safe, at each of the three byte
/// offsets), as they can appear inside a longer encoded text.
fn base64_forms(unit: &str) -> Vec<String> {
    let mut encoded = Vec::new();
    for alphabet in [STANDARD, URL_SAFE] {
        for offset in 0..3 {
            encoded.push(base64_at(unit.as_bytes(), offset, alphabet));
        }
    }
    encoded
}

/// The base64 forms of `secret` that are also looked for across line breaks.
pub fn wrapped_forms(secret: &str) -> Vec<String> {
    units(secret)
        .into_iter()
        .flat_map(base64_forms)
        .filter(|e| e.len() >= MIN_WRAPPED)
        .collect()
}

/// `text` as the URL library (the one the HTTP client parses URLs with) writes it in each part
/// of a URL: path, query (of an `http` URL and of another scheme), fragment, user name,
/// password, and a form-encoded query value. It escapes a different set of characters in each.
fn url_forms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for base in ["http://h/", "x://h/"] {
        let Ok(mut url) = url::Url::parse(base) else {
            continue;
        };
        url.set_path(&format!("/{text}"));
        out.push(url.path().trim_start_matches('/').to_string());
        url.set_query(Some(text));
        out.extend(url.query().map(String::from));
        url.set_fragment(Some(text));
        out.extend(url.fragment().map(String::from));
        if url.set_username(text).is_ok() {
            out.push(url.username().to_string());
        }
        if url.set_password(Some(text)).is_ok() {
            out.extend(url.password().map(String::from));
        }
        url.set_query(None);
        url.query_pairs_mut().append_pair("q", text);
        out.extend(
            url.query()
                .and_then(|q| q.strip_prefix("q="))
                .map(String::from),
        );
    }
    out
}

/// Every form of `secret` that is masked: the value; each line of a multi-line value; and the
/// base64 (standard and URL-safe, at each of the three byte offsets), percent (common
/// variants, and the URL library's own) and JSON-escaped encodings of each of these. Forms
/// shorter than [`MIN_PART`] are left out, except the value.
pub fn forms(secret: &str) -> Vec<Vec<u8>> {
    let mut out = BTreeSet::new();
    out.insert(secret.as_bytes().to_vec());
    for unit in units(secret) {
        let mut encoded = base64_forms(unit);
        for keep in ["", "/", "!'()*", ":/?#[]@!$&'()*+,;="] {
            for plus in [false, true] {
                for upper in [true, false] {
                    encoded.push(percent(unit, keep, plus, upper));
                }
            }
        }
        encoded.extend(url_forms(unit));
        // As the text views show it: control characters escaped.
        encoded.push(crate::escape::text(unit).into_owned());
        for ascii in [false, true] {
            for upper in [false, true] {
                for slash in [false, true] {
                    encoded.push(json_escaped(unit, ascii, upper, slash));
                }
            }
        }
        out.insert(unit.as_bytes().to_vec());
        out.extend(
            encoded
                .into_iter()
                .filter(|e| e.len() >= MIN_PART)
                .map(String::into_bytes),
        );
    }
    out.into_iter().collect()
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The base64 characters that depend only on `bytes` when they sit `offset` (0, 1 or 2) bytes
/// into a 3-byte group of a longer text: the characters whose 6 bits all come from `bytes`.
fn base64_at(bytes: &[u8], offset: usize, alphabet: &[u8; 64]) -> String {
    let mut data = vec![0_u8; offset];
    data.extend_from_slice(bytes);
    let first = (8 * offset).div_ceil(6);
    let end = 8 * data.len() / 6;
    let mut out = String::new();
    for i in first..end {
        let bit = 6 * i;
        let (byte, shift) = (bit / 8, bit % 8);
        let pair =
            (u16::from(data[byte]) << 8) | u16::from(data.get(byte + 1).copied().unwrap_or(0));
        let sextet = (pair >> (10 - shift)) & 0x3F;
        out.push(char::from(alphabet[usize::from(sextet)]));
    }
    out
}

/// Percent-encoding: unreserved characters and those in `keep` as they are, space as `+` when
/// `plus`, every other byte as `%XX` in upper or lower case hex.
fn percent(text: &str, keep: &str, plus: bool, upper: bool) -> String {
    let mut out = String::new();
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.as_bytes().contains(&b) {
            out.push(char::from(b));
        } else if b == b' ' && plus {
            out.push('+');
        } else if upper {
            let _ = write!(out, "%{b:02X}");
        } else {
            let _ = write!(out, "%{b:02x}");
        }
    }
    out
}

/// The text inside a JSON string: as `serde_json` writes it (`ascii` false, lower-case hex), as
/// Python's `json.dumps` does (`ascii` true), and the variants with upper-case hex or `\/`.
fn json_escaped(text: &str, ascii: bool, upper: bool, slash: bool) -> String {
    let mut out = String::new();
    let unicode = |out: &mut String, unit: u16| {
        if upper {
            let _ = write!(out, "\\u{unit:04X}");
        } else {
            let _ = write!(out, "\\u{unit:04x}");
        }
    };
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if slash => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < ' ' || (ascii && c == '\u{7f}') => {
                unicode(&mut out, u16::try_from(u32::from(c)).unwrap_or_default());
            }
            c if ascii && !c.is_ascii() => {
                let mut units = [0_u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    unicode(&mut out, *unit);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// A writer that masks what goes through it, for output written in pieces (a streamed plan).
/// `flush` ends the stream: call it once, at the end.
pub struct MaskedWriter<'r, W: std::io::Write> {
    inner: W,
    stream: StreamMasker<'r>,
}

impl<'r, W: std::io::Write> MaskedWriter<'r, W> {
    pub fn new(inner: W, redactor: &'r Redactor) -> Self {
        MaskedWriter {
            inner,
            stream: redactor.stream(),
        }
    }
}

impl<W: std::io::Write> std::io::Write for MaskedWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.stream.redactor.is_empty() {
            return self.inner.write(buf);
        }
        let shown = self.stream.push(buf);
        self.inner.write_all(&shown)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let rest = self.stream.finish();
        self.inner.write_all(&rest)?;
        self.inner.flush()
    }
}

/// Whether a capture read back from the journal was masked when it was recorded: its real
/// value is gone, and a step using it cannot run as written.
pub fn was_masked(capture: &str) -> bool {
    capture.contains(MASK)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "s3cr3t-CANARY-7f/+= \"q\"\\é";

    fn pem() -> String {
        let mut s = String::from("-----BEGIN PRIVATE KEY-----\n");
        for i in 0..4 {
            let _ = writeln!(
                s,
                "MIIEv{i}QIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7{i}x+/"
            );
        }
        s.push_str("ab\n-----END PRIVATE KEY-----");
        s
    }

    fn redactor() -> Redactor {
        Redactor::new(&[CANARY.to_string(), pem()]).unwrap()
    }

    /// Plain base64 of `data`, with padding.
    fn b64(data: &[u8], alphabet: &[u8; 64]) -> String {
        let mut s = base64_at(data, 0, alphabet);
        // Characters of a final partial group (they mix in the padding's zero bits).
        let bits = 8 * data.len();
        if bits % 6 != 0 {
            let last = u16::from(data[data.len() - 1]);
            let shift = 6 - bits % 6;
            s.push(char::from(alphabet[usize::from((last << shift) & 0x3F)]));
        }
        while s.len() % 4 != 0 {
            s.push('=');
        }
        s
    }

    #[test]
    fn base64_matches_a_reference_encoder() {
        assert_eq!(b64(b"", STANDARD), "");
        assert_eq!(b64(b"f", STANDARD), "Zg==");
        assert_eq!(b64(b"fo", STANDARD), "Zm8=");
        assert_eq!(b64(b"foo", STANDARD), "Zm9v");
        assert_eq!(b64(b"foob", STANDARD), "Zm9vYg==");
        assert_eq!(b64(b"\xfb\xff", STANDARD), "+/8=");
        assert_eq!(b64(b"\xfb\xff", URL_SAFE), "-_8=");
    }

    #[test]
    fn base64_at_every_offset_with_any_surroundings_is_masked() {
        let r = redactor();
        let secrets = [CANARY.to_string(), pem()];
        for secret in &secrets {
            for alphabet in [STANDARD, URL_SAFE] {
                for before in 0..6 {
                    for after in 0..4 {
                        let mut data: Vec<u8> = (0..before).map(|i| b"xyz\x01\xff!"[i]).collect();
                        data.extend_from_slice(secret.as_bytes());
                        data.extend((0..after).map(|i| b"\x80ab\x7f"[i]));
                        let encoded = b64(&data, alphabet);
                        let masked = r.text(&encoded).into_owned();
                        let clean = encoded.trim_end_matches('=');
                        let stripped = r.text(clean).into_owned();
                        for shown in [&masked, &stripped] {
                            assert_eq!(shown.matches(MASK).count(), 1, "{encoded} -> {shown}");
                        }
                        // Nothing of the secret's own characters is left.
                        let determined = base64_at(secret.as_bytes(), before % 3, alphabet);
                        assert!(!masked.contains(&determined));
                    }
                }
            }
        }
    }

    fn wrap(text: &str, width: usize, eol: &str) -> String {
        let mut out = String::new();
        for (i, c) in text.chars().enumerate() {
            if i > 0 && i % width == 0 {
                out.push_str(eol);
            }
            out.push(c);
        }
        out.push_str(eol);
        out
    }

    #[test]
    fn wrapped_base64_is_masked_at_every_column_offset_and_line_ending() {
        let token: String = (0..80)
            .map(|i| char::from(b"aZ3+/k9Qx_-"[i % 11]))
            .collect();
        let r = Redactor::new(&[token.as_str()]).unwrap();
        let determined: Vec<String> = base64_forms(&token);
        for (width, eol) in [(76, "\n"), (76, "\r\n"), (64, "\n"), (64, "\r\n")] {
            for before in 0..width + 3 {
                let data: Vec<u8> = (0..before)
                    .map(|i| b"xyz\x01\xff!"[i % 6])
                    .chain(token.bytes())
                    .chain(*b"tail")
                    .collect();
                let encoded = wrap(&b64(&data, STANDARD), width, eol);
                let shown = r.text(&encoded).into_owned();
                let joined: String = shown.split(eol).collect();
                assert!(shown.contains(MASK), "{encoded} -> {shown}");
                for d in &determined {
                    assert!(!joined.contains(d.as_str()), "{encoded} -> {shown}");
                }
                // Every line of the encoding that holds part of the token shows a mask.
                assert_eq!(
                    shown.matches(eol).count(),
                    encoded.matches(eol).count(),
                    "the line breaks are kept: {shown}"
                );
                if before % 7 == 0 {
                    for cut in (0..encoded.len()).step_by(13) {
                        assert_eq!(
                            String::from_utf8(streamed(&r, encoded.as_bytes(), &[cut])).unwrap(),
                            shown,
                            "cut at {cut}"
                        );
                    }
                    let every: Vec<usize> = (1..encoded.len()).collect();
                    assert_eq!(
                        String::from_utf8(streamed(&r, encoded.as_bytes(), &every)).unwrap(),
                        shown,
                        "byte by byte"
                    );
                }
            }
        }
    }

    #[test]
    fn ordinary_lines_are_not_joined_into_secrets() {
        let r = Redactor::new(&["hunter2-hunter2"]).unwrap();
        let text = "aHVudGVy\nMi1odW50ZXIy but not as one\nline\n";
        // `aHVudGVyMi1odW50ZXIy` is the token's base64: across a break it is masked.
        assert_eq!(
            r.text(text),
            format!("{MASK}\n{MASK} but not as one\nline\n")
        );
        let plain = "done\nok\nall good\n";
        assert!(matches!(r.text(plain), Cow::Borrowed(_)));
    }

    #[test]
    fn the_url_librarys_encodings_are_masked() {
        let secret = "ab\\cd%20ef gh'\"<é>";
        let r = Redactor::new(&[secret]).unwrap();
        let mut url = url::Url::parse("http://127.0.0.1:9/health").unwrap();
        url.set_query(Some(&format!("token={secret}")));
        let _ = url.set_password(Some(secret));
        let _ = url.set_username(secret);
        url.set_fragment(Some(secret));
        let shown = r.text(url.as_str()).into_owned();
        assert_eq!(shown.matches(MASK).count(), 4, "{url} -> {shown}");
        let mut path = url::Url::parse("http://h/").unwrap();
        path.set_path(&format!("/api/{secret}/x"));
        assert_eq!(r.text(path.as_str()), format!("http://h/api/{MASK}/x"));
        let form = url::Url::parse_with_params("http://h/q", &[("query", secret)]).unwrap();
        assert_eq!(r.text(form.as_str()), format!("http://h/q?query={MASK}"));
    }

    #[test]
    fn percent_and_json_forms_are_masked() {
        let r = redactor();
        let python_quote = "s3cr3t-CANARY-7f/%2B%3D%20%22q%22%5C%C3%A9";
        let lower = python_quote.to_lowercase().replace("canary", "CANARY");
        let plus = "s3cr3t-CANARY-7f%2F%2B%3D+%22q%22%5C%C3%A9";
        let serde = serde_json::to_string(CANARY).unwrap();
        let python = r#""s3cr3t-CANARY-7f/+= \"q\"\\\u00e9""#;
        for text in [python_quote, &lower, plus, &serde, python] {
            let masked = r.text(text);
            assert_eq!(masked.matches(MASK).count(), 1, "{text} -> {masked}");
            assert!(!masked.contains("CANARY"), "{text} -> {masked}");
        }
        let pem_json = serde_json::to_string(&pem()).unwrap();
        assert_eq!(r.text(&pem_json), format!("\"{MASK}\""));
    }

    #[test]
    fn each_line_of_a_multi_line_secret_is_masked_but_short_lines_are_not() {
        let r = redactor();
        let pem = pem();
        assert_eq!(r.text(&format!("key:\n{pem}\n")), format!("key:\n{MASK}\n"));
        for line in pem.lines() {
            let masked = r.text(&format!("<{line}>")).into_owned();
            if line.len() >= MIN_PART {
                assert_eq!(masked, format!("<{MASK}>"));
            } else {
                assert_eq!(masked, format!("<{line}>"));
            }
        }
        // A line printed with a different ending, or reflowed into one line.
        let joined: String = pem.lines().collect();
        assert!(!r.text(&joined).contains("MIIEv"));
    }

    #[test]
    fn a_short_secret_is_masked_but_not_its_short_encodings() {
        let r = Redactor::new(&["ab"]).unwrap();
        assert_eq!(r.text("cab"), format!("c{MASK}"));
        assert_eq!(r.text("YW"), "YW");
        assert!(Redactor::new(&[""]).unwrap().is_empty());
        assert!(Redactor::new::<&str>(&[]).unwrap().is_empty());
    }

    fn streamed(r: &Redactor, data: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut s = r.stream();
        let mut out = Vec::new();
        let mut from = 0;
        for &cut in cuts {
            out.extend(s.push(&data[from..cut]));
            from = cut;
        }
        out.extend(s.push(&data[from..]));
        out.extend(s.finish());
        out
    }

    #[test]
    fn a_secret_split_across_reads_at_any_position_is_masked() {
        let r = redactor();
        let pem = pem();
        let b64_canary = b64(format!("xy{CANARY}").as_bytes(), STANDARD);
        let samples = [
            format!("before {CANARY} after\n"),
            CANARY.to_string(),
            format!("a{CANARY}{CANARY}b"),
            format!("key:\n{pem}\nend é"),
            format!("token={b64_canary}\n"),
            format!("{}\n", serde_json::to_string(CANARY).unwrap()),
        ];
        for sample in &samples {
            let data = sample.as_bytes();
            let whole = r.bytes(data).into_owned();
            assert!(!String::from_utf8_lossy(&whole).contains("CANARY"));
            for cut in 0..=data.len() {
                assert_eq!(streamed(&r, data, &[cut]), whole, "cut at {cut}: {sample}");
            }
            for a in (0..=data.len()).step_by(3) {
                for b in (a..=data.len()).step_by(7) {
                    assert_eq!(streamed(&r, data, &[a, b]), whole, "cuts {a},{b}");
                }
            }
            let every: Vec<usize> = (1..data.len()).collect();
            assert_eq!(streamed(&r, data, &every), whole, "byte by byte");
        }
    }

    #[test]
    fn text_that_cannot_start_a_secret_is_not_held_back() {
        let r = redactor();
        let mut s = r.stream();
        assert_eq!(s.push(b"hello world\n"), b"hello world\n");
        // `s3c` may be the start of the canary: held until the stream says otherwise.
        assert_eq!(s.push(b"ok s3c"), b"ok ");
        assert_eq!(s.push(b"ond\n"), b"s3cond\n");
        // An unfinished UTF-8 character waits for its last byte.
        assert_eq!(s.push(&"é".as_bytes()[..1]), b"");
        assert_eq!(s.push(&"é".as_bytes()[1..]), "é".as_bytes());
        assert_eq!(s.push(b"s3cr3t"), b"");
        assert_eq!(s.finish(), b"s3cr3t");
    }

    #[test]
    fn a_masked_writer_masks_across_writes_and_flushes_the_rest() {
        use std::io::Write as _;
        let r = redactor();
        let mut out = Vec::new();
        let mut w = MaskedWriter::new(&mut out, &r);
        for piece in ["a s3c", "r3t-CAN", "ARY-7f/+= \"q\"\\é tail s3"] {
            w.write_all(piece.as_bytes()).unwrap();
        }
        w.flush().unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), format!("a {MASK} tail s3"));
    }

    #[test]
    fn a_cut_tail_drops_what_may_be_the_end_of_a_secret() {
        let r = redactor();
        let pem = pem();
        let tail = &pem.as_bytes()[10..];
        let kept = r.tail(tail, true);
        assert!(kept.len() < tail.len());
        assert!(!String::from_utf8_lossy(&kept).contains("KEY-----\nMIIEv0"));
        assert_eq!(r.tail(pem.as_bytes(), false).as_ref(), MASK.as_bytes());
    }

    #[test]
    fn a_large_secret_uses_the_compact_matcher_and_is_still_masked() {
        let mut key = String::from("-----BEGIN RSA PRIVATE KEY-----\n");
        for i in 0..40_u32 {
            let _ = writeln!(key, "{:064}", u128::from(i) * 7_919_000_000_000_000_017);
        }
        key.push_str("-----END RSA PRIVATE KEY-----");
        let total: usize = forms(&key).iter().map(Vec::len).sum();
        assert!(total > DFA_PATTERN_BYTES, "{total}");
        let r = Redactor::new(&[key.as_str()]).unwrap();
        let text = format!("a\n{key}\n{}\n", b64(key.as_bytes(), URL_SAFE));
        let whole = r.bytes(text.as_bytes()).into_owned();
        let shown = String::from_utf8_lossy(&whole).into_owned();
        assert!(shown.starts_with(&format!("a\n{MASK}\n{MASK}")), "{shown}");
        assert!(shown.len() < 24, "{shown}");
        for cut in (0..text.len()).step_by(97) {
            assert_eq!(streamed(&r, text.as_bytes(), &[cut]), whole, "cut at {cut}");
        }
    }

    #[test]
    fn no_secrets_passes_output_through() {
        let r = Redactor::default();
        let mut s = r.stream();
        assert_eq!(s.push(&[0xC3]), [0xC3]);
        assert!(s.finish().is_empty());
        assert!(matches!(r.text("x"), Cow::Borrowed("x")));
    }
}
