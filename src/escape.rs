//! How text that rollout did not write itself (variable values, rendered commands, gate texts,
//! a step's output) is shown to people: in the terminal and in text, Markdown and HTML reports.
//! A control character there could clear the screen, retitle the window or rewrite the lines a
//! signer reads, so each is shown escaped: ESC as `\e`, carriage return as `\r`, any other C0
//! character or DEL as `\xNN`, a C1 character as `\u{NN}`. Line feed and tab stay as they are.
//! Only rollout's own styling reaches a terminal as control sequences. This module never
//! touches what commands receive, nor JSON (serde escapes control characters there already).

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` is shown escaped.
fn is_control(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c)
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\u{1b}' => out.push_str("\\e"),
        '\r' => out.push_str("\\r"),
        c if u32::from(c) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

/// Whether `text` has a character that [`text`] escapes.
pub fn needed(text: &str) -> bool {
    // Every such character starts with a byte below 0x20, DEL, or 0xC2 (U+0080..U+009F).
    text.bytes()
        .any(|b| (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f || b == 0xc2)
        && text.chars().any(is_control)
}

/// `text` with its control characters escaped (borrowed when it has none).
pub fn text(text: &str) -> Cow<'_, str> {
    if !needed(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_control(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A whole text that rollout laid out (a report, `status`, `log`), with the control characters
/// of what it quotes escaped. Only for texts that carry no styling of rollout's own.
pub fn owned(whole: String) -> String {
    match text(&whole) {
        Cow::Borrowed(_) => whole,
        Cow::Owned(e) => e,
    }
}

/// Escapes `s` in place; says whether it changed.
pub fn in_place(s: &mut String) -> bool {
    match text(s) {
        Cow::Borrowed(_) => false,
        Cow::Owned(e) => {
            *s = e;
            true
        }
    }
}

/// Output bytes as a terminal should get them: control characters escaped, everything else
/// (including bytes that are not UTF-8) as it was. `held` keeps a trailing 0xC2 byte, the
/// first half of what may be a C1 character, until the next piece arrives.
pub fn bytes<'d>(data: &'d [u8], held: &mut Option<u8>) -> Cow<'d, [u8]> {
    let risky = |b: u8| (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f || b == 0xc2;
    if held.is_none() && !data.iter().copied().any(risky) {
        return Cow::Borrowed(data);
    }
    let mut all = Vec::with_capacity(data.len() + 1);
    all.extend(held.take());
    all.extend_from_slice(data);
    if all.last() == Some(&0xc2) {
        *held = all.pop();
    }
    let mut out = Vec::with_capacity(all.len() + 8);
    let mut i = 0;
    let mut s = String::new();
    while i < all.len() {
        let b = all[i];
        let c1 = b == 0xc2 && all.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n));
        if c1 || risky(b) && b != 0xc2 {
            let c = if c1 {
                char::from_u32(u32::from(all[i + 1]) & 0xff).unwrap_or('\u{80}')
            } else {
                char::from(b)
            };
            s.clear();
            push_escaped(&mut s, c);
            out.extend_from_slice(s.as_bytes());
            i += if c1 { 2 } else { 1 };
        } else {
            out.push(b);
            i += 1;
        }
    }
    Cow::Owned(out)
}

/// Finishes a stream escaped with [`bytes`]: what it held back.
pub fn finish(held: &mut Option<u8>) -> Option<u8> {
    held.take()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_text_is_kept() {
        assert_eq!(
            text("a\u{1b}[2J\u{1b}]0;pwn\u{7}b\r\n\tc\u{7f}\u{9b}1m é"),
            "a\\e[2J\\e]0;pwn\\x07b\\r\n\tc\\x7f\\u{9b}1m é"
        );
        assert!(matches!(text("plain é\n\t"), Cow::Borrowed(_)));
        assert!(!needed("Â é ¢"));
    }

    #[test]
    fn bytes_are_escaped_across_pieces() {
        let mut held = None;
        let mut out = Vec::new();
        for piece in [&b"x\x1b[1m\xc2"[..], b"\x9by\xff\xc2", b"\xa9\x07"] {
            out.extend_from_slice(&bytes(piece, &mut held));
        }
        out.extend(finish(&mut held));
        assert_eq!(out, b"x\\e[1m\\u{9b}y\xff\xc2\xa9\\x07");
        assert!(matches!(bytes(b"ok\n", &mut None), Cow::Borrowed(_)));
    }
}
