//! `fetch` with every method validation admits (VoIPBIN builds the request with the flow's
//! method as given), against a one-shot HTTP server that records what it was asked.

use flowgate_tests::Gateway;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Answers one request with `body`; returns the request line's method.
async fn answer_once(listener: TcpListener, body: String) -> String {
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    // Headers end with a blank line; the JSON body that follows is not needed.
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "the gateway closed before sending a request");
        request.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&request).into_owned();
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(response.as_bytes()).await.unwrap();
    text.split(' ').next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_performs_every_method_validation_admits() {
    let gw = Gateway::start().await;
    let api = gw.api();
    for method in ["GET", "POST", "PUT", "DELETE"] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/actions", listener.local_addr().unwrap());
        let actions =
            json!([{"type": "variable_set", "option": {"key": "fetched", "value": method}}]);
        let server = tokio::spawn(answer_once(listener, actions.to_string()));
        let flow = api
            .create_flow(json!({"name": "fetch", "detail": "", "actions": [
                {"type": "fetch", "option": {"event_url": url, "event_method": method}}]}))
            .await;
        let af = api
            .post("/v1.0/activeflows", json!({"flow_id": flow}))
            .await;
        let af = api.wait_ended(af["id"].as_str().unwrap()).await;
        assert_eq!(server.await.unwrap(), method);
        assert_eq!(af["variables"]["fetched"], method, "{af}");
    }
    gw.stop().await;
}
