//! The dashboard in a real browser: headless Chromium driven through WebDriver (chromedriver),
//! against a dashboard served on a real port over a real SQLite store. Loads the overview,
//! filters the results, opens a result, retries and cancels it, and prunes, checking the store
//! changed.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them when missing).
//! Without them the test says so and passes, except with `CI=true`, where it fails.
//! Screenshots of each page go to `target/dashboard-screenshots/`, and with
//! `TASKHOST_UPDATE_SCREENSHOTS=1` to `docs/dashboard/` too.

mod common;

use common::Store;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use taskhost_dashboard::{Dashboard, Options};

const CHROMIUM: &[&str] = &["chromium", "chromium-browser", "google-chrome"];

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// chromedriver, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(chromedriver: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        // Ready once it accepts connections; a driver that never does fails the test.
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, chromium: &Path) -> Client {
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--hide-scrollbars"],
        }
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session on chromium")
}

/// Save the page as `name.png` (see the module docs for where).
async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut dirs = vec![taskhost_e2e::build::target_dir().join("dashboard-screenshots")];
    if std::env::var_os("TASKHOST_UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
        dirs.push(root.join("docs/dashboard"));
    }
    for dir in dirs {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
    }
}

async fn text(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Click what `locator` finds and wait until the browser has left the page it was on. A click
/// only schedules the navigation (a link's or a form's), so reading the page straight after it
/// may still read the old one; once the URL has changed, chromedriver waits for the new page's
/// load before it runs the next command.
async fn click_and_follow(client: &Client, locator: Locator<'_>) {
    let before = client.current_url().await.unwrap();
    client.find(locator).await.unwrap().click().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = client.current_url().await.unwrap();
        if now != before {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the click did not leave {before} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_loads_the_pages_filters_opens_a_result_and_prunes() {
    let (Some(chromedriver), Some(chromium)) = (on_path(&["chromedriver"]), on_path(CHROMIUM))
    else {
        let message = "the browser test needs chromium and chromedriver on PATH \
                       (Debian: apt-get install -y chromium chromium-driver)";
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "{message}"
        );
        eprintln!("skipped: {message}");
        return;
    };

    let store = Store::new();
    store.enqueue(6, "emails", "app::emails::send_welcome");
    store.enqueue(9, "default", "app::images::resize");
    store.enqueue(3, "reports", "app::reports::monthly");
    store.finish(4, "default", true);
    store.finish(2, "emails", false);
    store.finish(1, "emails", true);
    store.finish(1, "reports", false);
    let dashboard = Dashboard::bind(
        store.backends.clone(),
        Options {
            bind: "127.0.0.1:0".parse().unwrap(),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let base = format!(
        "http://localhost:{}",
        dashboard.local_addr().unwrap().port()
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dashboard.serve(async {
        let _ = stopped.await;
    }));

    let driver = Driver::start(&chromedriver);
    let client = browser(&driver, &chromium).await;

    // The overview (paused, so it does not reload under the test).
    client.goto(&format!("{base}/?live=0")).await.unwrap();
    assert_eq!(text(&client, "h1").await, "Overview");
    let queues = text(&client, "table.queues").await;
    assert!(
        queues.contains("emails") && queues.contains("reports"),
        "{queues}"
    );
    let caption = text(&client, "figcaption").await;
    assert!(
        caption.contains("5 successful") && caption.contains("3 failed"),
        "{caption}"
    );
    screenshot(&client, "overview").await;

    // The results list, filtered to FAILED through the form.
    click_and_follow(&client, Locator::LinkText("Results")).await;
    assert_eq!(text(&client, "h1").await, "Results");
    let status = client
        .find(Locator::Css("select[name=status]"))
        .await
        .unwrap();
    status.select_by_value("FAILED").await.unwrap();
    click_and_follow(&client, Locator::Css("form.filters button")).await;
    let url = client.current_url().await.unwrap();
    assert!(url.query().unwrap_or("").contains("status=FAILED"), "{url}");
    let statuses = client
        .find_all(Locator::Css("table.results td .status"))
        .await
        .unwrap();
    assert_eq!(statuses.len(), 3, "three FAILED results");
    for s in &statuses {
        assert_eq!(s.text().await.unwrap(), "FAILED");
    }
    screenshot(&client, "results").await;

    // One result, opened from the list.
    click_and_follow(&client, Locator::Css("table.results td.id a")).await;
    let h1 = text(&client, "h1").await;
    assert!(h1.starts_with("Result "), "{h1}");
    assert!(text(&client, "pre.traceback")
        .await
        .contains("std::io::Error: disk full"));
    assert!(text(&client, "dl.fields").await.contains("worker-1"));
    screenshot(&client, "result").await;

    // Retry the FAILED result, then cancel it while it is READY: the store changes each time.
    let id = client
        .find(Locator::Css("h1 code"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let backend = store.backend();
    client
        .find(Locator::Css("form.result-action button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let notice = client
        .wait()
        .for_element(Locator::Css("p.notice"))
        .await
        .unwrap();
    assert_eq!(
        notice.text().await.unwrap(),
        "Retried: the task is READY again."
    );
    assert_eq!(
        backend.get_result(&id).unwrap().status(),
        taskhost::TaskResultStatus::Ready
    );
    let cancel = client
        .find(Locator::Css("form.result-action button"))
        .await
        .unwrap();
    assert_eq!(cancel.text().await.unwrap(), "Cancel");
    cancel.click().await.unwrap();
    client
        .wait()
        .for_element(Locator::Css("h1 span.cancelled"))
        .await
        .unwrap();
    assert!(text(&client, "p.notice").await.starts_with("Cancelled"));
    assert!(backend.get_result(&id).unwrap().is_cancelled());
    screenshot(&client, "cancelled").await;

    // Prune everything finished (age 0) from the overview's form; the store loses 8 rows.
    assert_eq!(store.count(), 18);
    client.goto(&format!("{base}/?live=0")).await.unwrap();
    let age = client
        .find(Locator::Css("form.action input[name=min_age_days]"))
        .await
        .unwrap();
    age.clear().await.unwrap();
    age.send_keys("0").await.unwrap();
    client
        .find(Locator::Css("form.action button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let notice = client
        .wait()
        .for_element(Locator::Css("p.notice"))
        .await
        .unwrap();
    assert_eq!(
        notice.text().await.unwrap(),
        "Pruned 8 finished results from 'default'."
    );
    assert_eq!(store.count(), 10, "the READY results stay");
    screenshot(&client, "pruned").await;

    client.close().await.unwrap();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
