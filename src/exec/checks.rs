//! Health checks against live systems. HTTP checks are retried until they pass or their
//! deadline runs out; every attempt is reported as an event.

use std::time::{Duration, Instant};

use crate::exec::event::{Event, Level, Listener};
use crate::exec::interrupts::Interrupts;
use crate::plan::Action;
use crate::runbook::source::{MAX_RUNBOOK_BYTES, OpenError, read_regular, special_reason};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    Passed(String),
    Failed(String),
    /// Not enough usable data to say: never a pass.
    Inconclusive(String),
    Interrupted(i32),
    /// The run stopped the step: one of the phase's abort criteria tripped.
    Stopped,
}

/// Runs an HTTP check until it passes or `deadline` is spent. `shown_url` is the URL as people
/// see it (secrets masked): errors name it, never the URL the request was sent to.
pub async fn http(
    action: &Action,
    shown_url: &str,
    deadline: Duration,
    interrupts: &Interrupts,
    listener: &mut dyn Listener,
    step: &str,
    body_out: &mut Option<String>,
) -> CheckOutcome {
    let Action::Http {
        method,
        url,
        headers,
        body,
        expect_body_regex,
        every,
        ..
    } = action
    else {
        return CheckOutcome::Failed("not an HTTP check".into());
    };
    let client = match reqwest::Client::builder()
        .timeout(deadline.min(Duration::from_secs(30)))
        .build()
    {
        Ok(c) => c,
        Err(e) => return CheckOutcome::Failed(format!("cannot create an HTTP client: {e}")),
    };
    let regex = match expect_body_regex
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
    {
        Ok(r) => r,
        Err(e) => return CheckOutcome::Failed(format!("bad regex: {e}")),
    };
    let start = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut req = client.request(method, url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if let Some(b) = body {
            req = req.body(b.clone());
        }
        let sent = Instant::now();
        // A request in flight is abandoned at once on Ctrl-C or a tripped abort criterion.
        let answer = tokio::select! {
            answer = async {
                match req.send().await {
                    Ok(resp) => Answer::read(resp, sent).await.map_err(|e| {
                        format!("cannot read the response: {}", url_error(e, url, shown_url))
                    }),
                    Err(e) => Err(format!("request failed: {}", url_error(e, url, shown_url))),
                }
            } => answer,
            halt = halted(interrupts) => return halt,
        };
        let verdict = answer.and_then(|a| {
            let verdict = judge(&a, action, regex.as_ref());
            if verdict.is_ok() {
                *body_out = Some(a.body);
            }
            verdict
        });
        match verdict {
            Ok(detail) => return CheckOutcome::Passed(format!("{detail} (attempt {attempt})")),
            Err(why) => {
                let left = deadline.saturating_sub(start.elapsed());
                if left < every.0 {
                    return CheckOutcome::Failed(format!(
                        "{why}; gave up after {attempt} attempt(s) in {:.1}s",
                        start.elapsed().as_secs_f64()
                    ));
                }
                listener.on(&Event::Notice {
                    level: Level::Info,
                    message: format!("{step}: attempt {attempt}: {why}; retrying in {every}"),
                });
            }
        }
        let wake = Instant::now() + every.0;
        while Instant::now() < wake {
            if let Some(signal) = interrupts.pending() {
                return CheckOutcome::Interrupted(signal);
            }
            if interrupts.step_stopped() {
                return CheckOutcome::Stopped;
            }
            tokio::time::sleep(Duration::from_millis(50).min(wake - Instant::now())).await;
        }
    }
}

/// The error and its causes, one after another. The HTTP library puts the URL of the request
/// into its message, in an encoding of its own that masking cannot be sure to recognise: it is
/// left out here, and the caller names the URL as people may see it.
pub(crate) fn short_error(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}

