//! Reaching the database: the `--state` URL read the way libpq reads it (`PGUSER`, `PGHOST`,
//! `PGPORT`, `PGDATABASE`, `PGPASSWORD`, `PGPASSFILE`/`~/.pgpass`, `PGSSLMODE`,
//! `PGSSLROOTCERT`/`sslrootcert=`), a TLS connector (rustls), and one-line errors that never
//! show the password.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_postgres::config::SslMode;

/// How the TLS of the connection is checked, as libpq's `sslmode` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Where the state database is and how to reach it.
#[derive(Clone)]
pub struct Target {
    pub config: tokio_postgres::Config,
    tls: Tls,
    root_cert: Option<PathBuf>,
    /// The URL as given, without its password: what messages and records show.
    pub shown: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.shown)
    }
}

/// Whether `text` names a `PostgreSQL` database (rather than a directory).
pub fn is_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// `url` without its password.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("********"));
            }
            u.to_string()
        }
        Err(_) => "the --state URL (unparsable; not shown, it may hold a password)".into(),
    }
}

/// Reads `url` with the libpq conventions; `env` looks up the environment.
pub fn parse(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Target, String> {
    let shown = redact(url);
    let parsed = url::Url::parse(url).map_err(|e| format!("`{shown}` is not a valid URL: {e}"))?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(format!(
            "`{shown}` is not a PostgreSQL URL: it must begin with postgres:// or postgresql://"
        ));
    }
    let mut sslmode = env("PGSSLMODE");
    let mut root_cert = env("PGSSLROOTCERT").map(PathBuf::from);
    let mut kept = parsed.clone();
    kept.set_query(None);
    {
        let mut q = kept.query_pairs_mut();
        for (k, v) in parsed.query_pairs() {
            match &*k {
                "sslmode" => sslmode = Some(v.into_owned()),
                "sslrootcert" => root_cert = Some(PathBuf::from(v.into_owned())),
                _ => {
                    q.append_pair(&k, &v);
                }
            }
        }
    }
    let mut text = kept.to_string();
    if text.ends_with('?') {
        text.pop();
    }
    let mut config: tokio_postgres::Config = text
        .parse()
        .map_err(|e| format!("`{shown}` is not a valid PostgreSQL URL: {e}"))?;
    let tls = match sslmode.as_deref().unwrap_or("prefer") {
        "disable" => Tls::Disable,
        "allow" | "prefer" => Tls::Prefer,
        "require" => Tls::Require,
        "verify-ca" => Tls::VerifyCa,
        "verify-full" => Tls::VerifyFull,
        other => {
            return Err(format!(
                "`sslmode={other}` in `{shown}` is not a TLS mode: use disable, prefer, require, verify-ca or verify-full"
            ));
        }
    };
    config.ssl_mode(match tls {
        Tls::Disable => SslMode::Disable,
        Tls::Prefer => SslMode::Prefer,
        Tls::Require | Tls::VerifyCa | Tls::VerifyFull => SslMode::Require,
    });
    if config.get_hosts().is_empty() {
        config.host(env("PGHOST").unwrap_or_else(|| "localhost".into()));
    }
    if config.get_ports().is_empty() {
        if let Some(port) = env("PGPORT") {
            let port = port
                .parse()
                .map_err(|_| format!("`PGPORT={port}` is not a port number"))?;
            config.port(port);
        }
    }
    if config.get_user().is_none() {
        let user = env("PGUSER")
            .or_else(|| env("USER"))
            .unwrap_or_else(|| "postgres".into());
        config.user(&user);
    }
    if config.get_dbname().is_none() {
        let db = env("PGDATABASE").unwrap_or_else(|| config.get_user().unwrap_or("").to_string());
        config.dbname(&db);
    }
    if config.get_password().is_none() {
        if let Some(pw) = env("PGPASSWORD") {
            config.password(pw);
        } else if let Some(pw) = pgpass_lookup(&config, env) {
            config.password(pw);
        }
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(5));
    }
    config.keepalives_idle(std::time::Duration::from_secs(5));
    config.application_name("rollout");
    if root_cert.is_none() {
        root_cert = env("HOME")
            .map(|h| Path::new(&h).join(".postgresql/root.crt"))
            .filter(|p| p.is_file());
    }
    Ok(Target {
        config,
        tls,
        root_cert,
        shown,
    })
}

fn host_text(config: &tokio_postgres::Config) -> String {
    match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    }
}

