//! The pages: overview, results list, one result, the stylesheet and the error pages.

use crate::data::{self, BackendSummary, Filters, MinuteCount, Queues, CHART_MINUTES};
use crate::App;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use maud::{html, Markup, DOCTYPE};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use taskhost_plugin_api::{ErrorKind, Json, TaskResultData, TaskResultStatus};

/// The stylesheet, compiled in.
const STYLE: &str = include_str!("style.css");

/// Why a request gets an error page instead of what it asked for.
#[derive(Debug)]
pub(crate) enum Problem {
    /// 400: a filter or form field that cannot be read (the message names it).
    BadRequest(String),
    /// 400: a request for a host name that is not loopback, to a dashboard without a token.
    BadHost,
    /// 401: no token, or the wrong one.
    Unauthorized,
    /// 403: an action refused (read-only mode, CSRF token missing or wrong).
    Forbidden(String),
    /// 404: no such page, backend or result.
    NotFound(String),
    /// 500: the backend failed.
    Backend(String),
}

impl Problem {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::BadHost => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Backend(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(&self) -> String {
        match self {
            Self::BadRequest(m) | Self::Forbidden(m) | Self::NotFound(m) | Self::Backend(m) => {
                m.clone()
            }
            Self::BadHost => "This dashboard has no token, so it only answers requests for a \
                              loopback host (localhost, 127.0.0.1, [::1]). Open it through one \
                              of those, or start it with --token."
                .into(),
            Self::Unauthorized => "This dashboard needs its token: log in with any user name \
                                   and the token as password, or send \
                                   `Authorization: Bearer <token>`."
                .into(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        error_page(self)
    }
}

impl From<taskhost::Error> for Problem {
    fn from(e: taskhost::Error) -> Self {
        match e {
            taskhost::Error::TaskResultDoesNotExist(id) => {
                Self::NotFound(format!("No task result with id '{id}'."))
            }
            taskhost::Error::InvalidTaskBackend { .. } => Self::NotFound(e.to_string()),
            // An action the result's state or its backend does not allow (cancel of a finished
            // task, retry of one that did not fail, a backend without the operation).
            taskhost::Error::AlreadyFinished { .. }
            | taskhost::Error::NotFailed { .. }
            | taskhost::Error::NotSupported(_) => Self::BadRequest(e.to_string()),
            // What the request carried was refused (a cursor that is not an id).
            taskhost::Error::Backend { kind, .. } if kind == ErrorKind::INVALID_REQUEST => {
                Self::BadRequest(e.to_string())
            }
            e => Self::Backend(e.to_string()),
        }
    }
}

/// An HTML page for `problem`, with its status code.
pub(crate) fn error_page(problem: Problem) -> Response {
    let status = problem.status();
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let body = layout(
        &title,
        None,
        html! {
            h1 { (title) }
            p.problem { (problem.message()) }
            p { a href="/" { "Back to the overview" } }
        },
    );
    (status, body).into_response()
}

/// Live refresh: load `url` after `secs` seconds (no script: a `<meta http-equiv>`).
struct Reload {
    secs: u32,
    url: String,
}

/// The page frame: head, navigation, `body`.
fn layout(title: &str, reload: Option<Reload>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(reload) = reload {
                    meta http-equiv="refresh" content={ (reload.secs) "; url=" (reload.url) };
                }
                title { (title) " · taskhost" }
                link rel="stylesheet" href="/static/style.css";
            }
            body {
                header {
                    a.brand href="/" { "taskhost" }
                    nav {
                        a href="/" { "Overview" }
                        a href="/results" { "Results" }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// Run blocking backend calls on tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Problem::Backend(format!("the request's worker thread failed: {e}")))?
}

/// Query values as forms send them: an empty field is no value.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Whether live refresh is on: `live=1`/`live=0`, else `default`; never when it is off.
fn refresh(app: &App, live: &Option<String>, default: bool) -> Option<u32> {
    let on = match given(live) {
        Some("0") => false,
        Some(_) => true,
        None => default,
    };
    (on && app.options.refresh_secs > 0).then_some(app.options.refresh_secs)
}

/// `GET /static/style.css`.
pub(crate) async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}

/// Any other path.
pub(crate) async fn not_found() -> Problem {
    Problem::NotFound("There is no such page.".into())
}

/// The overview's query.
#[derive(Deserialize, Debug, Default)]
pub(crate) struct OverviewQuery {
    live: Option<String>,
    /// Set by the prune action's redirect: how many results it deleted, and from which alias.
    pruned: Option<u64>,
    backend: Option<String>,
}

/// `GET /`: per alias, the queues' counts by status, the oldest READY age, the per-minute
/// chart and the prune form.
pub(crate) async fn overview(
    State(app): State<Arc<App>>,
    Query(query): Query<OverviewQuery>,
) -> Result<Markup, Problem> {
    let now = Utc::now();
    let backends = Arc::clone(&app.backends);
    let summaries =
        blocking(move || data::overview(&backends, now).map_err(Problem::Backend)).await?;
    let live = refresh(&app, &query.live, true);
    // The reload drops the prune notice: it said what one action did, once.
    let reload = live.map(|secs| Reload {
        secs,
        url: "/".into(),
    });
    Ok(layout(
        "Overview",
        reload,
        html! {
            div.title-row {
                h1 { "Overview" }
                (live_toggle("/", live.is_some(), app.options.refresh_secs))
            }
            @if let (Some(count), Some(alias)) = (query.pruned, given(&query.backend)) {
                p.notice { "Pruned " (count) " finished result" @if count != 1 { "s" } " from '" (alias) "'." }
            }
            @if app.options.read_only {
                p.notice { "Read-only mode: actions are off." }
            }
            @for summary in &summaries {
                (backend_section(&app, summary, now))
            }
        },
    ))
}

fn live_toggle(path: &str, on: bool, secs: u32) -> Markup {
    html! {
        @if secs > 0 {
            @if on {
                a.live.on href={ (path) "?live=0" } title="Reloads every few seconds; click to pause" { "● Live" }
            } @else {
                a.live href={ (path) "?live=1" } title={ "Reload every " (secs) " s" } { "○ Paused" }
            }
        }
    }
}

fn backend_section(app: &App, summary: &BackendSummary, now: DateTime<Utc>) -> Markup {
    html! {
        section.backend id={ "backend-" (summary.alias) } {
            h2 { (summary.alias) " " small { (summary.backend_name) } }
            @match &summary.queues {
                Queues::NotAStore => p.muted { "This backend keeps no queue (nothing to show)." },
                Queues::Failed(message) => p.problem { (message) },
                Queues::Stats(rows) => {
                    @if rows.is_empty() {
                        p.muted { "No results stored." }
                    } @else {
                        table.queues {
                            thead { tr {
                                th { "queue" }
                                @for status in TaskResultStatus::ALL { th.num { (status.as_str()) } }
                                th.num { "oldest READY" }
                            } }
                            tbody {
                                @for row in rows {
                                    tr {
                                        td { a href={ "/results?" (query_string(&ResultsQuery::for_queue(&summary.alias, &row.name))) } { (row.name) } }
                                        @for (i, count) in row.counts.iter().enumerate() {
                                            td.num { a href={ "/results?" (query_string(&ResultsQuery { status: Some(TaskResultStatus::ALL[i].as_str().into()), ..ResultsQuery::for_queue(&summary.alias, &row.name) })) } { (count) } }
                                        }
                                        td.num { @if let Some(t) = row.oldest_ready { span title=(fmt_time(t)) { (age(now - t)) } } @else { "–" } }
                                    }
                                }
                            }
                        }
                    }
                    @if let Some(chart) = &summary.chart {
                        (chart_svg(chart, now))
                    }
                    @if !summary.schedules.is_empty() {
                        (schedules_table(&summary.alias, &summary.schedules))
                    }
                    @if !app.options.read_only {
                        (prune_form(app, &summary.alias, rows))
                    }
                }
            }
        }
    }
}

/// The periodic schedules of one alias: each with its last tick (linking the task it
/// enqueued) and its next one.
fn schedules_table(alias: &str, rows: &[data::ScheduleRow]) -> Markup {
    html! {
        h3 { "Periodic schedules" }
        table.schedules {
            thead { tr {
                th { "schedule" } th { "task" } th { "cron" } th { "time zone" } th { "missed" }
                th { "last tick" } th { "next tick" }
            } }
            tbody {
                @for row in rows {
                    tr {
                        td { (row.name) }
                        td { (row.task_path) }
                        td { code { (row.cron) } }
                        td { (row.timezone) }
                        td { (row.missed) }
                        td {
                            @match (&row.last_tick, &row.last_task_id) {
                                (Some(t), Some(id)) => a href={ "/results/" (alias) "/" (id) } { (opt_time(Some(*t))) },
                                (t, _) => (opt_time(*t)),
                            }
                        }
                        td { @if let Some(t) = row.next_tick { (opt_time(Some(t))) } @else { "never" } }
                    }
                }
            }
        }
    }
}

fn prune_form(app: &App, alias: &str, rows: &[data::QueueRow]) -> Markup {
    html! {
        form.action method="post" action="/actions/prune" {
            input type="hidden" name="csrf" value=(app.csrf);
            input type="hidden" name="backend" value=(alias);
            strong { "Prune" }
            label { "finished at least " input type="number" name="min_age_days" value="14" min="0" max="36500" required; " days ago" }
            label { "status " select name="status" {
                option value="" { "FAILED and SUCCESSFUL" }
                option value="FAILED" { "FAILED" }
                option value="SUCCESSFUL" { "SUCCESSFUL" }
            } }
            label { "queue " select name="queue" {
                option value="" { "all" }
                @for row in rows { option value=(row.name) { (row.name) } }
            } }
            button type="submit" { "Prune" }
        }
    }
}

/// Finished results per minute over the last [`CHART_MINUTES`], SUCCESSFUL under FAILED, as
/// an inline SVG bar chart.
fn chart_svg(counts: &[MinuteCount], now: DateTime<Utc>) -> Markup {
    const BAR: i64 = 10;
    const HEIGHT: u64 = 100;
    let first = data::first_minute(now);
    let mut bars = vec![(0u64, 0u64); CHART_MINUTES as usize];
    for c in counts {
        let slot = c.minute.timestamp() / 60 - first;
        if let Some(bar) = usize::try_from(slot).ok().and_then(|i| bars.get_mut(i)) {
            match c.status {
                TaskResultStatus::Failed => bar.1 += c.count,
                _ => bar.0 += c.count,
            }
        }
    }
    let top = bars
        .iter()
        .map(|(ok, failed)| ok + failed)
        .max()
        .unwrap_or(0)
        .max(1);
    let scale = |n: u64| n * HEIGHT / top;
    let (done, failed): (u64, u64) = bars
        .iter()
        .fold((0, 0), |(a, b), (ok, bad)| (a + ok, b + bad));
    html! {
        figure.chart {
            svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (BAR * CHART_MINUTES + 70) " 120" } role="img"
                aria-label={ "Finished per minute, last " (CHART_MINUTES) " minutes" } {
                line x1="0" y1=(HEIGHT) x2=(BAR * CHART_MINUTES) y2=(HEIGHT) class="axis" {}
                @for (i, (ok, bad)) in bars.iter().enumerate() {
                    @if ok + bad > 0 {
                        g {
                            title { (fmt_minute(first + i as i64)) ": " (ok) " successful, " (bad) " failed" }
                            rect.ok x=(i as i64 * BAR) y=(HEIGHT - scale(*ok)) width=(BAR - 2) height=(scale(*ok)) {}
                            rect.failed x=(i as i64 * BAR) y=(HEIGHT - scale(*ok) - scale(*bad)) width=(BAR - 2) height=(scale(*bad)) {}
                        }
                    }
                }
                @if done + failed > 0 {
                    text x=(BAR * CHART_MINUTES + 4) y="10" { "max " (top) "/min" }
                }
                text x="0" y="116" { "−" (CHART_MINUTES) " min" }
                text x=(BAR * CHART_MINUTES) y="116" text-anchor="end" { "now" }
            }
            figcaption {
                "Finished per minute, last " (CHART_MINUTES) " minutes: "
                span.ok-key { (done) " successful" } ", " span.failed-key { (failed) " failed" }
            }
        }
    }
}

/// The results list's query: its filters, the page cursor and live mode.
#[derive(Deserialize, Serialize, Debug, Default, Clone)]
pub(crate) struct ResultsQuery {
    #[serde(default, skip_serializing_if = "is_blank")]
    backend: Option<String>,
    #[serde(default, skip_serializing_if = "is_blank")]
    status: Option<String>,
    #[serde(default, skip_serializing_if = "is_blank")]
    queue: Option<String>,
    #[serde(default, skip_serializing_if = "is_blank")]
    task: Option<String>,
    /// Enqueued at or after (RFC 3339, or a form's `YYYY-MM-DDTHH:MM` in UTC).
    #[serde(default, skip_serializing_if = "is_blank")]
    after: Option<String>,
    /// Enqueued before.
    #[serde(default, skip_serializing_if = "is_blank")]
    before: Option<String>,
    /// The last id of the previous page.
    #[serde(default, skip_serializing_if = "is_blank")]
    cursor: Option<String>,
    #[serde(default, skip_serializing_if = "is_blank")]
    live: Option<String>,
}

fn is_blank(value: &Option<String>) -> bool {
    given(value).is_none()
}

impl ResultsQuery {
    fn for_queue(alias: &str, queue: &str) -> Self {
        Self {
            backend: Some(alias.into()),
            queue: Some(queue.into()),
            ..Self::default()
        }
    }

    fn filters(&self) -> Result<Filters, Problem> {
        let status = match given(&self.status) {
            None => None,
            Some(s) => Some(
                TaskResultStatus::parse(&s.to_ascii_uppercase()).ok_or_else(|| {
                    Problem::BadRequest(format!(
                        "Unknown status '{s}': expected READY, RUNNING, FAILED or SUCCESSFUL."
                    ))
                })?,
            ),
        };
        Ok(Filters {
            status,
            queue: given(&self.queue).map(str::to_string),
            task: given(&self.task).map(str::to_string),
            after: time_filter("after", &self.after)?,
            before: time_filter("before", &self.before)?,
        })
    }
}

fn query_string<T: Serialize>(query: &T) -> String {
    serde_urlencoded::to_string(query).unwrap_or_default()
}

/// A time filter: RFC 3339, or `YYYY-MM-DDTHH:MM[:SS]` (an HTML datetime field) taken as UTC.
fn time_filter(field: &str, value: &Option<String>) -> Result<Option<DateTime<Utc>>, Problem> {
    let Some(text) = given(value) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .map(|t| Some(t.and_utc()))
    .ok_or_else(|| {
        Problem::BadRequest(format!(
            "The '{field}' time '{text}' cannot be read: give RFC 3339 \
                 (2026-12-06T10:00:00Z) or YYYY-MM-DDTHH:MM in UTC."
        ))
    })
}

/// `GET /results`: the filter form and one page of results, newest first.
pub(crate) async fn results(
    State(app): State<Arc<App>>,
    Query(query): Query<ResultsQuery>,
) -> Result<Markup, Problem> {
    let filters = query.filters()?;
    let aliases = {
        let backends = Arc::clone(&app.backends);
        blocking(move || backends.aliases().map_err(Problem::from)).await?
    };
    let alias = match given(&query.backend) {
        Some(alias) => alias.to_string(),
        None if aliases
            .iter()
            .any(|a| a == taskhost::DEFAULT_TASK_BACKEND_ALIAS) =>
        {
            taskhost::DEFAULT_TASK_BACKEND_ALIAS.to_string()
        }
        None => aliases.first().cloned().unwrap_or_default(),
    };
    let page = {
        let (backends, alias, filters) =
            (Arc::clone(&app.backends), alias.clone(), filters.clone());
        let cursor = given(&query.cursor).map(str::to_string);
        blocking(move || Ok(data::page(&backends.get(&alias)?, &filters, cursor)?)).await?
    };
    let live = refresh(&app, &query.live, false);
    let here = ResultsQuery {
        backend: Some(alias.clone()),
        live: None,
        cursor: None,
        ..query.clone()
    };
    let self_link = format!("/results?{}", query_string(&here));
    let reload = live.map(|secs| Reload {
        secs,
        url: format!("/results?{}", query_string(&query)),
    });
    Ok(layout(
        "Results",
        reload,
        html! {
            div.title-row {
                h1 { "Results" }
                @if app.options.refresh_secs > 0 {
                    @let toggled = ResultsQuery { live: Some(if live.is_some() { "0" } else { "1" }.into()), ..query.clone() };
                    a.live.on[live.is_some()] href={ "/results?" (query_string(&toggled)) } {
                        @if live.is_some() { "● Live" } @else { "○ Paused" }
                    }
                }
            }
            form.filters method="get" action="/results" {
                label { "backend " select name="backend" {
                    @for a in &aliases { option value=(a) selected[*a == alias] { (a) } }
                } }
                label { "status " select name="status" {
                    option value="" { "any" }
                    @for s in TaskResultStatus::ALL {
                        option value=(s.as_str()) selected[filters.status == Some(s)] { (s.as_str()) }
                    }
                } }
                label { "queue " input type="text" name="queue" value=[filters.queue.as_deref()] placeholder="any"; }
                label { "task " input type="text" name="task" value=[filters.task.as_deref()] placeholder="any" size="32"; }
                label { "enqueued from " input type="datetime-local" name="after" step="1" value=[filters.after.map(datetime_local)]; }
                label { "to " input type="datetime-local" name="before" step="1" value=[filters.before.map(datetime_local)]; }
                span.hint { "(UTC)" }
                button type="submit" { "Filter" }
                a href="/results" { "Clear" }
            }
            @if !page.paged {
                p.notice { "Backend '" (alias) "' lists only its newest " (data::PAGE_SIZE) " results, without time filters." }
            }
            @if page.rows.is_empty() {
                p.muted { "No results match." }
            } @else {
                table.results {
                    thead { tr {
                        th { "id" } th { "status" } th { "task" } th { "queue" } th.num { "priority" }
                        th { "enqueued" } th { "finished" } th.num { "attempts" }
                    } }
                    tbody {
                        @for r in &page.rows {
                            tr {
                                td.id { a href=(result_path(&alias, &r.id)) { (short_id(&r.id)) } }
                                td { (status_badge(r.status)) }
                                td.task { (r.task.path.as_str()) }
                                td { (r.task.queue_name.as_str()) }
                                td.num { (r.task.priority) }
                                td { (opt_time(r.enqueued_at)) }
                                td { (opt_time(r.finished_at)) }
                                td.num { (r.worker_ids.len()) }
                            }
                        }
                    }
                }
            }
            nav.pager {
                @if given(&query.cursor).is_some() {
                    a href=(self_link) { "« Newest" }
                }
                @if let Some(next) = &page.next {
                    @let next_query = ResultsQuery { cursor: Some(next.clone()), ..here.clone() };
                    a.next href={ "/results?" (query_string(&next_query)) } rel="next" { "Older »" }
                }
            }
        },
    ))
}

/// The result page's query: what an action just did.
#[derive(Deserialize, Debug, Default)]
pub(crate) struct ResultQuery {
    #[serde(default)]
    done: Option<String>,
}

/// The path of result `id`'s page on backend `alias`.
pub(crate) fn result_path(alias: &str, id: &str) -> String {
    format!("/results/{}/{}", segment(alias), segment(id))
}

/// `GET /results/{backend}/{id}`: one result in full, with its Cancel (READY, RUNNING) or
/// Retry (FAILED) button outside read-only mode.
pub(crate) async fn result(
    State(app): State<Arc<App>>,
    Path((alias, id)): Path<(String, String)>,
    Query(query): Query<ResultQuery>,
) -> Result<Markup, Problem> {
    let backends = Arc::clone(&app.backends);
    let lookup_alias = alias.clone();
    let r =
        blocking(move || Ok(backends.get(&lookup_alias)?.get_result(&id)?.data().clone())).await?;
    let title = format!("Result {}", r.id.chars().take(13).collect::<String>());
    let notice = match query.done.as_deref() {
        Some("cancelled") => Some("Cancelled: the task was READY and will not run."),
        Some("cancel-requested") => Some(
            "Asked to stop: the task is RUNNING; its worker tells it at the next heartbeat, and \
             it ends FAILED, cancelled.",
        ),
        Some("retried") => Some("Retried: the task is READY again."),
        _ => None,
    };
    Ok(layout(
        &title,
        None,
        html! {
            @if let Some(notice) = notice { p.notice { (notice) } }
            (result_body(&alias, &r))
            @if !app.options.read_only { (result_actions(&app, &alias, &r)) }
        },
    ))
}

/// The Cancel or Retry form of a result (none for a SUCCESSFUL one).
fn result_actions(app: &App, alias: &str, r: &TaskResultData) -> Markup {
    let (action, label) = match r.status {
        TaskResultStatus::Ready | TaskResultStatus::Running => ("/actions/cancel", "Cancel"),
        TaskResultStatus::Failed => ("/actions/retry", "Retry"),
        TaskResultStatus::Successful => return html! {},
    };
    html! {
        form.action.result-action method="post" action=(action) {
            input type="hidden" name="csrf" value=(app.csrf);
            input type="hidden" name="backend" value=(alias);
            input type="hidden" name="id" value=(r.id.as_str());
            button type="submit" { (label) }
        }
    }
}

fn result_body(alias: &str, r: &TaskResultData) -> Markup {
    let t = &r.task;
    let cancelled = r.status == TaskResultStatus::Failed
        && taskhost_plugin_api::control::is_cancellation(&r.errors);
    html! {
        h1 {
            "Result " code { (r.id.as_str()) } " " (status_badge(r.status))
            @if cancelled { " " span.cancelled { "cancelled" } }
        }
        dl.fields {
            dt { "task" } dd { code { (t.path.as_str()) } }
            dt { "backend" } dd { (alias) }
            dt { "queue" } dd { a href={ "/results?" (query_string(&ResultsQuery::for_queue(alias, &t.queue_name))) } { (t.queue_name.as_str()) } }
            dt { "priority" } dd { (t.priority) }
            dt { "run after" } dd { (opt_time(t.run_after)) }
            dt { "enqueued" } dd { (opt_time(r.enqueued_at)) }
            dt { "started" } dd { (opt_time(r.started_at)) }
            dt { "last attempted" } dd { (opt_time(r.last_attempted_at)) }
            dt { "finished" } dd { (opt_time(r.finished_at)) }
            dt { "attempts" } dd {
                (r.worker_ids.len())
                @if let Some(max) = t.max_attempts { " of " (max) }
            }
            dt { "worker ids" } dd {
                @if r.worker_ids.is_empty() { "–" }
                ol.workers { @for w in &r.worker_ids { li { code { (w.as_str()) } } } }
            }
            dt { "timeout" } dd { @if let Some(s) = t.timeout_secs { (s) " s" } @else { "–" } }
            dt { "takes context / async" } dd { (t.takes_context) " / " (t.is_async) }
        }
        h2 { "Errors (" (r.errors.len()) ")" }
        @if r.errors.is_empty() { p.muted { "None." } }
        @for (i, e) in r.errors.iter().enumerate() {
            section.error {
                h3 { "Attempt error " (i + 1) ": " code { (e.exception_class_path.as_str()) } }
                pre.traceback { (e.traceback.as_str()) }
            }
        }
        h2 { "Return value" }
        @match &r.return_value {
            Some(value) => pre.json.return-value { (pretty(value)) },
            None => p.muted { "None." },
        }
        h2 { "Arguments" }
        h3 { "args" } pre.json { (pretty(&r.args)) }
        h3 { "kwargs" } pre.json { (pretty(&r.kwargs)) }
    }
}

fn status_badge(status: TaskResultStatus) -> Markup {
    html! { span class={ "status status-" (status.as_str().to_ascii_lowercase()) } { (status.as_str()) } }
}

/// `text` as one URL path segment: all but RFC 3986's unreserved characters percent-encoded
/// (ids written by other producers may hold anything).
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// JSON on one line when it is short, else indented.
fn pretty(json: &Json) -> String {
    let text = json.as_str();
    if text.len() <= 100 && !text.contains('\n') {
        return text.to_string();
    }
    serde_json::from_str::<serde_json::Value>(text)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| text.to_string())
}

/// The id's first block, enough to tell results apart in a list.
fn short_id(id: &str) -> Markup {
    let short: String = id.chars().take(13).collect();
    html! { span title=(id) { (short) "…" } }
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn opt_time(t: Option<DateTime<Utc>>) -> Markup {
    html! { @match t { Some(t) => time datetime=(t.to_rfc3339()) { (fmt_time(t)) }, None => "–" } }
}

fn fmt_minute(minute: i64) -> String {
    DateTime::from_timestamp(minute * 60, 0)
        .map(|t| t.format("%H:%M UTC").to_string())
        .unwrap_or_default()
}

/// The value of an HTML datetime-local field.
fn datetime_local(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// A short age: `42s`, `3m 12s`, `2h 5m`, `4d 3h`.
pub(crate) fn age(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(
            segment("0190c0de-0000-7000-8000-000000000000"),
            "0190c0de-0000-7000-8000-000000000000"
        );
        assert_eq!(segment("a/b c?é"), "a%2Fb%20c%3F%C3%A9");
    }

    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(age(Duration::seconds(42)), "42s");
        assert_eq!(age(Duration::seconds(192)), "3m 12s");
        assert_eq!(age(Duration::seconds(7500)), "2h 5m");
        assert_eq!(age(Duration::seconds(4 * 86400 + 3 * 3600)), "4d 3h");
        assert_eq!(age(Duration::seconds(-5)), "0s");
    }

    #[test]
    fn time_filters_take_rfc_3339_and_form_values() {
        let at = |v: &str| {
            time_filter("after", &Some(v.into()))
                .unwrap()
                .unwrap()
                .to_rfc3339()
        };
        assert_eq!(at("2026-12-06T10:00:00Z"), "2026-12-06T10:00:00+00:00");
        assert_eq!(at("2026-12-06T11:00:00+01:00"), "2026-12-06T10:00:00+00:00");
        assert_eq!(at("2026-12-06T10:00"), "2026-12-06T10:00:00+00:00");
        assert_eq!(time_filter("after", &Some(" ".into())).unwrap(), None);
        let Err(Problem::BadRequest(m)) = time_filter("before", &Some("yesterday".into())) else {
            panic!("a bad time is a bad request");
        };
        assert!(m.contains("'before'") && m.contains("yesterday"), "{m}");
    }
}
