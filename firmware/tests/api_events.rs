//! Keeping a controller in sync: the event log (after / limit / long-poll / pruned), the SSE
//! stream with replay and `Last-Event-ID` resume, webhook delivery to a local HTTP server
//! (order, retry after failures, filters, the cursor surviving a restart, per-activeflow
//! webhooks that never block each other), and flow-set sync with ETag / If-Match.

mod api_support;

use std::sync::Arc;
use std::time::Duration;

use api_support::*;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use flowgate::config::WebhookTarget;
use flowgate::metrics::Metrics;
use flowgate::sync::webhooks::{
    ACTIVEFLOW_HOOKS_CURSOR, ActiveflowHooks, DeliveryOptions, TargetWorker, cursor_key,
};
use futures::StreamExt;
use parking_lot::Mutex;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------- a webhook receiver

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    auth: Option<String>,
    body: Value,
    /// What the receiver answered.
    status: u16,
}

#[derive(Clone)]
struct Receiver {
    /// Requests still to fail with 500, per path.
    failures: Arc<Mutex<std::collections::HashMap<String, u32>>>,
    tx: mpsc::UnboundedSender<Hit>,
}

async fn receive(
    State(r): State<Receiver>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> AxumStatus {
    let path = uri.path().to_owned();
    let fail = {
        let mut failures = r.failures.lock();
        match failures.get_mut(&path) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    };
    let status = if fail {
        AxumStatus::INTERNAL_SERVER_ERROR
    } else {
        AxumStatus::OK
    };
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let _ = r.tx.send(Hit {
        path,
        auth,
        body,
        status: status.as_u16(),
    });
    status
}

/// A receiver on 127.0.0.1:0; `failures` lists (path, how many requests fail first).
async fn receiver(failures: &[(&str, u32)]) -> (String, mpsc::UnboundedReceiver<Hit>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = Receiver {
        failures: Arc::new(Mutex::new(
            failures
                .iter()
                .map(|(p, n)| ((*p).to_owned(), *n))
                .collect(),
        )),
        tx,
    };
    let app = axum::Router::new().fallback(receive).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, rx)
}

async fn next_hit(rx: &mut mpsc::UnboundedReceiver<Hit>) -> Hit {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a webhook request in time")
        .expect("receiver alive")
}

fn fast() -> DeliveryOptions {
    DeliveryOptions {
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(40),
        ..DeliveryOptions::default()
    }
}

fn worker(gw: &Gateway, target: &WebhookTarget, key: &str) -> TargetWorker {
    TargetWorker::new(
        gw.db.store.clone(),
        reqwest::Client::new(),
        target.clone(),
        key.to_owned(),
        fast(),
        Arc::new(Metrics::default()),
    )
}

#[tokio::test]
async fn webhooks_deliver_in_order_retry_and_resume_from_the_stored_cursor() {
    let gw = Gateway::start().await;
    let (base, mut hits) = receiver(&[("/events", 2)]).await;
    let target = WebhookTarget {
        url: format!("{base}/events"),
        events: vec![],
        secret: Some("s3cret".into()),
    };
    let key = cursor_key(std::slice::from_ref(&target), 0);
    let start = gw.last_seq();
    gw.db.store.meta_put(&key, &start).expect("cursor");

    let cancel = CancellationToken::new();
    let running = tokio::spawn(worker(&gw, &target, &key).run(cancel.clone()));
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(gw.create_flow(json!([{"type": "answer"}])).await);
    }
    let mut got = Vec::new();
    while got.iter().filter(|h: &&Hit| h.status == 200).count() < 3 {
        got.push(next_hit(&mut hits).await);
    }
    // The first event failed twice and was retried; order is kept throughout.
    let seqs: Vec<(u64, u16)> = got
        .iter()
        .map(|h| (h.body["seq"].as_u64().unwrap_or(0), h.status))
        .collect();
    assert_eq!(
        seqs,
        [
            (start + 1, 500),
            (start + 1, 500),
            (start + 1, 200),
            (start + 2, 200),
            (start + 3, 200)
        ]
    );
    for (hit, id) in got.iter().skip(2).zip(&ids) {
        assert_eq!(hit.auth.as_deref(), Some("Bearer s3cret"));
        assert_eq!(hit.body["type"], "flow_created");
        assert_eq!(hit.body["resource_id"], id.as_str());
        assert_eq!(hit.body["data"]["id"], id.as_str());
        assert!(hit.body["time"].is_string());
    }

    // A clean stop leaves the cursor after the last delivered event…
    cancel.cancel();
    running.await.expect("worker");
    assert_eq!(
        gw.db.store.meta_get::<u64>(&key).expect("meta"),
        Some(start + 3)
    );
    // …so a restarted worker sends only what is new.
    let later = gw.create_flow(json!([])).await;
    let cancel = CancellationToken::new();
    let running = tokio::spawn(worker(&gw, &target, &key).run(cancel.clone()));
    let hit = next_hit(&mut hits).await;
    assert_eq!(
        (hit.body["seq"].as_u64(), hit.body["resource_id"].as_str()),
        (Some(start + 4), Some(later.as_str()))
    );
    cancel.cancel();
    running.await.expect("worker");
    assert!(hits.try_recv().is_err(), "nothing was delivered twice");
}

