//! The hash chain that makes a run's journal a tamper-evident audit log, and its verifier.
//!
//! Each record is one JSON line whose last member is `"hash":"sha256:<hex>"`: the SHA-256 of
//! the line's bytes up to (not including) `,"hash":`, closed with `}`. Those bytes include
//! `prev`, the previous record's hash, so each record vouches for everything before it. A
//! `sealed` record closes each session's stretch; the hash of the last seal is the digest to
//! publish elsewhere (a ticket, a chat message): a log rewritten end to end no longer matches it.
//!
//! Nothing here does I/O: the file backend writes lines made by [`encode`], and
//! [`verify`] reads bytes from wherever they came from.

use super::record::{Entry, Opening, Record};

/// `prev` of the first record.
pub const GENESIS: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

const HASH_KEY: &[u8] = b",\"hash\":\"";

pub fn sha256(bytes: &[u8]) -> String {
    crate::runbook::source::digest_of(bytes)
}

/// The journal line for `record` (whose `prev` is set and `hash` empty), ending in `\n`, and
/// the record's hash.
pub fn encode(record: &Record) -> Result<(Vec<u8>, String), serde_json::Error> {
    debug_assert!(record.hash.is_empty());
    let mut line = serde_json::to_vec(record)?;
    let hash = sha256(&line);
    line.pop(); // the closing `}`
    line.extend_from_slice(HASH_KEY);
    line.extend_from_slice(hash.as_bytes());
    line.extend_from_slice(b"\"}\n");
    Ok((line, hash))
}

/// The hash a line claims and the hash of its content; `None` when the line has no hash member
/// at its end.
fn hashes(line: &[u8]) -> Option<(&str, String)> {
    let at = line.windows(HASH_KEY.len()).rposition(|w| w == HASH_KEY)?;
    let claimed = line.get(at + HASH_KEY.len()..line.len().checked_sub(2)?)?;
    if !line.ends_with(b"\"}") {
        return None;
    }
    let claimed = std::str::from_utf8(claimed).ok()?;
    let mut content = line[..at].to_vec();
    content.push(b'}');
    Some((claimed, sha256(&content)))
}

/// The first thing wrong with a log, by the line it is on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The line is not a complete record of this format.
    Damaged { line: usize, detail: String },
    /// The line's content does not match its own hash: it was edited.
    Edited { line: usize, seq: u64 },
    /// The line holds a record already seen.
    Duplicated {
        line: usize,
        seq: u64,
        first_line: usize,
    },
    /// The line holds a later record than expected: records are missing here.
    Missing {
        line: usize,
        expected: u64,
        found: u64,
    },
    /// The line holds a record that belongs elsewhere: records were moved.
    Reordered {
        line: usize,
        expected: u64,
        found: u64,
    },
    /// The line's `prev` is not the hash of the line before: a record was inserted or
    /// replaced before it.
    Unchained { line: usize, seq: u64 },
    /// The line follows a seal but does not begin a session naming it: rollout never writes
    /// that, so the record was added after the log was sealed.
    Appended { line: usize, seq: u64, seal: u64 },
    /// The line begins a session but names another seal than the last one before it.
    Misnamed { line: usize, seq: u64 },
}

impl Fault {
    pub fn line(&self) -> usize {
        match self {
            Fault::Damaged { line, .. }
            | Fault::Edited { line, .. }
            | Fault::Duplicated { line, .. }
            | Fault::Missing { line, .. }
            | Fault::Reordered { line, .. }
            | Fault::Unchained { line, .. }
            | Fault::Appended { line, .. }
            | Fault::Misnamed { line, .. } => *line,
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Damaged { .. } => "damaged",
            Fault::Edited { .. } => "edited",
            Fault::Duplicated { .. } => "duplicated",
            Fault::Missing { .. } => "deleted",
            Fault::Reordered { .. } => "reordered",
            Fault::Unchained { .. } => "inserted",
            Fault::Appended { .. } => "appended",
            Fault::Misnamed { .. } => "misnamed",
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Damaged { line, detail } => write!(f, "line {line} is damaged: {detail}"),
            Fault::Edited { line, seq } => write!(
                f,
                "record {seq} (line {line}) was changed after it was written: its content does not match its hash"
            ),
            Fault::Duplicated {
                line,
                seq,
                first_line,
            } => write!(
                f,
                "line {line} repeats record {seq}, already on line {first_line}"
            ),
            Fault::Missing {
                line,
                expected,
                found,
            } => {
                if found - expected == 1 {
                    write!(
                        f,
                        "record {expected} is missing: line {line} holds record {found}"
                    )
                } else {
                    write!(
                        f,
                        "records {expected} to {} are missing: line {line} holds record {found}",
                        found - 1
                    )
                }
            }
            Fault::Reordered {
                line,
                expected,
                found,
            } => write!(
                f,
                "records are out of order: line {line} holds record {found} where record {expected} belongs"
            ),
            Fault::Unchained { line, seq } => write!(
                f,
                "record {seq} (line {line}) does not follow the record before it: a record was inserted or replaced before it"
            ),
            Fault::Appended { line, seq, seal } => write!(
                f,
                "record {seq} (line {line}) was appended after the seal at record {seal} without a `run_resumed` record naming that seal: rollout never writes that, so it was added after the log was sealed"
            ),
            Fault::Misnamed { line, seq } => write!(
                f,
                "record {seq} (line {line}) begins a session but does not name the last seal before it: it was not written by rollout after that seal"
            ),
        }
    }
}