/// The password `~/.pgpass` (or `PGPASSFILE`) gives for this host, port, database and user.
fn pgpass_lookup(
    config: &tokio_postgres::Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let path = env("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".pgpass")))?;
    {
        use std::os::unix::fs::PermissionsExt;
        // libpq ignores a file that others may read; so does rollout.
        let mode = std::fs::metadata(&path).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            return None;
        }
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let wanted = [
        host_text(config),
        port,
        config.get_dbname().unwrap_or_default().to_string(),
        config.get_user().unwrap_or_default().to_string(),
    ];
    pgpass_match(&text, &wanted)
}

/// The password of the first line of a pgpass file matching `wanted` (host, port, database,
/// user): `*` matches anything, `\:` and `\\` are a colon and a backslash.
pub fn pgpass_match(text: &str, wanted: &[String; 4]) -> Option<String> {
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(next) = chars.next() {
                        field.push(next);
                    }
                }
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        fields.push(field);
        if fields.len() != 5 {
            continue;
        }
        let host_matches =
            |f: &str, w: &str| f == "*" || f == w || (f == "localhost" && w.starts_with('/'));
        if host_matches(&fields[0], &wanted[0])
            && (fields[1] == "*" || fields[1] == wanted[1])
            && (fields[2] == "*" || fields[2] == wanted[2])
            && (fields[3] == "*" || fields[3] == wanted[3])
        {
            return fields.pop();
        }
    }
    None
}

/// Accepts any certificate (checking only its signatures): libpq's `require` without a root
/// certificate, and `prefer`.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Checks the chain against the root certificate but not the host name: `verify-ca`.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

fn tls_config(target: &Target) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let verify = matches!(target.tls, Tls::VerifyCa | Tls::VerifyFull)
        || (target.tls == Tls::Require && target.root_cert.is_some());
    if !verify {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
            .with_no_client_auth());
    }
    let Some(path) = &target.root_cert else {
        return Err(format!(
            "`sslmode` verify-ca and verify-full need the certificate of the authority that signed the server's: give `sslrootcert=FILE` in `{}` or set `PGSSLROOTCERT`",
            target.shown
        ));
    };
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read the root certificate {}: {e}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    let mut reader = std::io::BufReader::new(&pem[..]);
    for cert in rustls_pemfile_certs(&mut reader) {
        roots
            .add(cert)
            .map_err(|e| format!("bad root certificate in {}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate to check the server's against",
            path.display()
        ));
    }
    let webpki =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("cannot set up TLS: {e}"))?;
    Ok(if target.tls == Tls::VerifyFull {
        builder
            .dangerous()
            .with_custom_certificate_verifier(webpki)
            .with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
            .with_no_client_auth()
    })
}

/// The certificates of a PEM file.
fn rustls_pemfile_certs(reader: &mut dyn std::io::BufRead) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    let mut text = Vec::new();
    if reader.read_to_end(&mut text).is_err() {
        return Vec::new();
    }
    CertificateDer::pem_slice_iter(&text)
        .filter_map(Result::ok)
        .collect()
}

/// One line saying why the database could not be reached, without the password.
pub fn describe(target: &Target, e: &tokio_postgres::Error) -> String {
    let mut why = match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    };
    let mut source = std::error::Error::source(e);
    if e.as_db_error().is_none() {
        while let Some(s) = source {
            why.push_str(": ");
            why.push_str(&s.to_string());
            source = s.source();
        }
    }
    let port = target.config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "cannot use the state database `{}` ({}:{port}, database `{}`, user `{}`): {}",
        target.shown,
        host_text(&target.config),
        target.config.get_dbname().unwrap_or_default(),
        target.config.get_user().unwrap_or_default(),
        why.replace('\n', " ")
    )
}

/// The TLS connector for `target`.
pub fn tls(target: &Target) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(
        target,
    )?))
}

/// Opens a connection; its I/O runs as a task of the current runtime.
pub async fn connect(target: &Target) -> Result<tokio_postgres::Client, String> {
    let tls = tls(target)?;
    let limit = target
        .config
        .get_connect_timeout()
        .copied()
        .unwrap_or(std::time::Duration::from_secs(5))
        + std::time::Duration::from_secs(1);
    let (client, connection) = tokio::time::timeout(limit, target.config.connect(tls))
        .await
        .map_err(|_| {
            format!(
                "cannot use the state database `{}`: no answer within {} s",
                target.shown,
                limit.as_secs()
            )
        })?
        .map_err(|e| describe(target, &e))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgpass_lines_match_with_wildcards_and_escapes() {
        let text = "# comment\nother:5432:db:u:no\n*:5432:app:al\\:ice:s3cr\\\\et\n";
        let wanted = [
            "db.example".to_string(),
            "5432".into(),
            "app".into(),
            "al:ice".into(),
        ];
        assert_eq!(pgpass_match(text, &wanted).as_deref(), Some("s3cr\\et"));
        let other = [
            "x".to_string(),
            "5433".into(),
            "app".into(),
            "al:ice".into(),
        ];
        assert_eq!(pgpass_match(text, &other), None);
    }

    #[test]
    fn the_password_is_never_shown() {
        let shown = redact("postgres://bob:hunter2@db:5432/r?sslmode=require");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("bob"));
    }
}
