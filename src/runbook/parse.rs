//! Spanned TOML tree -> [`Runbook`] model. Reads every table through [`Table`] so that unknown
//! keys, wrong types and bad values are all reported, and registers every templated string.
//! Cross-references (ids, variables, captures) are checked afterwards by `validate`.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::condition::{Condition, parse_condition};
use super::diagnostic::{Diagnostic, did_you_mean};
use super::duration::Duration;
use super::model::{
    AbortCriterion, BasicAuth, BudgetAction, DEFAULT_SHELL, DEFAULT_TIMEOUT, DeadlineAction,
    Defaults, ErrorPolicy, FailureAction, FaultPolicies, HeaderExpectation, HttpCheck,
    JsonExpectation, KubectlDefaults, KubectlStep, Meta, MetricCheck, NoDataPolicy, NotifyFormat,
    NotifyOn, NotifyTarget, Phase, Probe, PrometheusClient, RetrySpec, Risk, Role, Runbook,
    SamplingSpec, SecretSource, ShellStep, Signatures, Signoff, Step, StepKind, VarDecl, VarType,
    VarValue, WindowSpec,
};
use super::param::{self, Param, ParamKind, ParamUse};
use super::reader::{Node, Problems, Table, as_string, type_name, wrong_type};
use super::template::{Flavor, Templates, Tpl};

pub const STEP_KINDS: [&str; 10] = [
    "run",
    "kubectl",
    "confirm",
    "checklist",
    "signoff",
    "metric",
    "http",
    "wait",
    "pause",
    "repeat",
];
/// What an abort criterion can watch.
pub const PROBE_KINDS: [&str; 3] = ["metric", "http", "command"];
/// Keys every abort criterion takes.
const ABORT_KEYS: [&str; 7] = ["id", "name", "for", "every", "action", "from", "until"];

/// Keys of one kind of abort criterion.
fn probe_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "metric" => &["condition", "prometheus"],
        "http" => &[
            "method",
            "headers",
            "body",
            "expect_status",
            "expect_body",
            "expect_body_regex",
            "expect_json",
            "expect_headers",
            "max_latency",
            "timeout",
        ],
        "command" => &["shell", "timeout"],
        _ => &[],
    }
}

const COMMON_KEYS: [&str; 11] = [
    "id",
    "name",
    "description",
    "timeout",
    "retry",
    "continue_on_error",
    "when",
    "capture",
    "on_failure",
    "idempotent",
    "deadline",
];

/// Keys that belong to one step kind only, for "`x` is only valid on ... steps".
fn kind_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "run" => &["env", "workdir", "shell"],
        "kubectl" => &["env", "context", "namespace"],
        "confirm" => &["type_to_confirm", "on_deadline"],
        "checklist" => &["on_deadline"],
        "signoff" => &[
            "roles",
            "required",
            "exclude_operator",
            "on_deadline",
            "valid_for",
        ],
        "metric" => &[
            "condition",
            "for",
            "every",
            "samples",
            "failure_limit",
            "successes",
            "no_data",
            "on_error",
            "on_nan",
            "on_inf",
            "on_http_error",
            "on_timeout",
            "on_malformed",
            "prometheus",
        ],
        "http" => &[
            "method",
            "headers",
            "body",
            "expect_status",
            "expect_body",
            "expect_body_regex",
            "expect_json",
            "expect_headers",
            "max_latency",
            "every",
        ],
        _ => &[],
    }
}

/// Where the phases' tables come from.
pub enum PhaseTables<'p, 'f> {
    /// The `phases` array of the root table: the whole file was parsed as one document.
    InRoot,
    /// Each phase's table, parsed from its own piece of the file (see [`split`]); `None` for a
    /// piece that did not parse cleanly on its own. The root holds the rest of the file.
    Pieces {
        count: usize,
        /// Each table with the start of its piece, which its keys' spans are relative to.
        tables: &'p mut dyn Iterator<Item = Option<(Spanned<DeValue<'f>>, usize)>>,
    },
}

pub struct Parser<'f> {
    pub file: &'f str,
    pub p: Problems,
    pub templates: Templates,
    /// Durations, counts and thresholds written as templates.
    pub params: Vec<ParamUse>,
    /// Where the keys of the tables being read are (see [`Table::with_key_shift`]).
    key_shift: usize,
}

impl<'f> Parser<'f> {
    pub fn new(file: &'f str) -> Self {
        Parser {
            file,
            p: Problems::default(),
            templates: Templates::default(),
            params: Vec::new(),
            key_shift: 0,
        }
    }

    /// A template standing for a value of `kind`, registered for `validate` to check.
    fn param_template<T>(
        &mut self,
        s: &Spanned<String>,
        kind: ParamKind,
        key: &'static str,
    ) -> Param<T> {
        let tpl = self.tpl(s, Flavor::Text);
        self.params.push(ParamUse { tpl, kind, key });
        Param::Template(tpl)
    }

    /// The string at `key` when it is written as a template.
    fn template_at(t: &mut Table<'_, '_>, key: &'static str) -> Option<Spanned<String>> {
        let node = t.get(key)?;
        match node.get_ref() {
            DeValue::String(text) if param::is_template(text) => {
                Some(Spanned::new(node.span(), text.to_string()))
            }
            _ => None,
        }
    }

    /// A duration, written as it is or as a template naming variables.
    fn duration_param(
        &mut self,
        t: &mut Table<'_, '_>,
        key: &'static str,
    ) -> Option<Spanned<Param<Duration>>> {
        if let Some(s) = Self::template_at(t, key) {
            let span = s.span();
            return Some(Spanned::new(
                span,
                self.param_template(&s, ParamKind::Duration, key),
            ));
        }
        t.duration(key, &mut self.p)
            .map(|d| Spanned::new(d.span(), Param::Fixed(d.into_inner())))
    }

    /// A threshold, written as it is or as a template naming variables.
    fn condition_param(
        &mut self,
        t: &mut Table<'_, '_>,
        key: &'static str,
    ) -> Option<Param<Condition>> {
        if let Some(s) = Self::template_at(t, key) {
            return Some(self.param_template(&s, ParamKind::Condition, key));
        }
        self.condition(t, key).map(Param::Fixed)
    }

    fn tpl(&mut self, s: &Spanned<String>, flavor: Flavor) -> Tpl {
        self.templates.add(s, flavor, self.file)
    }

    fn tpl_opt(&mut self, t: &mut Table<'_, '_>, key: &'static str, flavor: Flavor) -> Option<Tpl> {
        let s = t.string(key, &mut self.p)?;
        Some(self.tpl(&s, flavor))
    }

    fn non_empty(&mut self, s: &Spanned<String>, key: &str, what: &str) {
        if s.get_ref().trim().is_empty() {
            self.p.push(
                Diagnostic::new(s.span(), format!("`{key}` of {what} is empty")).label("empty"),
            );
        }
    }

    fn choice<T>(
        &mut self,
        t: &mut Table<'_, '_>,
        key: &'static str,
        names: &[&str],
        parse: fn(&str) -> Option<T>,
    ) -> Option<T> {
        let s = t.string(key, &mut self.p)?;
        if let Some(v) = parse(s.get_ref()) {
            return Some(v);
        }
        self.p.push(
            Diagnostic::new(
                s.span(),
                format!("`{}` is not a valid `{key}`", s.get_ref()),
            )
            .label(format!("expected one of: {}", names.join(", ")))
            .maybe_help(did_you_mean(s.get_ref(), names)),
        );
        None
    }

    fn condition(&mut self, t: &mut Table<'_, '_>, key: &'static str) -> Option<Condition> {
        let s = t.string(key, &mut self.p)?;
        match parse_condition(s.get_ref()) {
            Ok(c) => Some(c),
            Err(why) => {
                self.p.push(
                    Diagnostic::new(s.span(), format!("bad threshold `{}`: {why}", s.get_ref()))
                        .label("not a condition")
                        .help("write a condition like \"< 0.01\", \">= 99.9\" or \"between 0.1 and 0.5\""),
                );
                None
            }
        }
    }

    fn count(
        &mut self,
        t: &mut Table<'_, '_>,
        key: &'static str,
        min: i64,
    ) -> Option<Spanned<u32>> {
        let v = t.integer(key, &mut self.p)?;
        match u32::try_from(*v.get_ref()) {
            Ok(n) if i64::from(n) >= min => Some(Spanned::new(v.span(), n)),
            _ => {
                self.p.push(
                    Diagnostic::new(v.span(), format!("`{key}` must be at least {min}"))
                        .label("out of range"),
                );
                None
            }
        }
    }

    fn env_table(&mut self, t: &mut Table<'_, '_>, key: &'static str) -> Vec<(String, Tpl)> {
        self.named_templates(
            t,
            key,
            is_env_name,
            "environment variable name",
            "use letters, digits and `_`, not starting with a digit",
        )
    }

