//! The options of `#[task(...)]`: parsing and checking each one.

use crate::errors::Errors;
use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, Lit, Meta, Token, UnOp};

/// The options `#[task(...)]` accepts, as listed in errors about unknown ones.
const VALID_OPTIONS: &str =
    "priority, queue_name, backend, takes_context, max_attempts, timeout, cron";

/// Django's message for a priority outside -100..=100 (or not a whole number).
const PRIORITY_MESSAGE: &str = "priority must be a whole number between -100 and 100.";

/// Django refuses `run_after` in the decorator; so do we, pointing at the dynamic way.
const RUN_AFTER_MESSAGE: &str = "run_after cannot be defined statically with #[task]. \
    Use .using(TaskOptions::new().run_after(..)) to set it dynamically.";

/// The task's defaults, as written in the attribute (Django's defaults where left out).
pub(crate) struct Options {
    /// Default priority, -100..=100.
    pub priority: i32,
    /// Default queue.
    pub queue_name: String,
    /// Default backend alias.
    pub backend: String,
    /// Whether the function takes `context: TaskContext` first.
    pub takes_context: bool,
    /// Default number of attempts (`None`: the backend's default).
    pub max_attempts: Option<u32>,
    /// Default time limit of a run, in seconds.
    pub timeout_secs: Option<f64>,
    /// A periodic schedule: the cron expression its backend's workers enqueue it at.
    pub cron: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            priority: 0,
            queue_name: "default".to_string(),
            backend: "default".to_string(),
            takes_context: false,
            max_attempts: None,
            timeout_secs: None,
            cron: None,
        }
    }
}

impl Options {
    /// Parse the attribute's arguments. Every problem is reported, not just the first: the
    /// options are returned with defaults in place of the faulty ones, alongside the errors.
    pub fn parse(attr: TokenStream) -> (Self, Option<syn::Error>) {
        let mut options = Self::default();
        let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr) {
            Ok(metas) => metas,
            Err(err) => return (options, Some(err)),
        };
        let mut errors = Errors::default();
        let mut seen: Vec<String> = Vec::new();
        for meta in &metas {
            let Some(key) = meta.path().get_ident().map(ToString::to_string) else {
                errors.push(unknown_option(meta, &path_text(meta)));
                continue;
            };
            if seen.contains(&key) {
                errors.push(syn::Error::new_spanned(
                    meta.path(),
                    format!("duplicate option `{key}`: each option may be given once"),
                ));
                continue;
            }
            seen.push(key.clone());
            if let Err(err) = options.apply(&key, meta) {
                errors.push(err);
            }
        }
        (options, errors.into_inner())
    }

    /// Check one `key = value` (or flag) and store it.
    fn apply(&mut self, key: &str, meta: &Meta) -> syn::Result<()> {
        match key {
            "priority" => self.priority = priority(value(meta, "priority = 10")?)?,
            "queue_name" => {
                let example = "queue_name = \"emails\"";
                let expr = value(meta, example)?;
                self.queue_name = name(expr, key, example)?;
                if let Some(message) = taskhost_names::queue_name_error(&self.queue_name) {
                    return Err(syn::Error::new_spanned(expr, message));
                }
            }
            "backend" => {
                let example = "backend = \"fast\"";
                self.backend = name(value(meta, example)?, key, example)?;
            }
            "takes_context" => self.takes_context = takes_context(meta)?,
            "max_attempts" => {
                self.max_attempts = Some(max_attempts(value(meta, "max_attempts = 3")?)?)
            }
            "timeout" => self.timeout_secs = Some(timeout(value(meta, "timeout = 30")?)?),
            "cron" => {
                let example = "cron = \"0 7 * * *\"";
                let expr = value(meta, example)?;
                let cron = name(expr, key, example)?;
                croner::parser::CronParser::builder()
                    .seconds(croner::parser::Seconds::Optional)
                    .build()
                    .parse(&cron)
                    .map_err(|e| {
                        syn::Error::new_spanned(
                            expr,
                            format!(
                                "cron must be a cron expression: 5 fields (minute hour \
                                 day-of-month month day-of-week), or 6 with seconds first, e.g. \
                                 `cron = \"0 7 * * *\"`; {cron:?} is not valid: {e}"
                            ),
                        )
                    })?;
                self.cron = Some(cron);
            }
            "run_after" => return Err(syn::Error::new_spanned(meta, RUN_AFTER_MESSAGE)),
            other => return Err(unknown_option(meta, other)),
        }
        Ok(())
    }
}

