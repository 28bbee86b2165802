use std::time::{Duration, Instant};

use flowgate_tests::{Gateway, WAIT};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (or `WAIT` passes); returns what came.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(WAIT, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_digits_are_refused_and_the_daemon_stays_up() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let token = gw.daemon().token().as_str().to_owned();
    for mode in ["inband", "urc", "both"] {
        let (status, body) = api
            .call(
                Method::POST,
                "/v1.0/gateway/sim/dtmf",
                Some(json!({"digits": "1".repeat(1_000_000), "mode": mode, "duration_ms": 2000})),
                Some(&token),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{mode}: {body}");
        assert_eq!(body["code"], "INVALID_BODY", "{body}");
    }
    // Other request-driven work is bounded too.
    let (status, body) = api
        .call(
            Method::POST,
            "/v1.0/gateway/sim/sms",
            Some(json!({"from": "+15550009999", "text": "x".repeat(100_000)})),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let health = api.get("/v1.0/gateway/health").await;
    assert!(health["uptime_secs"].is_u64(), "{health}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_headers_are_cut_off_and_huge_bodies_refused_at_once() {
    let gw = Gateway::start_with(|c| {
        c.api.header_read_timeout_ms = 500;
        c.api.idle_timeout_ms = 500;
    })
    .await;
    let addr = gw.daemon().addr();

    // Headers that never end: closed after the header-read timeout, not kept for minutes.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /v1.0/gateway/health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    read_to_close(&mut slow).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "closed after {:?}",
        started.elapsed()
    );

    // Nothing at all: the same.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    read_to_close(&mut silent).await;

    // A declared terabyte: 413 before any byte of the body, and the connection closes.
    let token = gw.daemon().token().as_str().to_owned();
    let mut huge = TcpStream::connect(addr).await.unwrap();
    huge.write_all(
        format!(
            "POST /v1.0/flows HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 1099511627776\r\n\r\n{{"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let answer = read_to_close(&mut huge).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("BODY_TOO_LARGE"), "{answer}");

    // A body that stalls half-way fails after the idle timeout.
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(
            format!(
                "POST /v1.0/flows HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let answer = read_to_close(&mut stalled).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    // The API still serves.
    gw.api().get("/v1.0/flows").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_refused_without_starving_the_others() {
    let gw = Gateway::start_with(|c| {
        c.api.max_connections = 3;
        c.api.header_read_timeout_ms = 60_000;
    })
    .await;
    let addr = gw.daemon().addr();
    // The harness's kept-alive connection holds one slot; two silent connections fill the
    // cap and the third is over it (connections are accepted in the order they came).
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    // Over the cap, a request is refused at once with 503, not left hanging behind the
    // silent ones. The server answers the request, never the bare connection: a response
    // sent before the request is one an HTTP client rejects as unexpected.
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    extra
        .write_all(b"GET /v1.0/gateway/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut extra).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("TOO_MANY_CONNECTIONS"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // An ordinary HTTP client sees that 503 as a status to retry after, not as a broken
    // connection (this is what failed when the 503 was written before the request).
    let fresh = flowgate_tests::Api::new(&format!("http://{addr}"), gw.daemon().token().as_str());
    let (status, body) = fresh
        .call(Method::GET, "/v1.0/gateway/health", None, None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "TOO_MANY_CONNECTIONS", "{body}");
    // The held ones finish a request and leave: their slots serve new clients.
    for stream in &mut held {
        // The refused one answers 503 here, or is closed already if the refusal's short wait
        // for a request ran out first; its write may fail.
        let _ = stream
            .write_all(b"GET /v1.0/gateway/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        read_to_close(stream).await;
    }
    drop(held);
    let deadline = Instant::now() + WAIT;
    loop {
        // A slot is given back when the server has closed its side, just after the client
        // saw the close: the rare request that comes in between is refused with a 503
        // (at most two refusals are ever in flight here, far under the server's bound on
        // refusals, so it is always a 503 and never a bare close); retry it.
        let (status, body) = fresh
            .call(Method::GET, "/v1.0/gateway/health", None, None)
            .await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(Instant::now() < deadline, "no slot came free");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_objects_and_every_body_error_is_400() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let token = gw.daemon().token().as_str().to_owned();
    let flow = api
        .create_flow(json!({"name": "f", "actions": [{"type": "answer"}]}))
        .await;
    let number = api
        .post(
            "/v1.0/numbers",
            json!({"number": "+15550001000", "call_flow_id": flow.to_string()}),
        )
        .await;
    let id = number["id"].as_str().unwrap().to_owned();
    let path = format!("/v1.0/numbers/{id}/flow_ids");

    // An array is not a struct: 400, and the binding is unchanged.
    let (status, body) = api
        .call(Method::PUT, &path, Some(json!([null, null])), Some(&token))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "INVALID_BODY");
    let number = api.get(&format!("/v1.0/numbers/{id}")).await;
    assert_eq!(number["call_flow_id"], flow.to_string(), "{number}");

    // A wrong type and a syntax error: 400 as well (never 422).
    for bad in [json!({"call_flow_id": 5}), Value::String("{".into())] {
        let (status, body) = api
            .call(Method::PUT, &path, Some(bad.clone()), Some(&token))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }

    // The all-zero id means "no flow": no flow may have it.
    let (status, body) = api
        .call(
            Method::POST,
            "/v1.0/flows",
            Some(json!({"id": "00000000-0000-0000-0000-000000000000", "actions": []})),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["problems"][0]["path"], "id", "{body}");
    gw.stop().await;
}
