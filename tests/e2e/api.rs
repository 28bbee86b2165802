use flowgate_tests::Gateway;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_bad_bodies_get_clean_4xx() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let (status, body) = api.call(Method::GET, "/v1.0/flows", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "UNAUTHORIZED");
    let (status, _) = api
        .call(
            Method::GET,
            "/v1.0/flows",
            None,
            Some("wrong-token-wrong-token"),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let token = gw.daemon().token().as_str().to_owned();
    // Not a flow: every problem with its JSON path.
    let (status, body) = api
        .call(Method::POST, "/v1.0/flows", Some(json!({"name": "x", "detail": "", "actions": [
            {"type": "goto", "option": {"target_id": "00000000-0000-0000-0000-000000000002", "loop_count": 1}},
            {"type": "no_such_action"}]})), Some(&token))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let paths: Vec<&str> = body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"actions[0].option.target_id"), "{body}");
    assert!(paths.iter().any(|p| p.starts_with("actions[1]")), "{body}");

    // Wrong JSON types, unknown ids, garbage.
    let (status, _) = api
        .call(
            Method::POST,
            "/v1.0/activeflows",
            Some(json!({"flow_id": 42})),
            Some(&token),
        )
        .await;
    assert!(status.is_client_error(), "{status}");
    let (status, _) = api
        .call(
            Method::GET,
            "/v1.0/activeflows/00000000-0000-4000-8000-000000000042",
            None,
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .call(Method::GET, "/v1.0/calls/not-a-uuid", None, Some(&token))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = api
        .call(
            Method::POST,
            "/v1.0/messages",
            Some(json!("nonsense")),
            Some(&token),
        )
        .await;
    assert!(status.is_client_error(), "{status} {body}");
    gw.stop().await;
}