/// What verifying a log found.
#[derive(Debug, Clone, Default)]
pub struct Verified {
    /// Records read before the first fault (all of them when there is none).
    pub records: Vec<Record>,
    /// Byte offset just after the last good record.
    pub good_end: usize,
    pub fault: Option<Fault>,
    /// Bytes after the last complete line: a record cut short.
    pub truncated: Option<usize>,
    /// The hash of the last good record.
    pub head: String,
    /// The hash of the last seal, and how many records it covers.
    pub last_seal: Option<(u64, String)>,
}

impl Verified {
    /// Whether the log's last record is a seal (its session closed the log).
    pub fn sealed(&self) -> bool {
        matches!(
            self.records.last().map(|r| &r.event),
            Some(Entry::Sealed { .. })
        )
    }
}

/// Checks a log: every line's own hash, the sequence, and the chain. Stops at the first fault.
pub fn verify(bytes: &[u8]) -> Verified {
    let mut v = Verified {
        head: GENESIS.to_string(),
        ..Verified::default()
    };
    // seq -> (line, hash) of every record seen, to tell duplicates and moves from deletions.
    let mut seen: std::collections::HashMap<u64, (usize, String)> =
        std::collections::HashMap::new();
    let mut start = 0;
    let mut line_no = 0;
    while start < bytes.len() {
        let Some(nl) = bytes[start..].iter().position(|&b| b == b'\n') else {
            v.truncated = Some(bytes.len() - start);
            break;
        };
        line_no += 1;
        let line = &bytes[start..start + nl];
        let expected = v.records.len() as u64 + 1;
        let checked = check_line(
            line,
            line_no,
            expected,
            &v.head,
            &seen,
            bytes,
            start + nl + 1,
        )
        .and_then(|record| check_session(record, line_no, &v));
        let fault = match checked {
            Ok(record) => {
                seen.insert(record.seq, (line_no, record.hash.clone()));
                v.head.clone_from(&record.hash);
                if let Entry::Sealed { records } = record.event {
                    v.last_seal = Some((records, record.hash.clone()));
                }
                v.records.push(record);
                None
            }
            Err(f) => Some(f),
        };
        if fault.is_some() {
            v.fault = fault;
            break;
        }
        start += nl + 1;
        v.good_end = start;
    }
    v
}

fn check_line(
    line: &[u8],
    line_no: usize,
    expected: u64,
    head: &str,
    seen: &std::collections::HashMap<u64, (usize, String)>,
    all: &[u8],
    rest_start: usize,
) -> Result<Record, Fault> {
    let damaged = |detail: String| Fault::Damaged {
        line: line_no,
        detail,
    };
    let record: Record = serde_json::from_slice(line)
        .map_err(|e| damaged(format!("not a record of this format ({e})")))?;
    let Some((claimed, actual)) = hashes(line) else {
        return Err(damaged("it has no hash at its end".into()));
    };
    if claimed != actual || record.hash != actual {
        return Err(Fault::Edited {
            line: line_no,
            seq: record.seq,
        });
    }
    if record.seq != expected {
        if let Some((first_line, hash)) = seen.get(&record.seq) {
            if *hash == record.hash {
                return Err(Fault::Duplicated {
                    line: line_no,
                    seq: record.seq,
                    first_line: *first_line,
                });
            }
        }
        // The expected record further on means records were moved; nowhere means deleted.
        let later = later_seqs(&all[rest_start..]);
        return Err(if record.seq < expected || later.contains(&expected) {
            Fault::Reordered {
                line: line_no,
                expected,
                found: record.seq,
            }
        } else {
            Fault::Missing {
                line: line_no,
                expected,
                found: record.seq,
            }
        });
    }
    if record.prev != head {
        return Err(Fault::Unchained {
            line: line_no,
            seq: record.seq,
        });
    }
    Ok(record)
}

/// Every session after the first begins with a record naming the last seal before it, and
/// nothing but such a record follows a seal.
fn check_session(record: Record, line: usize, v: &Verified) -> Result<Record, Fault> {
    let last_seal = v.last_seal.as_ref().map(|(_, hash)| hash.as_str());
    match record.event.opens_session() {
        Some(Opening::Names(named)) if named != last_seal => Err(Fault::Misnamed {
            line,
            seq: record.seq,
        }),
        Some(_) => Ok(record),
        None => match v.records.last() {
            Some(before) if matches!(before.event, Entry::Sealed { .. }) => Err(Fault::Appended {
                line,
                seq: record.seq,
                seal: before.seq,
            }),
            _ => Ok(record),
        },
    }
}