    /// A table of names to templates (`env`, `headers`): a name that `valid` refuses is located
    /// as not a valid `what`, with `hint` under it.
    fn named_templates(
        &mut self,
        t: &mut Table<'_, '_>,
        key: &'static str,
        valid: fn(&str) -> bool,
        what: &str,
        hint: &str,
    ) -> Vec<(String, Tpl)> {
        let Some(table) = t.table(key, format!("`{key}`"), &mut self.p) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in table.entries() {
            let name = k.get_ref().to_string();
            if !valid(&name) {
                self.p.push(
                    Diagnostic::new(k.span(), format!("`{name}` is not a valid {what}"))
                        .label(hint),
                );
            }
            if let Some(s) = as_string(v, &name, &mut self.p) {
                let tpl = self.tpl(&s, Flavor::Text);
                out.push((name, tpl));
            }
        }
        out
    }

    /// Reads the model; `None` when a phase piece (see [`PhaseTables::Pieces`]) does not parse
    /// cleanly on its own, and the whole file must be parsed as one document instead.
    pub fn runbook(
        &mut self,
        root: &Spanned<DeTable<'_>>,
        phase_tables: PhaseTables<'_, '_>,
    ) -> Option<Runbook> {
        let mut top = Table::new(root.get_ref(), root.span(), "the runbook");
        let meta = match top.get("runbook") {
            Some(node) => match Table::of(node, "runbook", "`[runbook]`", &mut self.p) {
                Some(t) => self.meta(t),
                None => Meta::default(),
            },
            None => {
                self.p.push(
                    Diagnostic::new(0..0, "the runbook has no `[runbook]` table")
                        .label("expected `[runbook]` with at least `name`")
                        .help("start the file with:\n[runbook]\nname = \"my-deploy\""),
                );
                Meta::default()
            }
        };
        let defaults = match top.table("defaults", "`[defaults]`", &mut self.p) {
            Some(t) => self.defaults(t),
            None => Defaults {
                shell: DEFAULT_SHELL.iter().map(ToString::to_string).collect(),
                workdir: None,
                env: Vec::new(),
                timeout: Param::Fixed(DEFAULT_TIMEOUT),
                kubectl: KubectlDefaults::default(),
                prometheus: None,
                prometheus_client: PrometheusClient::default(),
            },
        };
        let vars = match top.table("vars", "`[vars]`", &mut self.p) {
            Some(t) => self.vars(&t),
            None => Vec::new(),
        };
        let mut phases = Vec::new();
        match phase_tables {
            PhaseTables::InRoot => {
                let no_phases = top
                    .get("phases")
                    .is_none_or(|n| matches!(n.get_ref(), DeValue::Array(a) if a.is_empty()));
                if no_phases {
                    let span = top
                        .key_span("phases")
                        .or_else(|| top.key_span("runbook"))
                        .unwrap_or(0..0);
                    self.p.push(
                        Diagnostic::new(span, "the runbook has no phases")
                            .label("expected at least one `[[phases]]` table")
                            .help("add a phase:\n[[phases]]\nid = \"deploy\"\ntitle = \"Deploy\""),
                    );
                }
                if top.has("phases") {
                    for t in top.tables("phases", &mut self.p) {
                        phases.push(self.phase(t, phases.len() + 1));
                    }
                }
            }
            PhaseTables::Pieces { count, tables } => {
                // Not in the root, but a key the runbook knows.
                top.get("phases");
                phases.reserve_exact(count);
                for parsed in tables.take(count) {
                    // Each phase's tree lives only while its phase is read.
                    let (node, key_shift) = parsed?;
                    let t = Table::of(&node, "phases", "phases", &mut self.p)?
                        .with_key_shift(key_shift);
                    self.key_shift = key_shift;
                    phases.push(self.phase(t, phases.len() + 1));
                    self.key_shift = 0;
                }
                if phases.len() != count {
                    return None;
                }
            }
        }
        let rollback = self.step_list(&mut top, "rollback", "rollback");
        let abort_when = self.abort_list(&mut top, "abort", " of the runbook");
        let notify = if top.has("notify") {
            top.tables("notify", &mut self.p)
                .into_iter()
                .filter_map(|t| self.notify_target(t))
                .collect()
        } else {
            Vec::new()
        };
        self.misplaced_top_keys(&mut top);
        top.finish(&mut self.p);
        Some(Runbook {
            meta,
            defaults,
            vars,
            phases,
            rollback,
            notify,
            params: std::mem::take(&mut self.params),
            abort_when,
        })
    }

    /// One `[[notify]]` table.
    fn notify_target(&mut self, mut t: Table<'_, '_>) -> Option<NotifyTarget> {
        let t = &mut t;
        let url = t.required_string("url", &mut self.p);
        let format = self
            .choice(t, "format", &["json", "slack"], |s| match s {
                "json" => Some(NotifyFormat::Json),
                "slack" => Some(NotifyFormat::Slack),
                _ => None,
            })
            .unwrap_or(NotifyFormat::Json);
        let on = match t.string_list("on", &mut self.p) {
            Some(names) => names
                .iter()
                .filter_map(|n| {
                    let parsed = NotifyOn::parse(n.get_ref());
                    if parsed.is_none() {
                        self.p.push(
                            Diagnostic::new(
                                n.span(),
                                format!("`{}` is not something to notify about", n.get_ref()),
                            )
                            .label(format!("expected one of: {}", NotifyOn::NAMES.join(", ")))
                            .maybe_help(did_you_mean(n.get_ref(), &NotifyOn::NAMES)),
                        );
                    }
                    parsed
                })
                .collect(),
            None => NotifyOn::ALL.to_vec(),
        };
        t.finish(&mut self.p);
        let url = self.tpl(&url?, Flavor::Text);
        Some(NotifyTarget { url, format, on })
    }

    /// Keys of `[runbook]` or `[defaults]` written above the first table header, where TOML
    /// puts them at the top level: a common slip, so it gets its own message.
    fn misplaced_top_keys(&mut self, top: &mut Table<'_, '_>) {
        const HOMES: [(&str, &str); 11] = [
            ("name", "[runbook]"),
            ("description", "[runbook]"),
            ("owner", "[runbook]"),
            ("risk", "[runbook]"),
            ("version", "[runbook]"),
            ("shell", "[defaults]"),
            ("workdir", "[defaults]"),
            ("timeout", "[defaults]"),
            ("env", "[defaults]"),
            ("prometheus", "[defaults]"),
            ("kubectl", "[defaults]"),
        ];
        let unknown: Vec<(String, Range<usize>)> = top
            .unknown_keys()
            .map(|(k, s)| (k.to_string(), s))
            .collect();
        for (key, span) in unknown {
            if let Some((known, home)) = HOMES.iter().find(|(k, _)| *k == key) {
                top.get(known);
                self.p.push(
                    Diagnostic::new(span, format!("`{key}` belongs in the `{home}` table"))
                        .label(format!("this is outside `{home}`"))
                        .help(format!(
                            "TOML puts keys written above the first `[table]` line at the top level; move `{key}` below the `{home}` line"
                        )),
                );
            }
        }
    }

    fn meta(&mut self, mut t: Table<'_, '_>) -> Meta {
        let t = &mut t;
        let name = t.required_string("name", &mut self.p);
        if let Some(n) = &name {
            self.non_empty(n, "name", "the runbook");
        }
        let meta = Meta {
            name: name.map(Spanned::into_inner).unwrap_or_default(),
            description: t
                .string("description", &mut self.p)
                .map(Spanned::into_inner),
            owner: t.string("owner", &mut self.p).map(Spanned::into_inner),
            risk: self.choice(t, "risk", &Risk::NAMES, Risk::parse),
            version: t.get("version").and_then(|n| match n.get_ref() {
                DeValue::String(s) => Some(s.to_string()),
                DeValue::Integer(i) => Some(i.as_str().to_string()),
                DeValue::Float(f) => Some(f.as_str().to_string()),
                _ => {
                    self.p.push(wrong_type(n, "version", "a string"));
                    None
                }
            }),
            lock: self.tpl_opt(t, "lock", Flavor::Text),
            confirm_rollback: t.boolean("confirm_rollback", &mut self.p).unwrap_or(true),
            window: match t.table("window", "`[runbook.window]`", &mut self.p) {
                Some(mut w) => self.window(&mut w),
                None => None,
            },
            allowed_signers: t.string("allowed_signers", &mut self.p),
            signatures: self.choice(t, "signatures", &Signatures::NAMES, Signatures::parse),
        };
        if let Some(a) = &meta.allowed_signers {
            self.non_empty(a, "allowed_signers", "the runbook");
        }
        t.finish(&mut self.p);
        meta
    }