#[tokio::test]
async fn webhook_filters_by_event_type() {
    let gw = Gateway::start().await;
    let (base, mut hits) = receiver(&[]).await;
    let target = WebhookTarget {
        url: format!("{base}/deletes"),
        events: vec!["flow_deleted".into()],
        secret: None,
    };
    let key = cursor_key(std::slice::from_ref(&target), 0);
    gw.db.store.meta_put(&key, &gw.last_seq()).expect("cursor");
    let cancel = CancellationToken::new();
    let running = tokio::spawn(worker(&gw, &target, &key).run(cancel.clone()));
    let id = gw.create_flow(json!([])).await;
    gw.ok(Method::DELETE, &format!("/v1.0/flows/{id}"), None)
        .await;
    let hit = next_hit(&mut hits).await;
    assert_eq!(
        (hit.body["type"].as_str(), hit.auth),
        (Some("flow_deleted"), None)
    );
    cancel.cancel();
    running.await.expect("worker");
    assert!(hits.try_recv().is_err());
}

#[tokio::test]
async fn activeflow_webhooks_are_delivered_and_a_dead_receiver_blocks_nobody() {
    let gw = Gateway::start().await;
    let (base, mut hits) = receiver(&[("/dead", u32::MAX)]).await;
    gw.db
        .store
        .meta_put(ACTIVEFLOW_HOOKS_CURSOR, &gw.last_seq())
        .expect("cursor");
    let cancel = CancellationToken::new();
    let hooks = ActiveflowHooks::new(
        gw.db.clone(),
        reqwest::Client::new(),
        fast(),
        Arc::new(Metrics::default()),
    );
    let running = tokio::spawn(hooks.run(cancel.clone()));

    let actions = json!([{"type": "variable_set", "option": {"key": "x", "value": "1"}}]);
    let dead = gw
        .ok(
            Method::POST,
            "/v1.0/activeflows",
            Some(json!({"actions": actions, "webhook_uri": format!("{base}/dead")})),
        )
        .await;
    let live = gw
        .ok(
            Method::POST,
            "/v1.0/activeflows",
            Some(json!({"actions": actions, "webhook_uri": format!("{base}/live"), "webhook_method": "put"})),
        )
        .await;
    let mut live_events = Vec::new();
    loop {
        let hit = next_hit(&mut hits).await;
        if hit.path == "/live" {
            assert_eq!(hit.body["resource_id"], live["id"]);
            let ended = hit.body["data"]["status"] == "ended";
            live_events.push(hit.body["type"].as_str().unwrap_or("").to_owned());
            if ended {
                break;
            }
        } else {
            assert_eq!(hit.body["resource_id"], dead["id"]);
        }
    }
    assert_eq!(
        live_events.first().map(String::as_str),
        Some("activeflow_created")
    );
    assert!(live_events.iter().all(|k| k.starts_with("activeflow_")));
    cancel.cancel();
    running.await.expect("hooks");
}

// ---------------------------------------------------------------- the log over HTTP