/// [`short_error`] naming `shown`, the URL with its secrets masked, where the library would
/// name the URL it sent to. A cause that repeats a part of the real URL (a host name in a
/// TLS error) gets the shown URL's part instead.
fn url_error(e: reqwest::Error, real: &str, shown: &str) -> String {
    let redirect = e.is_redirect();
    let mut causes = short_error(e);
    if real != shown {
        let parsed = |u: &str| reqwest::Url::parse(u).ok();
        let (r, s) = (parsed(real), parsed(shown));
        let part = |u: &Option<reqwest::Url>, f: fn(&reqwest::Url) -> Option<String>| {
            u.as_ref().and_then(f).filter(|p| !p.is_empty())
        };
        let parts: [fn(&reqwest::Url) -> Option<String>; 7] = [
            |u| Some(u.as_str().to_string()),
            |u| u.host_str().map(String::from),
            |u| Some(u.username().to_string()),
            |u| u.password().map(String::from),
            |u| Some(u.path().to_string()),
            |u| u.query().map(String::from),
            |u| u.fragment().map(String::from),
        ];
        for f in parts {
            if let Some(real_part) = part(&r, f) {
                let shown_part = part(&s, f).unwrap_or_else(|| crate::redact::MASK.to_string());
                if real_part != shown_part {
                    causes = causes.replace(&real_part, &shown_part);
                }
            }
        }
    }
    // A redirect's error is about where the server sent the request, which may hold anything.
    let what = if redirect {
        "following a redirect from"
    } else {
        "for"
    };
    match causes.split_once(": ") {
        Some((head, rest)) => format!("{head} {what} {shown}: {rest}"),
        None => format!("{causes} {what} {shown}"),
    }
}

/// An HTTP answer as the expectations judge it.
pub(crate) struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
    /// Until the status and headers arrived.
    pub latency: Duration,
}

impl Answer {
    /// Reads the whole answer to a request sent at `sent`; an error is the library's, for the
    /// caller to word (see [`url_error`]).
    pub(crate) async fn read(
        resp: reqwest::Response,
        sent: Instant,
    ) -> Result<Answer, reqwest::Error> {
        let status = resp.status().as_u16();
        let latency = sent.elapsed();
        let headers = resp.headers().clone();
        let body = resp.text().await?;
        Ok(Answer {
            status,
            headers,
            body,
            latency,
        })
    }
}