    /// `[runbook.window]`. Parts written as they are are checked now; templated ones when the
    /// values are known.
    fn window(&mut self, t: &mut Table<'_, '_>) -> Option<WindowSpec> {
        t.what = "`[runbook.window]`".into();
        let days = match t.get("days") {
            Some(node) => match node.get_ref() {
                DeValue::Array(_) => t.string_list("days", &mut self.p).map(|list| {
                    Spanned::new(
                        node.span(),
                        list.iter()
                            .map(|d| d.get_ref().as_str())
                            .collect::<Vec<_>>()
                            .join(","),
                    )
                }),
                _ => t.string("days", &mut self.p),
            },
            None => Some(Spanned::new(t.head_span(), "daily".to_string())),
        };
        let start = t.required_string("start", &mut self.p);
        let end = t.required_string("end", &mut self.p);
        let zone = t.required_string("time_zone", &mut self.p);
        t.finish(&mut self.p);
        let checks: [(&Option<Spanned<String>>, WindowCheck); 4] = [
            (&days, |s| super::window::parse_days(s).map(|_| ())),
            (&start, |s| super::window::parse_time(s, false).map(|_| ())),
            (&end, |s| super::window::parse_time(s, true).map(|_| ())),
            (&zone, |s| super::window::parse_zone(s).map(|_| ())),
        ];
        for (part, check) in checks {
            if let Some(p) = part {
                if !param::is_template(p.get_ref()) {
                    if let Err(why) = check(p.get_ref()) {
                        self.p
                            .push(Diagnostic::new(p.span(), why).label("in the change window"));
                    }
                }
            }
        }
        Some(WindowSpec {
            days: self.tpl(&days?, Flavor::Text),
            start: self.tpl(&start?, Flavor::Text),
            end: self.tpl(&end?, Flavor::Text),
            time_zone: self.tpl(&zone?, Flavor::Text),
        })
    }

    fn defaults(&mut self, mut t: Table<'_, '_>) -> Defaults {
        let t = &mut t;
        let shell = self
            .shell(t)
            .unwrap_or_else(|| DEFAULT_SHELL.iter().map(ToString::to_string).collect());
        let workdir = self.tpl_opt(t, "workdir", Flavor::Text);
        let env = self.env_table(t, "env");
        let timeout = self
            .duration_param(t, "timeout")
            .map_or(Param::Fixed(DEFAULT_TIMEOUT), Spanned::into_inner);
        if let Some(why) = timeout
            .fixed()
            .and_then(|d| param::interval_problem("timeout", d))
        {
            if let Some(span) = t.key_span("timeout") {
                self.p
                    .push(Diagnostic::new(span, why).label("zero timeout"));
            }
        }
        let prometheus = self.tpl_opt(t, "prometheus", Flavor::Text);
        let kubectl = match t.table("kubectl", "`[defaults.kubectl]`", &mut self.p) {
            Some(mut k) => {
                let kd = KubectlDefaults {
                    context: self.tpl_opt(&mut k, "context", Flavor::Arg),
                    namespace: self.tpl_opt(&mut k, "namespace", Flavor::Arg),
                    binary: k.string("binary", &mut self.p).map(Spanned::into_inner),
                };
                k.finish(&mut self.p);
                kd
            }
            None => KubectlDefaults::default(),
        };
        let prometheus_client = match t.table(
            "prometheus_client",
            "`[defaults.prometheus_client]`",
            &mut self.p,
        ) {
            Some(mut c) => self.prometheus_client(&mut c),
            None => PrometheusClient::default(),
        };
        let d = Defaults {
            shell,
            workdir,
            env,
            timeout,
            kubectl,
            prometheus,
            prometheus_client,
        };
        t.finish(&mut self.p);
        d
    }

    fn prometheus_client(&mut self, t: &mut Table<'_, '_>) -> PrometheusClient {
        let bearer = t.string("bearer_token", &mut self.p);
        let basic_auth = match t.table("basic_auth", "`basic_auth`", &mut self.p) {
            Some(mut b) => {
                let username = b.required_string("username", &mut self.p);
                let password = b.required_string("password", &mut self.p);
                b.finish(&mut self.p);
                match (username, password) {
                    (Some(u), Some(pw)) => Some(BasicAuth {
                        username: self.tpl(&u, Flavor::Text),
                        password: self.tpl(&pw, Flavor::Text),
                    }),
                    _ => None,
                }
            }
            None => None,
        };
        if let (Some(b), Some(_)) = (&bearer, &basic_auth) {
            self.p.push(
                Diagnostic::new(
                    b.span(),
                    "`bearer_token` and `basic_auth` cannot both be set",
                )
                .label("one of the two")
                .help(
                    "Prometheus takes one Authorization header; keep the one your server expects",
                ),
            );
        }
        let headers = self.header_table(t);
        let ca_file = t.string("ca_file", &mut self.p).map(|s| {
            self.non_empty(&s, "ca_file", "`[defaults.prometheus_client]`");
            self.tpl(&s, Flavor::Text)
        });
        let timeout = t.duration("timeout", &mut self.p).and_then(|d| {
            if d.get_ref().0.is_zero() {
                self.p.push(
                    Diagnostic::new(d.span(), "`timeout` must be greater than 0").label("zero"),
                );
                None
            } else {
                Some(d.into_inner())
            }
        });
        let client = PrometheusClient {
            bearer_token: bearer.map(|b| self.tpl(&b, Flavor::Text)),
            basic_auth,
            headers,
            ca_file,
            timeout,
        };
        t.finish(&mut self.p);
        client
    }

    /// `headers = { X-Scope-OrgID = "tenant" }`: names must be valid HTTP header names.
    fn header_table(&mut self, t: &mut Table<'_, '_>) -> Vec<(String, Tpl)> {
        self.named_templates(
            t,
            "headers",
            |name| reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok(),
            "HTTP header name",
            "letters, digits and `-`",
        )
    }

    fn shell(&mut self, t: &mut Table<'_, '_>) -> Option<Vec<String>> {
        let node = t.get("shell")?;
        let list = match node.get_ref() {
            DeValue::String(s) => vec![s.to_string(), "-c".to_string()],
            DeValue::Array(_) => t
                .string_list("shell", &mut self.p)?
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
            _ => {
                self.p.push(wrong_type(
                    node,
                    "shell",
                    "a program name or an array like [\"bash\", \"-c\"]",
                ));
                return None;
            }
        };
        if list.is_empty() || list[0].trim().is_empty() {
            self.p.push(
                Diagnostic::new(node.span(), "`shell` is empty")
                    .label("name a shell, e.g. [\"bash\", \"-c\"]"),
            );
            return None;
        }
        Some(list)
    }

    fn vars(&mut self, t: &Table<'_, '_>) -> Vec<VarDecl> {
        let mut out = Vec::new();
        for (key, node) in t.entries() {
            let name = Spanned::new(key.span(), key.get_ref().to_string());
            if !is_identifier(name.get_ref()) {
                self.p.push(
                    Diagnostic::new(key.span(), format!("`{}` is not a valid variable name", name.get_ref()))
                        .label("use lowercase letters, digits and `_`, starting with a letter")
                        .help("templates refer to variables as `{{ name }}`, so names must be identifiers"),
                );
                continue;
            }
            if RESERVED.contains(&name.get_ref().as_str()) {
                self.p.push(
                    Diagnostic::new(
                        key.span(),
                        format!("`{}` is a reserved name", name.get_ref()),
                    )
                    .label("built-in")
                    .help(format!(
                        "rollout provides {}; choose another variable name",
                        RESERVED.join(", ")
                    )),
                );
                continue;
            }
            if let DeValue::Table(table) = node.get_ref() {
                let mut vt =
                    Table::new(table, node.span(), format!("variable `{}`", name.get_ref()))
                        .with_key_shift(self.key_shift);
                out.push(self.var_decl(name, &mut vt));
                vt.finish(&mut self.p);
            } else if let Some((ty, value)) = self.var_literal(node, name.get_ref()) {
                out.push(VarDecl {
                    name,
                    ty,
                    description: None,
                    required: false,
                    allowed: Vec::new(),
                    default: Some(value),
                    secret: None,
                });
            }
        }
        out
    }

    fn var_literal(&mut self, node: &Node<'_>, key: &str) -> Option<(VarType, VarValue)> {
        Some(match node.get_ref() {
            DeValue::String(s) => (VarType::String, VarValue::String(s.to_string())),
            DeValue::Boolean(b) => (VarType::Boolean, VarValue::Boolean(*b)),
            DeValue::Integer(_) => (
                VarType::Integer,
                VarValue::Integer(*super::reader::as_integer(node, key, &mut self.p)?.get_ref()),
            ),
            DeValue::Float(_) => (
                VarType::Float,
                VarValue::Float(*super::reader::as_number(node, key, &mut self.p)?.get_ref()),
            ),
            _ => {
                self.p.push(wrong_type(
                    node,
                    key,
                    "a string, number or boolean (or a table declaring the variable)",
                ));
                return None;
            }
        })
    }

    fn typed_value(&mut self, node: &Node<'_>, key: &str, ty: VarType) -> Option<VarValue> {
        let (found, value) = self.var_literal(node, key)?;
        let value = match (ty, found, value) {
            (VarType::Duration, VarType::String, VarValue::String(s)) => {
                if let Err(why) = super::duration::parse_duration(&s) {
                    self.p.push(
                        Diagnostic::new(
                            node.span(),
                            format!("bad duration `{s}` for `{key}`: {why}"),
                        )
                        .label("not a duration"),
                    );
                    return None;
                }
                VarValue::String(s)
            }
            (VarType::Float, VarType::Integer, VarValue::Integer(i)) => VarValue::Float(i as f64),
            (want, got, v) if want == got => v,
            (want, _, _) => {
                self.p.push(
                    Diagnostic::new(
                        node.span(),
                        format!(
                            "`{key}` must be {}, found {}",
                            article(want),
                            type_name(node.get_ref())
                        ),
                    )
                    .label(format!("the variable's type is `{}`", want.name())),
                );
                return None;
            }
        };
        if let VarValue::String(s) = &value {
            if s.contains('\0') {
                self.p.push(
                    Diagnostic::new(node.span(), "a value cannot contain a NUL byte")
                        .label("NUL byte"),
                );
                return None;
            }
        }
        Some(value)
    }

