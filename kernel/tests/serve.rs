//! The web app over real sockets: the rater flow, the admin API, and every way a request that
//! is not a rater's own answer must fail — a 4xx and nothing written.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::{auth, request, start_server};

use polars::prelude::*;
use sandwich_core::feedback::{Campaign, CampaignSpec};
use sandwich_serve::{serve, ServeOptions};
use serde_json::json;

fn campaign(dir: &std::path::Path) -> Arc<Campaign> {
    let items = df!("id" => ["a", "b", "c", "d"], "text" => ["<script>alert(1)</script>", "fine", "bad", "ok"],
                    "model" => ["pos", "pos", "neg", "pos"]).unwrap();
    let spec: CampaignSpec = serde_json::from_value(json!({
        "name": "Sentiment <b>check</b>", "kind": "label", "choices": ["neg", "pos"], "overlap": 1,
        "instructions": "# Read\nPress **1** or **2**.",
        "raters": [{"id": "ann"}, {"id": "bo"}]}))
    .unwrap();
    Arc::new(Campaign::create(dir.join("c.db"), spec, &items).unwrap())
}

#[test]
fn a_rater_gets_the_page_and_an_item_and_their_answer_is_saved_once() {
    let dir = tempfile::tempdir().unwrap();
    let c = campaign(dir.path());
    let server = serve(c.clone(), &ServeOptions::default()).unwrap();
    let addr = server.addr();
    assert!(addr.ip().is_loopback());
    let ann = c.rater_token("ann").unwrap();
    let page = request(addr, "GET", &format!("/r/{ann}"), &[], b"");
    assert_eq!(page.status, 200);
    assert!(page
        .headers
        .to_ascii_lowercase()
        .contains("content-security-policy: default-src 'self'; script-src 'self'"));
    assert!(
        page.body.contains("Sentiment &lt;b&gt;check&lt;/b&gt;")
            && page.body.contains("<strong>1</strong>")
    );
    assert!(!page.body.contains("<b>check"));
    assert_eq!(request(addr, "GET", "/r/not-a-token", &[], b"").status, 404);
    assert_eq!(request(addr, "GET", "/assets/app.js", &[], b"").status, 200);
    let a = auth(&ann);
    let next = request(addr, "GET", "/api/next", &[("Authorization", &a)], b"").json();
    assert_eq!(next["status"], "item", "{next}");
    let item = next["item"]["item"].as_str().unwrap().to_string();
    let body = json!({"item": item, "answer": "pos", "key": "k-1"}).to_string();
    let h = [
        ("Authorization", a.as_str()),
        ("Content-Type", "application/json"),
    ];
    let r = request(addr, "POST", "/api/judgments", &h, body.as_bytes());
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (200, json!("saved")),
        "{}",
        r.body
    );
    let r = request(addr, "POST", "/api/judgments", &h, body.as_bytes());
    assert_eq!(r.json()["duplicate"], json!(true));
    assert_eq!(c.judgments().unwrap().height(), 1);
    // The admin API: the judgments as JSON records, for the admin token only.
    let admin = auth(&c.admin_token());
    let j = request(
        addr,
        "GET",
        "/api/admin/judgments",
        &[("Authorization", &admin)],
        b"",
    );
    assert_eq!(j.status, 200);
    assert_eq!(j.json().as_array().unwrap().len(), 1);
    assert_eq!(
        request(
            addr,
            "GET",
            "/api/admin/quality",
            &[("Authorization", &a)],
            b""
        )
        .status,
        401
    );
    server.stop();
}

