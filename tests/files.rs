//! Files that are not runbooks at all: each gets one clear sentence and exit 4 (or, for text
//! that is TOML-shaped but absurd, a located diagnostic and exit 3), never a panic.

use crate::harness::{Outcome, RUNBOOK, Test};

/// Validates a runbook made of `bytes`, expecting it to be refused as unreadable (exit 4).
fn unreadable(bytes: &[u8]) -> Outcome {
    let out = Test::new()
        .file(RUNBOOK, bytes)
        .args(["validate", RUNBOOK])
        .status(4);
    assert_clean_refusal(&out);
    out
}

/// A refusal is one or more `error:` lines, never a panic or a Rust debug dump.
fn assert_clean_refusal(out: &Outcome) {
    assert!(
        out.stdout.is_empty(),
        "stdout should be empty: {}",
        out.stdout
    );
    assert!(out.stderr.starts_with("error: "), "stderr: {}", out.stderr);
    for bad in ["panicked", "RUST_BACKTRACE", "thread '", "Error {", "Os {"] {
        assert!(
            !out.stderr.contains(bad),
            "stderr has {bad:?}:\n{}",
            out.stderr
        );
    }
}

#[test]
fn not_utf8_names_the_byte_offset() {
    let out = unreadable(b"[runbook]\nname = \"caf\xe9\"\n");
    out.stderr_has("byte offset 21")
        .stderr_has("line 2, column 12");
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn latin1_file_deep_inside() {
    let mut text = "# comment\n".repeat(1000).into_bytes();
    text.extend_from_slice(b"[runbook]\nname = \"\xa9 2024\"\n");
    let out = unreadable(&text);
    out.stderr_has("byte offset 10018").stderr_has("line 1002");
}

#[test]
fn empty_file() {
    let out = unreadable(b"");
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn whitespace_only_file() {
    let out = unreadable(b" \n\t\n   \r\n\n");
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn png_file() {
    let png =
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00";
    let out = unreadable(png);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn random_binary_bytes() {
    // A fixed pseudo-random sequence (an LCG), so the test is the same on every run.
    let mut state: u32 = 0x2545_f491;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            state.to_be_bytes()[0]
        })
        .collect();
    assert!(bytes.contains(&0));
    let out = unreadable(&bytes);
    out.stderr_has("looks like a binary file");
}

#[test]
fn nul_byte_in_text() {
    let out = unreadable(b"[runbook]\nname = \"check\x00out\"\n");
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn nul_escape_in_a_command_is_refused() {
    // Valid UTF-8 without a NUL byte, but the TOML escape decodes to one.
    let out = Test::new()
        .runbook(
            "[runbook]\nname = \"x\"\n\n[[phases]]\nid = \"p\"\ntitle = \"P\"\n\n[[phases.steps]]\nrun = \"echo \\u0000\"\n",
        )
        .args(["validate", RUNBOOK])
        .status(3);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn utf8_bom() {
    let out = unreadable(b"\xef\xbb\xbf[runbook]\nname = \"checkout\"\n");
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn utf16_bom() {
    let text: Vec<u8> = "[runbook]\nname = \"checkout\"\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let le = [&[0xff, 0xfe][..], &text].concat();
    let out = unreadable(&le);
    insta::assert_snapshot!(out.stderr);
    let be: Vec<u8> = [0xfe, 0xff]
        .into_iter()
        .chain("[runbook]\n".encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    unreadable(&be).stderr_has("UTF-16");
}

#[test]
fn larger_than_the_cap() {
    let mut text = b"[runbook]\nname = \"big\"\n".to_vec();
    text.resize(8 * 1024 * 1024 + 1, b'#');
    let out = unreadable(&text);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn exactly_at_the_cap_is_read() {
    // 8 MiB of comments is readable text: it is then refused as a runbook (exit 3), not as a file.
    let mut text = b"[runbook]\nname = \"big\"\n#".to_vec();
    text.resize(8 * 1024 * 1024, b'#');
    let out = Test::new()
        .file(RUNBOOK, &text)
        .args(["validate", RUNBOOK])
        .status(3);
    out.stderr_has("the runbook has no phases");
}

/// Deep nesting must not overflow the stack: the parser's depth limit turns it into a located
/// error (exit 3).
fn deeply_nested(text: &str) -> Outcome {
    let out = Test::new().runbook(text).args(["validate", RUNBOOK]).run();
    assert!(
        out.status == 3 || out.status == 4,
        "exit {} (a crash?)\n{}",
        out.status,
        out.stderr
    );
    assert_clean_refusal(&out);
    assert!(
        out.stderr.len() < 10_000,
        "too much output: {} bytes",
        out.stderr.len()
    );
    out
}

#[test]
fn deeply_nested_arrays() {
    let depth = 100_000;
    let out = deeply_nested(&format!("x = {}{}\n", "[".repeat(depth), "]".repeat(depth)));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn deeply_nested_unclosed_arrays() {
    let out = deeply_nested(&format!("x = {}\n", "[".repeat(100_000)));
    out.stderr_has("recurse");
}

#[test]
fn deeply_nested_inline_tables() {
    let depth = 100_000;
    let out = deeply_nested(&format!(
        "x = {}1{}\n",
        "{ a = ".repeat(depth),
        " }".repeat(depth)
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn deeply_nested_dotted_keys() {
    let out = deeply_nested(&format!("a{} = 1\n", ".a".repeat(100_000)));
    out.stderr_has("recursion");
    let out = deeply_nested(&format!("[a{}]\n", ".a".repeat(100_000)));
    out.stderr_has("recursion");
}

#[test]
fn a_directory() {
    let test = Test::new();
    std::fs::create_dir(test.path().join(RUNBOOK)).unwrap();
    let out = test.args(["validate", RUNBOOK]).status(4);
    assert_clean_refusal(&out);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn a_missing_file() {
    let out = Test::new()
        .args(["validate", "no-such-runbook.toml"])
        .status(4);
    assert_clean_refusal(&out);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn plan_refuses_the_same_files() {
    for bytes in [
        &b""[..],
        b"\xef\xbb\xbf[runbook]\n",
        b"\x89PNG\r\n\x1a\n\x00",
        b"name = \"\xff\"\n",
    ] {
        let out = Test::new()
            .file(RUNBOOK, bytes)
            .args(["plan", RUNBOOK, "--format", "json"])
            .status(4);
        assert_clean_refusal(&out);
    }
    let out = Test::new().args(["plan", "missing.toml"]).status(4);
    assert_clean_refusal(&out);
}