    fn var_decl(&mut self, name: Spanned<String>, t: &mut Table<'_, '_>) -> VarDecl {
        let ty = self.choice(t, "type", &VarType::NAMES, VarType::parse);
        let default_node = t.get("default");
        let ty = ty.or_else(|| match default_node.map(Spanned::get_ref) {
            Some(DeValue::Integer(_)) => Some(VarType::Integer),
            Some(DeValue::Float(_)) => Some(VarType::Float),
            Some(DeValue::Boolean(_)) => Some(VarType::Boolean),
            _ => None,
        });
        let ty = ty.unwrap_or(VarType::String);
        let default = default_node.and_then(|n| self.typed_value(n, "default", ty));
        let required = t.boolean("required", &mut self.p).unwrap_or(false);
        let mut allowed = Vec::new();
        if let Some((span, items)) = t.array("allowed", &mut self.p) {
            if items.is_empty() {
                self.p.push(
                    Diagnostic::new(span, "`allowed` is empty: no value could ever be accepted")
                        .label("empty list"),
                );
            }
            for item in items {
                if let Some(v) = self.typed_value(item, "allowed", ty) {
                    allowed.push(v);
                }
            }
        }
        let secret = match t.get("secret") {
            Some(node) => self.secret(node),
            None => None,
        };
        let description = t
            .string("description", &mut self.p)
            .map(Spanned::into_inner);
        if let (Some(d), Some(node)) = (&default, default_node) {
            if !allowed.is_empty() && !allowed.contains(d) {
                self.p.push(
                    Diagnostic::new(
                        node.span(),
                        format!("default `{d}` is not one of the allowed values"),
                    )
                    .label("not allowed")
                    .help(format!(
                        "allowed: {}",
                        allowed
                            .iter()
                            .map(|v| format!("`{v}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                );
            }
            if required {
                self.p.push(
                    Diagnostic::new(
                        node.span(),
                        format!(
                            "variable `{}` is required but has a default",
                            name.get_ref()
                        ),
                    )
                    .label("a default means the variable never needs to be set")
                    .help("remove `default` or `required = true`"),
                );
            }
        }
        if secret.is_some() {
            for key in ["default", "allowed"] {
                if let Some(span) = t.key_span(key) {
                    self.p.push(
                        Diagnostic::new(span, format!("secret variable `{}` cannot have `{key}`", name.get_ref()))
                            .label("secrets come only from their source")
                            .help("a secret is read from `env`, `file` or `command` at run time and never stored"),
                    );
                }
            }
        }
        VarDecl {
            name,
            ty,
            description,
            required,
            allowed,
            default,
            secret,
        }
    }

    fn secret(&mut self, node: &Node<'_>) -> Option<SecretSource> {
        let mut t =
            Table::of(node, "secret", "`secret`", &mut self.p)?.with_key_shift(self.key_shift);
        let env = t.string("env", &mut self.p);
        let file = t.string("file", &mut self.p);
        let command = t.string("command", &mut self.p);
        let count = usize::from(env.is_some())
            + usize::from(file.is_some())
            + usize::from(command.is_some());
        t.finish(&mut self.p);
        if count != 1 {
            self.p.push(
                Diagnostic::new(node.span(), "a secret needs exactly one source")
                    .label(if count == 0 { "no source" } else { "more than one source" })
                    .help("write `secret = { env = \"NAME\" }`, `{ file = \"path\" }` or `{ command = \"...\" }`"),
            );
            return None;
        }
        if let Some(e) = env {
            if !is_env_name(e.get_ref()) {
                self.p.push(
                    Diagnostic::new(
                        e.span(),
                        format!("`{}` is not a valid environment variable name", e.get_ref()),
                    )
                    .label("invalid name"),
                );
            }
            return Some(SecretSource::Env(e.into_inner()));
        }
        if let Some(f) = file {
            self.non_empty(&f, "file", "the secret");
            return Some(SecretSource::File(f.into_inner()));
        }
        let c = command?;
        self.non_empty(&c, "command", "the secret");
        Some(SecretSource::Command(c.into_inner()))
    }

    fn phase(&mut self, mut t: Table<'_, '_>, position: usize) -> Phase {
        let t = &mut t;
        t.what = format!("phase {position}");
        let id = t
            .required_string("id", &mut self.p)
            .unwrap_or_else(|| Spanned::new(t.head_span(), format!("phase-{position}")));
        check_id(&id, "phase", &mut self.p);
        t.what = format!("phase `{}`", id.get_ref());
        let title = t
            .required_string("title", &mut self.p)
            .map(Spanned::into_inner)
            .unwrap_or_default();
        let description = t
            .string("description", &mut self.p)
            .map(Spanned::into_inner);
        let on_failure = self
            .choice(t, "on_failure", &FailureAction::NAMES, FailureAction::parse)
            .unwrap_or(FailureAction::Ask);
        let prefix = id.get_ref().clone();
        let steps = self.step_list(t, "steps", &prefix);
        let no_steps = t
            .get("steps")
            .is_none_or(|n| matches!(n.get_ref(), DeValue::Array(a) if a.is_empty()));
        if no_steps {
            self.p.push(
                Diagnostic::new(t.head_span(), format!("phase `{prefix}` has no steps"))
                    .label("expected `[[phases.steps]]` after this phase")
                    .help("a phase needs at least one step"),
            );
        }
        let gate = self.step_list(t, "gate", &format!("{prefix}-gate"));
        let rollback = self.step_list(t, "rollback", &format!("{prefix}-rollback"));
        let abort_when = self.abort_list(
            t,
            &format!("{prefix}-abort"),
            &format!(" of phase `{prefix}`"),
        );
        let skip_abort_when = t
            .string_list("skip_abort_when", &mut self.p)
            .unwrap_or_default();
        let rollback_covers = t
            .string_list("rollback_covers", &mut self.p)
            .unwrap_or_default();
        let budget = self.duration_param(t, "max_duration");
        let on_budget = self.choice(
            t,
            "on_max_duration",
            &BudgetAction::NAMES,
            BudgetAction::parse,
        );
        if budget.is_none() {
            if let (Some(_), Some(span)) = (on_budget, t.key_span("on_max_duration")) {
                self.p.push(
                    Diagnostic::new(span, "`on_max_duration` needs a `max_duration`")
                        .label("no time budget set"),
                );
            }
        }
        let max_duration =
            budget.map(|b| (b.into_inner(), on_budget.unwrap_or(BudgetAction::Warn)));
        let phase = Phase {
            span: t.span.clone(),
            id,
            title,
            description,
            on_failure,
            steps,
            gate,
            abort_when,
            skip_abort_when,
            max_duration,
            rollback,
            rollback_covers,
        };
        t.finish(&mut self.p);
        phase
    }

    /// The `abort_when` tables of `t`, with default ids `<prefix>-<n>`.
    fn abort_list(&mut self, t: &mut Table<'_, '_>, prefix: &str, of: &str) -> Vec<AbortCriterion> {
        t.tables("abort_when", &mut self.p)
            .into_iter()
            .enumerate()
            .filter_map(|(i, mut a)| {
                a.what = format!("abort criterion {}{of}", i + 1);
                self.abort_criterion(&mut a, &format!("{prefix}-{}", i + 1))
            })
            .collect()
    }

    fn step_list(&mut self, t: &mut Table<'_, '_>, key: &'static str, prefix: &str) -> Vec<Step> {
        let tables = t.tables(key, &mut self.p);
        let mut steps = Vec::with_capacity(tables.len());
        for (i, mut st) in tables.into_iter().enumerate() {
            if let Some(step) = self.step(&mut st, &format!("{prefix}-{}", i + 1)) {
                steps.push(step);
            }
        }
        steps
    }

    fn abort_criterion(
        &mut self,
        t: &mut Table<'_, '_>,
        default_id: &str,
    ) -> Option<AbortCriterion> {
        let explicit_id = t.string("id", &mut self.p);
        if let Some(id) = &explicit_id {
            check_id(id, "abort criterion", &mut self.p);
        }
        let id = explicit_id.unwrap_or_else(|| Spanned::new(t.head_span(), default_id.to_string()));
        let name = t
            .string("name", &mut self.p)
            .map_or_else(|| id.get_ref().clone(), Spanned::into_inner);
        let present: Vec<&str> = PROBE_KINDS.iter().copied().filter(|k| t.has(k)).collect();
        let kind = match present.as_slice() {
            [one] => Some(*one),
            [] => {
                self.p.push(
                    Diagnostic::new(t.head_span(), format!("{} does not say what it watches", t.what))
                        .label("expected one of `metric`, `http`, `command`")
                        .help("watch a PromQL query (`metric` with `condition`), an HTTP endpoint (`http`) or a check script (`command`)"),
                );
                None
            }
            [first, second, ..] => {
                let span = t.key_span(second).unwrap_or_else(|| t.head_span());
                for k in PROBE_KINDS {
                    t.get(k);
                }
                self.p.push(
                    Diagnostic::new(
                        span,
                        format!("{} has both `{first}` and `{second}`", t.what),
                    )
                    .label("a criterion watches one thing")
                    .help("split it into two criteria"),
                );
                None
            }
        };
        let probe = kind.and_then(|k| self.probe(t, k));
        let sustained = self.duration_param(t, "for").map_or(
            Param::Fixed(Duration(std::time::Duration::ZERO)),
            Spanned::into_inner,
        );
        let every = if kind == Some("http") {
            // Read with the request's keys.
            match &probe {
                Some(Probe::Http { check, .. }) if t.has("every") => {
                    Some(Spanned::new(0..0, check.every))
                }
                _ => None,
            }
        } else {
            self.duration_param(t, "every")
        };
        if let Some(e) = &every {
            if let Some(why) = e
                .get_ref()
                .fixed()
                .and_then(|d| param::interval_problem("every", d))
            {
                self.p
                    .push(Diagnostic::new(e.span(), why).label("zero interval"));
            }
        }
        let action = self.choice(t, "action", &["abort", "rollback", "pause"], |s| match s {
            "ask" => None,
            other => FailureAction::parse(other),
        });
        let from = t.string("from", &mut self.p);
        let until = t.string("until", &mut self.p);
        self.report_misplaced_probe_keys(t, kind);
        Some(AbortCriterion {
            id,
            name,
            probe: probe?,
            sustained,
            every: every.map_or(
                Param::Fixed(Duration(std::time::Duration::from_secs(15))),
                Spanned::into_inner,
            ),
            action,
            from,
            until,
            span: t.span.clone(),
        })
    }

    /// What a criterion of `kind` watches.
    fn probe(&mut self, t: &mut Table<'_, '_>, kind: &str) -> Option<Probe> {
        let what = t.what.clone();
        match kind {
            "metric" => {
                let query = t.string("metric", &mut self.p)?;
                self.non_empty(&query, "metric", &what);
                let query = self.tpl(&query, Flavor::Text);
                if !t.has("condition") {
                    self.p.push(
                        Diagnostic::new(t.head_span(), format!("{what} is missing `condition`"))
                            .label("e.g. condition = \"> 0.01\""),
                    );
                }
                let condition = self.condition_param(t, "condition");
                let prometheus = self.tpl_opt(t, "prometheus", Flavor::Text);
                Some(Probe::Metric {
                    query,
                    condition: condition?,
                    prometheus,
                })
            }
            "http" => {
                let timeout = self.duration_param(t, "timeout");
                if let Some(tm) = &timeout {
                    if let Some(why) = tm
                        .get_ref()
                        .fixed()
                        .and_then(|d| param::interval_problem("timeout", d))
                    {
                        self.p
                            .push(Diagnostic::new(tm.span(), why).label("zero timeout"));
                    }
                }
                let check = self.http(t)?;
                Some(Probe::Http {
                    check: Box::new(check),
                    timeout: timeout.map(Spanned::into_inner),
                })
            }
            _ => {
                let command = t.string("command", &mut self.p)?;
                self.non_empty(&command, "command", &what);
                let command = self.tpl(&command, Flavor::Shell);
                let shell = self.shell(t);
                let timeout = self.duration_param(t, "timeout").map(Spanned::into_inner);
                Some(Probe::Command {
                    command,
                    shell,
                    timeout,
                })
            }
        }
    }

    /// Unknown keys on a criterion, with a specific message for keys of another kind.
    fn report_misplaced_probe_keys(&mut self, t: &Table<'_, '_>, kind: Option<&str>) {
        let unknown: Vec<(String, Range<usize>)> =
            t.unknown_keys().map(|(k, s)| (k.to_string(), s)).collect();
        for (key, span) in unknown {
            let owner = PROBE_KINDS
                .iter()
                .find(|k| Some(**k) != kind && probe_keys(k).contains(&key.as_str()));
            let d = match (owner, kind) {
                (Some(owner), Some(kind)) => Diagnostic::new(
                    span,
                    format!(
                        "`{key}` is not valid on {} `{kind}` criterion",
                        if kind == "http" { "an" } else { "a" }
                    ),
                )
                .label(format!("`{key}` belongs to `{owner}` criteria")),
                _ => {
                    let mut known: Vec<&str> = ABORT_KEYS.to_vec();
                    if let Some(kind) = kind {
                        known.extend_from_slice(probe_keys(kind));
                        known.push(kind);
                    }
                    super::reader::unknown_key(&key, span, &t.what, &known)
                }
            };
            self.p.push(d);
        }
    }

    fn step(&mut self, t: &mut Table<'_, '_>, default_id: &str) -> Option<Step> {
        let explicit_id = t.string("id", &mut self.p);
        if let Some(id) = &explicit_id {
            check_id(id, "step", &mut self.p);
        }
        let id = explicit_id.unwrap_or_else(|| Spanned::new(t.head_span(), default_id.to_string()));
        t.what = format!("step `{}`", id.get_ref());
        let present: Vec<&str> = STEP_KINDS.iter().copied().filter(|k| t.has(k)).collect();
        let kind_name = match present.as_slice() {
            [one] => *one,
            [] => {
                let help = t
                    .unknown_keys()
                    .find_map(|(k, _)| did_you_mean(k, &STEP_KINDS))
                    .unwrap_or_else(|| {
                        "add exactly one of these keys, e.g. `run = \"make deploy\"` for a shell command".into()
                    });
                self.p.push(
                    Diagnostic::new(
                        t.head_span(),
                        format!("{} does not say what it does", t.what),
                    )
                    .label(format!(
                        "expected one of {}",
                        STEP_KINDS.map(|k| format!("`{k}`")).join(", ")
                    ))
                    .help(help),
                );
                return None;
            }
            [first, second, ..] => {
                let span = t.key_span(second).unwrap_or_else(|| t.head_span());
                self.p.push(
                    Diagnostic::new(
                        span,
                        format!("{} has both `{first}` and `{second}`", t.what),
                    )
                    .label("a step does exactly one thing")
                    .help("split it into two steps"),
                );
                return None;
            }
        };
        let kind = self.step_kind(t, kind_name);
        let name = t.string("name", &mut self.p).map(Spanned::into_inner);
        let description = t
            .string("description", &mut self.p)
            .map(Spanned::into_inner);
        let timeout = self.duration_param(t, "timeout").map(Spanned::into_inner);
        if let (Some(_), Some(span)) = (timeout, t.key_span("timeout")) {
            if !matches!(kind_name, "run" | "kubectl" | "metric" | "http") {
                let hint = if matches!(kind_name, "confirm" | "checklist" | "signoff") {
                    "a human gate is bounded with `deadline` and `on_deadline`"
                } else {
                    "only `run`, `kubectl`, `metric` and `http` steps take a timeout"
                };
                self.p.push(
                    Diagnostic::new(
                        span,
                        format!("`timeout` has no effect on a `{kind_name}` step"),
                    )
                    .label("would be ignored")
                    .help(hint),
                );
            }
        }
        if let (Some(Param::Fixed(tm)), Some(span)) = (timeout, t.key_span("timeout")) {
            if tm.is_zero() {
                self.p.push(
                    Diagnostic::new(span, "`timeout` must be longer than zero")
                        .label("zero timeout"),
                );
            }
        }
        let retry = match t.get("retry") {
            Some(node) => self.retry(node),
            None => None,
        };
        let continue_on_error = t.boolean("continue_on_error", &mut self.p).unwrap_or(false);
        let when = t.string("when", &mut self.p).map(|w| {
            self.non_empty(&w, "when", "the step");
            self.tpl(&w, Flavor::Expr)
        });
        let capture = t.string("capture", &mut self.p);
        if let Some(c) = &capture {
            if !matches!(kind_name, "run" | "kubectl" | "http") {
                self.p.push(
                    Diagnostic::new(
                        c.span(),
                        format!("`capture` is not valid on a `{kind_name}` step"),
                    )
                    .label("nothing to capture")
                    .help("only `run`, `kubectl` and `http` steps produce output to capture"),
                );
            } else if !is_identifier(c.get_ref()) {
                self.p.push(
                    Diagnostic::new(
                        c.span(),
                        format!("`{}` is not a valid variable name", c.get_ref()),
                    )
                    .label("use lowercase letters, digits and `_`"),
                );
            } else if RESERVED.contains(&c.get_ref().as_str()) {
                self.p.push(
                    Diagnostic::new(c.span(), format!("`{}` is a reserved name", c.get_ref()))
                        .label("built-in")
                        .help(format!(
                            "rollout provides {}; choose another name for the captured output",
                            RESERVED.join(", ")
                        )),
                );
            }
        }
        let on_failure = self.choice(t, "on_failure", &FailureAction::NAMES, FailureAction::parse);
        let idempotent = t.boolean("idempotent", &mut self.p).unwrap_or(false);
        let deadline = self.duration_param(t, "deadline");
        let on_deadline = if matches!(kind_name, "confirm" | "checklist" | "signoff") {
            self.choice(
                t,
                "on_deadline",
                &DeadlineAction::NAMES,
                DeadlineAction::parse,
            )
        } else {
            None
        };
        if let Some(d) = &deadline {
            if !matches!(kind_name, "confirm" | "checklist" | "signoff") {
                self.p.push(
                    Diagnostic::new(
                        d.span(),
                        format!("`deadline` is not valid on a `{kind_name}` step"),
                    )
                    .label("only human gates have deadlines")
                    .help("use `timeout` to bound commands and checks"),
                );
            }
        } else if let Some(span) = t.key_span("on_deadline") {
            if on_deadline.is_some() {
                self.p.push(
                    Diagnostic::new(span, "`on_deadline` needs a `deadline`")
                        .label("no deadline set"),
                );
            }
        }
        self.report_misplaced_keys(t, kind_name);
        let kind = kind?;
        Some(Step {
            span: t.span.clone(),
            id,
            name,
            description,
            kind,
            timeout,
            retry,
            continue_on_error,
            when,
            capture,
            on_failure,
            idempotent,
            deadline: deadline
                .map(|d| (d.into_inner(), on_deadline.unwrap_or(DeadlineAction::Abort))),
        })
    }

    /// Unknown keys on a step, with a specific message for keys of another step kind.
    fn report_misplaced_keys(&mut self, t: &Table<'_, '_>, kind_name: &str) {
        let unknown: Vec<(String, Range<usize>)> =
            t.unknown_keys().map(|(k, s)| (k.to_string(), s)).collect();
        for (key, span) in unknown {
            let owner = STEP_KINDS
                .iter()
                .find(|k| kind_keys(k).contains(&key.as_str()));
            let d = if let Some(owner) = owner {
                Diagnostic::new(
                    span,
                    format!("`{key}` is not valid on a `{kind_name}` step"),
                )
                .label(format!("`{key}` belongs to `{owner}` steps"))
            } else {
                let mut known: Vec<&str> = COMMON_KEYS.to_vec();
                known.extend_from_slice(kind_keys(kind_name));
                known.push(kind_name);
                super::reader::unknown_key(&key, span, &t.what, &known)
            };
            self.p.push(d);
        }
    }

    fn retry(&mut self, node: &Node<'_>) -> Option<RetrySpec> {
        if let DeValue::Integer(_) = node.get_ref() {
            let n = super::reader::as_integer(node, "retry", &mut self.p)?;
            return self.retry_attempts(&n).map(|attempts| RetrySpec {
                attempts,
                delay: Param::Fixed(Duration(std::time::Duration::from_secs(5))),
                backoff: 2.0,
                max_delay: None,
            });
        }
        let mut t =
            Table::of(node, "retry", "`retry`", &mut self.p)?.with_key_shift(self.key_shift);
        let attempts = t.integer("attempts", &mut self.p);
        if attempts.is_none() && !t.has("attempts") {
            self.p.push(
                Diagnostic::new(node.span(), "`retry` is missing `attempts`")
                    .label("e.g. retry = { attempts = 3, delay = \"10s\" }"),
            );
        }
        let attempts = attempts.and_then(|n| self.retry_attempts(&n));
        let delay = self.duration_param(&mut t, "delay").map_or(
            Param::Fixed(Duration(std::time::Duration::from_secs(5))),
            Spanned::into_inner,
        );
        let backoff = t.number("backoff", &mut self.p);
        if let Some(b) = &backoff {
            if !(1.0..=10.0).contains(b.get_ref()) {
                self.p.push(
                    Diagnostic::new(b.span(), "`backoff` must be between 1 and 10")
                        .label("a multiplier for the delay after each attempt"),
                );
            }
        }
        let max_delay = self
            .duration_param(&mut t, "max_delay")
            .map(Spanned::into_inner);
        t.finish(&mut self.p);
        Some(RetrySpec {
            attempts: attempts?,
            delay,
            backoff: backoff.map_or(2.0, Spanned::into_inner),
            max_delay,
        })
    }

    fn retry_attempts(&mut self, n: &Spanned<i64>) -> Option<u32> {
        match u32::try_from(*n.get_ref()) {
            Ok(a) if (1..=100).contains(&a) => Some(a),
            _ => {
                self.p.push(
                    Diagnostic::new(n.span(), "retry `attempts` must be between 1 and 100")
                        .label("out of range"),
                );
                None
            }
        }
    }

    fn step_kind(&mut self, t: &mut Table<'_, '_>, kind: &str) -> Option<StepKind> {
        let what = t.what.clone();
        match kind {
            "run" => {
                let command = t.string("run", &mut self.p)?;
                self.non_empty(&command, "run", &what);
                let command = self.tpl(&command, Flavor::Shell);
                let shell = self.shell(t);
                let env = self.env_table(t, "env");
                let workdir = self.tpl_opt(t, "workdir", Flavor::Text);
                Some(StepKind::Shell(ShellStep {
                    command,
                    shell,
                    env,
                    workdir,
                }))
            }
            "kubectl" => {
                if let Some(node) = t.get("kubectl") {
                    if let DeValue::String(line) = node.get_ref() {
                        let words: Vec<String> = line
                            .split_whitespace()
                            .map(|w| format!("{:?}", w.trim_matches(['\'', '"'])))
                            .collect();
                        self.p.push(
                            wrong_type(node, "kubectl", "a list of arguments")
                                .help(format!(
                                    "kubectl arguments are a list, one element per argument (no shell splits them): kubectl = [{}]",
                                    words.join(", ")
                                )),
                        );
                        return None;
                    }
                }
                let (span, items) = t.array("kubectl", &mut self.p)?;
                if items.is_empty() {
                    self.p.push(
                        Diagnostic::new(span, format!("`kubectl` of {what} has no arguments"))
                            .label("empty")
                            .help("write the arguments as a list, e.g. kubectl = [\"rollout\", \"status\", \"deployment/web\"]"),
                    );
                }
                let mut args = Vec::new();
                for item in items {
                    if let Some(s) = as_string(item, "kubectl", &mut self.p) {
                        args.push(self.tpl(&s, Flavor::Arg));
                    }
                }
                let context = self.tpl_opt(t, "context", Flavor::Arg);
                let namespace = self.tpl_opt(t, "namespace", Flavor::Arg);
                let env = self.env_table(t, "env");
                Some(StepKind::Kubectl(KubectlStep {
                    args,
                    context,
                    namespace,
                    env,
                }))
            }
            "confirm" => {
                let q = t.string("confirm", &mut self.p)?;
                self.non_empty(&q, "confirm", &what);
                let question = self.tpl(&q, Flavor::Text);
                let type_to_confirm = t.string("type_to_confirm", &mut self.p).map(|w| {
                    self.non_empty(&w, "type_to_confirm", &what);
                    self.tpl(&w, Flavor::Text)
                });
                Some(StepKind::Confirm {
                    question,
                    type_to_confirm,
                })
            }
            "checklist" => {
                let (span, items) = t.array("checklist", &mut self.p)?;
                if items.is_empty() {
                    self.p.push(
                        Diagnostic::new(span, format!("the checklist of {what} has no items"))
                            .label("empty"),
                    );
                }
                let mut out = Vec::new();
                for item in items {
                    if let Some(s) = as_string(item, "checklist", &mut self.p) {
                        self.non_empty(&s, "checklist item", &what);
                        out.push(self.tpl(&s, Flavor::Text));
                    }
                }
                Some(StepKind::Checklist { items: out })
            }
            "signoff" => self.signoff(t).map(StepKind::Signoff),
            "metric" => self.metric(t).map(|m| StepKind::Metric(Box::new(m))),
            "http" => self.http(t).map(|h| StepKind::Http(Box::new(h))),
            "wait" => {
                let d = self.duration_param(t, "wait")?;
                Some(StepKind::Wait {
                    duration: d.into_inner(),
                })
            }
            "repeat" => {
                let target = t.string("repeat", &mut self.p)?;
                Some(StepKind::Repeat { target })
            }
            "pause" => {
                let m = t.string("pause", &mut self.p)?;
                Some(StepKind::Pause {
                    message: self.tpl(&m, Flavor::Text),
                })
            }
            _ => None,
        }
    }

    fn signoff(&mut self, t: &mut Table<'_, '_>) -> Option<Signoff> {
        let title = t.string("signoff", &mut self.p)?;
        let title = self.tpl(&title, Flavor::Text);
        let mut roles = Vec::new();
        let roles_span = match t.array("roles", &mut self.p) {
            Some((span, items)) => {
                for item in items {
                    if let Some(role) = self.role(item) {
                        roles.push(role);
                    }
                }
                span
            }
            None => {
                if !t.has("roles") {
                    self.p.push(
                        Diagnostic::new(t.head_span(), format!("{} is missing `roles`", t.what))
                            .label("who must sign?")
                            .help("e.g. roles = [\"Backend Lead\", \"QA Lead\"]"),
                    );
                }
                t.head_span()
            }
        };
        if roles.is_empty() && t.has("roles") {
            self.p.push(
                Diagnostic::new(roles_span.clone(), "a sign-off needs at least one role")
                    .label("empty"),
            );
        }
        for (i, r) in roles.iter().enumerate() {
            if roles[..i]
                .iter()
                .any(|o| o.name.get_ref() == r.name.get_ref())
            {
                self.p.push(
                    Diagnostic::new(
                        r.name.span(),
                        format!("role `{}` is listed twice", r.name.get_ref()),
                    )
                    .label("duplicate role"),
                );
            }
        }
        let required = match t.integer("required", &mut self.p) {
            Some(n) => {
                let v = usize::try_from(*n.get_ref()).unwrap_or(0);
                if v == 0 {
                    self.p.push(
                        Diagnostic::new(n.span(), "`required` must be at least 1")
                            .label("no one would need to sign"),
                    );
                } else if v > roles.len() && !roles.is_empty() {
                    self.p.push(
                        Diagnostic::new(
                            n.span(),
                            format!(
                                "the sign-off needs {v} signers but lists only {} role{}",
                                roles.len(),
                                if roles.len() == 1 { "" } else { "s" }
                            ),
                        )
                        .label("more signers than roles")
                        .help("each role signs once: lower `required` or add roles"),
                    );
                }
                Spanned::new(n.span(), v)
            }
            None => Spanned::new(t.key_span("roles").unwrap_or(roles_span), roles.len()),
        };
        if roles
            .iter()
            .all(|r| r.approvers.as_ref().is_some_and(|a| !a.is_empty()))
            && !roles.is_empty()
            && *required.get_ref() <= roles.len()
        {
            let mut people: Vec<&str> = roles
                .iter()
                .flat_map(|r| r.approvers.iter().flatten().map(|a| a.get_ref().as_str()))
                .collect();
            people.sort_unstable();
            people.dedup();
            if people.len() < *required.get_ref() {
                self.p.push(
                    Diagnostic::new(
                        required.span(),
                        format!(
                            "the sign-off needs {} signer{} but only {} {} allowed to sign",
                            required.get_ref(),
                            if *required.get_ref() == 1 { "" } else { "s" },
                            people.len(),
                            if people.len() == 1 {
                                "person is"
                            } else {
                                "people are"
                            }
                        ),
                    )
                    .label("can never be satisfied")
                    .help("one person cannot sign twice: add approvers or lower `required`"),
                );
            }
        }
        let exclude_operator = t.boolean("exclude_operator", &mut self.p).unwrap_or(false);
        let valid_for = t
            .duration("valid_for", &mut self.p)
            .map(Spanned::into_inner);
        Some(Signoff {
            title,
            roles,
            required,
            exclude_operator,
            valid_for,
        })
    }

    fn role(&mut self, node: &Node<'_>) -> Option<Role> {
        match node.get_ref() {
            DeValue::String(s) => {
                let name = Spanned::new(node.span(), s.to_string());
                self.non_empty(&name, "role", "the sign-off");
                Some(Role {
                    name,
                    approvers: None,
                })
            }
            DeValue::Table(_) => {
                let mut t = Table::of(node, "roles", "a sign-off role", &mut self.p)?
                    .with_key_shift(self.key_shift);
                let name = t.required_string("role", &mut self.p);
                let approvers = t.string_list("approvers", &mut self.p);
                if let (Some(a), Some(span)) = (&approvers, t.key_span("approvers")) {
                    if a.is_empty() {
                        self.p.push(
                            Diagnostic::new(
                                span,
                                "`approvers` is empty: nobody could sign for this role",
                            )
                            .label("empty list"),
                        );
                    }
                }
                t.finish(&mut self.p);
                Some(Role {
                    name: name?,
                    approvers,
                })
            }
            _ => {
                self.p.push(wrong_type(
                    node,
                    "roles",
                    "a role name or { role = \"...\", approvers = [...] }",
                ));
                None
            }
        }
    }

    fn metric(&mut self, t: &mut Table<'_, '_>) -> Option<MetricCheck> {
        let what = t.what.clone();
        let q = t.string("metric", &mut self.p)?;
        if q.get_ref().trim().is_empty() {
            self.p.push(
                Diagnostic::new(q.span(), format!("the query of {what} is empty"))
                    .label("empty query")
                    .help(
                        "write a PromQL query, e.g. metric = 'sum(rate(http_requests_total[5m]))'",
                    ),
            );
        }
        let query = self.tpl(&q, Flavor::Text);
        if !t.has("condition") {
            self.p.push(
                Diagnostic::new(t.head_span(), format!("{what} is missing `condition`"))
                    .label("e.g. condition = \"< 0.01\""),
            );
        }
        let condition = self.condition_param(t, "condition");
        let sampling = self.sampling(t);
        let failure_limit = self.count(t, "failure_limit", 0);
        let successes = self.count(t, "successes", 1);
        let no_data = self
            .choice(t, "no_data", &NoDataPolicy::NAMES, NoDataPolicy::parse)
            .unwrap_or(NoDataPolicy::Inconclusive);
        let on_error = self
            .choice(t, "on_error", &ErrorPolicy::NAMES, ErrorPolicy::parse)
            .unwrap_or(ErrorPolicy::Inconclusive);
        let faults = FaultPolicies {
            on_nan: self.choice(t, "on_nan", &NoDataPolicy::NAMES, NoDataPolicy::parse),
            on_inf: self.choice(t, "on_inf", &NoDataPolicy::NAMES, NoDataPolicy::parse),
            on_http_error: self.choice(t, "on_http_error", &ErrorPolicy::NAMES, ErrorPolicy::parse),
            on_timeout: self.choice(t, "on_timeout", &ErrorPolicy::NAMES, ErrorPolicy::parse),
            on_malformed: self.choice(t, "on_malformed", &ErrorPolicy::NAMES, ErrorPolicy::parse),
        };
        let prometheus = self.tpl_opt(t, "prometheus", Flavor::Text);
        // Written values are checked now; templated ones when the plan resolves them.
        if let Some(Some(Ok(resolved))) = sampling.map(fixed_sampling) {
            let limits = param::limits_problem(
                resolved,
                failure_limit.as_ref().map(|n| *n.get_ref()),
                successes.as_ref().map(|n| *n.get_ref()),
            );
            if let Some(m) = limits {
                if let Some(span) = t.key_span(m.key) {
                    self.p.push(misfit(span, m));
                }
            }
        }
        Some(MetricCheck {
            query,
            condition: condition?,
            sampling: sampling?,
            failure_limit: failure_limit.map_or(0, Spanned::into_inner),
            successes: successes.map_or(1, Spanned::into_inner),
            no_data,
            on_error,
            faults,
            prometheus,
        })
    }

    /// `for`, `samples` and `every`. Written values that do not fit together are reported here;
    /// templated ones when they are resolved.
    fn sampling(&mut self, t: &mut Table<'_, '_>) -> Option<SamplingSpec> {
        let window = self.duration_param(t, "for");
        let samples = match Self::template_at(t, "samples") {
            Some(s) => Some(Spanned::new(
                s.span(),
                self.param_template(&s, ParamKind::Count, "samples"),
            )),
            None => self
                .count(t, "samples", 1)
                .map(|n| Spanned::new(n.span(), Param::Fixed(n.into_inner()))),
        };
        let every = self.duration_param(t, "every");
        let spec = SamplingSpec {
            window: window.as_ref().map(|w| *w.get_ref()),
            samples: samples.as_ref().map(|n| *n.get_ref()),
            every: every.as_ref().map(|e| *e.get_ref()),
        };
        if let Some(Err(m)) = fixed_sampling(spec) {
            let span = match m.key {
                "every" => every.as_ref().map(Spanned::span),
                "samples" => samples.as_ref().map(Spanned::span),
                _ => window.as_ref().map(Spanned::span),
            };
            self.p
                .push(misfit(span.unwrap_or_else(|| t.head_span()), m));
            return None;
        }
        Some(spec)
    }

    fn http(&mut self, t: &mut Table<'_, '_>) -> Option<HttpCheck> {
        let what = t.what.clone();
        let url = t.string("http", &mut self.p)?;
        let raw = url.get_ref().trim();
        if !(raw.starts_with("http://") || raw.starts_with("https://") || raw.starts_with("{{")) {
            self.p.push(
                Diagnostic::new(
                    url.span(),
                    format!("the URL of {what} must start with http:// or https://"),
                )
                .label("not an HTTP URL"),
            );
        }
        let url = self.tpl(&url, Flavor::Text);
        let method = match t.string("method", &mut self.p) {
            Some(m) => {
                const METHODS: [&str; 7] =
                    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
                if !METHODS.contains(&m.get_ref().as_str()) {
                    self.p.push(
                        Diagnostic::new(
                            m.span(),
                            format!("`{}` is not an HTTP method", m.get_ref()),
                        )
                        .label(format!("expected one of {}", METHODS.join(", ")))
                        .maybe_help(did_you_mean(&m.get_ref().to_uppercase(), &METHODS)),
                    );
                }
                m.into_inner()
            }
            None => "GET".into(),
        };
        let headers = self.env_like_headers(t);
        let body = self.tpl_opt(t, "body", Flavor::Text);
        let expect_status = match t.get("expect_status") {
            None => vec![200],
            Some(node) => {
                let nodes: Vec<&Node<'_>> = match node.get_ref() {
                    DeValue::Array(a) => a.iter().collect(),
                    _ => vec![node],
                };
                nodes
                    .into_iter()
                    .filter_map(|n| {
                        let v = super::reader::as_integer(n, "expect_status", &mut self.p)?;
                        match u16::try_from(*v.get_ref()) {
                            Ok(code) if (100..=599).contains(&code) => Some(code),
                            _ => {
                                self.p.push(
                                    Diagnostic::new(
                                        v.span(),
                                        format!("`{}` is not an HTTP status code", v.get_ref()),
                                    )
                                    .label("expected 100..599"),
                                );
                                None
                            }
                        }
                    })
                    .collect()
            }
        };
        let expect_body = self.tpl_opt(t, "expect_body", Flavor::Text);
        let expect_body_regex = t.string("expect_body_regex", &mut self.p).and_then(|r| {
            match regex_check(r.get_ref()) {
                Ok(()) => Some(r.into_inner()),
                Err(why) => {
                    self.p.push(
                        Diagnostic::new(r.span(), format!("bad regular expression: {why}"))
                            .label("invalid regex"),
                    );
                    None
                }
            }
        });
        let expect_json = match t.table("expect_json", "`expect_json`", &mut self.p) {
            Some(mut j) => {
                let pointer = j.required_string("pointer", &mut self.p);
                if let Some(p) = &pointer {
                    if !(p.get_ref().is_empty() || p.get_ref().starts_with('/')) {
                        self.p.push(
                            Diagnostic::new(
                                p.span(),
                                format!("`{}` is not a JSON pointer", p.get_ref()),
                            )
                            .label("a JSON pointer starts with `/`, e.g. \"/status\""),
                        );
                    }
                }
                let equals = j.get("equals").map(|n| toml_value(n.get_ref()));
                let condition = if j.has("condition") {
                    self.condition_param(&mut j, "condition")
                } else {
                    None
                };
                let expectation = match (equals, condition) {
                    (Some(v), None) => Some(JsonExpectation::Equals(v)),
                    (None, Some(c)) => Some(JsonExpectation::Condition(c)),
                    (None, None) => {
                        if !j.has("condition") {
                            self.p.push(
                                Diagnostic::new(
                                    j.head_span(),
                                    "`expect_json` needs `equals` or `condition`",
                                )
                                .label("what should the value be?"),
                            );
                        }
                        None
                    }
                    (Some(_), Some(_)) => {
                        self.p.push(
                            Diagnostic::new(
                                j.head_span(),
                                "`expect_json` takes `equals` or `condition`, not both",
                            )
                            .label("remove one"),
                        );
                        None
                    }
                };
                j.finish(&mut self.p);
                pointer.zip(expectation).map(|(p, e)| (p.into_inner(), e))
            }
            None => None,
        };
        let expect_headers = self.expect_headers(t);
        let max_latency = self
            .duration_param(t, "max_latency")
            .map(Spanned::into_inner);
        let every = self.duration_param(t, "every");
        if let Some(e) = &every {
            if let Some(why) = e
                .get_ref()
                .fixed()
                .and_then(|d| param::interval_problem("every", d))
            {
                self.p
                    .push(Diagnostic::new(e.span(), why).label("zero interval"));
            }
        }
        let every = every.map_or(
            Param::Fixed(Duration(std::time::Duration::from_secs(5))),
            Spanned::into_inner,
        );
        Some(HttpCheck {
            url,
            method,
            headers,
            body,
            expect_status,
            expect_body,
            expect_body_regex,
            expect_json,
            expect_headers,
            max_latency,
            every,
        })
    }

    /// `expect_headers = { Name = true | false | "value" | { equals = "..." } | { regex = "..." } }`.
    fn expect_headers(
        &mut self,
        t: &mut Table<'_, '_>,
    ) -> Vec<(Spanned<String>, HeaderExpectation)> {
        let Some(table) = t.table("expect_headers", "`expect_headers`", &mut self.p) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in table.entries() {
            let name = Spanned::new(k.span(), k.get_ref().to_string());
            if reqwest::header::HeaderName::from_bytes(name.get_ref().as_bytes()).is_err() {
                self.p.push(
                    Diagnostic::new(
                        name.span(),
                        format!("`{}` is not a valid HTTP header name", name.get_ref()),
                    )
                    .label("letters, digits and `-`"),
                );
                continue;
            }
            let expectation = match v.get_ref() {
                DeValue::Boolean(true) => Some(HeaderExpectation::Present),
                DeValue::Boolean(false) => Some(HeaderExpectation::Absent),
                DeValue::String(s) => {
                    let s = Spanned::new(v.span(), s.to_string());
                    Some(HeaderExpectation::Equals(self.tpl(&s, Flavor::Text)))
                }
                DeValue::Table(_) => {
                    let mut h = Table::of(
                        v,
                        "expect_headers",
                        format!("the expectation of header `{}`", name.get_ref()),
                        &mut self.p,
                    )
                    .map(|h| h.with_key_shift(self.key_shift));
                    match h.as_mut() {
                        Some(h) => {
                            let equals = h.string("equals", &mut self.p);
                            let regex = h.string("regex", &mut self.p);
                            h.finish(&mut self.p);
                            match (equals, regex) {
                                (Some(e), None) => {
                                    Some(HeaderExpectation::Equals(self.tpl(&e, Flavor::Text)))
                                }
                                (None, Some(r)) => match regex_check(r.get_ref()) {
                                    Ok(()) => Some(HeaderExpectation::Matches(r.into_inner())),
                                    Err(why) => {
                                        self.p.push(
                                            Diagnostic::new(
                                                r.span(),
                                                format!("bad regular expression: {why}"),
                                            )
                                            .label("invalid regex"),
                                        );
                                        None
                                    }
                                },
                                (e, _) => {
                                    self.p.push(
                                        Diagnostic::new(v.span(), format!(
                                            "header `{}` needs `equals` or `regex`{}",
                                            name.get_ref(),
                                            if e.is_some() { ", not both" } else { "" }
                                        ))
                                        .label("what should the header be?")
                                        .help("write `true` (present), `false` (absent), a value, `{ equals = \"...\" }` or `{ regex = \"...\" }`"),
                                    );
                                    None
                                }
                            }
                        }
                        None => None,
                    }
                }
                _ => {
                    self.p.push(wrong_type(
                        v,
                        name.get_ref(),
                        "`true`, `false`, a value or `{ regex = \"...\" }`",
                    ));
                    None
                }
            };
            if let Some(e) = expectation {
                out.push((name, e));
            }
        }
        out
    }

    fn env_like_headers(&mut self, t: &mut Table<'_, '_>) -> Vec<(String, Tpl)> {
        let Some(h) = t.table("headers", "`headers`", &mut self.p) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in h.entries() {
            if let Some(s) = as_string(v, k.get_ref(), &mut self.p) {
                let tpl = self.tpl(&s, Flavor::Text);
                out.push((k.get_ref().to_string(), tpl));
            }
        }
        out
    }
}

pub const RESERVED: [&str; 5] = ["run", "phase", "step", "env", "loop"];

pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_id(id: &Spanned<String>, what: &str, p: &mut Problems) {
    let s = id.get_ref();
    let mut chars = s.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        p.push(
            Diagnostic::new(id.span(), format!("`{s}` is not a valid {what} id"))
                .label("use lowercase letters, digits, `-` and `_`")
                .help("ids appear in commands like `rollout resume` and in the audit log, so they are kept simple"),
        );
    }
}

/// Checks one part of `[runbook.window]` written as it is.
type WindowCheck = fn(&str) -> Result<(), String>;

fn misfit(span: Range<usize>, m: param::Misfit) -> Diagnostic {
    Diagnostic::new(span, m.message)
        .label(m.label)
        .maybe_help(m.help)
}

/// The sampling of a spec written without templates, or `None` when part of it is templated.
fn fixed_sampling(spec: SamplingSpec) -> Option<Result<super::model::Sampling, param::Misfit>> {
    let window = match spec.window {
        Some(w) => Some(w.fixed()?),
        None => None,
    };
    let samples = match spec.samples {
        Some(n) => Some(n.fixed()?),
        None => None,
    };
    let every = match spec.every {
        Some(e) => Some(e.fixed()?),
        None => None,
    };
    Some(param::sampling(window, samples, every))
}

fn article(t: VarType) -> &'static str {
    match t {
        VarType::String => "a string",
        VarType::Integer => "an integer",
        VarType::Boolean => "a boolean",
        VarType::Duration => "a duration string like \"10m\"",
        VarType::Float => "a number",
    }
}

fn regex_check(pattern: &str) -> Result<(), String> {
    regex::Regex::new(pattern).map(|_| ()).map_err(|e| {
        e.to_string()
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string()
    })
}

fn toml_value(v: &DeValue<'_>) -> toml::Value {
    match v {
        DeValue::String(s) => toml::Value::String(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
            .map_or(toml::Value::String(i.as_str().into()), toml::Value::Integer),
        DeValue::Float(f) => f
            .as_str()
            .replace('_', "")
            .parse()
            .map_or(toml::Value::String(f.as_str().into()), toml::Value::Float),
        DeValue::Boolean(b) => toml::Value::Boolean(*b),
        DeValue::Datetime(d) => toml::Value::Datetime(*d),
        DeValue::Array(a) => {
            toml::Value::Array(a.iter().map(|n| toml_value(n.get_ref())).collect())
        }
        DeValue::Table(t) => toml::Value::Table(
            t.iter()
                .map(|(k, n)| (k.get_ref().to_string(), toml_value(n.get_ref())))
                .collect(),
        ),
    }
}