#[test]
fn forged_foreign_and_malformed_requests_get_a_4xx_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = campaign(dir.path());
    let server = serve(c.clone(), &ServeOptions::default()).unwrap();
    let addr = server.addr();
    let (ann, bo) = (
        auth(&c.rater_token("ann").unwrap()),
        auth(&c.rater_token("bo").unwrap()),
    );
    let next = request(addr, "GET", "/api/next", &[("Authorization", &ann)], b"").json();
    let item = next["item"]["item"].as_str().unwrap().to_string();
    let good = json!({"item": item, "answer": "pos", "key": "k"}).to_string();
    let json_ct = ("Content-Type", "application/json");
    let big = format!(
        "{{\"item\": \"{item}\", \"answer\": \"{}\", \"key\": \"x\"}}",
        "a".repeat(100_000)
    );
    // (what, headers, body, the status wanted)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16);
    let cases: Vec<Case> = vec![
        ("no token", vec![json_ct], good.clone().into_bytes(), 401),
        (
            "a guessed token",
            vec![
                (
                    "Authorization",
                    "Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                ),
                json_ct,
            ],
            good.clone().into_bytes(),
            401,
        ),
        (
            "another rater's item",
            vec![("Authorization", &bo), json_ct],
            good.clone().into_bytes(),
            403,
        ),
        (
            "a guessed item id",
            vec![("Authorization", &ann), json_ct],
            json!({"item": "zz", "answer": "pos", "key": "k2"})
                .to_string()
                .into_bytes(),
            403,
        ),
        (
            "a cross-site page",
            vec![
                ("Authorization", &ann),
                json_ct,
                ("Origin", "https://evil.example"),
            ],
            good.clone().into_bytes(),
            403,
        ),
        (
            "a cross-site form post",
            vec![
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Origin", "https://evil.example"),
            ],
            format!("item={item}&answer=pos&key=k").into_bytes(),
            403,
        ),
        (
            "a form post",
            vec![
                ("Authorization", &ann),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            format!("item={item}&answer=pos&key=k").into_bytes(),
            415,
        ),
        (
            "an oversize body",
            vec![("Authorization", &ann), json_ct],
            big.into_bytes(),
            413,
        ),
        (
            "malformed JSON",
            vec![("Authorization", &ann), json_ct],
            b"{\"item\": ".to_vec(),
            400,
        ),
        (
            "an unknown field",
            vec![("Authorization", &ann), json_ct],
            json!({"item": item, "answer": "pos", "key": "k", "rater": "bo"})
                .to_string()
                .into_bytes(),
            422,
        ),
        (
            "a wrong answer type",
            vec![("Authorization", &ann), json_ct],
            json!({"item": item, "answer": 1, "key": "k"})
                .to_string()
                .into_bytes(),
            422,
        ),
        (
            "an empty key",
            vec![("Authorization", &ann), json_ct],
            json!({"item": item, "answer": "pos", "key": ""})
                .to_string()
                .into_bytes(),
            422,
        ),
    ];
    for (what, headers, body, want) in cases {
        let r = request(addr, "POST", "/api/judgments", &headers, &body);
        assert_eq!(r.status, want, "{what}: {}", r.body);
        assert_eq!(
            c.judgments().unwrap().height(),
            0,
            "{what} wrote a judgment"
        );
    }
    // A replay under the same key of a different answer is refused too.
    let h = [("Authorization", ann.as_str()), json_ct];
    assert_eq!(
        request(addr, "POST", "/api/judgments", &h, good.as_bytes()).status,
        200
    );
    let other = json!({"item": item, "answer": "neg", "key": "k"}).to_string();
    assert_eq!(
        request(addr, "POST", "/api/judgments", &h, other.as_bytes()).status,
        409
    );
    assert_eq!(c.judgments().unwrap().height(), 1);
    server.stop();
}

#[test]
fn behind_a_proxy_the_public_origin_is_this_server() {
    // A proxy at https://rate.example.org that rewrites Host to the loopback address.
    let dir = tempfile::tempdir().unwrap();
    let c = campaign(dir.path());
    let opts = ServeOptions {
        public_url: Some("https://rate.example.org/".into()),
        ..Default::default()
    };
    let server = serve(c.clone(), &opts).unwrap();
    assert_eq!(server.url(), "https://rate.example.org");
    let a = auth(&c.rater_token("ann").unwrap());
    let next = request(
        server.addr(),
        "GET",
        "/api/next",
        &[("Authorization", &a)],
        b"",
    )
    .json();
    let item = next["item"]["item"].as_str().unwrap().to_string();
    let body = json!({"item": item, "answer": "pos", "key": "k"}).to_string();
    let post = |origin: &str| {
        let h = [
            ("Authorization", a.as_str()),
            ("Content-Type", "application/json"),
            ("Origin", origin),
        ];
        request(server.addr(), "POST", "/api/judgments", &h, body.as_bytes()).status
    };
    assert_eq!(post("https://evil.example"), 403);
    assert_eq!(post("https://rate.example.org"), 200);
}

#[test]
fn the_server_binds_loopback_by_default_and_refuses_a_bad_host() {
    let dir = tempfile::tempdir().unwrap();
    let c = campaign(dir.path());
    let err = serve(
        c.clone(),
        &ServeOptions {
            host: "localhost:80".into(),
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("'host'"), "{err}");
    let s = serve(c, &ServeOptions::default()).unwrap();
    assert!(s.url().starts_with("http://127.0.0.1:"));
}

// ---- Under load, and killed under load: `sandwich serve` as a separate process. ----

/// Creates a campaign with `raters` raters and `items` items (overlap = raters, so nobody runs
/// out; one item in ten is gold, with a threshold nobody falls below) through `sandwich run`.
fn make_campaign(path: &std::path::Path, raters: usize, items: usize) {
    let code = format!(
        r#"
        local ids, text, gold = {{}}, {{}}, {{}}
        for i = 1, {items} do
          ids[i] = "t" .. i
          text[i] = "item " .. i
          gold[i] = (i % 10 == 0) and "pos" or sw.null
        end
        local raters = {{}}
        for r = 1, {raters} do raters[r] = {{id = "r" .. r}} end
        sw.feedback.campaign{{path = {path:?}, items = sw.frame{{id = ids, text = text, gold = gold}},
          kind = "label", choices = {{"neg", "pos"}}, overlap = {raters}, raters = raters,
          gold = {{rate = 0.1, min_gold = 1, threshold = 0}}}}
        "#,
        path = path.to_str().unwrap()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sandwich"))
        .args(["run", "-e", &code])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const RATERS: usize = 50;

/// What one simulated rater saw: acknowledged `(item, key)` pairs, and the submission in
/// flight when the server went away.
#[derive(Default)]
struct Seen {
    acked: Vec<(String, String)>,
    in_flight: Option<(String, String)>,
    latencies_ms: Vec<f64>,
}

/// One rater answering as fast as the server lets it until `stop` (or the server dies).
fn rater_loop(
    addr: SocketAddr,
    token: String,
    tag: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Seen {
    let mut seen = Seen::default();
    let a = auth(&token);
    let mut n = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let next = request(addr, "GET", "/api/next", &[("Authorization", &a)], b"");
        if next.status != 200 {
            break;
        }
        let Some(item) = next.json()["item"]["item"].as_str().map(str::to_string) else {
            break;
        };
        let key = format!("{tag}-{n}");
        n += 1;
        let body = json!({"item": item, "answer": "pos", "key": key}).to_string();
        seen.in_flight = Some((item.clone(), key.clone()));
        let started = std::time::Instant::now();
        let r = request(
            addr,
            "POST",
            "/api/judgments",
            &[("Authorization", &a), ("Content-Type", "application/json")],
            body.as_bytes(),
        );
        if r.status != 200 {
            break;
        }
        seen.latencies_ms
            .push(started.elapsed().as_secs_f64() * 1e3);
        seen.in_flight = None;
        seen.acked.push((item, key));
    }
    seen
}

fn run_raters(
    addr: SocketAddr,
    tokens: &[(String, String)],
    tag: &str,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> Vec<std::thread::JoinHandle<Seen>> {
    tokens
        .iter()
        .map(|(rater, token)| {
            let (token, tag, stop) = (token.clone(), format!("{tag}-{rater}"), stop.clone());
            std::thread::spawn(move || rater_loop(addr, token, tag, stop))
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// 50 raters answer concurrently for a bounded time (`SANDWICH_LOAD_SECONDS`, default 60) and
/// the submit latency is printed (README: "Collecting real feedback"). Then, under the same
/// load, the server is killed with SIGKILL and restarted on the same file: every judgment a
/// client saw acknowledged is there, none twice, and re-sending the in-flight submissions under
/// their keys adds each at most once.
#[test]
fn fifty_raters_under_load_then_kill_minus_nine_loses_no_acknowledged_judgment() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("load.db");
    make_campaign(&path, RATERS, 5000);
    let (mut child, addr, tokens) = start_server(env!("CARGO_BIN_EXE_sandwich"), &path, RATERS);
    let seconds: u64 = std::env::var("SANDWICH_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let stop = Arc::new(AtomicBool::new(false));
    let started = std::time::Instant::now();
    let handles = run_raters(addr, &tokens, "load", &stop);
    std::thread::sleep(std::time::Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let phase1: Vec<Seen> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let elapsed = started.elapsed().as_secs_f64();
    let mut lat: Vec<f64> = phase1
        .iter()
        .flat_map(|s| s.latencies_ms.iter().copied())
        .collect();
    lat.sort_by(f64::total_cmp);
    assert!(
        lat.len() > 100,
        "only {} submissions in {seconds} s",
        lat.len()
    );
    eprintln!(
        "load: {RATERS} raters, {} submissions in {elapsed:.0} s ({:.0}/s); submit latency p50 {:.1} ms, p99 {:.1} ms",
        lat.len(),
        lat.len() as f64 / elapsed,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );

    // The kill: under the same load, SIGKILL after a moment.
    let stop = Arc::new(AtomicBool::new(false));
    let handles = run_raters(addr, &tokens, "kill", &stop);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let phase2: Vec<Seen> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(phase2.iter().map(|s| s.acked.len()).sum::<usize>() > 0);

    // Restart on the same file; each rater re-sends what was in flight under the same key.
    let (mut child, addr, tokens2) = start_server(env!("CARGO_BIN_EXE_sandwich"), &path, RATERS);
    let (mut resent, mut committed_unacked) = (0, 0);
    for ((_, token), seen) in tokens2.iter().zip(&phase2) {
        if let Some((item, key)) = &seen.in_flight {
            let body = json!({"item": item, "answer": "pos", "key": key}).to_string();
            let r = request(
                addr,
                "POST",
                "/api/judgments",
                &[
                    ("Authorization", &auth(token)),
                    ("Content-Type", "application/json"),
                ],
                body.as_bytes(),
            );
            // Saved now, or already saved before the kill (its reply lost): there once, either way.
            assert_eq!(r.status, 200, "{}", r.body);
            resent += 1;
            if r.json()["duplicate"] == json!(true) {
                committed_unacked += 1;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();

    let c = Campaign::open(&path).unwrap();
    let j = c.judgments().unwrap();
    let pairs: std::collections::HashSet<(String, String)> = j
        .column("worker")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .zip(j.column("task").unwrap().str().unwrap().iter())
        .map(|(w, t)| (w.unwrap().to_string(), t.unwrap().to_string()))
        .collect();
    assert_eq!(pairs.len(), j.height(), "a judgment was written twice");
    let acked: usize = phase1.iter().chain(&phase2).map(|s| s.acked.len()).sum();
    for ((rater, _), (s1, s2)) in tokens.iter().zip(phase1.iter().zip(&phase2)) {
        for (item, _) in s1.acked.iter().chain(&s2.acked) {
            assert!(
                pairs.contains(&(rater.clone(), item.clone())),
                "acknowledged ({rater}, {item}) is missing"
            );
        }
    }
    assert_eq!(
        j.height(),
        acked + resent,
        "judgments beyond the acknowledged and re-sent ones"
    );
    eprintln!(
        "kill -9: {acked} acknowledged judgments all present after the restart; {resent} in flight \
         re-sent under their keys ({committed_unacked} had committed before the kill), each written once"
    );
}
