//! The dashboard over HTTP (axum's router called in process), on a real SQLite store behind the
//! real database plugin file: pages, filters, paging, the prune action and its guards.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use common::Store;
use taskhost_dashboard::{router, Dashboard, Error, Options};
use tower::ServiceExt;

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

async fn get(app: &Router, uri: &str) -> Answer {
    let request = Request::get(uri)
        .header(header::HOST, "127.0.0.1:8000")
        .body(Body::empty())
        .unwrap();
    send(app, request).await
}

async fn post(app: &Router, uri: &str, form: &str) -> Answer {
    let request = Request::post(uri)
        .header(header::HOST, "127.0.0.1:8000")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .unwrap();
    send(app, request).await
}

fn dashboard(store: &Store) -> Router {
    router(store.backends.clone(), Options::default())
}

/// The CSRF token in a page's forms.
fn csrf(page: &str) -> String {
    let start = page
        .find(r#"name="csrf" value=""#)
        .expect("a form with a CSRF token")
        + r#"name="csrf" value=""#.len();
    page[start..start + page[start..].find('"').unwrap()].to_string()
}

/// The result ids linked from a results page, in page order.
fn listed_ids(page: &str) -> Vec<String> {
    page.split(r#"href="/results/default/"#)
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_string())
        .collect()
}

/// The "Older" link of a results page.
fn next_link(page: &str) -> Option<String> {
    let at = page.find(r#"class="next" href=""#)? + r#"class="next" href=""#.len();
    Some(page[at..at + page[at..].find('"').unwrap()].replace("&amp;", "&"))
}

#[tokio::test]
async fn the_overview_counts_each_queue_by_status_with_the_oldest_ready_age_and_a_chart() {
    let store = Store::new();
    store.enqueue(3, "emails", "app::send_email");
    store.enqueue(4, "default", "app::resize");
    store.finish(1, "emails", true);
    store.finish(2, "default", false);
    let app = dashboard(&store);

    let page = get(&app, "/").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = &page.body;
    // The emails row: READY 2, RUNNING 0, FAILED 0, SUCCESSFUL 1, then an age.
    let emails = &body[body.find(">emails<").unwrap()..];
    let emails = &emails[..emails.find("</tr>").unwrap()];
    let counts: Vec<&str> = emails
        .split("\">")
        .filter_map(|s| s.split('<').next())
        .filter(|s| s.parse::<u64>().is_ok())
        .collect();
    assert_eq!(counts, ["2", "0", "0", "1"], "{emails}");
    assert!(
        emails.contains("title=\"20"),
        "an oldest READY age: {emails}"
    );
    assert!(body.contains("<svg"), "the per-minute chart");
    assert!(
        body.contains("1 successful") && body.contains("2 failed"),
        "{body}"
    );
    // Live by default: the page reloads itself, with no script.
    assert!(
        body.contains(r#"http-equiv="refresh" content="5; url=/""#),
        "{body}"
    );
    assert!(!body.contains("<script"));
    let paused = get(&app, "/?live=0").await;
    assert!(!paused.body.contains("http-equiv=\"refresh\""));
    // Headers every page carries.
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("http"),
        "{csp}"
    );
}

#[tokio::test]
async fn the_results_list_pages_through_the_store_newest_first_without_gaps_or_repeats() {
    let store = Store::new();
    let mut enqueued = store.enqueue(120, "default", "app::resize");
    let app = dashboard(&store);

    let mut seen = Vec::new();
    let mut uri = "/results".to_string();
    let mut pages = 0;
    loop {
        let page = get(&app, &uri).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let ids = listed_ids(&page.body);
        assert!(ids.len() <= 50, "a page holds 50 results at most");
        seen.extend(ids);
        pages += 1;
        match next_link(&page.body) {
            Some(next) => uri = next,
            None => break,
        }
    }
    assert_eq!(pages, 3, "120 results: pages of 50, 50 and 20");
    enqueued.reverse();
    assert_eq!(seen, enqueued, "every result once, newest first");
}

#[tokio::test]
async fn filters_narrow_the_list_by_status_queue_task_and_time() {
    let store = Store::new();
    let emails = store.enqueue(3, "emails", "app::send_email");
    store.enqueue(2, "default", "app::resize");
    let failed = store.finish(1, "emails", false);
    let app = dashboard(&store);

    let ids = |page: &Answer| {
        let mut ids = listed_ids(&page.body);
        ids.sort();
        ids
    };
    let mut all_emails = emails.clone();
    all_emails.sort();
    assert_eq!(ids(&get(&app, "/results?queue=emails").await), all_emails);
    assert_eq!(ids(&get(&app, "/results?status=failed").await), failed);
    assert_eq!(
        ids(&get(&app, "/results?task=app%3A%3Asend_email&status=READY").await).len(),
        2
    );
    // The form sends every field, empty ones included: they filter nothing.
    let form = "/results?backend=default&status=&queue=&task=&after=&before=";
    assert_eq!(ids(&get(&app, form).await).len(), 5);
    let future = get(&app, "/results?after=2999-01-01T00%3A00").await;
    assert!(future.body.contains("No results match."), "{}", future.body);
    let past = get(&app, "/results?before=2000-01-01T00%3A00%3A00Z").await;
    assert!(listed_ids(&past.body).is_empty());
    assert_eq!(
        ids(&get(&app, "/results?after=2000-01-01T00%3A00").await).len(),
        5
    );

    // Live mode reloads the same filtered page.
    let live = get(&app, "/results?queue=emails&live=1").await;
    assert!(
        live.body
            .contains(r#"content="5; url=/results?queue=emails&amp;live=1""#),
        "{}",
        live.body
    );

    let bad = get(&app, "/results?status=DONE").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("Unknown status &#39;DONE&#39;")
            || bad.body.contains("Unknown status 'DONE'"),
        "{}",
        bad.body
    );
    let bad_time = get(&app, "/results?after=yesterday").await;
    assert_eq!(bad_time.status, StatusCode::BAD_REQUEST);
    assert!(bad_time.body.contains("yesterday"), "{}", bad_time.body);
}

#[tokio::test]
async fn a_result_page_shows_arguments_return_value_errors_attempts_and_workers() {
    let store = Store::new();
    store.enqueue(1, "emails", "app::send_email");
    store.enqueue(1, "default", "app::resize");
    let ok = store.finish(1, "default", true).remove(0);
    let failed = store.finish(1, "emails", false).remove(0);
    let app = dashboard(&store);

    let page = get(&app, &format!("/results/default/{ok}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for part in [
        ok.as_str(),
        "app::resize",
        "SUCCESSFUL",
        "&quot;done&quot;",
        "worker-1",
        "{&quot;n&quot;:0}",
    ] {
        assert!(page.body.contains(part), "{part} in {}", page.body);
    }
    let page = get(&app, &format!("/results/default/{failed}")).await;
    for part in [
        "FAILED",
        "std::io::Error: disk full",
        "src/tasks.rs:12",
        "Errors (1)",
    ] {
        assert!(page.body.contains(part), "{part} in {}", page.body);
    }

    let missing = get(
        &app,
        "/results/default/0190c0de-0000-7000-8000-000000000000",
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.body.contains("<h1>404 Not Found</h1>"),
        "{}",
        missing.body
    );
    let no_alias = get(&app, &format!("/results/nope/{ok}")).await;
    assert_eq!(no_alias.status, StatusCode::NOT_FOUND, "{}", no_alias.body);
    let nowhere = get(&app, "/nowhere").await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    assert!(nowhere.body.contains("There is no such page."));
}

#[tokio::test]
async fn prune_deletes_finished_results_only_with_the_csrf_token() {
    let store = Store::new();
    store.enqueue(5, "default", "app::resize");
    store.finish(2, "default", true);
    store.finish(1, "default", false);
    let app = dashboard(&store);
    let token = csrf(&get(&app, "/").await.body);

    for form in [
        "backend=default&min_age_days=0".to_string(),
        "csrf=forged&backend=default&min_age_days=0".to_string(),
        format!("csrf={}x&backend=default&min_age_days=0", token),
    ] {
        let refused = post(&app, "/actions/prune", &form).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{form}");
        assert!(refused.body.contains("CSRF"), "{}", refused.body);
    }
    assert_eq!(store.count(), 5, "nothing deleted");

    let only_failed = format!("csrf={token}&backend=default&min_age_days=0&status=FAILED&queue=");
    let done = post(&app, "/actions/prune", &only_failed).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.headers[header::LOCATION], "/?backend=default&pruned=1");
    assert_eq!(store.count(), 4);
    let notice = get(&app, "/?backend=default&pruned=1").await;
    assert!(
        notice.body.contains("Pruned 1 finished result from"),
        "{}",
        notice.body
    );

    // Results finished less than a day ago stay.
    let young = format!("csrf={token}&backend=default&min_age_days=1");
    assert_eq!(
        post(&app, "/actions/prune", &young).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(store.count(), 4);
    let all = format!("csrf={token}&backend=default&min_age_days=0");
    post(&app, "/actions/prune", &all).await;
    assert_eq!(store.count(), 2, "the READY ones stay");

    let bad = post(
        &app,
        "/actions/prune",
        &format!("csrf={token}&backend=default&min_age_days=0&status=READY"),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("READY"), "{}", bad.body);
    // An age beyond the calendar is refused, not a crashed request.
    let ancient = format!("csrf={token}&backend=default&min_age_days=4000000000");
    let refused = post(&app, "/actions/prune", &ancient).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body.contains("4000000000 days ago"),
        "{}",
        refused.body
    );
    let not_a_number = format!("csrf={token}&backend=default&min_age_days=ten");
    let refused = post(&app, "/actions/prune", &not_a_number).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body.contains("min_age_days"), "{}", refused.body);
    assert_eq!(store.count(), 2);
}

/// A result page offers Cancel (READY, RUNNING) or Retry (FAILED); the POSTs change the store,
/// need the CSRF token, and a cancel of a finished task is refused naming it.
#[tokio::test]
async fn cancel_and_retry_change_the_store_only_with_the_csrf_token() {
    let store = Store::new();
    let ready = store.enqueue(1, "default", "app::resize").remove(0);
    let app = dashboard(&store);
    let page = get(&app, &format!("/results/default/{ready}")).await;
    assert!(
        page.body.contains("action=\"/actions/cancel\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("/actions/retry"), "{}", page.body);
    let token = csrf(&page.body);
    let form = |token: &str| format!("csrf={token}&backend=default&id={ready}");

    let refused = post(&app, "/actions/cancel", &form("forged")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let backend = store.backend();
    assert!(!backend.get_result(&ready).unwrap().is_cancelled());

    let done = post(&app, "/actions/cancel", &form(&token)).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let back = format!("/results/default/{ready}?done=cancelled");
    assert_eq!(done.headers[header::LOCATION], back.as_str());
    assert!(backend.get_result(&ready).unwrap().is_cancelled());
    let page = get(&app, &back).await;
    assert!(
        page.body.contains("Cancelled: the task was READY"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("action=\"/actions/retry\""),
        "{}",
        page.body
    );

    let again = post(&app, "/actions/cancel", &form(&token)).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(
        again.body.contains("has already finished (FAILED)"),
        "{}",
        again.body
    );

    let retried = post(&app, "/actions/retry", &form(&token)).await;
    assert_eq!(retried.status, StatusCode::SEE_OTHER, "{}", retried.body);
    assert_eq!(
        backend.get_result(&ready).unwrap().status(),
        taskhost::TaskResultStatus::Ready
    );
    let not_failed = post(&app, "/actions/retry", &form(&token)).await;
    assert_eq!(not_failed.status, StatusCode::BAD_REQUEST);
    assert!(
        not_failed.body.contains("not FAILED"),
        "{}",
        not_failed.body
    );
}

#[tokio::test]
async fn read_only_mode_shows_no_actions_and_refuses_them() {
    let store = Store::new();
    store.enqueue(1, "default", "app::resize");
    store.finish(1, "default", true);
    let writable = get(&dashboard(&store), "/").await;
    let token = csrf(&writable.body);
    let app = router(
        store.backends.clone(),
        Options {
            read_only: true,
            ..Options::default()
        },
    );

    let page = get(&app, "/").await;
    assert!(!page.body.contains("/actions/prune"), "no prune form");
    assert!(page.body.contains("Read-only mode"));
    let ready = store.enqueue(1, "default", "app::resize").remove(0);
    let page = get(&app, &format!("/results/default/{ready}")).await;
    assert!(!page.body.contains("/actions/cancel"), "no cancel form");
    let refused = post(
        &app,
        "/actions/cancel",
        &format!("csrf={token}&backend=default&id={ready}"),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!store.backend().get_result(&ready).unwrap().is_cancelled());
    let refused = post(
        &app,
        "/actions/prune",
        &format!("csrf={token}&backend=default&min_age_days=0"),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("read-only"), "{}", refused.body);
    assert_eq!(store.count(), 2);
}

#[tokio::test]
async fn with_a_token_every_request_must_carry_it() {
    let store = Store::new();
    let app = router(
        store.backends.clone(),
        Options {
            token: Some("s3cret".into()),
            ..Options::default()
        },
    );
    let with = |auth: Option<&str>, host: &str| {
        let mut request = Request::get("/").header(header::HOST, host);
        if let Some(auth) = auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        request.body(Body::empty()).unwrap()
    };

    let none = send(&app, with(None, "dash.example:8000")).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert!(none.headers[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let wrong = send(&app, with(Some("Bearer nope"), "dash.example:8000")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    // The stylesheet too: nothing is served without the token.
    let css = Request::get("/static/style.css")
        .header(header::HOST, "x")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, css).await.status, StatusCode::UNAUTHORIZED);

    let bearer = send(&app, with(Some("Bearer s3cret"), "dash.example:8000")).await;
    assert_eq!(bearer.status, StatusCode::OK, "{}", bearer.body);
    // admin:s3cret
    let basic = send(
        &app,
        with(Some("Basic YWRtaW46czNjcmV0"), "dash.example:8000"),
    )
    .await;
    assert_eq!(basic.status, StatusCode::OK);
}

#[tokio::test]
async fn without_a_token_only_loopback_host_names_are_answered() {
    let store = Store::new();
    let app = dashboard(&store);
    for host in ["localhost:8000", "127.0.0.1:8000", "[::1]:8000"] {
        let request = Request::get("/")
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&app, request).await.status, StatusCode::OK, "{host}");
    }
    // A page on a rebinding domain that now resolves to 127.0.0.1 sends its own name.
    let request = Request::get("/")
        .header(header::HOST, "rebind.example:8000")
        .body(Body::empty())
        .unwrap();
    let refused = send(&app, request).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("loopback host"), "{}", refused.body);
}

#[tokio::test]
async fn a_non_loopback_address_is_refused_without_a_token() {
    let store = Store::new();
    let open = Options {
        bind: "0.0.0.0:0".parse().unwrap(),
        ..Options::default()
    };
    let Err(e) = Dashboard::bind(store.backends.clone(), open.clone()).await else {
        panic!("0.0.0.0 without a token must be refused");
    };
    assert!(matches!(e, Error::UnprotectedBind(_)), "{e}");
    assert!(e.to_string().contains("--token"), "{e}");
    let blank = Options {
        token: Some("  ".into()),
        ..open.clone()
    };
    assert!(matches!(blank.check(), Err(Error::EmptyToken)));
    let protected = Options {
        token: Some("s3cret".into()),
        ..open
    };
    assert!(protected.check().is_ok());
    assert!(
        Options::default().check().is_ok(),
        "127.0.0.1:8000 needs no token"
    );
}

#[tokio::test]
async fn metrics_serves_the_queue_gauges_of_every_store_behind_the_token() {
    use taskhost_e2e::prometheus::value;
    let store = Store::new();
    store.enqueue(3, "emails", "app::send_email");
    store.enqueue(2, "default", "app::resize");
    store.finish(1, "emails", true);
    store.finish(1, "default", false);
    let app = router(
        store.backends.clone(),
        Options {
            token: Some("s3cret".into()),
            ..Options::default()
        },
    );
    let scrape = |auth: Option<&str>| {
        let mut request = Request::get("/metrics").header(header::HOST, "dash.example:8000");
        if let Some(auth) = auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        request.body(Body::empty()).unwrap()
    };
    assert_eq!(
        send(&app, scrape(None)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&app, scrape(Some("Bearer nope"))).await.status,
        StatusCode::UNAUTHORIZED
    );

    let answer = send(&app, scrape(Some("Bearer s3cret"))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        answer.headers[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = &answer.body;
    assert!(text.contains("# TYPE taskhost_queue_depth gauge"), "{text}");
    assert!(text.contains("# HELP taskhost_queue_depth "), "{text}");
    let depth = |queue: &str, status: &str| {
        value(
            text,
            "taskhost_queue_depth",
            &[("backend", "default"), ("queue", queue), ("status", status)],
        )
    };
    assert_eq!(depth("emails", "READY"), Some(2.0), "{text}");
    assert_eq!(depth("emails", "SUCCESSFUL"), Some(1.0), "{text}");
    assert_eq!(depth("emails", "FAILED"), Some(0.0), "{text}");
    assert_eq!(depth("emails", "RUNNING"), Some(0.0), "{text}");
    assert_eq!(depth("default", "READY"), Some(1.0), "{text}");
    assert_eq!(depth("default", "FAILED"), Some(1.0), "{text}");
    let age = value(
        text,
        "taskhost_queue_oldest_ready_age_seconds",
        &[("backend", "default"), ("queue", "emails")],
    )
    .expect("an oldest READY age");
    assert!((0.0..3600.0).contains(&age), "{age}");

    // Without a token, as every page: loopback host names only.
    let open = dashboard(&store);
    assert_eq!(get(&open, "/metrics").await.status, StatusCode::OK);
    let rebound = Request::get("/metrics")
        .header(header::HOST, "rebind.example:8000")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&open, rebound).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_overview_lists_the_periodic_schedules_with_their_last_and_next_tick() {
    let store = Store::new();
    let backend = store.backend();
    let app = dashboard(&store);
    // No schedules stored: no table.
    let page = get(&app, "/").await;
    assert!(!page.body.contains("Periodic schedules"), "{}", page.body);
    let schedule = |name: &str, cron: &str| {
        serde_json::json!({
            "name": name, "task_path": "app::report", "cron": cron, "timezone": "Europe/Paris",
            "missed": "once", "queue_name": "default", "priority": 0, "args": [], "kwargs": {},
        })
    };
    let now = chrono::Utc::now();
    let _: serde_json::Value = backend
        .call_ext_json(
            "taskhost.periodic.sync",
            &serde_json::json!({ "now": now, "schedules": [
                schedule("daily", "0 7 * * *"),
                schedule("past", "0 0 12 1 1 * 2020"),
            ] }),
        )
        .unwrap();
    // One tick of "past" enqueued: its last tick links to the task.
    let tick = "2020-01-01T12:00:00Z";
    let task = serde_json::json!({
        "id": uuid::Uuid::now_v7().to_string(),
        "task": { "path": "app::report", "priority": 0, "queue_name": "default",
                  "backend": "default", "run_after": tick },
        "args": [], "kwargs": {},
    });
    let done: serde_json::Value = backend
        .call_ext_json(
            "taskhost.periodic.enqueue",
            &serde_json::json!({ "schedule": "past", "through": tick,
                                 "ticks": [{ "tick": tick, "task": task }] }),
        )
        .unwrap();
    let id = done["enqueued"][0]["id"].as_str().unwrap().to_string();
    let page = get(&app, "/").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = &page.body;
    let table = &body[body
        .find("Periodic schedules")
        .expect("the schedules table")..];
    let table = &table[..table.find("</table>").unwrap()];
    let daily = &table[table.find(">daily<").unwrap()..];
    let daily = &daily[..daily.find("</tr>").unwrap()];
    assert!(
        daily.contains("0 7 * * *") && daily.contains("Europe/Paris"),
        "{daily}"
    );
    assert!(daily.contains("–"), "no last tick yet: {daily}");
    assert!(daily.contains(":00:00 UTC"), "a next tick: {daily}");
    let past = &table[table.find(">past<").unwrap()..];
    let past = &past[..past.find("</tr>").unwrap()];
    assert!(
        past.contains(&format!("href=\"/results/default/{id}\""))
            && past.contains("2020-01-01 12:00:00 UTC"),
        "{past}"
    );
    assert!(past.contains("never"), "no tick after 2020: {past}");
}
