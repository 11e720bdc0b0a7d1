//! `rollout new`: a runbook written from one of the templates in `templates/` (tera, embedded in
//! the binary). Every value the operator gives is checked here and written only as a quoted
//! TOML string in `[vars]`, so no value can break the file or smuggle in a template
//! expression; the steps refer to the values as `{{ service }}` and friends. Writes nothing but
//! the one rendered string; the caller decides where it goes.

use crate::cli::Template;

const HEADER: &str = include_str!("../templates/_header.toml.tera");

impl Template {
    pub const ALL: [Template; 4] = [
        Template::Canary,
        Template::BlueGreen,
        Template::Rolling,
        Template::Basic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Template::Canary => "canary",
            Template::BlueGreen => "blue-green",
            Template::Rolling => "rolling",
            Template::Basic => "basic",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Template::Canary => include_str!("../templates/canary.toml.tera"),
            Template::BlueGreen => include_str!("../templates/blue-green.toml.tera"),
            Template::Rolling => include_str!("../templates/rolling.toml.tera"),
            Template::Basic => include_str!("../templates/basic.toml.tera"),
        }
    }

    fn risk(self) -> &'static str {
        match self {
            Template::Basic | Template::Rolling => "medium",
            Template::Canary | Template::BlueGreen => "high",
        }
    }
}

/// One value a template needs: how it is asked for, and what makes it acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Service,
    Namespace,
    Image,
    Context,
    Prometheus,
    Owner,
}

impl Field {
    /// In the order they are asked for.
    pub const ALL: [Field; 6] = [
        Field::Service,
        Field::Namespace,
        Field::Image,
        Field::Context,
        Field::Prometheus,
        Field::Owner,
    ];

    pub fn flag(self) -> &'static str {
        match self {
            Field::Service => "--service",
            Field::Namespace => "--namespace",
            Field::Image => "--image",
            Field::Context => "--context",
            Field::Prometheus => "--prometheus",
            Field::Owner => "--owner",
        }
    }

    pub fn prompt(self) -> &'static str {
        match self {
            Field::Service => "Service (Deployment) name",
            Field::Namespace => "Kubernetes namespace",
            Field::Image => "Image to roll out",
            Field::Context => "kubectl context (empty: the current context)",
            Field::Prometheus => "Prometheus URL (empty: from --prometheus-url or the user config)",
            Field::Owner => "Owner (team or person; empty: none)",
        }
    }

    pub fn required(self) -> bool {
        matches!(self, Field::Service | Field::Namespace | Field::Image)
    }

    /// Checks a value; the error says what is wrong, for "invalid value for --flag: ...".
    pub fn check(self, value: &str) -> Result<(), String> {
        if value.trim().is_empty() {
            return Err("it is empty".into());
        }
        if value.chars().any(char::is_control) {
            return Err("it contains a control character (a newline, tab, ...)".into());
        }
        match self {
            Field::Service | Field::Namespace => dns_label(value),
            Field::Image | Field::Context => {
                if value
                    .chars()
                    .any(|c| c.is_whitespace() || c == '"' || c == '\'')
                {
                    Err("it contains a space or a quote".into())
                } else if value.contains("{{") || value.contains("{%") {
                    Err("it contains `{{` or `{%`, which runbooks read as a template".into())
                } else {
                    Ok(())
                }
            }
            Field::Prometheus => {
                if !(value.starts_with("http://") || value.starts_with("https://")) {
                    Err("it must start with http:// or https://".into())
                } else if value
                    .chars()
                    .any(|c| c.is_whitespace() || c == '"' || c == '\'')
                {
                    Err("it contains a space or a quote".into())
                } else {
                    Ok(())
                }
            }
            Field::Owner => Ok(()),
        }
    }
}

/// Kubernetes names: lowercase letters, digits and `-`, at most 63, starting and ending with a
/// letter or digit.
fn dns_label(value: &str) -> Result<(), String> {
    let ok = value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err("use at most 63 lowercase letters, digits and `-`, not starting or ending with `-` (a Kubernetes name)".into())
    }
}

/// The values a template is filled with.
#[derive(Debug, Default, Clone)]
pub struct Values {
    pub service: Option<String>,
    pub namespace: Option<String>,
    pub image: Option<String>,
    pub context: Option<String>,
    pub prometheus: Option<String>,
    pub owner: Option<String>,
}

impl Values {
    pub fn get(&self, field: Field) -> Option<&str> {
        match field {
            Field::Service => self.service.as_deref(),
            Field::Namespace => self.namespace.as_deref(),
            Field::Image => self.image.as_deref(),
            Field::Context => self.context.as_deref(),
            Field::Prometheus => self.prometheus.as_deref(),
            Field::Owner => self.owner.as_deref(),
        }
    }

    pub fn set(&mut self, field: Field, value: Option<String>) {
        let slot = match field {
            Field::Service => &mut self.service,
            Field::Namespace => &mut self.namespace,
            Field::Image => &mut self.image,
            Field::Context => &mut self.context,
            Field::Prometheus => &mut self.prometheus,
            Field::Owner => &mut self.owner,
        };
        *slot = value;
    }

    /// Every problem with the given values, as (flag, why).
    pub fn problems(&self) -> Vec<(Field, String)> {
        Field::ALL
            .iter()
            .filter_map(|&f| {
                let v = self.get(f)?;
                f.check(v).err().map(|why| (f, why))
            })
            .collect()
    }

    /// The required fields still without a value.
    pub fn missing(&self) -> Vec<Field> {
        Field::ALL
            .iter()
            .copied()
            .filter(|f| f.required() && self.get(*f).is_none())
            .collect()
    }
}

/// A TOML basic string holding `value` exactly.
fn quoted(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

/// The runbook text for `template` with `values` (all checked, required ones present).
pub fn render(template: Template, values: &Values) -> Result<String, String> {
    let mut tera = tera::Tera::new();
    tera.add_raw_templates([("header", HEADER), (template.name(), template.text())])
        .map_err(|e| format!("template `{}` is broken: {e}", template.name()))?;
    let service = values.service.as_deref().unwrap_or_default();
    let mut ctx = tera::Context::new();
    ctx.insert("name", &quoted(&format!("{service}-{}", template.name())));
    ctx.insert(
        "description",
        &quoted(&format!(
            "{} rollout of {service} (written by `rollout new`)",
            template.name()
        )),
    );
    ctx.insert("risk", &quoted(template.risk()));
    ctx.insert("weights", &[5, 25, 50, 75]);
    ctx.insert("measures", &(template == Template::Canary));
    for field in Field::ALL {
        let key = match field {
            Field::Service => "service",
            Field::Namespace => "namespace",
            Field::Image => "image",
            Field::Context => "context",
            Field::Prometheus => "prometheus",
            Field::Owner => "owner",
        };
        match values.get(field) {
            Some(v) => ctx.insert(key, &quoted(v)),
            None => ctx.insert(key, &false),
        }
    }
    tera.render(template.name(), &ctx)
        .map_err(|e| format!("cannot render template `{}`: {e}", template.name()))
}