#[tokio::test]
async fn events_after_limit_long_poll_and_pruned() {
    let gw = Gateway::start().await;
    for _ in 0..5 {
        gw.create_flow(json!([])).await;
    }
    let page = gw
        .ok(Method::GET, "/v1.0/gateway/events?after=1&limit=2", None)
        .await;
    let seqs: Vec<u64> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["seq"].as_u64())
        .collect();
    assert_eq!(seqs, [2, 3]);
    assert_eq!(
        (
            page["next_after"].as_u64(),
            page["last_seq"].as_u64(),
            page["pruned"].as_bool()
        ),
        (Some(3), Some(5), Some(false))
    );

    // Nothing new: an immediate answer without `wait`…
    let empty = gw
        .ok(Method::GET, "/v1.0/gateway/events?after=5", None)
        .await;
    assert_eq!(
        (
            empty["events"].as_array().map(Vec::len),
            empty["next_after"].as_u64()
        ),
        (Some(0), Some(5))
    );
    // …and a long-poll that returns as soon as an event is committed.
    let poll = {
        let request = gw.req(Method::GET, "/v1.0/gateway/events?after=5&wait=30");
        tokio::spawn(async move { send(request).await })
    };
    let id = gw.create_flow(json!([])).await;
    let (status, woke) = tokio::time::timeout(WAIT, poll)
        .await
        .expect("long-poll answered")
        .expect("task");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(woke["events"][0]["resource_id"], id.as_str());
    assert_eq!(woke["events"][0]["seq"], 6);

    assert_eq!(gw.db.store.prune_events(3).expect("prune"), 3);
    let after_prune = gw
        .ok(Method::GET, "/v1.0/gateway/events?after=0", None)
        .await;
    assert_eq!(
        (
            after_prune["pruned"].as_bool(),
            after_prune["events"][0]["seq"].as_u64()
        ),
        (Some(true), Some(4))
    );

    for bad in ["limit=0", "limit=1001", "after=-1", "after=x", "wait=soon"] {
        let r = gw.get(&format!("/v1.0/gateway/events?{bad}")).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_QUERY");
    }
}

/// One parsed SSE message.
#[derive(Debug)]
struct Sse {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

/// Reads SSE messages from a streaming response.
struct SseReader {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

impl SseReader {
    fn new(response: reqwest::Response) -> Self {
        Self {
            stream: response.bytes_stream().boxed(),
            buf: String::new(),
        }
    }

    async fn next(&mut self) -> Sse {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut message = Sse {
                    id: None,
                    event: None,
                    data: String::new(),
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        message.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        message.event = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        message.data.push_str(v.trim_start());
                    }
                }
                if message.id.is_none() && message.data.is_empty() {
                    continue; // a keep-alive comment
                }
                return message;
            }
            let chunk = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("SSE data in time");
            let chunk = chunk.expect("stream open").expect("chunk");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[tokio::test]
async fn sse_replays_then_follows_and_resumes_from_last_event_id() {
    let gw = Gateway::start().await;
    let first = gw.create_flow(json!([])).await;
    let second = gw.create_flow(json!([])).await;

    let response = gw
        .req(Method::GET, "/v1.0/gateway/events/stream?after=0")
        .send()
        .await
        .expect("stream");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/event-stream")
    );
    let mut stream = SseReader::new(response);
    for (seq, id) in [(1, &first), (2, &second)] {
        let m = stream.next().await;
        assert_eq!(
            (m.id.as_deref(), m.event.as_deref()),
            (Some(seq.to_string().as_str()), Some("flow_created"))
        );
        let data: Value = serde_json::from_str(&m.data).expect("json");
        assert_eq!(
            (data["seq"].as_u64(), data["resource_id"].as_str()),
            (Some(seq), Some(id.as_str()))
        );
    }
    let third = gw.create_flow(json!([])).await;
    let live = stream.next().await;
    assert_eq!(live.id.as_deref(), Some("3"));
    assert!(live.data.contains(&third));

    // A reconnecting client resumes after what it saw; the header wins over the query.
    let resumed = gw
        .req(Method::GET, "/v1.0/gateway/events/stream?after=0")
        .header("Last-Event-ID", "2")
        .send()
        .await
        .expect("stream");
    assert_eq!(
        SseReader::new(resumed).next().await.id.as_deref(),
        Some("3")
    );
    let bad = send(
        gw.req(Method::GET, "/v1.0/gateway/events/stream")
            .header("Last-Event-ID", "x"),
    )
    .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "INVALID_HEADER");
}

// ---------------------------------------------------------------- flow sync

