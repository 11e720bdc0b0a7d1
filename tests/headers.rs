//! `expect_headers` on HTTP checks: a header present, absent, equal to a value or matching a
//! regular expression, against a real local HTTP server.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use crate::harness::{Test, journal};

/// Serves every request with rate-limit, cache and security headers (and a `Server` header).
fn server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\
                 Cache-Control: no-store\r\nX-RateLimit-Limit: 100\r\nX-RateLimit-Remaining: 99\r\n\
                 Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n\
                 Server: nginx/1.25.3\r\n\r\nok"
            );
        }
    });
    port
}

fn check(port: u16, expect: &str) -> String {
    format!(
        r#"[runbook]
name = "headers"

[vars]
cache = "no-store"

[[phases]]
id = "p"
title = "P"
on_failure = "abort"

[[phases.steps]]
id = "api"
http = "http://127.0.0.1:{port}/api"
timeout = "1s"
expect_headers = {expect}
"#
    )
}

#[test]
fn headers_present_equal_and_matching_pass() {
    let port = server();
    let rb = check(
        port,
        r#"{ X-RateLimit-Limit = true, Cache-Control = "{{ cache }}", Strict-Transport-Security = { regex = 'max-age=\d{7,}' }, X-Powered-By = false }"#,
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["plan", "runbook.toml"])
        .status(0);
    out.stdout_has(
        r"expect status 200, header X-RateLimit-Limit, header Cache-Control: no-store, header Strict-Transport-Security matches /max-age=\d{7,}/, no header X-Powered-By",
    );
    let json = Test::new()
        .runbook(&rb)
        .args(["plan", "runbook.toml", "--format", "json"])
        .status(0)
        .json();
    assert_eq!(
        json["phases"][0]["steps"][0]["action"]["expect_headers"],
        serde_json::json!([
            { "name": "X-RateLimit-Limit", "present": true },
            { "name": "Cache-Control", "equals": "no-store" },
            { "name": "Strict-Transport-Security", "regex": "max-age=\\d{7,}" },
            { "name": "X-Powered-By", "present": false }
        ])
    );
    Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(0);
}

#[test]
fn each_kind_of_header_expectation_fails_with_what_was_sent() {
    let port = server();
    for (expect, reason) in [
        (
            "{ X-Request-Id = true }",
            "no header `X-Request-Id` in the response",
        ),
        (
            r#"{ Cache-Control = "max-age=60" }"#,
            "header `Cache-Control` is `no-store`, expected `max-age=60`",
        ),
        (
            r"{ x-ratelimit-remaining = { regex = '^[0-9]{3,}$' } }",
            "header `x-ratelimit-remaining` is `99`, which does not match /^[0-9]{3,}$/",
        ),
        (
            "{ Server = false }",
            "header `Server` is sent (`nginx/1.25.3`), expected none",
        ),
    ] {
        let out = Test::new()
            .runbook(&check(port, expect))
            .args(["run", "runbook.toml"])
            .status(6);
        out.stderr_has(reason);
        let finished = journal(&out.dir)
            .into_iter()
            .find(|e| e["type"] == "step_finished")
            .unwrap();
        assert!(
            finished["reason"].as_str().unwrap().contains(reason),
            "{finished}"
        );
    }
}

#[test]
fn validate_checks_header_expectations() {
    let out = Test::new()
        .runbook(&check(
            9,
            r#"{ "Bad Name" = true, X-A = { regex = "(" }, X-B = { equals = "a", regex = "b" }, X-C = 3, X-D = { equls = "a" } }"#,
        ))
        .args(["validate", "runbook.toml"])
        .status(3);
    insta::assert_snapshot!(out.stderr);
}
