//! One reading of an abort criterion's probe: a `PromQL` query against its threshold, an HTTP
//! request against its expectations (judged as an `http` step judges its answer), or a check
//! script's exit status. A reading is bad, good, or unknown (no usable answer: not evidence
//! either way). Never touches the journal or the terminal.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::exec::checks::{Prom, sample};
use crate::plan::{Action, ProbeView};

/// What one reading found.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// The bad state: the series that meet the condition (metrics), and what was seen.
    Bad {
        values: Vec<(String, f64)>,
        detail: String,
    },
    Good,
    /// No usable answer (no data, a Prometheus error, a script that could not start).
    Unknown(String),
}

/// Takes readings of one probe; holds what it needs between them (an HTTP client).
pub struct Prober {
    probe: ProbeView,
    prom: Option<Prom>,
    http: Option<reqwest::Client>,
    /// The environment a command probe runs with (the run's `ROLLOUT_VAR_*` and ids).
    env: BTreeMap<String, String>,
}

impl Prober {
    /// `prom` is needed by metric probes only.
    pub fn new(
        probe: ProbeView,
        prom: Option<Prom>,
        env: BTreeMap<String, String>,
    ) -> Result<Prober, String> {
        let http = match &probe {
            ProbeView::Http { timeout, .. } => Some(
                reqwest::Client::builder()
                    .timeout(timeout.0)
                    .build()
                    .map_err(|e| format!("cannot create an HTTP client: {e}"))?,
            ),
            _ => None,
        };
        if matches!(
            probe,
            ProbeView::Metric {
                prometheus: None,
                ..
            }
        ) {
            return Err("no Prometheus URL (set `prometheus` on it or in [defaults], or give `--prometheus-url`)".into());
        }
        Ok(Prober {
            probe,
            prom,
            http,
            env,
        })
    }

    pub async fn read(&self) -> Reading {
        match &self.probe {
            ProbeView::Metric {
                query,
                condition,
                prometheus,
            } => {
                let (Some(client), Some(base)) = (&self.prom, prometheus) else {
                    return Reading::Unknown("no Prometheus client".into());
                };
                let url = format!("{}/api/v1/query", base.trim_end_matches('/'));
                match sample(client, &url, query).await {
                    Err(why) => Reading::Unknown(why),
                    Ok(seen) => {
                        let bad: Vec<(String, f64)> = seen
                            .into_iter()
                            .filter(|(_, x)| condition.holds(*x))
                            .collect();
                        if bad.is_empty() {
                            Reading::Good
                        } else {
                            let detail = format!(
                                "{} (bad state `{condition}`)",
                                crate::exec::checks::values(&bad)
                            );
                            Reading::Bad {
                                values: bad,
                                detail,
                            }
                        }
                    }
                }
            }
            ProbeView::Http { request, .. } => match &self.http {
                Some(client) => http_reading(client, request).await,
                None => Reading::Unknown("no HTTP client".into()),
            },
            ProbeView::Command {
                argv,
                workdir,
                env,
                timeout,
                ..
            } => {
                let mut all = self.env.clone();
                all.extend(env.clone());
                command_reading(argv, workdir, &all, timeout.0).await
            }
        }
    }
}

/// One request; any answer that does not meet the expectations, and no answer at all, is the
/// bad state: "the health endpoint fails".
async fn http_reading(client: &reqwest::Client, request: &Action) -> Reading {
    let Action::Http {
        method,
        url,
        headers,
        body,
        expect_body_regex,
        ..
    } = request
    else {
        return Reading::Unknown("not an HTTP request".into());
    };
    let regex = match expect_body_regex
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
    {
        Ok(r) => r,
        Err(e) => return Reading::Unknown(format!("bad regex: {e}")),
    };
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut req = client.request(method.clone(), url);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    if let Some(b) = body {
        req = req.body(b.clone());
    }
    let sent = Instant::now();
    let answer = match req.send().await {
        Ok(resp) => crate::exec::checks::Answer::read(resp, sent)
            .await
            .map_err(|e| {
                format!(
                    "cannot read the response: {}",
                    crate::exec::checks::short_error(e)
                )
            }),
        Err(e) => Err(format!(
            "request failed: {}",
            crate::exec::checks::short_error(e)
        )),
    };
    let verdict = answer.and_then(|a| crate::exec::checks::judge(&a, request, regex.as_ref()));
    match verdict {
        Ok(_) => Reading::Good,
        Err(why) => Reading::Bad {
            values: Vec::new(),
            detail: format!("{method} {url}: {why}"),
        },
    }
}

/// Runs the check script once, in a process group of its own that is killed if it runs past
/// `timeout`; a non-zero exit (or the timeout) is the bad state.
async fn command_reading(
    argv: &[String],
    workdir: &std::path::Path,
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> Reading {
    let Some((program, rest)) = argv.split_first() else {
        return Reading::Unknown("empty command".into());
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(rest)
        .envs(env)
        .current_dir(workdir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Reading::Unknown(format!("cannot start `{program}`: {e}")),
    };
    let group = child.id().and_then(|id| i32::try_from(id).ok());
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) if out.status.success() => Reading::Good,
        Ok(Ok(out)) => {
            let said = last_line(&out.stdout, &out.stderr);
            let how = match out.status.code() {
                Some(code) => format!("exited with code {code}"),
                None => "was killed by a signal".into(),
            };
            Reading::Bad {
                values: Vec::new(),
                detail: if said.is_empty() {
                    format!("the check {how}")
                } else {
                    format!("the check {how}: {said}")
                },
            }
        }
        Ok(Err(e)) => Reading::Unknown(format!("cannot wait for the check: {e}")),
        Err(_) => {
            if let Some(pgid) = group {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pgid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            Reading::Bad {
                values: Vec::new(),
                detail: format!(
                    "the check ran longer than its timeout of {}",
                    crate::runbook::duration::Duration(timeout)
                ),
            }
        }
    }
}

/// The last line a check printed (stderr first), to say why it failed.
fn last_line(stdout: &[u8], stderr: &[u8]) -> String {
    [stderr, stdout]
        .iter()
        .find_map(|b| {
            String::from_utf8_lossy(b)
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().chars().take(200).collect())
        })
        .unwrap_or_default()
}
