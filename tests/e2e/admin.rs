//! The LAN admin page against the real daemon on the simulated board.
//!
//! Over plain HTTP: the login's refusals, the session cookie's attributes, the CSRF and
//! Origin checks of the proxy, that the JSON API never takes the cookie, that a page's
//! event stream replays what changed while the page loaded, and the page weight (every page
//! with its stylesheet and script ≤ 150 KB).
//!
//! In a real browser: `admin_browser.py` drives Debian's chromium through chromium-driver
//! with Selenium (both installed by `scripts/deps.sh test`, Selenium in the venv it makes):
//! log in, see `sim0` registered with its signal, an invalid flow's error at its action,
//! flows created and dry-run, bound to the number, an SMS from the simulator panel answered
//! live, a call hung up from the dashboard, a wrong token and a forged cross-site POST
//! refused. It saves screenshots of the main pages into a temporary directory, or into
//! `docs/screenshots/` (the README's pictures) with `FLOWGATE_UPDATE_SCREENSHOTS=1`, so an
//! ordinary run leaves the working tree clean.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use flowgate_tests::{Gateway, SIM_NUMBER, python_with};
use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE};
use reqwest::{StatusCode, redirect};
use serde_json::json;

/// The budget for one page with everything it loads.
const PAGE_BUDGET: usize = 150 * 1024;
/// Largest screenshot kept in the repository.
const SCREENSHOT_BUDGET: u64 = 100 * 1024;
/// Limit of the whole browser session (it returns as soon as its last check passes).
const BROWSER: Duration = Duration::from_secs(300);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Logs in over HTTP; returns the session cookie (`name=value`) and the raw `Set-Cookie`.
async fn login(http: &reqwest::Client, base: &str, token: &str) -> (String, String) {
    let response = http
        .post(format!("{base}/admin/login"))
        .header(ORIGIN, base)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let set = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let cookie = set.split(';').next().unwrap().to_owned();
    (cookie, set)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_page_over_http() {
    let gw = Gateway::start().await;
    let base = format!("http://{}", gw.daemon().addr());
    let token = gw.daemon().token().as_str().to_owned();
    let http = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap();

    // Without a session every page sends the browser to the login form.
    let r = http.get(format!("{base}/admin/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/admin/login");
    // A wrong token, and a login posted from another site, are refused.
    let r = http
        .post(format!("{base}/admin/login"))
        .header(ORIGIN, &base)
        .form(&[("token", "wrong-wrong-wrong-wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get(SET_COOKIE).is_none());
    let r = http
        .post(format!("{base}/admin/login"))
        .header(ORIGIN, "http://evil.example")
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let (cookie, set) = login(&http, &base, &token).await;
    for attribute in ["HttpOnly", "SameSite=Strict", "Max-Age=", "Path=/admin"] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }
    let page = http
        .get(format!("{base}/admin/"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("data-line=\"sim0\""), "{page}");
    let csrf = page
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();

    // The JSON API keeps its bearer token: the cookie alone opens nothing there.
    let r = http
        .get(format!("{base}/v1.0/flows"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // The proxy: reads with the cookie; changes need the same origin and the CSRF token.
    let r = http
        .get(format!("{base}/admin/api/v1.0/gateway/lines"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let sms = json!({"from": "+15550000666", "text": "forged"});
    let post = |origin: Option<&str>, csrf: Option<&str>| {
        let mut rb = http
            .post(format!("{base}/admin/api/v1.0/gateway/sim/sms"))
            .header(COOKIE, &cookie)
            .json(&sms);
        if let Some(o) = origin {
            rb = rb.header(ORIGIN, o);
        }
        if let Some(c) = csrf {
            rb = rb.header("x-csrf-token", c);
        }
        rb.send()
    };
    assert_eq!(
        post(None, Some(&csrf)).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(Some("http://evil.example"), Some(&csrf))
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(Some(&base), None).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(Some(&base), Some("0".repeat(64).as_str()))
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    let list = gw.api().get("/v1.0/messages").await;
    assert_eq!(
        list["result"],
        json!([]),
        "a refused request delivered an SMS"
    );
    // Only the API is behind the proxy.
    let r = http
        .get(format!("{base}/admin/api/admin/"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // The page's event stream starts after the newest event before the page was rendered: a
    // change made before the script opens the stream (a call arriving while the dashboard
    // loads) is replayed to it, not lost.
    let after: u64 = page
        .split("data-after=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no data-after in {page}"));
    gw.api()
        .post(
            "/v1.0/flows",
            json!({"name": "made while the page loads", "actions": [{"type": "answer"}]}),
        )
        .await;
    let mut stream = http
        .get(format!(
            "{base}/admin/api/v1.0/gateway/events/stream?after={after}"
        ))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while !text.contains("event: flow_created") {
            let chunk = stream
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the change was not replayed: {text}"));
    drop(stream);

    // Page weight: each page with its stylesheet and script.
    let mut assets = 0;
    for asset in ["/admin/static/app.css", "/admin/static/app.js"] {
        let r = http.get(format!("{base}{asset}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assets += r.bytes().await.unwrap().len();
    }
    for page in [
        "", "sim", "flows", "numbers", "messages", "calls", "events", "settings",
    ] {
        let r = http
            .get(format!("{base}/admin/{page}"))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "/admin/{page}");
        let html = r.bytes().await.unwrap().len();
        println!("page /admin/{page}: {html} B + assets {assets} B");
        assert!(
            html + assets <= PAGE_BUDGET,
            "/admin/{page} weighs {} B",
            html + assets
        );
    }

    // Logout needs the form's CSRF token; afterwards the cookie opens nothing.
    let r = http
        .post(format!("{base}/admin/logout"))
        .header(COOKIE, &cookie)
        .header(ORIGIN, &base)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = http
        .post(format!("{base}/admin/logout"))
        .header(COOKIE, &cookie)
        .header(ORIGIN, &base)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let r = http
        .get(format!("{base}/admin/api/v1.0/gateway/lines"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Rotating the token: the new one is shown once, the old one and every session end.
    let (cookie, _) = login(&http, &base, &token).await;
    let settings = http
        .get(format!("{base}/admin/settings"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = settings
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let shown = http
        .post(format!("{base}/admin/token"))
        .header(COOKIE, &cookie)
        .header(ORIGIN, &base)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let new = shown
        .split("id=\"new-token\" readonly value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no new token in {shown}"))
        .to_owned();
    assert_ne!(new, token);
    let status = |t: &str| http.get(format!("{base}/v1.0/flows")).bearer_auth(t).send();
    assert_eq!(
        status(&token).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status(&new).await.unwrap().status(), StatusCode::OK);
    let r = http
        .get(format!("{base}/admin/api/v1.0/gateway/lines"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_page_in_chromium() {
    let python = python_with("selenium");
    let gw = Gateway::start().await;
    let base = format!("http://{}", gw.daemon().addr());
    let token = gw.daemon().token().as_str().to_owned();
    let scratch = tempfile::tempdir().unwrap();
    let shots = if std::env::var_os("FLOWGATE_UPDATE_SCREENSHOTS").is_some() {
        workspace().join("docs/screenshots")
    } else {
        scratch.path().to_path_buf()
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/admin_browser.py");
    let sms_flow = workspace().join("flows/library/sms-keyword-bot.json");
    let child = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&base)
        .arg(&token)
        .arg(&sms_flow)
        .arg(&shots)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(BROWSER, child.wait_with_output())
        .await
        .expect("the browser session did not finish in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        // What the gateway knew of the calls, for a failure around the call steps.
        let calls = gw.api().calls().await;
        panic!(
            "browser session failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- calls\n{calls:?}"
        );
    }
    assert!(
        stdout.contains("ok: all admin page checks passed"),
        "{stdout}"
    );

    // What the browser did, as the API sees it.
    let calls = gw.api().calls().await;
    let hung_up = calls
        .iter()
        .find(|c| c["hangup_by"] == "local")
        .unwrap_or_else(|| panic!("no call hung up by the gateway: {calls:?}"));
    assert_eq!(hung_up["status"], "hangup");
    let numbers = gw.api().get("/v1.0/numbers").await;
    let bound = &numbers["result"][0];
    assert_eq!(bound["number"], SIM_NUMBER, "{numbers}");
    assert_ne!(
        bound["message_flow_id"],
        json!(uuid::Uuid::nil().to_string())
    );
    let messages = gw.api().get("/v1.0/messages?page_size=100").await;
    let texts: Vec<&str> = messages["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert!(texts.contains(&"hours"), "{texts:?}");
    assert!(
        !texts.contains(&"forged"),
        "a forged request got through: {texts:?}"
    );

    for name in [
        "dashboard",
        "simulator",
        "flow-editor",
        "numbers",
        "messages",
        "calls",
        "events",
        "settings",
    ] {
        let path = shots.join(format!("{name}.png"));
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size <= SCREENSHOT_BUDGET, "{} is {size} B", path.display());
    }
    gw.stop().await;
}