/// The `seq` of each later line that parses, for telling a move from a deletion.
fn later_seqs(rest: &[u8]) -> Vec<u64> {
    #[derive(serde::Deserialize)]
    struct Seq {
        seq: u64,
    }
    rest.split(|&b| b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Seq>(l).ok())
        .map(|s| s.seq)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::record::{Envelope, Who};

    fn log(n: usize) -> Vec<u8> {
        let env = Envelope {
            run: "r1".into(),
            who: Who {
                operator: "alice".into(),
                os_user: "alice".into(),
                host: "h".into(),
                pid: 1,
            },
            runbook_digest: "sha256:00".into(),
        };
        let mut out = Vec::new();
        let mut prev = GENESIS.to_string();
        for i in 0..n {
            let mut r = Record::bare(Entry::PhaseStarted {
                phase: format!("p{i}"),
            });
            r.seq = i as u64 + 1;
            r.run.clone_from(&env.run);
            r.who = env.who.clone();
            r.prev.clone_from(&prev);
            let (line, hash) = encode(&r).unwrap();
            out.extend(line);
            prev = hash;
        }
        out
    }

    fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
        bytes
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// Encodes `events` as a chained log, as the file journal writes it.
    fn chain(events: Vec<Entry>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev = GENESIS.to_string();
        for (i, event) in events.into_iter().enumerate() {
            let mut r = Record::bare(event);
            r.seq = i as u64 + 1;
            r.run = "r1".into();
            r.at = "2026-12-01T00:00:00.000Z".into();
            r.prev.clone_from(&prev);
            let (line, hash) = encode(&r).unwrap();
            out.extend(line);
            prev = hash;
        }
        out
    }

    #[allow(clippy::option_option)]
    fn resumed(previous_seal: Option<Option<String>>) -> Entry {
        Entry::RunResumed {
            operator: "bob".into(),
            digest: "sha256:00".into(),
            previous_seal,
        }
    }

    #[test]
    fn a_resume_written_before_sessions_named_their_seal_still_verifies() {
        let log = |opening| {
            chain(vec![
                Entry::PhaseStarted { phase: "p".into() },
                Entry::Sealed { records: 2 },
                opening,
                Entry::Sealed { records: 4 },
            ])
        };
        // The older format leaves the member out: accepted, and a session of its own.
        let legacy = log(resumed(None));
        assert!(!String::from_utf8_lossy(&legacy).contains("previous_seal"));
        let v = verify(&legacy);
        assert!(v.fault.is_none(), "{:?}", v.fault);
        assert_eq!(v.records.len(), 4);
        // Today's format must name the seal: `null` or another hash is refused.
        assert!(matches!(
            verify(&log(resumed(Some(None)))).fault,
            Some(Fault::Misnamed { line: 3, .. })
        ));
        assert!(matches!(
            verify(&log(resumed(Some(Some("sha256:ff".into()))))).fault,
            Some(Fault::Misnamed { line: 3, .. })
        ));
        let seal = verify(&legacy).records[1].hash.clone();
        let good = log(resumed(Some(Some(seal))));
        assert!(verify(&good).fault.is_none(), "{:?}", verify(&good).fault);
    }

    #[test]
    fn a_clean_log_verifies() {
        let v = verify(&log(20));
        assert_eq!(v.records.len(), 20);
        assert!(v.fault.is_none() && v.truncated.is_none());
    }

    #[test]
    fn every_single_byte_edit_is_caught_on_its_line() {
        let bytes = log(5);
        let mut line = 1;
        for i in 0..bytes.len() {
            if bytes[i] == b'\n' {
                line += 1;
                continue;
            }
            let mut edited = bytes.clone();
            edited[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let v = verify(&edited);
            let fault = v
                .fault
                .unwrap_or_else(|| panic!("edit at byte {i} not caught"));
            assert_eq!(fault.line(), line, "edit at byte {i}: {fault}");
        }
    }

    #[test]
    fn deletions_duplicates_swaps_and_truncation_are_named() {
        let l = lines(&log(6));
        let join = |ls: &[Vec<u8>]| ls.concat();
        let mut del = l.clone();
        del.remove(2);
        assert!(matches!(
            verify(&join(&del)).fault,
            Some(Fault::Missing {
                line: 3,
                expected: 3,
                found: 4
            })
        ));
        let mut dup = l.clone();
        dup.insert(3, l[2].clone());
        assert!(matches!(
            verify(&join(&dup)).fault,
            Some(Fault::Duplicated {
                line: 4,
                seq: 3,
                first_line: 3
            })
        ));
        let mut swap = l.clone();
        swap.swap(1, 2);
        assert!(matches!(
            verify(&join(&swap)).fault,
            Some(Fault::Reordered { line: 2, .. })
        ));
        let mut cut = join(&l);
        cut.truncate(cut.len() - 10);
        let v = verify(&cut);
        assert!(v.fault.is_none());
        assert_eq!(v.records.len(), 5);
        assert!(v.truncated.is_some());
    }
}
