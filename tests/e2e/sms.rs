use flowgate_tests::{Gateway, library_flow};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_keyword_bot_answers_each_keyword() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let bot = api.create_flow(library_flow("sms-keyword-bot")).await;
    api.bind(None, Some(bot)).await;

    api.post(
        "/v1.0/gateway/sim/sms",
        json!({"from": "+15557654321", "text": "HOURS"}),
    )
    .await;
    api.post(
        "/v1.0/gateway/sim/sms",
        json!({"from": "+15559990000", "text": "what?"}),
    )
    .await;

    let sent = api
        .wait_for("two replies", || async {
            let sent = api.sim_sent().await;
            let messages = sent["messages"].as_array().cloned().unwrap_or_default();
            (messages.len() >= 2).then_some(messages)
        })
        .await;
    let reply_to = |to: &str| {
        sent.iter()
            .find(|m| m["to"] == to)
            .map(|m| m["text"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        reply_to("+15557654321").unwrap(),
        "We are open Monday to Friday, 9:00 to 17:00."
    );
    assert_eq!(
        reply_to("+15559990000").unwrap(),
        "Reply HOURS for our opening hours or STOP to unsubscribe."
    );

    // Both inbound messages are stored with their flow started; replies reach "delivered"
    // through the simulated network's status reports.
    api.wait_for("replies delivered", || async {
        let list = api.get("/v1.0/messages?page_size=100").await;
        let messages = list["result"].as_array().cloned().unwrap_or_default();
        let inbound = messages
            .iter()
            .filter(|m| m["direction"] == "inbound" && m["flow_state"] == "started")
            .count();
        let delivered = messages
            .iter()
            .filter(|m| m["direction"] == "outbound" && m["targets"][0]["status"] == "delivered")
            .count();
        (inbound == 2 && delivered == 2).then_some(())
    })
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_triggered_flow_skips_media_and_sends_an_sms() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let flow = api
        .create_flow(json!({"name": "notify", "detail": "", "actions": [
            {"type": "talk", "option": {"text": "never spoken: no call"}},
            {"type": "message_send", "option": {
                "source": {"type": "tel", "target": "+15550001000"},
                "destinations": [{"type": "tel", "target": "${phone}"}],
                "text": "Order ${order} shipped"}}]}))
        .await;
    let af = api
        .post(
            "/v1.0/activeflows",
            json!({"flow_id": flow, "variables": {"order": "A-17", "phone": "+15551230000"}}),
        )
        .await;
    let af = api.wait_ended(af["id"].as_str().unwrap()).await;
    let outcomes: Vec<(String, String)> = af["executed_actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("talk".to_owned(), "skipped".to_owned()),
            ("message_send".to_owned(), "executed".to_owned())
        ]
    );
    let sent = api
        .wait_for("the SMS", || async {
            let s = api.sim_sent().await;
            s["messages"].as_array().filter(|m| !m.is_empty()).cloned()
        })
        .await;
    assert_eq!(sent[0]["to"], "+15551230000");
    assert_eq!(sent[0]["text"], "Order A-17 shipped");
    gw.stop().await;
}
