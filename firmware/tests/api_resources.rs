//! The LAN API's resources over real HTTP: auth, flows, activeflows (including interrupts on
//! a blocked API flow), numbers, calls, messages, recordings, gateway resources, and the 4xx
//! answer to every kind of bad input. The runtime has no modems here; modem-backed paths are
//! in `api_sim.rs`.

mod api_support;

use api_support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn uuid() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[tokio::test]
async fn token_is_required_everywhere_but_health() {
    let gw = Gateway::start().await;
    let health = send(gw.client.get(gw.url("/v1.0/gateway/health"))).await;
    assert_eq!(health.0, StatusCode::OK, "{}", health.1);
    assert_eq!(health.1["status"], "ok");
    assert_eq!(health.1["store"]["ok"], true);

    let none = send(gw.client.get(gw.url("/v1.0/flows"))).await;
    assert_error(&none, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let wrong = send(
        gw.client
            .get(gw.url("/v1.0/flows"))
            .bearer_auth("wrong-token-0123456789abcd"),
    )
    .await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let bad_scheme = send(
        gw.client
            .get(gw.url("/v1.0/flows"))
            .basic_auth("x", Some(TOKEN)),
    )
    .await;
    assert_error(&bad_scheme, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let wrong_query = send(gw.client.get(gw.url("/v1.0/flows?token=nope"))).await;
    assert_error(&wrong_query, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

    let bearer = gw.get("/v1.0/flows").await;
    assert_eq!(bearer.0, StatusCode::OK);
    let query = send(
        gw.client
            .get(gw.url(&format!("/v1.0/flows?page_size=5&token={TOKEN}"))),
    )
    .await;
    assert_eq!(query.0, StatusCode::OK, "{}", query.1);
    // The openapi document and the metrics need the token too.
    assert_eq!(
        send(gw.client.get(gw.url("/v1.0/openapi.json"))).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(gw.client.get(gw.url("/v1.0/gateway/metrics"))).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let gw = Gateway::start().await;
    assert_error(
        &gw.get("/v1.0/nothing-here").await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    assert_error(
        &gw.call(Method::PATCH, "/v1.0/flows", None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
    );
    assert_error(
        &gw.get("/v1.0/flows/not-a-uuid").await,
        StatusCode::BAD_REQUEST,
        "INVALID_PATH",
    );
    assert_error(
        &gw.get(&format!("/v1.0/flows/{}", uuid())).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
}

#[tokio::test]
async fn flow_crud_stamps_server_fields_and_emits_events() {
    let gw = Gateway::start().await;
    let created = gw
        .ok(
            Method::POST,
            "/v1.0/flows",
            Some(json!({"name": "hello", "detail": "d", "actions": [{"type": "answer"}]})),
        )
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["type"], "flow");
    assert!(created["tm_create"].is_string());
    assert!(
        created["actions"][0]["id"].is_string(),
        "action ids are assigned: {created}"
    );

    let got = gw.ok(Method::GET, &format!("/v1.0/flows/{id}"), None).await;
    assert_eq!(got, created);

    let updated = gw
        .ok(
            Method::PUT,
            &format!("/v1.0/flows/{id}"),
            Some(json!({"name": "renamed", "actions": [{"type": "hangup"}]})),
        )
        .await;
    assert_eq!(updated["name"], "renamed");
    assert_eq!(updated["tm_create"], created["tm_create"]);
    assert_eq!(updated["actions"][0]["type"], "hangup");

    // A client-chosen id is kept; using it again is a conflict.
    let mine = uuid();
    let chosen = gw
        .ok(
            Method::POST,
            "/v1.0/flows",
            Some(json!({"id": mine, "name": "c", "actions": []})),
        )
        .await;
    assert_eq!(chosen["id"], mine.as_str());
    let dup = gw
        .post(
            "/v1.0/flows",
            json!({"id": mine, "name": "c", "actions": []}),
        )
        .await;
    assert_error(&dup, StatusCode::CONFLICT, "DUPLICATE_ID");
    let mismatch = gw
        .put(
            &format!("/v1.0/flows/{id}"),
            json!({"id": mine, "actions": []}),
        )
        .await;
    assert_error(&mismatch, StatusCode::BAD_REQUEST, "ID_MISMATCH");
    assert_error(
        &gw.put(&format!("/v1.0/flows/{}", uuid()), json!({"actions": []}))
            .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );

    let deleted = gw
        .ok(Method::DELETE, &format!("/v1.0/flows/{id}"), None)
        .await;
    assert_eq!(deleted["name"], "renamed");
    assert_error(
        &gw.get(&format!("/v1.0/flows/{id}")).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    assert_error(
        &gw.delete(&format!("/v1.0/flows/{id}")).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );

    let page = gw
        .ok(Method::GET, "/v1.0/gateway/events?after=0", None)
        .await;
    let kinds: Vec<(&str, &str)> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or(""),
                e["resource_id"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("flow_created", id.as_str()),
            ("flow_updated", id.as_str()),
            ("flow_created", mine.as_str()),
            ("flow_deleted", id.as_str())
        ]
    );
}

/// What VoIPBIN would store is stored: warnings come back as `Warning` headers, not
/// refusals — a sub-flow that jumps into the flow fetching it, an unknown hangup reason, a
/// nil action id.
#[tokio::test]
async fn flows_with_warnings_are_stored_and_the_warnings_reported() {
    let gw = Gateway::start().await;
    let parent_action = uuid();
    let body = json!({"name": "sub", "detail": "", "actions": [
        {"id": "00000000-0000-0000-0000-000000000000", "type": "talk", "option": {"text": "sub"}},
        {"type": "goto", "option": {"target_id": parent_action, "loop_count": 1}},
        {"type": "hangup", "option": {"reason": "ängry"}},
    ]});
    let response = send(gw.req(Method::POST, "/v1.0/flows").json(&body)).await;
    assert_eq!(response.0, StatusCode::OK, "{}", response.1);
    let stored = response.1;
    let id = stored["id"].as_str().expect("id").to_owned();
    assert_ne!(
        stored["actions"][0]["id"], "00000000-0000-0000-0000-000000000000",
        "a nil id is assigned"
    );
    let raw = gw
        .req(Method::PUT, &format!("/v1.0/flows/{id}"))
        .json(&body)
        .send()
        .await
        .expect("put");
    assert_eq!(raw.status(), StatusCode::OK);
    let warnings: Vec<String> = raw
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].starts_with("299 flowgate \"actions[1].option.target_id: "),
        "{warnings:?}"
    );
    assert!(warnings[1].contains("\\\\u{e4}ngry"), "{warnings:?}");
    // Stored and loaded like any flow.
    let got = gw.ok(Method::GET, &format!("/v1.0/flows/{id}"), None).await;
    assert_eq!(
        got["actions"][1]["option"]["target_id"],
        parent_action.as_str()
    );
}

#[tokio::test]
async fn invalid_flows_are_refused_with_every_problem_and_its_path() {
    let gw = Gateway::start_with(|c| c.api.max_body_bytes = 4096).await;
    let target = uuid();
    let bad = gw
        .post(
            "/v1.0/flows",
            json!({"name": "x", "actions": [
                {"type": "goto", "option": {"target_id": "00000000-0000-0000-0000-000000000002", "loop_count": 1}},
                {"type": "no_such_action"},
                {"type": "talk", "option": {"text": 5}},
                {"type": "goto", "option": {"target_id": target, "loop_count": 1}},
            ]}),
        )
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "INVALID_FLOW");
    let paths = problem_paths(&bad.1);
    // A target that is not in the flow is no error (a sub-flow may jump into the flow that
    // fetched it); the reserved FINISH id is.
    assert!(
        !paths.iter().any(|p| p.starts_with("actions[3]")),
        "{paths:?}"
    );
    for expected in [
        "actions[0].option.target_id",
        "actions[1].type",
        "actions[2].option.text",
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected} missing from {paths:?}"
        );
    }

    let wrong_type = gw
        .post("/v1.0/flows", json!({"name": 5, "actions": []}))
        .await;
    assert_error(&wrong_type, StatusCode::BAD_REQUEST, "INVALID_FLOW");
    assert_eq!(problem_paths(&wrong_type.1), ["name"]);
    let no_actions = gw.post("/v1.0/flows", json!({"name": "x"})).await;
    assert_eq!(problem_paths(&no_actions.1), ["actions"]);

    let syntax = send(
        gw.req(Method::POST, "/v1.0/flows")
            .header("content-type", "application/json")
            .body("{\"name\": "),
    )
    .await;
    assert_error(&syntax, StatusCode::BAD_REQUEST, "INVALID_FLOW");
    let not_json = send(
        gw.req(Method::POST, "/v1.0/flows")
            .header("content-type", "text/plain")
            .body("{}"),
    )
    .await;
    assert_error(
        &not_json,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    );
    let huge = json!({"name": "x".repeat(5000), "actions": []});
    assert_error(
        &gw.post("/v1.0/flows", huge.clone()).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "BODY_TOO_LARGE",
    );
    // The limit holds for typed JSON bodies too.
    assert_error(
        &gw.post("/v1.0/messages", huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "BODY_TOO_LARGE",
    );
    assert_eq!(gw.db.flows.len(), 0);
}

#[tokio::test]
async fn lists_page_with_tokens() {
    let gw = Gateway::start().await;
    let mut ids = Vec::new();
    for _ in 0..23 {
        ids.push(gw.create_flow(json!([{"type": "answer"}])).await);
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &token {
            Some(t) => format!("/v1.0/flows?page_size=10&page_token={t}"),
            None => "/v1.0/flows?page_size=10".to_owned(),
        };
        let page = gw.ok(Method::GET, &path, None).await;
        pages += 1;
        seen.extend(
            page["result"]
                .as_array()
                .expect("result")
                .iter()
                .map(|f| f["id"].as_str().unwrap_or("").to_owned()),
        );
        match page["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids, "every flow once, in creation order");
    let default = gw.ok(Method::GET, "/v1.0/flows", None).await;
    assert_eq!(default["result"].as_array().map(Vec::len), Some(10));

    for bad in [
        "page_size=0",
        "page_size=101",
        "page_size=ten",
        "page_token=garbage",
        "page_size=-1",
    ] {
        let r = gw.get(&format!("/v1.0/flows?{bad}")).await;
        assert_eq!(r.0, StatusCode::BAD_REQUEST, "{bad}: {}", r.1);
    }
}

#[tokio::test]
async fn api_activeflow_runs_at_once_skips_media_and_records_what_it_did() {
    let gw = Gateway::start().await;
    let flow = gw
        .create_flow(json!([
            {"type": "variable_set", "option": {"key": "greeting", "value": "hi ${name}"}},
            {"type": "talk", "option": {"text": "not on an API flow"}},
            {"type": "message_send", "option": {
                "source": {"type": "tel", "target": "+15550001000"},
                "destinations": [{"type": "tel", "target": "+15550002000"}],
                "text": "${greeting}"}},
        ]))
        .await;
    let created = gw
        .ok(
            Method::POST,
            "/v1.0/activeflows",
            Some(json!({"flow_id": flow, "variables": {"name": "Ann", "voipbin.call.id": "spoofed"}})),
        )
        .await;
    assert_eq!(created["reference_type"], "api");
    assert_eq!(created["flow_id"], flow.as_str());
    let id = created["id"].as_str().expect("id").to_owned();

    let done = gw.wait_ended(&id).await;
    assert_eq!(
        executed(&done),
        [
            "variable_set:executed",
            "talk:skipped",
            "message_send:executed"
        ],
        "{done}"
    );
    assert_eq!(done["variables"]["greeting"], "hi Ann");
    assert!(
        done["variables"].get("voipbin.call.id").is_none(),
        "external voipbin.* variables are dropped"
    );

    let messages = gw.ok(Method::GET, "/v1.0/messages", None).await;
    let sent = &messages["result"][0];
    assert_eq!(sent["text"], "hi Ann");
    assert_eq!(sent["activeflow_id"], id.as_str());

    let list = gw.ok(Method::GET, "/v1.0/activeflows", None).await;
    assert_eq!(list["result"][0]["id"], id.as_str());
}

#[tokio::test]
async fn inline_actions_and_their_errors() {
    let gw = Gateway::start().await;
    let mine = uuid();
    let created = gw
        .ok(
            Method::POST,
            "/v1.0/activeflows",
            Some(json!({"id": mine, "actions": [{"type": "variable_set", "option": {"key": "a", "value": "1"}}]})),
        )
        .await;
    assert_eq!(created["id"], mine.as_str());
    let done = gw.wait_ended(&mine).await;
    assert_eq!(done["variables"]["a"], "1");
    assert_error(
        &gw.post("/v1.0/activeflows", json!({"id": mine, "actions": []}))
            .await,
        StatusCode::CONFLICT,
        "DUPLICATE_ID",
    );

    let invalid = gw
        .post(
            "/v1.0/activeflows",
            json!({"actions": [{"type": "answer"}, {"type": "bogus"}]}),
        )
        .await;
    assert_error(&invalid, StatusCode::BAD_REQUEST, "INVALID_ACTIONS");
    assert!(
        problem_paths(&invalid.1)
            .iter()
            .any(|p| p.starts_with("actions[1]")),
        "{}",
        invalid.1
    );
    // A jump to an id in no stack is VoIPBIN's run-time error: the activeflow is created and
    // ends with an error naming the target when it jumps.
    let nowhere = uuid();
    let jumps = gw
        .ok(
            Method::POST,
            "/v1.0/activeflows",
            Some(json!({"actions": [{"type": "goto", "option": {"target_id": nowhere, "loop_count": 1}}]})),
        )
        .await;
    let ended = gw.wait_ended(jumps["id"].as_str().expect("id")).await;
    assert_eq!(ended["end_reason"]["kind"], "error", "{ended}");
    assert!(
        ended["end_reason"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&nowhere)),
        "{ended}"
    );
    let reserved_jump = gw
        .post(
            "/v1.0/activeflows",
            json!({"actions": [{"type": "goto", "option": {"target_id": "00000000-0000-0000-0000-000000000003", "loop_count": 1}}]}),
        )
        .await;
    assert_error(&reserved_jump, StatusCode::BAD_REQUEST, "INVALID_ACTIONS");
    assert_eq!(
        problem_paths(&reserved_jump.1),
        ["actions[0].option.target_id"]
    );

    let unknown_flow = gw
        .post("/v1.0/activeflows", json!({"flow_id": uuid()}))
        .await;
    assert_error(&unknown_flow, StatusCode::BAD_REQUEST, "UNKNOWN_FLOW");
    assert_error(
        &gw.post("/v1.0/activeflows", json!({})).await,
        StatusCode::BAD_REQUEST,
        "INVALID_BODY",
    );
    assert_error(
        &gw.post(
            "/v1.0/activeflows",
            json!({"flow_id": uuid(), "actions": []}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "INVALID_BODY",
    );
    let numeric_var = gw
        .post(
            "/v1.0/activeflows",
            json!({"actions": [], "variables": {"n": 5}}),
        )
        .await;
    assert_error(&numeric_var, StatusCode::BAD_REQUEST, "INVALID_BODY");
    let bad_hook = gw
        .post(
            "/v1.0/activeflows",
            json!({"actions": [], "webhook_uri": "ftp://x"}),
        )
        .await;
    assert_error(&bad_hook, StatusCode::BAD_REQUEST, "INVALID_BODY");
    let bad_method = gw
        .post(
            "/v1.0/activeflows",
            json!({"actions": [], "webhook_method": "PATCH"}),
        )
        .await;
    assert_error(&bad_method, StatusCode::BAD_REQUEST, "INVALID_BODY");
    let garbage = send(
        gw.req(Method::POST, "/v1.0/activeflows")
            .header("content-type", "application/json")
            .body("{\"actions\": ["),
    )
    .await;
    assert_error(&garbage, StatusCode::BAD_REQUEST, "INVALID_JSON");
}

/// A flow that waits in `block` after setting `before`; `skipped` and `target` follow.
fn blocking_flow() -> (Value, [String; 4]) {
    let ids = [uuid(), uuid(), uuid(), uuid()];
    let actions = json!([
        {"id": ids[0], "type": "variable_set", "option": {"key": "before", "value": "1"}},
        {"id": ids[1], "type": "block"},
        {"id": ids[2], "type": "variable_set", "option": {"key": "skipped", "value": "1"}},
        {"id": ids[3], "type": "variable_set", "option": {"key": "target", "value": "1"}},
    ]);
    (actions, ids)
}

/// Starts `actions` and waits until the flow blocks on `block_id`.
async fn start_blocked(gw: &Gateway, actions: Value, block_id: &str) -> String {
    let after = gw.last_seq();
    let created = gw
        .ok(
            Method::POST,
            "/v1.0/activeflows",
            Some(json!({"actions": actions})),
        )
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    gw.wait_event(after, |e| {
        e["resource_id"] == id.as_str() && e["data"]["current_action"]["id"] == block_id
    })
    .await;
    id
}

#[tokio::test]
async fn forward_action_id_moves_a_blocked_api_flow_at_once() {
    let gw = Gateway::start().await;
    let (actions, ids) = blocking_flow();
    let id = start_blocked(&gw, actions, &ids[1]).await;
    let path = format!("/v1.0/activeflows/{id}/forward_action_id");

    let unknown = gw
        .put(
            &path,
            json!({"forward_action_id": uuid(), "forward_now": true}),
        )
        .await;
    assert_error(&unknown, StatusCode::BAD_REQUEST, "UNKNOWN_ACTION");
    let missing = gw.put(&path, json!({"forward_now": true})).await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "INVALID_BODY");

    gw.ok(
        Method::PUT,
        &path,
        Some(json!({"forward_action_id": ids[3], "forward_now": true})),
    )
    .await;
    let done = gw.wait_ended(&id).await;
    assert_eq!(done["variables"]["target"], "1");
    assert!(done["variables"].get("skipped").is_none(), "{done}");
    let order: Vec<&str> = done["executed_actions"]
        .as_array()
        .expect("executed")
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(order, [ids[0].as_str(), ids[1].as_str(), ids[3].as_str()]);

    let late = gw
        .put(
            &path,
            json!({"forward_action_id": ids[3], "forward_now": true}),
        )
        .await;
    assert_error(&late, StatusCode::CONFLICT, "ACTIVEFLOW_ENDED");
    let nobody = gw
        .put(
            &format!("/v1.0/activeflows/{}/forward_action_id", uuid()),
            json!({"forward_action_id": ids[3]}),
        )
        .await;
    assert_error(&nobody, StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn continue_unblocks_only_the_pending_block() {
    let gw = Gateway::start().await;
    let (actions, ids) = blocking_flow();
    let id = start_blocked(&gw, actions, &ids[1]).await;
    let path = format!("/v1.0/activeflows/{id}/continue");
    let stale = gw.post(&path, json!({"current_action_id": ids[0]})).await;
    assert_error(&stale, StatusCode::CONFLICT, "STALE_ACTION");
    gw.ok(
        Method::POST,
        &path,
        Some(json!({"current_action_id": ids[1]})),
    )
    .await;
    let done = gw.wait_ended(&id).await;
    assert_eq!(
        (
            done["variables"]["skipped"].as_str(),
            done["variables"]["target"].as_str()
        ),
        (Some("1"), Some("1"))
    );
}

#[tokio::test]
async fn push_actions_runs_a_new_stack() {
    let gw = Gateway::start().await;
    let (actions, ids) = blocking_flow();
    let id = start_blocked(&gw, actions, &ids[1]).await;
    let pushed = uuid();
    let after = gw.last_seq();
    let invalid = gw
        .post(
            &format!("/v1.0/activeflows/{id}/push_actions"),
            json!({"actions": [{"type": "nope"}]}),
        )
        .await;
    assert_error(&invalid, StatusCode::BAD_REQUEST, "INVALID_ACTIONS");
    gw.ok(
        Method::POST,
        &format!("/v1.0/activeflows/{id}/push_actions"),
        Some(json!({"actions": [{"id": pushed, "type": "variable_set", "option": {"key": "pushed", "value": "yes"}}], "forward_now": true})),
    )
    .await;
    let event = gw
        .wait_event(after, |e| {
            e["resource_id"] == id.as_str() && e["data"]["variables"]["pushed"] == "yes"
        })
        .await;
    assert!(
        event["data"]["executed_actions"]
            .as_array()
            .expect("executed")
            .iter()
            .any(|e| e["id"] == pushed.as_str())
    );
    gw.ok(Method::POST, &format!("/v1.0/activeflows/{id}/stop"), None)
        .await;
}

#[tokio::test]
async fn stop_and_delete() {
    let gw = Gateway::start().await;
    let (actions, ids) = blocking_flow();
    let id = start_blocked(&gw, actions, &ids[1]).await;
    let stopped = gw
        .ok(Method::POST, &format!("/v1.0/activeflows/{id}/stop"), None)
        .await;
    assert_eq!(stopped["status"], "ended");
    assert!(stopped["tm_end"].is_string());
    // Stopping again is not an error (VoIPBIN), it returns the ended flow.
    let again = gw
        .ok(Method::POST, &format!("/v1.0/activeflows/{id}/stop"), None)
        .await;
    assert_eq!(again["status"], "ended");
    let deleted = gw
        .ok(Method::DELETE, &format!("/v1.0/activeflows/{id}"), None)
        .await;
    assert_eq!(deleted["id"], id.as_str());
    assert_error(
        &gw.get(&format!("/v1.0/activeflows/{id}")).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    assert_error(
        &gw.delete(&format!("/v1.0/activeflows/{id}")).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    assert_error(
        &gw.post(&format!("/v1.0/activeflows/{}/stop", uuid()), json!({}))
            .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    gw.wait_event(0, |e| {
        e["type"] == "activeflow_deleted" && e["resource_id"] == id.as_str()
    })
    .await;
}

#[tokio::test]
async fn number_bindings_reference_existing_flows() {
    let gw = Gateway::start().await;
    let call_flow = gw.create_flow(json!([{"type": "answer"}])).await;
    let message_flow = gw.create_flow(json!([{"type": "answer"}])).await;
    let number = gw
        .ok(
            Method::POST,
            "/v1.0/numbers",
            Some(json!({"number": "+15550001000", "name": "main", "call_flow_id": call_flow})),
        )
        .await;
    let id = number["id"].as_str().expect("id").to_owned();
    assert_eq!(number["call_flow_id"], call_flow.as_str());
    assert_eq!(
        number["message_flow_id"],
        "00000000-0000-0000-0000-000000000000"
    );
    assert_eq!(number["status"], "active");

    let dup = gw
        .post("/v1.0/numbers", json!({"number": "+1 555 000 1000"}))
        .await;
    assert_error(&dup, StatusCode::CONFLICT, "DUPLICATE_NUMBER");
    let unknown = gw
        .post(
            "/v1.0/numbers",
            json!({"number": "+15550009999", "message_flow_id": uuid()}),
        )
        .await;
    assert_error(&unknown, StatusCode::BAD_REQUEST, "INVALID_NUMBER");
    assert_eq!(problem_paths(&unknown.1), ["message_flow_id"]);
    let nothing = gw.post("/v1.0/numbers", json!({"name": "x"})).await;
    assert_error(&nothing, StatusCode::BAD_REQUEST, "INVALID_NUMBER");
    let letters = gw.post("/v1.0/numbers", json!({"number": "call me"})).await;
    assert_error(&letters, StatusCode::BAD_REQUEST, "INVALID_NUMBER");
    let no_modem = gw.post("/v1.0/numbers", json!({"modem_id": "m9"})).await;
    assert_eq!(problem_paths(&no_modem.1), ["modem_id"]);

    // The bound flow cannot be deleted, nor dropped by a flow-set import.
    let in_use = gw.delete(&format!("/v1.0/flows/{call_flow}")).await;
    assert_error(&in_use, StatusCode::CONFLICT, "FLOW_IN_USE");
    assert_eq!(
        problem_paths(&in_use.1),
        [format!("numbers/{id}.call_flow_id")]
    );

    let bound = gw
        .ok(
            Method::PUT,
            &format!("/v1.0/numbers/{id}/flow_ids"),
            Some(json!({"message_flow_id": message_flow})),
        )
        .await;
    assert_eq!(
        bound["call_flow_id"],
        "00000000-0000-0000-0000-000000000000"
    );
    assert_eq!(bound["message_flow_id"], message_flow.as_str());
    gw.ok(Method::DELETE, &format!("/v1.0/flows/{call_flow}"), None)
        .await;

    let renamed = gw
        .ok(
            Method::PUT,
            &format!("/v1.0/numbers/{id}"),
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_eq!(renamed["name"], "renamed");
    assert_eq!(
        renamed["message_flow_id"],
        message_flow.as_str(),
        "absent fields are kept"
    );
    let unbound = gw
        .ok(
            Method::PUT,
            &format!("/v1.0/numbers/{id}"),
            Some(json!({"message_flow_id": ""})),
        )
        .await;
    assert_eq!(
        unbound["message_flow_id"],
        "00000000-0000-0000-0000-000000000000"
    );

    assert_eq!(
        gw.ok(Method::GET, "/v1.0/numbers", None).await["result"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        gw.ok(Method::GET, &format!("/v1.0/numbers/{id}"), None)
            .await["name"],
        "renamed"
    );
    gw.ok(Method::DELETE, &format!("/v1.0/numbers/{id}"), None)
        .await;
    assert_error(
        &gw.get(&format!("/v1.0/numbers/{id}")).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    let kinds: Vec<String> = gw
        .ok(Method::GET, "/v1.0/gateway/events?after=0", None)
        .await["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| {
            e["type"]
                .as_str()
                .filter(|k| k.starts_with("number_"))
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "number_created",
            "number_updated",
            "number_updated",
            "number_updated",
            "number_deleted"
        ]
    );
}

#[tokio::test]
async fn calls_without_a_line() {
    let gw = Gateway::start().await;
    let flow = gw
        .create_flow(json!([{"type": "talk", "option": {"text": "hi"}}]))
        .await;
    assert_eq!(
        gw.ok(Method::GET, "/v1.0/calls", None).await["result"],
        json!([])
    );
    let body = json!({"source": {"type": "tel", "target": "+15550001000"}, "destinations": [{"type": "tel", "target": "+15550002000"}], "flow_id": flow});
    assert_error(
        &gw.post("/v1.0/calls", body).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "NO_LINE",
    );
    let unknown_flow =
        json!({"source": {}, "destinations": [{"type": "tel", "target": "1"}], "flow_id": uuid()});
    assert_error(
        &gw.post("/v1.0/calls", unknown_flow).await,
        StatusCode::BAD_REQUEST,
        "UNKNOWN_FLOW",
    );
    // A SIP address is routed like a number: with no SIP line there is no line for it.
    let sip =
        json!({"source": {}, "destinations": [{"type": "sip", "target": "a@b"}], "flow_id": flow});
    assert_error(
        &gw.post("/v1.0/calls", sip).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "NO_LINE",
    );
    // An address a call cannot go to at all is a bad request, named by its path.
    let email = json!({"source": {}, "destinations": [{"type": "email", "target": "a@b"}], "flow_id": flow});
    let email = gw.post("/v1.0/calls", email).await;
    assert_error(&email, StatusCode::BAD_REQUEST, "INVALID_BODY");
    assert_eq!(problem_paths(&email.1), ["destinations[0]"]);
    let no_dest = json!({"source": {}, "destinations": [], "flow_id": flow});
    assert_error(
        &gw.post("/v1.0/calls", no_dest).await,
        StatusCode::BAD_REQUEST,
        "INVALID_BODY",
    );
    let no_source = json!({"destinations": [{"type": "tel", "target": "1"}], "flow_id": flow});
    assert_error(
        &gw.post("/v1.0/calls", no_source).await,
        StatusCode::BAD_REQUEST,
        "INVALID_BODY",
    );

    let call = uuid();
    for (method, suffix, body) in [
        (Method::GET, "", None),
        (Method::POST, "/hangup", None),
        (Method::POST, "/talk", Some(json!({"text": "hello"}))),
        (
            Method::POST,
            "/recording_start",
            Some(json!({"format": "wav"})),
        ),
        (Method::POST, "/recording_stop", None),
        (Method::POST, "/hold", None),
        (Method::DELETE, "/hold", None),
        (Method::POST, "/mute", Some(json!({"direction": "in"}))),
        (Method::DELETE, "/mute", None),
    ] {
        let r = gw
            .call(method.clone(), &format!("/v1.0/calls/{call}{suffix}"), body)
            .await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    let bad_mute = gw
        .post(
            &format!("/v1.0/calls/{call}/mute"),
            json!({"direction": "sideways"}),
        )
        .await;
    assert_error(&bad_mute, StatusCode::BAD_REQUEST, "INVALID_BODY");
    let empty_talk = gw
        .post(&format!("/v1.0/calls/{call}/talk"), json!({"text": ""}))
        .await;
    assert_error(&empty_talk, StatusCode::BAD_REQUEST, "INVALID_BODY");
    let transfer = json!({"transfer_type": "blind", "transferer_call_id": call, "transferee_addresses": [{"type": "tel", "target": "1"}]});
    assert_error(
        &gw.post("/v1.0/transfers", transfer).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    let bad_type = json!({"transfer_type": "sideways", "transferer_call_id": call, "transferee_addresses": []});
    assert_error(
        &gw.post("/v1.0/transfers", bad_type).await,
        StatusCode::BAD_REQUEST,
        "INVALID_BODY",
    );
}

#[tokio::test]
async fn messages_are_stored_before_the_answer() {
    let gw = Gateway::start().await;
    let body = json!({"source": {"type": "tel", "target": "+15550001000"}, "destinations": [{"type": "tel", "target": "+15550002000"}], "text": "hello"});
    let message = gw.ok(Method::POST, "/v1.0/messages", Some(body)).await;
    let id = message["id"].as_str().expect("id").to_owned();
    assert_eq!(message["direction"], "outbound");
    assert_eq!(message["targets"][0]["status"], "queued");
    assert!(
        gw.db
            .messages
            .get(id.parse().expect("uuid"))
            .expect("db")
            .is_some()
    );
    assert_eq!(
        gw.ok(Method::GET, &format!("/v1.0/messages/{id}"), None)
            .await["text"],
        "hello"
    );
    assert_eq!(
        gw.ok(Method::GET, "/v1.0/messages", None).await["result"][0]["id"],
        id.as_str()
    );
    assert_error(
        &gw.get(&format!("/v1.0/messages/{}", uuid())).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );

    let empty = gw
        .post(
            "/v1.0/messages",
            json!({"source": {}, "destinations": [], "text": ""}),
        )
        .await;
    assert_error(&empty, StatusCode::BAD_REQUEST, "INVALID_BODY");
    assert_eq!(problem_paths(&empty.1), ["destinations", "text"]);
    let no_text = gw
        .post(
            "/v1.0/messages",
            json!({"source": {}, "destinations": [{"target": "1"}]}),
        )
        .await;
    assert_error(&no_text, StatusCode::BAD_REQUEST, "INVALID_BODY");
    let wrong_type = gw
        .post(
            "/v1.0/messages",
            json!({"source": {}, "destinations": "+1555", "text": "x"}),
        )
        .await;
    assert_error(&wrong_type, StatusCode::BAD_REQUEST, "INVALID_BODY");
}

#[tokio::test]
async fn recordings_are_listed_downloaded_and_deleted_with_their_file() {
    use flowgate::model::{Recording, RecordingStatus};
    let gw = Gateway::start().await;
    let dir = gw.dir.path().join("recordings");
    std::fs::create_dir_all(&dir).expect("dir");
    let samples: Vec<i16> = (0..8000)
        .map(|i| i16::try_from((i % 200) * 100 - 10_000).unwrap_or(0))
        .collect();
    let mut wav = std::io::Cursor::new(Vec::new());
    {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::new(&mut wav, spec).expect("wav");
        for s in &samples {
            writer.write_sample(*s).expect("sample");
        }
        writer.finalize().expect("finalize");
    }
    let wav = wav.into_inner();
    let make = |status: RecordingStatus, name: &str| {
        let id = uuid::Uuid::now_v7();
        std::fs::write(dir.join(format!("{name}.wav")), &wav).expect("write");
        let rec = Recording {
            id,
            reference_type: "call".into(),
            reference_id: uuid::Uuid::now_v7(),
            activeflow_id: None,
            status,
            format: "wav".into(),
            recording_name: name.into(),
            filenames: vec![format!("{name}.wav")],
            duration_ms: 1000,
            end_reason: "stop".into(),
            on_end_flow_id: None,
            tm_start: chrono::Utc::now(),
            tm_end: None,
        };
        gw.db.recordings.put(id, &rec).expect("put");
        id
    };
    let done = make(RecordingStatus::Ended, "done");
    let live = make(RecordingStatus::Recording, "live");

    let list = gw.ok(Method::GET, "/v1.0/recordings", None).await;
    assert_eq!(list["result"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        gw.ok(Method::GET, &format!("/v1.0/recordings/{done}"), None)
            .await["recording_name"],
        "done"
    );

    let response = gw
        .req(Method::GET, &format!("/v1.0/recordings/{done}/file"))
        .send()
        .await
        .expect("file");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "audio/wav");
    assert_eq!(
        response.bytes().await.expect("bytes").as_ref(),
        wav.as_slice()
    );

    assert_error(
        &gw.get(&format!("/v1.0/recordings/{live}/file")).await,
        StatusCode::CONFLICT,
        "RECORDING_IN_PROGRESS",
    );
    assert_error(
        &gw.delete(&format!("/v1.0/recordings/{live}")).await,
        StatusCode::CONFLICT,
        "RECORDING_IN_PROGRESS",
    );

    gw.ok(Method::DELETE, &format!("/v1.0/recordings/{done}"), None)
        .await;
    assert!(!dir.join("done.wav").exists());
    assert!(dir.join("live.wav").exists());
    assert_error(
        &gw.get(&format!("/v1.0/recordings/{done}")).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    assert_error(
        &gw.get(&format!("/v1.0/recordings/{done}/file")).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
}

#[tokio::test]
async fn gateway_resources_without_hardware() {
    let gw = Gateway::start().await;
    let metrics = gw
        .req(Method::GET, "/v1.0/gateway/metrics")
        .send()
        .await
        .expect("metrics");
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/plain")
    );
    let text = metrics.text().await.expect("text");
    let line = text
        .lines()
        .find(|l| l.starts_with("flowgate_api_requests_total "))
        .expect("counter");
    assert!(
        line.trim_start_matches("flowgate_api_requests_total ")
            .parse::<u64>()
            .expect("number")
            >= 1
    );

    assert_eq!(
        gw.ok(Method::GET, "/v1.0/gateway/modems", None).await["result"],
        json!([])
    );
    assert_error(
        &gw.get("/v1.0/gateway/modems/m0").await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    assert_error(
        &gw.post("/v1.0/gateway/modems/m0/ussd", json!({"code": "*100#"}))
            .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    for (method, path) in [
        (Method::GET, "/v1.0/gateway/sim"),
        (Method::GET, "/v1.0/gateway/sim/sent"),
        (Method::POST, "/v1.0/gateway/sim/hangup"),
    ] {
        assert_error(
            &gw.call(method, path, None).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "NO_SIMULATOR",
        );
    }
    let doc = gw.ok(Method::GET, "/v1.0/openapi.json", None).await;
    assert_eq!(doc["info"]["title"], "Flowgate LAN API");
}

#[tokio::test]
async fn queue_crud_checks_agents_methods_and_flows() {
    let gw = Gateway::start().await;
    let wait = gw.create_flow(json!([{"type": "beep"}])).await;
    let created = gw
        .ok(
            Method::POST,
            "/v1.0/queues",
            Some(
                json!({"name": "sales", "detail": "d", "routing_method": "random",
                "tag_ids": [], "wait_flow_id": wait, "wait_timeout": 60000, "service_timeout": 0,
                "agents": [{"type": "extension", "target": "100"},
                           {"type": "sip", "target": "sip:alice@192.0.2.7"}]}),
            ),
        )
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["routing_method"], "random");
    assert_eq!(created["wait_flow_id"], wait.as_str());
    assert_eq!(created["agents"][1]["target"], "sip:alice@192.0.2.7");
    assert_eq!(created["wait_queuecall_ids"], json!([]));
    assert_eq!(created["total_incoming_count"], 0);

    // The queue's wait flow cannot be deleted from under it.
    let in_use = gw
        .call(Method::DELETE, &format!("/v1.0/flows/{wait}"), None)
        .await;
    assert_error(&in_use, StatusCode::CONFLICT, "FLOW_IN_USE");
    assert_eq!(
        in_use.1["problems"][0]["path"],
        format!("queues/{id}.wait_flow_id")
    );

    // Absent fields are kept; "" unsets the wait flow; counters are not the client's.
    let updated = gw
        .ok(
            Method::PUT,
            &format!("/v1.0/queues/{id}"),
            Some(json!({"routing_method": "longest_idle", "wait_flow_id": "",
                "total_incoming_count": 7})),
        )
        .await;
    assert_eq!(updated["routing_method"], "longest_idle");
    assert_eq!(
        updated["wait_flow_id"],
        "00000000-0000-0000-0000-000000000000"
    );
    assert_eq!(updated["agents"], created["agents"]);
    let got = gw
        .ok(Method::GET, &format!("/v1.0/queues/{id}"), None)
        .await;
    assert_eq!(got["total_incoming_count"], 0);
    // Unset, the flow is free to go.
    gw.ok(Method::DELETE, &format!("/v1.0/flows/{wait}"), None)
        .await;
    let list = gw.ok(Method::GET, "/v1.0/queues", None).await;
    assert_eq!(list["result"][0]["id"], id.as_str());

    let bad = gw
        .post(
            "/v1.0/queues",
            json!({"routing_method": "fewest", "wait_flow_id": uuid(), "wait_timeout": -1,
                "agents": [{"type": "email", "target": "a@b"}, {"type": "tel", "target": ""}]}),
        )
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "INVALID_QUEUE");
    let paths: Vec<&str> = bad.1["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["path"].as_str())
        .collect();
    for path in [
        "routing_method",
        "agents[0].type",
        "agents[1].target",
        "wait_timeout",
        "wait_flow_id",
    ] {
        assert!(paths.contains(&path), "{path} in {paths:?}");
    }

    let missing = gw.get(&format!("/v1.0/queuecalls/{}", uuid())).await;
    assert_error(&missing, StatusCode::NOT_FOUND, "NOT_FOUND");
    let kick = gw
        .post(&format!("/v1.0/queuecalls/{}/kick", uuid()), json!({}))
        .await;
    assert_error(&kick, StatusCode::NOT_FOUND, "NOT_FOUND");
    let calls = gw.ok(Method::GET, "/v1.0/queuecalls", None).await;
    assert_eq!(calls["result"], json!([]));

    let deleted = gw
        .ok(Method::DELETE, &format!("/v1.0/queues/{id}"), None)
        .await;
    assert_eq!(deleted["id"], id.as_str());
    assert_eq!(
        gw.get(&format!("/v1.0/queues/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
}