fn unknown_option(meta: &Meta, key: &str) -> syn::Error {
    syn::Error::new_spanned(
        meta.path(),
        format!("unknown option `{key}` for #[task]; valid options are: {VALID_OPTIONS}"),
    )
}

fn path_text(meta: &Meta) -> String {
    let path = meta.path();
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    segments.join("::")
}

/// The value of `key = value`; `example` shows the expected form.
fn value<'a>(meta: &'a Meta, example: &str) -> syn::Result<&'a Expr> {
    match meta {
        Meta::NameValue(nv) => Ok(strip_groups(&nv.value)),
        _ => Err(syn::Error::new_spanned(
            meta,
            format!("expected a value, e.g. `{example}`"),
        )),
    }
}

/// Look through parentheses and the invisible groups `macro_rules!` wraps `$x:expr` in.
fn strip_groups(expr: &Expr) -> &Expr {
    match expr {
        Expr::Group(g) => strip_groups(&g.expr),
        Expr::Paren(p) => strip_groups(&p.expr),
        other => other,
    }
}

/// A whole-number literal, possibly negated (`-5` is `Expr::Unary`).
fn integer(expr: &Expr) -> Option<i128> {
    match expr {
        Expr::Lit(lit) => match &lit.lit {
            Lit::Int(int) => int.base10_parse::<i128>().ok(),
            _ => None,
        },
        Expr::Unary(unary) if matches!(unary.op, UnOp::Neg(_)) => {
            integer(strip_groups(&unary.expr)).map(|n| -n)
        }
        _ => None,
    }
}

fn priority(expr: &Expr) -> syn::Result<i32> {
    integer(expr)
        .filter(|n| (-100..=100).contains(n))
        .and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| syn::Error::new_spanned(expr, PRIORITY_MESSAGE))
}

/// `queue_name` or `backend`: a non-empty string literal.
fn name(expr: &Expr, key: &str, example: &str) -> syn::Result<String> {
    let Expr::Lit(syn::ExprLit {
        lit: Lit::Str(s), ..
    }) = expr
    else {
        return Err(syn::Error::new_spanned(
            expr,
            format!("{key} must be a string literal, e.g. `{example}`"),
        ));
    };
    let value = s.value();
    if value.is_empty() {
        return Err(syn::Error::new_spanned(
            expr,
            format!("{key} must not be empty"),
        ));
    }
    Ok(value)
}

/// `takes_context`, `takes_context = true` or `takes_context = false`.
fn takes_context(meta: &Meta) -> syn::Result<bool> {
    let wrong = || {
        syn::Error::new_spanned(
            meta,
            "takes_context is a flag: write `takes_context` or `takes_context = true` / `false`",
        )
    };
    match meta {
        Meta::Path(_) => Ok(true),
        Meta::NameValue(nv) => match strip_groups(&nv.value) {
            Expr::Lit(syn::ExprLit {
                lit: Lit::Bool(b), ..
            }) => Ok(b.value),
            _ => Err(wrong()),
        },
        Meta::List(_) => Err(wrong()),
    }
}

fn max_attempts(expr: &Expr) -> syn::Result<u32> {
    integer(expr)
        .filter(|n| *n >= 1)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            syn::Error::new_spanned(
                expr,
                "max_attempts must be a whole number of at least 1 (and at most 4294967295), \
                 e.g. `max_attempts = 3`",
            )
        })
}

/// Seconds, as an integer or float literal, finite and above zero.
fn timeout(expr: &Expr) -> syn::Result<f64> {
    let seconds = match expr {
        Expr::Lit(lit) => match &lit.lit {
            Lit::Int(int) => int.base10_parse::<f64>().ok(),
            Lit::Float(float) => float.base10_parse::<f64>().ok(),
            _ => None,
        },
        _ => None,
    };
    seconds
        .filter(|s| s.is_finite() && *s > 0.0)
        .ok_or_else(|| {
            syn::Error::new_spanned(
                expr,
                "timeout must be a number of seconds above zero, e.g. `timeout = 30` or \
                 `timeout = 2.5`",
            )
        })
}
