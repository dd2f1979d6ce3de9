//! Actions: POST forms that change a store (prune, cancel, retry). Each one takes its form
//! through [`Action`], which refuses it in read-only mode and without the server's CSRF token.

use crate::pages::{blocking, Problem};
use crate::security::same;
use crate::App;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::response::Redirect;
use axum::Form;
use chrono::{Duration, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::sync::Arc;
use taskhost_plugin_api::{PruneRequest, TaskResultStatus};

/// Rows deleted per prune statement (each batch its own transaction, as `taskhost prune`).
const PRUNE_BATCH: u64 = 10_000;

/// An action's form, accepted only outside read-only mode and with the right CSRF token.
pub(crate) struct Action<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<App>> for Action<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, app: &Arc<App>) -> Result<Self, Problem> {
        if app.options.read_only {
            return Err(Problem::Forbidden(
                "This dashboard is read-only: actions are refused.".into(),
            ));
        }
        let (parts, body) = request.into_parts();
        let body = Bytes::from_request(Request::from_parts(parts.clone(), body), app)
            .await
            .map_err(|e| Problem::BadRequest(format!("The form could not be read: {e}")))?;
        #[derive(Deserialize)]
        struct Csrf {
            csrf: Option<String>,
        }
        let token = serde_urlencoded::from_bytes::<Csrf>(&body)
            .ok()
            .and_then(|c| c.csrf)
            .unwrap_or_default();
        if !same(token.as_bytes(), app.csrf.as_bytes()) {
            return Err(Problem::Forbidden(
                "The form's CSRF token is missing or stale: reload the page and submit it again."
                    .into(),
            ));
        }
        // axum's form reader: its refusals name the field at fault.
        let request = Request::from_parts(parts, Body::from(body));
        Form::<T>::from_request(request, app)
            .await
            .map(|Form(form)| Action(form))
            .map_err(|e| {
                Problem::BadRequest(format!("The form could not be read: {}", e.body_text()))
            })
    }
}

/// The prune form.
#[derive(Deserialize, Debug)]
pub(crate) struct PruneForm {
    backend: String,
    min_age_days: u32,
    #[serde(default)]
    status: String,
    #[serde(default)]
    queue: String,
}

/// `POST /actions/prune`: delete finished results older than the age, in batches, then back
/// to the overview with the count.
pub(crate) async fn prune(
    State(app): State<Arc<App>>,
    Action(form): Action<PruneForm>,
) -> Result<Redirect, Problem> {
    let statuses = match form.status.trim() {
        "" => Vec::new(),
        s => match TaskResultStatus::parse(&s.to_ascii_uppercase()) {
            Some(status) if status.is_finished() => vec![status],
            _ => {
                return Err(Problem::BadRequest(format!(
                    "Prune deletes FAILED or SUCCESSFUL results, not '{s}'."
                )))
            }
        },
    };
    let finished_before = Utc::now()
        .checked_sub_signed(Duration::days(i64::from(form.min_age_days)))
        .ok_or_else(|| {
            Problem::BadRequest(format!(
                "{} days ago is before the earliest time there is.",
                form.min_age_days
            ))
        })?;
    let request = PruneRequest {
        finished_before: Some(finished_before),
        statuses,
        queues: match form.queue.trim() {
            "" => None,
            q => Some(vec![q.to_string()]),
        },
        limit: Some(PRUNE_BATCH),
        ..PruneRequest::default()
    };
    let backends = Arc::clone(&app.backends);
    let alias = form.backend.clone();
    let deleted = blocking(move || {
        let backend = backends.get(&alias)?;
        let mut total = 0;
        loop {
            let n = backend.prune(&request)?;
            total += n;
            if n < PRUNE_BATCH {
                return Ok(total);
            }
        }
    })
    .await?;
    let back = serde_urlencoded::to_string([
        ("backend", form.backend.as_str()),
        ("pruned", &deleted.to_string()),
    ])
    .unwrap_or_default();
    Ok(Redirect::to(&format!("/?{back}")))
}

/// The cancel and retry forms: one result.
#[derive(Deserialize, Debug)]
pub(crate) struct ResultForm {
    backend: String,
    id: String,
}

/// `POST /actions/cancel`: cancel the result's task (a READY one is FAILED at once, a RUNNING
/// one is told at its worker's next heartbeat), then back to its page.
pub(crate) async fn cancel(
    State(app): State<Arc<App>>,
    Action(form): Action<ResultForm>,
) -> Result<Redirect, Problem> {
    let backends = Arc::clone(&app.backends);
    let (alias, id) = (form.backend.clone(), form.id.clone());
    let done = blocking(move || Ok(backends.get(&alias)?.cancel(&id)?.0)).await?;
    let done = match done {
        taskhost::Cancellation::Cancelled => "cancelled",
        taskhost::Cancellation::Requested => "cancel-requested",
    };
    Ok(Redirect::to(&back_to(&form, done)))
}

/// `POST /actions/retry`: make the FAILED result's task READY again, then back to its page.
pub(crate) async fn retry(
    State(app): State<Arc<App>>,
    Action(form): Action<ResultForm>,
) -> Result<Redirect, Problem> {
    let backends = Arc::clone(&app.backends);
    let (alias, id) = (form.backend.clone(), form.id.clone());
    blocking(move || Ok(backends.get(&alias)?.retry(&id).map(drop)?)).await?;
    Ok(Redirect::to(&back_to(&form, "retried")))
}

/// The result page of `form`'s result, saying what was `done`.
fn back_to(form: &ResultForm, done: &str) -> String {
    format!(
        "{}?done={done}",
        crate::pages::result_path(&form.backend, &form.id)
    )
}
