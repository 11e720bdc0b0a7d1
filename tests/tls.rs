//! Throwaway certificates for the tests of TLS (a metric source's custom CA, the state
//! database's `sslmode`s), made by `openssl` (Debian package `openssl`) in a test's own
//! directory and valid for a day.

use std::path::Path;
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (Debian package `openssl`)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed certificate authority: `NAME.key` and `NAME.pem` in `dir`.
pub fn authority(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "1",
            "-subj",
            "/CN=rollout test CA",
        ],
    );
}

/// A server certificate for `name` (common name) and `alt_name` (`DNS:…` or `IP:…`), signed
/// by the authority `ca` (see [`authority`]) in `dir`: `server.key` and `server.pem`.
pub fn server_certificate(dir: &Path, name: &str, alt_name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        format!("subjectAltName={alt_name}\nbasicConstraints=CA:FALSE\n"),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
        ],
    );
}
