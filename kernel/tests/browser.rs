//! The rater page in a real browser: Debian's Chromium, headless, driven through chromedriver
//! with fantoccini. A rater opens their link, answers with the keyboard, sees their condition's
//! assistance (and not the other condition's), meets a gold item, answers it wrong and is
//! paused; markup in an item's text is shown as text and never runs. Screenshots are kept under
//! the target directory (`tmp/browser/`) as the test's artefacts.
//!
//! tests/run.sh installs `chromium` and `chromium-driver`; without them this test fails and
//! says so (set SANDWICH_SKIP_BROWSER=1 to skip it on a machine that cannot have them).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use polars::prelude::*;
use sandwich_core::feedback::{Campaign, CampaignSpec, Next};
use sandwich_serve::{serve, ServeOptions};
use serde_json::json;

const ENTER: &str = "\u{E007}";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn artefacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn browser(profile: &std::path::Path) -> Option<(Driver, Client)> {
    let (driver, chromium) = ("/usr/bin/chromedriver", "/usr/bin/chromium");
    if std::env::var_os("SANDWICH_SKIP_BROWSER").is_some() {
        eprintln!("browser test skipped (SANDWICH_SKIP_BROWSER)");
        return None;
    }
    assert!(
        std::path::Path::new(driver).exists() && std::path::Path::new(chromium).exists(),
        "{driver} and {chromium} are needed: apt-get install chromium chromium-driver (tests/run.sh does)"
    );
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver(child);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium, "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--window-size=480,900",
            format!("--user-data-dir={}", profile.display())]}),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let url = format!("http://127.0.0.1:{port}");
    // chromedriver takes a moment to listen.
    for _ in 0..100 {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => return Some((driver, c)),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("chromedriver did not start on {url}");
}

fn campaign(dir: &std::path::Path) -> Arc<Campaign> {
    let items = df!(
        "id" => ["x1", "x2", "g1", "g2", "x3", "x4"],
        "text" => [
            "<img src=x onerror=\"window.__pwned = 1\"><script>window.__pwned = 2</script>a joy",
            "dull and long", "wonderful", "awful", "fine", "meh"],
        "model" => ["positive (0.91)", "negative (0.66)", "positive (0.99)", "negative (0.97)", "positive (0.55)", "negative (0.60)"],
        "gold" => [None, None, Some("positive"), Some("negative"), None, None]
    )
    .unwrap();
    let spec: CampaignSpec = serde_json::from_value(json!({
        "name": "Movie reviews", "kind": "label", "choices": ["negative", "positive"],
        "instructions": "# Is the review positive?\nPress **1** (negative) or **2** (positive), then **Enter**.",
        "overlap": 2, "gold": {"rate": 0.5, "min_gold": 1, "threshold": 1.0},
        "conditions": {"unassisted": {}, "assisted": {"show": ["model"], "heading": "The model says"}},
        "raters": [{"id": "ann", "group": "helped"}, {"id": "bo", "group": "alone"}],
        "groups": {"helped": "assisted", "alone": "unassisted"}}))
    .unwrap();
    Arc::new(Campaign::create(dir.join("c.db"), spec, &items).unwrap())
}

async fn wait_text(c: &Client, css: &str, contains: &str) -> String {
    for _ in 0..100 {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if let Ok(t) = e.text().await {
                if t.contains(contains) {
                    return t;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("'{css}' never showed '{contains}'");
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(artefacts().join(name), png).unwrap();
}

async fn visible(c: &Client, css: &str) -> bool {
    let v = c
        .execute(
            &format!("return !document.querySelector('{css}').hidden"),
            vec![],
        )
        .await
        .unwrap();
    v == json!(true)
}

/// Presses keys in the page, as a rater does (to whatever has focus).
async fn press(c: &Client, keys: &str) {
    c.active_element()
        .await
        .unwrap()
        .send_keys(keys)
        .await
        .unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_rater_answers_with_the_keyboard_sees_their_condition_and_is_paused_on_gold() {
    let dir = tempfile::tempdir().unwrap();
    let c = campaign(dir.path());
    let server = serve(c.clone(), &ServeOptions::default()).unwrap();
    let Some((_driver, b)) = browser(&dir.path().join("profile")).await else {
        return;
    };
    let links = c.links(server.url()).unwrap();
    let url = |i: usize| {
        links
            .column("url")
            .unwrap()
            .str()
            .unwrap()
            .get(i)
            .unwrap()
            .to_string()
    };
    let ann = c.rater_token("ann").unwrap();

    // The assisted rater: the item, the model's answer under the condition's heading.
    b.goto(&url(0)).await.unwrap();
    wait_text(&b, "#progress-text", "0 done").await;
    assert!(
        visible(&b, "#assistance").await,
        "the assisted condition shows the model"
    );
    let heading = b
        .find(Locator::Css("#assistance-heading"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(heading, "The model says");
    let instructions = b
        .find(Locator::Css(".instructions h2"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(instructions, "Is the review positive?");
    shot(&b, "rater-page.png").await;

    // Answer every item with the keyboard; a gold item (the server knows which item it holds
    // for ann) is answered wrong, which pauses her (threshold 1.0 after one gold item).
    let mut answered = 0;
    while let Next::Item(a) = c.next(&ann).unwrap().unwrap() {
        let held = a.item;
        let text = b
            .find(Locator::Css("#fields dd"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if held == "x1" {
            // Markup in item text is text: shown verbatim, never run.
            assert!(
                text.contains("<script>window.__pwned = 2</script>"),
                "{text}"
            );
        }
        let key = match held.as_str() {
            "g1" => "1", // gold says positive (2): answer negative
            "g2" => "2", // gold says negative (1): answer positive
            _ => "2",
        };
        press(&b, key).await;
        let checked = b
            .execute(
                "return document.querySelector('input[name=answer]:checked').value",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            checked,
            json!(if key == "1" { "negative" } else { "positive" })
        );
        press(&b, ENTER).await;
        answered += 1;
        if held.starts_with('g') {
            wait_text(&b, "#message", "below the bar").await;
            break;
        }
        wait_text(&b, "#progress-text", &format!("{answered} done")).await;
    }
    shot(&b, "paused.png").await;
    let pwned = b
        .execute("return window.__pwned === undefined", vec![])
        .await
        .unwrap();
    assert_eq!(pwned, json!(true), "script in item text ran");
    let q = c.quality().unwrap();
    assert_eq!(
        q.column("paused").unwrap().bool().unwrap().get(0),
        Some(true)
    );
    let j = c.judgments().unwrap();
    assert_eq!(j.height(), answered);
    assert!(j
        .column("flagged")
        .unwrap()
        .bool()
        .unwrap()
        .iter()
        .all(|f| f == Some(true)));

    // The unassisted rater never sees the model.
    b.goto(&url(1)).await.unwrap();
    wait_text(&b, "#progress-text", "0 done").await;
    assert!(
        !visible(&b, "#assistance").await,
        "the unassisted condition shows no model"
    );
    let page = b.source().await.unwrap();
    assert!(
        !page.contains("positive (0.") && !page.contains("negative (0."),
        "model output reached an unassisted page"
    );
    shot(&b, "unassisted.png").await;
    b.close().await.unwrap();
    server.stop();
}