#[tokio::test]
async fn flow_sync_detects_conflicts_with_etag_and_if_match() {
    let gw = Gateway::start().await;
    let export = gw
        .req(Method::GET, "/v1.0/gateway/sync/flows")
        .send()
        .await
        .expect("export");
    assert_eq!(export.headers()["etag"], "\"0\"");
    let body: Value = export.json().await.expect("json");
    assert_eq!(
        (
            body["revision"].as_u64(),
            body["flows"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );

    let (a, b) = (
        uuid::Uuid::now_v7().to_string(),
        uuid::Uuid::now_v7().to_string(),
    );
    let set = json!({"flows": [
        {"id": a, "name": "a", "actions": [{"type": "answer"}]},
        {"id": b, "name": "b", "actions": [{"type": "hangup"}]},
    ]});
    let missing = send(gw.req(Method::PUT, "/v1.0/gateway/sync/flows").json(&set)).await;
    assert_error(
        &missing,
        StatusCode::PRECONDITION_REQUIRED,
        "PRECONDITION_REQUIRED",
    );

    let imported = gw
        .req(Method::PUT, "/v1.0/gateway/sync/flows")
        .header("If-Match", "\"0\"")
        .json(&set)
        .send()
        .await
        .expect("import");
    assert_eq!(imported.status(), StatusCode::OK);
    assert_eq!(imported.headers()["etag"], "\"1\"");
    let summary: Value = imported.json().await.expect("json");
    assert_eq!(
        (summary["revision"].as_u64(), summary["created"].as_u64()),
        (Some(1), Some(2))
    );

    // Someone edits a flow through the CRUD API: the revision moves…
    gw.ok(
        Method::PUT,
        &format!("/v1.0/flows/{a}"),
        Some(json!({"name": "edited", "actions": []})),
    )
    .await;
    // …so a controller still at revision 1 is told, and nothing changes.
    let stale = send(
        gw.req(Method::PUT, "/v1.0/gateway/sync/flows")
            .header("If-Match", "\"1\"")
            .json(&json!({"flows": []})),
    )
    .await;
    assert_error(&stale, StatusCode::PRECONDITION_FAILED, "REVISION_MISMATCH");
    assert_eq!(
        gw.ok(Method::GET, &format!("/v1.0/flows/{a}"), None).await["name"],
        "edited"
    );

    let current = gw
        .req(Method::GET, "/v1.0/gateway/sync/flows")
        .send()
        .await
        .expect("export");
    assert_eq!(current.headers()["etag"], "\"2\"");
    let exported: Value = current.json().await.expect("json");
    let names: Vec<&str> = exported["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, ["edited", "b"]);

    // Invalid sets are refused whole, with paths.
    let invalid = json!({"flows": [{"id": a, "actions": []}, {"actions": [{"type": "nope"}]}]});
    let refused = send(
        gw.req(Method::PUT, "/v1.0/gateway/sync/flows")
            .header("If-Match", "2")
            .json(&invalid),
    )
    .await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "INVALID_FLOW");
    let paths = problem_paths(&refused.1);
    assert!(
        paths.iter().any(|p| p.starts_with("flows[1].actions[0]")),
        "{paths:?}"
    );
    assert!(paths.contains(&"flows[1].id".to_owned()), "{paths:?}");

    // A bound flow cannot be dropped by an import.
    gw.ok(
        Method::POST,
        "/v1.0/numbers",
        Some(json!({"number": "+15550001000", "call_flow_id": b})),
    )
    .await;
    let only_a = json!({"flows": [{"id": a, "name": "edited", "actions": []}]});
    let in_use = send(
        gw.req(Method::PUT, "/v1.0/gateway/sync/flows")
            .header("If-Match", "*")
            .json(&only_a),
    )
    .await;
    assert_error(&in_use, StatusCode::CONFLICT, "FLOW_IN_USE");

    // `*` overwrites whatever the revision; equal flows are left alone.
    let with_b = json!({"flows": [exported["flows"][1].clone()]});
    let forced = send(
        gw.req(Method::PUT, "/v1.0/gateway/sync/flows")
            .header("If-Match", "*")
            .json(&with_b),
    )
    .await;
    assert_eq!(forced.0, StatusCode::OK, "{}", forced.1);
    assert_eq!(
        (
            forced.1["deleted"].as_u64(),
            forced.1["unchanged"].as_u64(),
            forced.1["revision"].as_u64()
        ),
        (Some(1), Some(1), Some(3))
    );
    assert_error(
        &gw.get(&format!("/v1.0/flows/{a}")).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
}