/// Whether `answer` meets the expectations of the HTTP check `action`: the detail when it does,
/// else what is wrong. `regex` is the check's `expect_body_regex`, compiled.
pub(crate) fn judge(
    answer: &Answer,
    action: &Action,
    regex: Option<&regex::Regex>,
) -> Result<String, String> {
    let Action::Http {
        expect_status,
        expect_body,
        expect_json,
        expect_headers,
        max_latency,
        ..
    } = action
    else {
        return Err("not an HTTP check".into());
    };
    let (status, body, latency) = (answer.status, answer.body.as_str(), answer.latency);
    if !expect_status.contains(&status) {
        return Err(format!(
            "status {status}, expected {}",
            expect_status
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    for h in expect_headers {
        header_problem(&answer.headers, h)?;
    }
    if let Some(needle) = expect_body {
        if !body.contains(needle.as_str()) {
            return Err(format!("the body does not contain {needle:?}"));
        }
    }
    if let Some(r) = regex {
        if !r.is_match(body) {
            return Err(format!("the body does not match /{}/", r.as_str()));
        }
    }
    if let Some(j) = expect_json {
        let value: serde_json::Value =
            serde_json::from_str(body).map_err(|e| format!("the body is not JSON: {e}"))?;
        let found = value
            .pointer(&j.pointer)
            .ok_or_else(|| format!("no JSON value at {}", j.pointer))?;
        if let Some(want) = &j.equals {
            if found != want {
                return Err(format!("JSON {} is {found}, expected {want}", j.pointer));
            }
        }
        if let Some(c) = j.condition {
            let x = found
                .as_f64()
                .ok_or_else(|| format!("JSON {} is {found}, not a number", j.pointer))?;
            if !c.holds(x) {
                return Err(format!("JSON {} is {x}, expected {c}", j.pointer));
            }
        }
    }
    if let Some(max) = max_latency {
        if latency > max.0 {
            return Err(format!("took {} ms, more than {max}", latency.as_millis()));
        }
    }
    Ok(format!("status {status} in {} ms", latency.as_millis()))
}

/// Whether the response headers meet one `expect_headers` entry. A header sent more than once
/// passes when one of its values does.
fn header_problem(
    headers: &reqwest::header::HeaderMap,
    want: &crate::plan::HeaderView,
) -> Result<(), String> {
    let name = &want.name;
    let values: Vec<String> = headers
        .get_all(name.as_str())
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
        .collect();
    let shown = || {
        values
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (&want.present, &want.equals, &want.regex) {
        (Some(false), _, _) if !values.is_empty() => Err(format!(
            "header `{name}` is sent ({}), expected none",
            shown()
        )),
        (Some(false), _, _) => Ok(()),
        _ if values.is_empty() => Err(format!("no header `{name}` in the response")),
        (_, Some(v), _) if !values.iter().any(|x| x == v) => {
            Err(format!("header `{name}` is {}, expected `{v}`", shown()))
        }
        (_, _, Some(r)) => {
            let re = regex::Regex::new(r).map_err(|e| format!("bad regex: {e}"))?;
            if values.iter().any(|x| re.is_match(x)) {
                Ok(())
            } else {
                Err(format!(
                    "header `{name}` is {}, which does not match /{r}/",
                    shown()
                ))
            }
        }
        _ => Ok(()),
    }
}

/// An HTTP client for the Prometheus API with the runbook's auth, headers, CA and timeout.
#[derive(Clone)]
pub struct Prom {
    client: reqwest::Client,
    conn: crate::plan::PrometheusConn,
}

impl Prom {
    /// `default_timeout` applies per request when the runbook sets none.
    pub fn new(
        conn: &crate::plan::PrometheusConn,
        default_timeout: Duration,
    ) -> Result<Prom, String> {
        let mut builder =
            reqwest::Client::builder().timeout(conn.timeout.unwrap_or(default_timeout));
        if let Some(path) = &conn.ca_file {
            let cannot =
                |why: String| format!("cannot read the CA file `{}`: {why}", path.display());
            let pem = match read_regular(path, MAX_RUNBOOK_BYTES) {
                Ok(Some(pem)) => pem,
                Ok(None) => {
                    return Err(cannot(format!(
                        "it is larger than {MAX_RUNBOOK_BYTES} bytes"
                    )));
                }
                Err(OpenError::Special(kind)) => {
                    return Err(cannot(special_reason(kind, "certificates")));
                }
                Err(OpenError::Io(e)) => return Err(cannot(e.to_string())),
            };
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                format!(
                    "the CA file `{}` is not PEM certificates: {e}",
                    path.display()
                )
            })?;
            if certs.is_empty() {
                return Err(format!(
                    "the CA file `{}` holds no certificate",
                    path.display()
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot create an HTTP client: {}", short_error(e)))?;
        Ok(Prom {
            client,
            conn: conn.clone(),
        })
    }

    fn get(&self, url: reqwest::Url) -> reqwest::RequestBuilder {
        let mut req = self.client.get(url);
        for (name, value) in &self.conn.headers {
            req = req.header(name, value);
        }
        if let Some(token) = &self.conn.bearer_token {
            req = req.bearer_auth(token);
        }
        if let Some((user, password)) = &self.conn.basic_auth {
            req = req.basic_auth(user, Some(password));
        }
        req
    }
}

/// Resolves when the running check must stop: a signal, or a tripped abort criterion.
async fn halted(interrupts: &Interrupts) -> CheckOutcome {
    loop {
        if let Some(signal) = interrupts.pending() {
            return CheckOutcome::Interrupted(signal);
        }
        if interrupts.step_stopped() {
            return CheckOutcome::Stopped;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One measurement of a metric check.
#[derive(Debug, Clone, PartialEq)]
pub enum Measured {
    /// Every series met the condition; the values seen.
    Pass(Vec<(String, f64)>),
    /// At least one series broke it.
    Fail(Vec<(String, f64)>),
    /// No usable answer: no data, NaN, an HTTP error, a timeout, a malformed response.
    Inconclusive(String),
}

/// Where each measurement of a metric check goes as it is taken (the run's journal).
pub trait MeasurementSink {
    /// Keeps one measurement; done when it is kept.
    fn measured<'a>(
        &'a mut self,
        m: &'a Measured,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>;
}

/// Runs a Prometheus metric check: measurements at the step's interval, judged together.
pub async fn metric(
    action: &Action,
    timeout: Duration,
    conn: &crate::plan::PrometheusConn,
    interrupts: &Interrupts,
    listener: &mut dyn Listener,
    step: &str,
    record: &mut dyn MeasurementSink,
) -> CheckOutcome {
    use crate::runbook::model::{ErrorPolicy, NoDataPolicy, Sampling};
    let Action::Metric {
        query,
        condition,
        sampling,
        failure_limit,
        successes,
        no_data,
        on_error,
        faults,
        prometheus,
    } = action
    else {
        return CheckOutcome::Failed("not a metric check".into());
    };
    let Some(base) = prometheus else {
        return CheckOutcome::Failed(
            "no Prometheus URL: set `prometheus` on the step or in [defaults], or give `--prometheus-url`".into(),
        );
    };
    let (count, every) = match *sampling {
        Sampling::Once => (1, Duration::ZERO),
        Sampling::Count { samples, every } => (samples, every.0),
        Sampling::Window { window, every } => (
            u32::try_from((window.0.as_millis() / every.0.as_millis().max(1)).max(1))
                .unwrap_or(u32::MAX),
            every.0,
        ),
    };
    let client = match Prom::new(conn, timeout.min(Duration::from_secs(30))) {
        Ok(c) => c,
        Err(why) => return CheckOutcome::Failed(why),
    };
    let url = format!("{}/api/v1/query", base.trim_end_matches('/'));
    let (mut failed, mut inconclusive, mut streak) = (0u32, 0u32, 0u32);
    let mut last_inconclusive = String::new();
    let mut trend = Vec::new();
    for i in 0..count {
        if i > 0 {
            let wake = Instant::now() + every;
            while Instant::now() < wake {
                if let Some(signal) = interrupts.pending() {
                    return CheckOutcome::Interrupted(signal);
                }
                if interrupts.step_stopped() {
                    return CheckOutcome::Stopped;
                }
                tokio::time::sleep(Duration::from_millis(50).min(wake - Instant::now())).await;
            }
        }
        let (m, fault) = tokio::select! {
            measured = measure(&client, &url, query, *condition) => measured,
            halt = halted(interrupts) => return halt,
        };
        let missing_policy = |specific: Option<NoDataPolicy>| match specific.unwrap_or(*no_data) {
            NoDataPolicy::Pass => Some(false),
            NoDataPolicy::Fail => Some(true),
            NoDataPolicy::Inconclusive => None,
        };
        let error_policy = |specific: Option<ErrorPolicy>| {
            (specific.unwrap_or(*on_error) == ErrorPolicy::Fail).then_some(true)
        };
        let counted_as_failure = match fault {
            Some(Fault::NoData) => missing_policy(None),
            Some(Fault::NaN) => missing_policy(faults.on_nan),
            Some(Fault::Infinite) => missing_policy(faults.on_inf),
            Some(Fault::HttpError) => error_policy(faults.on_http_error),
            Some(Fault::Timeout) => error_policy(faults.on_timeout),
            Some(Fault::Malformed) => error_policy(faults.on_malformed),
            None => None,
        };
        let m = match (counted_as_failure, &m) {
            (Some(false), _) => Measured::Pass(Vec::new()),
            (Some(true), Measured::Inconclusive(why)) => {
                let key = fault.map_or("on_error", |f| {
                    let specific = match f {
                        Fault::NaN => faults.on_nan.is_some(),
                        Fault::Infinite => faults.on_inf.is_some(),
                        Fault::HttpError => faults.on_http_error.is_some(),
                        Fault::Timeout => faults.on_timeout.is_some(),
                        Fault::Malformed => faults.on_malformed.is_some(),
                        Fault::NoData => true,
                    };
                    match (specific, f) {
                        (true, _) => f.key(),
                        (false, Fault::NaN | Fault::Infinite) => "no_data",
                        (false, _) => "on_error",
                    }
                });
                listener.on(&Event::Notice {
                    level: Level::Info,
                    message: format!("{step}: {why}: counted as a failure ({key} = \"fail\")"),
                });
                Measured::Fail(Vec::new())
            }
            _ => m,
        };
        record.measured(&m).await;
        if let Some(worst) = worst(&m, *condition) {
            if trend.len() == 20 {
                trend.remove(0);
            }
            trend.push(worst);
        }
        let (verdict, seen, detail) = match &m {
            Measured::Pass(v) => ("pass", v.clone(), None),
            Measured::Fail(v) => ("fail", v.clone(), None),
            Measured::Inconclusive(why) => ("inconclusive", Vec::new(), Some(why.clone())),
        };
        listener.on(&Event::Measurement {
            step: step.to_string(),
            index: i + 1,
            count,
            verdict,
            values: seen,
            detail,
            condition: condition.to_string(),
            trend: trend.clone(),
            left_ms: u64::try_from((every * (count - i - 1)).as_millis()).unwrap_or(u64::MAX),
        });
        match m {
            Measured::Pass(_) => streak += 1,
            Measured::Fail(seen) => {
                failed += 1;
                streak = 0;
                if failed > *failure_limit {
                    let broken: Vec<(String, f64)> = seen
                        .into_iter()
                        .filter(|(_, x)| !condition.holds(*x))
                        .collect();
                    let last = if broken.is_empty() {
                        String::new()
                    } else {
                        format!(" (last: {})", values(&broken))
                    };
                    return CheckOutcome::Failed(format!(
                        "{failed} of {} broke `{condition}`; failure limit {failure_limit}{last}",
                        measurements_n(u64::from(i + 1))
                    ));
                }
            }
            Measured::Inconclusive(why) => {
                inconclusive += 1;
                streak = 0;
                last_inconclusive = why;
            }
        }
    }
    if inconclusive > 0 {
        return CheckOutcome::Inconclusive(format!(
            "{inconclusive} of {} had no usable value (last: {last_inconclusive}); missing data never passes a check",
            measurements_n(u64::from(count))
        ));
    }
    if streak < *successes {
        return CheckOutcome::Failed(format!(
            "only {streak} consecutive passing {} at the end; {successes} required",
            if streak == 1 {
                "measurement"
            } else {
                "measurements"
            }
        ));
    }
    CheckOutcome::Passed(format!(
        "{}, {failed} failed (limit {failure_limit}), condition `{condition}`",
        measurements_n(u64::from(count))
    ))
}

/// `1 measurement`, `3 measurements`.
fn measurements_n(n: u64) -> String {
    format!("{n} measurement{}", if n == 1 { "" } else { "s" })
}

/// The value of a measurement that matters most for its trend: the first series that broke
/// the condition, else the largest.
fn worst(m: &Measured, condition: crate::runbook::condition::Condition) -> Option<f64> {
    let (Measured::Pass(v) | Measured::Fail(v)) = m else {
        return None;
    };
    v.iter()
        .map(|(_, x)| *x)
        .find(|x| !condition.holds(*x))
        .or_else(|| v.iter().map(|(_, x)| *x).reduce(f64::max))
}

pub(crate) fn values(v: &[(String, f64)]) -> String {
    v.iter()
        .map(|(s, x)| {
            let x = crate::runbook::condition::number(*x);
            if s.is_empty() { x } else { format!("{s}={x}") }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a measurement has no usable value; each kind has its own policy on the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    NoData,
    NaN,
    Infinite,
    HttpError,
    Timeout,
    Malformed,
}

impl Fault {
    fn of(e: &reqwest::Error) -> Fault {
        if e.is_timeout() {
            Fault::Timeout
        } else {
            Fault::HttpError
        }
    }

    /// The runbook key that decides this fault.
    pub fn key(self) -> &'static str {
        match self {
            Fault::NoData => "no_data",
            Fault::NaN => "on_nan",
            Fault::Infinite => "on_inf",
            Fault::HttpError => "on_http_error",
            Fault::Timeout => "on_timeout",
            Fault::Malformed => "on_malformed",
        }
    }
}

/// A measurement and, when it has no usable value, which fault it is.
async fn measure(
    client: &Prom,
    url: &str,
    query: &str,
    condition: crate::runbook::condition::Condition,
) -> (Measured, Option<Fault>) {
    let series = match fetch(client, url, query).await {
        Ok(series) => series,
        Err((fault, why)) => return (Measured::Inconclusive(why), Some(fault)),
    };
    match usable(series) {
        Err((fault, why)) => (Measured::Inconclusive(why), Some(fault)),
        Ok(seen) if seen.iter().all(|(_, x)| condition.holds(*x)) => (Measured::Pass(seen), None),
        Ok(seen) => (Measured::Fail(seen), None),
    }
}

/// One instant query: every series with a finite value, or why there is no usable answer
/// (no data, NaN or an infinity, an HTTP error, a timeout, a malformed response).
pub(crate) async fn sample(
    client: &Prom,
    url: &str,
    query: &str,
) -> Result<Vec<(String, f64)>, String> {
    usable(
        fetch(client, url, query)
            .await
            .map_err(|(_, why)| why)?
            .into_iter()
            .collect(),
    )
    .map_err(|(_, why)| why)
}

/// Missing data is no answer either: an empty result, NaN, an infinity.
fn usable(series: Vec<(String, f64)>) -> Result<Vec<(String, f64)>, (Fault, String)> {
    if series.is_empty() {
        return Err((Fault::NoData, "no data".into()));
    }
    if let Some((name, x)) = series.iter().find(|(_, x)| !x.is_finite()) {
        let fault = if x.is_nan() {
            Fault::NaN
        } else {
            Fault::Infinite
        };
        return Err((
            fault,
            format!(
                "value {x} for {}",
                if name.is_empty() { "the query" } else { name }
            ),
        ));
    }
    Ok(series)
}

/// One instant query's series, as Prometheus answered; `Err` when it did not answer usefully.
async fn fetch(
    client: &Prom,
    url: &str,
    query: &str,
) -> Result<Vec<(String, f64)>, (Fault, String)> {
    let url = match reqwest::Url::parse_with_params(url, &[("query", query)]) {
        Ok(u) => u,
        Err(e) => return Err((Fault::HttpError, format!("bad Prometheus URL: {e}"))),
    };
    let resp = match client.get(url).send().await {
        Ok(r) => r,
        Err(e) => {
            let fault = Fault::of(&e);
            return Err((fault, format!("query failed: {}", short_error(e))));
        }
    };
    let status = resp.status();
    let text = match resp.text().await {
        Ok(t) => t,
        Err(e) => {
            return Err((
                Fault::of(&e),
                format!("cannot read the response: {}", short_error(e)),
            ));
        }
    };
    if !status.is_success() {
        return Err((
            Fault::HttpError,
            format!("Prometheus answered HTTP {}", status.as_u16()),
        ));
    }
    let body: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(_) => return Err((Fault::Malformed, "the response is not JSON".into())),
    };
    if body["status"] != "success" {
        return Err((
            Fault::HttpError,
            format!(
                "Prometheus error: {}",
                body["error"].as_str().unwrap_or("unknown")
            ),
        ));
    }
    let data = &body["data"];
    let samples: Vec<(String, Option<f64>)> = match data["resultType"].as_str() {
        Some("scalar") => vec![(String::new(), sample_value(&data["result"]))],
        Some("vector") => match data["result"].as_array() {
            Some(series) => series
                .iter()
                .map(|s| (series_name(&s["metric"]), sample_value(&s["value"])))
                .collect(),
            None => return Err((Fault::Malformed, "malformed vector result".into())),
        },
        Some(other) => {
            return Err((
                Fault::Malformed,
                format!(
                    "a `{other}` result cannot be compared; use an instant vector or scalar query"
                ),
            ));
        }
        None => return Err((Fault::Malformed, "malformed response: no resultType".into())),
    };
    samples
        .into_iter()
        .map(|(name, v)| {
            v.map(|x| (name, x))
                .ok_or_else(|| (Fault::Malformed, "malformed sample".to_string()))
        })
        .collect()
}

fn sample_value(v: &serde_json::Value) -> Option<f64> {
    let s = v.get(1)?.as_str()?;
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

fn series_name(metric: &serde_json::Value) -> String {
    let Some(map) = metric.as_object() else {
        return String::new();
    };
    let name = map.get("__name__").and_then(|v| v.as_str()).unwrap_or("");
    let labels: Vec<String> = map
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.as_str()
                    .map_or_else(|| v.to_string(), |s| format!("{s:?}"))
            )
        })
        .collect();
    if labels.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", labels.join(","))
    }
}

/// `plan --live-checks`: every metric query of the plan run once, read-only, its current value
/// judged against its threshold. Queries run one after the other, each bounded by `timeout`.
pub async fn live_checks(
    plan: &mut crate::plan::Plan,
    conn: &crate::plan::PrometheusConn,
    timeout: Duration,
) {
    use crate::plan::LiveValue;
    let client = Prom::new(conn, timeout);
    let once = |query: String, prometheus: Option<String>| {
        let client = client.clone();
        async move {
            let client = client?;
            let Some(base) = prometheus else {
                return Err("no Prometheus URL".to_string());
            };
            let url = format!("{}/api/v1/query", base.trim_end_matches('/'));
            sample(&client, &url, &query).await
        }
    };
    for phase in &mut plan.phases {
        for a in &mut phase.abort_when {
            let crate::plan::ProbeView::Metric {
                query,
                condition,
                prometheus,
            } = &a.probe
            else {
                continue;
            };
            let condition = *condition;
            let got = once(query.clone(), prometheus.clone()).await;
            a.live = Some(match got {
                Err(why) => LiveValue {
                    verdict: "inconclusive",
                    values: Vec::new(),
                    detail: Some(why),
                },
                Ok(seen) => LiveValue {
                    verdict: if seen.iter().any(|(_, x)| condition.holds(*x)) {
                        "bad"
                    } else {
                        "ok"
                    },
                    values: seen,
                    detail: None,
                },
            });
        }
        let steps = phase
            .steps
            .iter_mut()
            .chain(&mut phase.gate)
            .chain(&mut phase.rollback);
        for step in steps {
            let Action::Metric {
                query,
                condition,
                prometheus,
                ..
            } = &step.action
            else {
                continue;
            };
            let got = once(query.clone(), prometheus.clone()).await;
            step.live = Some(match got {
                Err(why) => LiveValue {
                    verdict: "inconclusive",
                    values: Vec::new(),
                    detail: Some(why),
                },
                Ok(seen) => LiveValue {
                    verdict: if seen.iter().all(|(_, x)| condition.holds(*x)) {
                        "pass"
                    } else {
                        "fail"
                    },
                    values: seen,
                    detail: None,
                },
            });
        }
    }
}
