//! The admin page's HTML: maud templates rendered from the JSON the API answers.
//!
//! Every page is a [`layout`] around sections; a section with `data-frag="NAME"` is also
//! served alone at `/admin/frag/NAME` ([`fragment`]), which the script re-fetches when the
//! event stream reports a change. Values from the API are shown generically (a line of a
//! transport this page has never heard of still gets its row), and everything goes through
//! maud's escaping.

use axum::http::Method;
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::AdminState;
use crate::config::EVENT_TYPES;
use flowgate_flows::dryrun::DryRunReport;
use flowgate_flows::validate::Problem;

/// The pages, in the navigation's order: (path segment, title).
const PAGES: &[(&str, &str)] = &[
    ("", "Dashboard"),
    ("sim", "Simulator"),
    ("flows", "Flows"),
    ("numbers", "Numbers"),
    ("messages", "Messages"),
    ("calls", "Calls"),
    ("events", "Events"),
    ("settings", "Settings"),
];

/// The nil UUID the API uses for "none".
const NIL: &str = "00000000-0000-0000-0000-000000000000";

/// A string field at a JSON pointer (`""` when absent; numbers and booleans as text).
fn s(v: &Value, pointer: &str) -> String {
    match v.pointer(pointer) {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// `HH:MM:SS` of an RFC 3339 time (the date when it is not today's).
fn when(t: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(t) {
        Ok(t) => {
            let t = t.with_timezone(&chrono::Utc);
            if t.date_naive() == chrono::Utc::now().date_naive() {
                t.format("%H:%M:%S").to_string()
            } else {
                t.format("%Y-%m-%d %H:%M").to_string()
            }
        }
        Err(_) => t.to_owned(),
    }
}

fn state_class(state: &str) -> &'static str {
    match state {
        "ready" | "home" | "roaming" | "delivered" | "sent" | "received" | "ok" | "active"
        | "progressing" => "ok",
        "busy" | "queued" | "ringing" | "dialing" | "recovering" | "degraded" | "searching"
        | "starting" | "initializing" => "warn",
        _ => "bad",
    }
}

/// The page around every admin page. `after` is the newest event's sequence number read
/// before the page's data was: the script's event stream starts after it, so a change made
/// between the page's rendering and the stream's opening still reaches the page.
fn layout(title: &str, active: &str, csrf: &str, after: Option<u64>, body: Markup) -> Markup {
    let mut kinds: Vec<&str> = EVENT_TYPES.to_vec();
    kinds.extend(["number_created", "number_deleted", "error"]);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf-token" content=(csrf);
                title { (title) " · Flowgate" }
                link rel="stylesheet" href="/admin/static/app.css";
                script src="/admin/static/app.js" defer {}
            }
            body data-kinds=(kinds.join(",")) data-after=[after] {
                header {
                    span.brand { "Flowgate" }
                    nav aria-label="Main" {
                        @for (path, name) in PAGES {
                            @if *path == active {
                                a href={ "/admin/" (path) } aria-current="page" { (name) }
                            } @else {
                                a href={ "/admin/" (path) } { (name) }
                            }
                        }
                    }
                    form method="post" action="/admin/logout" {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" { "Log out" }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The login page (the only page without a session).
pub(super) fn login(error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Log in · Flowgate" }
                link rel="stylesheet" href="/admin/static/app.css";
            }
            body {
                main.login {
                    h1 { "Flowgate gateway" }
                    p { "Log in with the gateway's API token (" code { "<data dir>/api-token" } ")." }
                    @if let Some(error) = error {
                        p.problems role="alert" id="login-error" { (error) }
                    }
                    form method="post" action="/admin/login" {
                        label for="token" { "API token" }
                        input id="token" name="token" type="password" autocomplete="current-password" required autofocus;
                        p { button type="submit" { "Log in" } }
                    }
                }
            }
        }
    }
}

/// A page name the admin does not have.
pub(super) fn not_found(name: &str, csrf: &str) -> Markup {
    layout(
        "Not found",
        "",
        csrf,
        None,
        html! { p { "There is no admin page " code { (name) } "." } },
    )
}

/// A whole page by name; `None` for an unknown one.
pub(super) async fn page(state: &AdminState, name: &str, csrf: &str) -> Option<Markup> {
    let after = state.event_seq();
    let (title, active, body) = match name {
        "dashboard" | "" => ("Dashboard", "", dashboard(state).await),
        "sim" => ("Simulator", "sim", simulator(state).await),
        "flows" => ("Flows", "flows", flows_page(state).await),
        "numbers" => ("Numbers", "numbers", numbers_page(state).await),
        "messages" => ("Messages", "messages", messages_page(state).await),
        "calls" => ("Calls", "calls", frag(state, "calls").await?),
        "events" => ("Events", "events", events_page(state).await),
        "settings" => ("Settings", "settings", settings_page(state, csrf).await),
        _ => return None,
    };
    Some(layout(title, active, csrf, Some(after), body))
}

/// A section that the script refreshes from `/admin/frag/NAME`.
async fn frag(state: &AdminState, name: &str) -> Option<Markup> {
    let inner = fragment(state, name).await?;
    Some(html! { div data-frag=(name) aria-live="polite" { (inner) } })
}

/// One refreshable fragment by name.
pub(super) async fn fragment(state: &AdminState, name: &str) -> Option<Markup> {
    Some(match name {
        "lines" => lines(state).await,
        "livecalls" => live_calls(state).await,
        "latest" => latest_messages(state).await,
        "health" => health(state).await,
        "simstate" => sim_state(state).await,
        "flowlist" => flow_list(state).await,
        "numberlist" => number_list(state).await,
        "conversations" => conversations(state).await,
        "calls" => calls(state).await,
        _ => return None,
    })
}

/// The submit half of every API form: the button and where its outcome is announced.
fn submit(label: &str) -> Markup {
    html! {
        button type="submit" { (label) }
        output.status role="status" aria-live="polite" {}
    }
}

// ---------------------------------------------------------------------------------------
// Dashboard

async fn dashboard(state: &AdminState) -> Markup {
    html! {
        section aria-labelledby="h-lines" {
            h2 id="h-lines" { "Lines" }
            div data-frag="lines" aria-live="polite" { (lines(state).await) }
        }
        section aria-labelledby="h-live" {
            h2 id="h-live" { "Live calls" }
            div data-frag="livecalls" { (live_calls(state).await) }
        }
        div.grid2 {
            section aria-labelledby="h-latest" {
                h2 id="h-latest" { "Latest messages" }
                div data-frag="latest" { (latest_messages(state).await) }
            }
            section aria-labelledby="h-health" {
                h2 id="h-health" { "Health" }
                p { "Event feed: " span id="feed-state" class="warn" { "connecting" } }
                div data-frag="health" { (health(state).await) }
            }
        }
    }
}

/// Four bars from a signal level in dBm (GSM's usual steps).
fn bars(dbm: Option<i64>) -> Markup {
    let n = match dbm {
        Some(d) if d >= -70 => 4,
        Some(d) if d >= -85 => 3,
        Some(d) if d >= -100 => 2,
        Some(d) if d > -113 => 1,
        _ => 0,
    };
    html! {
        span.bars aria-hidden="true" {
            @for i in 0..4 { @if i < n { i.on {} } @else { i {} } }
        }
        span.sr-only { (n) " of 4 bars" }
    }
}

async fn lines(state: &AdminState) -> Markup {
    let lines = state.get("/v1.0/gateway/lines").await;
    let modems = state.get("/v1.0/gateway/modems").await;
    let modem = |id: &str| -> Option<Value> {
        modems["result"]
            .as_array()?
            .iter()
            .find(|m| m["id"] == id)
            .cloned()
    };
    let lines = lines["result"].as_array().cloned().unwrap_or_default();
    html! {
        @if lines.is_empty() { p.muted { "The gateway has no lines." } }
        div.cards {
            @for line in &lines {
                @let id = s(line, "/id");
                @let avail = s(line, "/availability/state");
                article.card data-line=(id) aria-label={ "Line " (id) } {
                    h3 { (id) " " span.pill { (s(line, "/transport")) } }
                    dl {
                        dt { "State" }
                        dd class=(state_class(&avail)) {
                            (avail)
                            @let reason = s(line, "/availability/reason");
                            @if !reason.is_empty() { " — " (reason) }
                        }
                        @let own = s(line, "/own_number");
                        @if !own.is_empty() { dt { "Number" } dd { (own) } }
                        @if let Some(m) = modem(&id) {
                            @let dbm = m.pointer("/signal/dbm").and_then(Value::as_i64);
                            dt { "Signal" }
                            dd.signal {
                                (bars(dbm))
                                @match dbm { Some(d) => { (d) " dBm" }, None => { "unknown" } }
                            }
                            dt { "SIM" } dd class=(state_class(&s(&m, "/sim"))) { (s(&m, "/sim")) }
                            @let reg = s(&m, "/registration/status");
                            dt { "Registration" } dd.registration { span class=(state_class(&reg)) { (reg) } }
                            dt { "Operator" } dd { (s(&m, "/operator")) }
                            @let tech = {
                                let t = s(&m, "/technology");
                                if t.is_empty() { s(&m, "/registration/act") } else { t }
                            };
                            dt { "Technology" } dd { (tech) }
                            @let mstate = s(&m, "/state/state");
                            dt { "Modem" } dd class=(state_class(&mstate)) { (mstate) }
                            dt { "Recoveries" } dd { (s(&m, "/recoveries")) }
                            dt { "SMS storage" } dd { (s(&m, "/sms_storage/used")) " / " (s(&m, "/sms_storage/total")) }
                            @let err = s(&m, "/last_error");
                            @if !err.is_empty() { dt { "Last error" } dd.bad { (err) } }
                        }
                        @if let Some(caps) = line["capabilities"].as_object() {
                            dt { "Can" }
                            dd {
                                @for (k, v) in caps { @if v == true { span.pill { (k) } " " } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Calls newest first (bounded).
async fn recent_calls(state: &AdminState) -> Vec<Value> {
    let mut calls = state.all("/v1.0/calls", 10).await;
    calls.reverse();
    calls
}

async fn live_calls(state: &AdminState) -> Markup {
    let calls: Vec<Value> = recent_calls(state)
        .await
        .into_iter()
        .filter(|c| c["status"] != "hangup")
        .collect();
    html! {
        @if calls.is_empty() { p.muted { "No call right now." } }
        @else {
            div.scroll { table {
                thead { tr { th { "Caller" } th { "Called" } th { "Line" } th { "Flow" } th { "State" } th { "Duration" } th { span.sr-only { "Actions" } } } }
                tbody {
                    @for c in &calls {
                        @let id = s(c, "/id");
                        tr data-call=(id) {
                            td { (s(c, "/source/target")) }
                            td { (s(c, "/destination/target")) }
                            td { (s(c, "/line_id")) }
                            td { code { (s(c, "/flow_id").get(..8).unwrap_or("")) } }
                            td class=(state_class(&s(c, "/status"))) { (s(c, "/status")) }
                            td data-since=(s(c, "/tm_create")) { "0:00" }
                            td {
                                form data-api={ "POST /v1.0/calls/" (id) "/hangup" } data-done="Hung up." {
                                    button.danger type="submit" aria-label={ "Hang up the call from " (s(c, "/source/target")) } { "Hang up" }
                                    output.status role="status" {}
                                }
                            }
                        }
                    }
                }
            } }
        }
    }
}

/// One message as a table row.
fn message_row(m: &Value) -> Markup {
    let statuses: Vec<String> = m["targets"]
        .as_array()
        .map(|t| t.iter().map(|t| s(t, "/status")).collect())
        .unwrap_or_default();
    html! {
        tr data-message=(s(m, "/id")) {
            td { (when(&s(m, "/tm_create"))) }
            td { @if m["direction"] == "inbound" { "in" } @else { "out" } }
            td { (s(m, "/source/target")) }
            td { @for t in m["targets"].as_array().into_iter().flatten() { (s(t, "/destination/target")) " " } }
            td.text { (s(m, "/text")) }
            td { @for st in &statuses { span class=(state_class(st)) { (st) } " " } }
        }
    }
}

fn message_table(messages: &[Value]) -> Markup {
    html! {
        div.scroll { table {
            thead { tr { th { "Time" } th { "Dir." } th { "From" } th { "To" } th { "Text" } th { "Status" } } }
            tbody { @for m in messages { (message_row(m)) } }
        } }
    }
}

async fn latest_messages(state: &AdminState) -> Markup {
    let mut messages = state.all("/v1.0/messages", 10).await;
    messages.reverse();
    messages.truncate(8);
    html! {
        @if messages.is_empty() { p.muted { "No message yet." } }
        @else { (message_table(&messages)) }
    }
}

async fn health(state: &AdminState) -> Markup {
    let (_, h) = state.api(Method::GET, "/v1.0/gateway/health", None).await;
    let status = s(&h, "/status");
    html! {
        dl {
            dt { "Gateway" } dd class=(state_class(&status)) { (status) }
            dt { "Version" } dd { (s(&h, "/version")) }
            dt { "Up" } dd { (s(&h, "/uptime_secs")) " s" }
            dt { "Store" }
            dd {
                @if h.pointer("/store/ok") == Some(&Value::Bool(true)) { span.ok { "ok" } }
                @else { span.bad { "failing " (s(&h, "/store/error")) } }
            }
            dt { "Last event" } dd { "#" (s(&h, "/store/last_seq")) }
            dt { "Running flows" } dd { (s(&h, "/activeflows_running")) }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Simulator

fn modem_select(ids: &[String], field_id: &str) -> Markup {
    html! {
        div.field {
            label for=(field_id) { "Simulated modem" }
            select id=(field_id) name="modem" { @for id in ids { option value=(id) { (id) } } }
        }
    }
}

async fn simulator(state: &AdminState) -> Markup {
    let ids = state.sim_ids();
    if ids.is_empty() {
        return html! { p { "The gateway runs on real hardware: there is no simulated board to drive." } };
    }
    html! {
        p { "Act as the network and the far end of the simulated board: what the gateway does shows on the dashboard and below." }
        div.grid2 {
            section aria-labelledby="h-sms" {
                h2 id="h-sms" { "Send an SMS to the gateway" }
                form.inline id="sim-sms" data-api="POST /v1.0/gateway/sim/sms?modem={modem}" data-done="Delivered to the gateway." {
                    (modem_select(&ids, "sms-modem"))
                    div.field { label for="sms-from" { "From" } input id="sms-from" name="from" value="+15557654321" required; }
                    div.field { label for="sms-text" { "Text" } input id="sms-text" name="text" required; }
                    (submit("Send SMS"))
                }
            }
            section aria-labelledby="h-call" {
                h2 id="h-call" { "Calls" }
                form.inline id="sim-call" data-api="POST /v1.0/gateway/sim/calls?modem={modem}" data-done="Ringing the gateway." {
                    (modem_select(&ids, "call-modem"))
                    div.field { label for="call-from" { "Caller" } input id="call-from" name="from" value="+15557654321" required; }
                    (submit("Place call"))
                }
                form.inline id="sim-dtmf" data-api="POST /v1.0/gateway/sim/dtmf?modem={modem}" data-done="Pressed." {
                    (modem_select(&ids, "dtmf-modem"))
                    div.field { label for="dtmf-digits" { "Digits" } input id="dtmf-digits" name="digits" inputmode="tel" pattern="[0-9*#A-Da-d]+" required; }
                    (submit("Press digits"))
                }
                form.inline id="sim-answer" data-api="POST /v1.0/gateway/sim/answer?modem={modem}" data-done="Answered." {
                    (modem_select(&ids, "answer-modem"))
                    (submit("Answer the gateway's call"))
                }
                form.inline id="sim-hangup" data-api="POST /v1.0/gateway/sim/hangup?modem={modem}" data-done="Hung up." {
                    (modem_select(&ids, "hangup-modem"))
                    (submit("Hang up (far end)"))
                }
            }
        }
        section aria-labelledby="h-simstate" {
            h2 id="h-simstate" { "What the gateway did" }
            div data-frag="simstate" { (sim_state(state).await) }
        }
    }
}

async fn sim_state(state: &AdminState) -> Markup {
    let mut blocks = Vec::new();
    for id in state.sim_ids() {
        let status = state.get(&format!("/v1.0/gateway/sim?modem={id}")).await;
        let sent = state
            .get(&format!("/v1.0/gateway/sim/sent?modem={id}"))
            .await;
        blocks.push(html! {
            h3 { (id) }
            h4 { "SMS the gateway sent" }
            @let msgs = sent["messages"].as_array().cloned().unwrap_or_default();
            @if msgs.is_empty() { p.muted { "None yet." } }
            ul.sim-sent {
                @for m in msgs.iter().rev().take(20) {
                    li { "to " (s(m, "/to")) ": " span.text { (s(m, "/text")) } }
                }
            }
            h4 { "Calls the simulator saw" }
            @let calls = status["calls"].as_array().cloned().unwrap_or_default();
            @if calls.is_empty() { p.muted { "None yet." } }
            ul { @for c in calls.iter().rev().take(20) { li { code { (c.to_string()) } } } }
        });
    }
    html! { @for b in blocks { (b) } }
}

// ---------------------------------------------------------------------------------------
// Flows

async fn flows_page(state: &AdminState) -> Markup {
    html! {
        p { a href="/admin/flows/new" { "New flow" } }
        div data-frag="flowlist" { (flow_list(state).await) }
    }
}

async fn flow_list(state: &AdminState) -> Markup {
    let flows = state.all("/v1.0/flows", 20).await;
    html! {
        @if flows.is_empty() { p.muted { "No flow yet." } }
        @else {
            div.scroll { table {
                thead { tr { th { "Name" } th { "Actions" } th { "Detail" } th { "Id" } } }
                tbody {
                    @for f in &flows {
                        tr {
                            td { a href={ "/admin/flows/" (s(f, "/id")) } { @let n = s(f, "/name"); @if n.is_empty() { "(unnamed)" } @else { (n) } } }
                            td { (f["actions"].as_array().map_or(0, Vec::len)) }
                            td.muted { (s(f, "/detail")) }
                            td { code { (s(f, "/id")) } }
                        }
                    }
                }
            } }
        }
    }
}

const NEW_FLOW: &str = r#"{
  "name": "new-flow",
  "detail": "",
  "actions": [
    { "type": "answer" },
    { "type": "talk", "option": { "text": "Hello from Flowgate.", "language": "en-US" } },
    { "type": "hangup" }
  ]
}"#;

/// `/admin/flows/{id}` (`new` for a new flow): the JSON editor and the dry run.
pub(super) async fn flow_editor(state: &AdminState, id: &str, csrf: &str) -> Markup {
    let after = state.event_seq();
    let (title, text, flow_id) = if id == "new" {
        ("New flow".to_owned(), NEW_FLOW.to_owned(), String::new())
    } else {
        let flow = state.get(&format!("/v1.0/flows/{id}")).await;
        if flow.is_null() {
            return layout(
                "Flow not found",
                "flows",
                csrf,
                Some(after),
                html! { p { "No flow " code { (id) } ". " a href="/admin/flows" { "All flows" } } },
            );
        }
        let text = serde_json::to_string_pretty(&flow).unwrap_or_default();
        (format!("Flow {}", s(&flow, "/name")), text, s(&flow, "/id"))
    };
    let body = html! {
        p { a href="/admin/flows" { "← All flows" } }
        div.grid2 {
            section aria-labelledby="h-json" {
                h2 id="h-json" { "JSON" }
                label for="flow-json" { "Flow (VoIPBIN JSON)" }
                textarea id="flow-json" data-id=(flow_id) rows="24" spellcheck="false" { (text) }
                p { button id="flow-save" type="button" { "Save" } }
                output id="flow-status" class="status" role="status" aria-live="polite" {}
                ul id="flow-problems" class="problems-list" {}
            }
            section aria-labelledby="h-outline" {
                h2 id="h-outline" { "Actions" }
                ol id="flow-outline" class="outline" start="0" {}
            }
        }
        section aria-labelledby="h-dry" {
            h2 id="h-dry" { "Dry run" }
            p.muted { "Runs the text above in the flow engine with virtual time; nothing is dialled or sent." }
            form id="dryrun-form" {
                div.grid2 {
                    div {
                        label for="dry-inputs" { "Scripted events, one per line" }
                        textarea id="dry-inputs" name="inputs" rows="4" placeholder="press:1\ntimeout\nhangup" {}
                    }
                    div {
                        label for="dry-vars" { "Variables, KEY=VALUE per line" }
                        textarea id="dry-vars" name="variables" rows="4" {}
                    }
                }
                label for="dry-ref" { "Started by" }
                select id="dry-ref" name="reference" {
                    option value="call" { "a call" }
                    option value="conversation" { "a message" }
                    option value="api" { "the API" }
                }
                p { button type="submit" { "Dry run" } }
            }
            div id="dryrun-result" aria-live="polite" {}
        }
    };
    layout(&title, "flows", csrf, Some(after), body)
}

/// Problems of a flow the dry run refused.
pub(super) fn problems_fragment(problems: &[Problem]) -> Markup {
    html! {
        div.problems role="alert" {
            strong { "The flow is invalid:" }
            ul { @for p in problems { li { @if !p.path.is_empty() { code { (p.path) } ": " } (p.message) } } }
        }
    }
}

/// Plain error sentences for the dry run.
pub(super) fn messages_fragment(messages: &[String]) -> Markup {
    html! {
        div.problems role="alert" { ul { @for m in messages { li { (m) } } } }
    }
}

/// A dry run's trace.
pub(super) fn trace_fragment(report: &DryRunReport) -> Markup {
    html! {
        p { "Ended: " strong class={ "dry-end " (if report.failed() { "bad" } else { "ok" }) } { (report.end) } }
        div.scroll { table.trace {
            thead { tr { th { "#" } th { "Action" } th { "Outcome" } th { "Input / reason" } th { "Options" } } }
            tbody {
                @for (n, t) in report.trace.iter().enumerate() {
                    tr {
                        td { (n + 1) }
                        td { (serde_json::to_value(t.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()) " " span.muted { "actions[" (t.index) "]" } }
                        td { (serde_json::to_value(t.outcome).map(|v| v.as_str().unwrap_or_default().to_owned()).unwrap_or_default()) }
                        td { (t.input.clone().unwrap_or_default()) " " (t.reason.clone().unwrap_or_default()) }
                        td { @if let Some(o) = &t.option { pre { (o.to_string()) } } }
                    }
                }
            }
        } }
        @if !report.unused_inputs.is_empty() {
            p.warn { "Never consumed: " @for i in &report.unused_inputs { code { (i.to_string()) } " " } }
        }
        details {
            summary { "Variables at the end" }
            pre { @for (k, v) in &report.variables { (k) " = " (v) "\n" } }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Numbers

fn flow_options(flows: &[Value], selected: &str) -> Markup {
    html! {
        option value="" selected[selected.is_empty() || selected == NIL] { "(none)" }
        @for f in flows {
            @let id = s(f, "/id");
            option value=(id) selected[id == selected] { (s(f, "/name")) " (" (id.get(..8).unwrap_or("")) ")" }
        }
    }
}

async fn numbers_page(state: &AdminState) -> Markup {
    let flows = state.all("/v1.0/flows", 20).await;
    let lines = state.get("/v1.0/gateway/lines").await;
    let lines = lines["result"].as_array().cloned().unwrap_or_default();
    html! {
        div data-frag="numberlist" { (number_list(state).await) }
        section aria-labelledby="h-bind" {
            h2 id="h-bind" { "Bind a number or a line" }
            form id="number-create" data-api="POST /v1.0/numbers" data-done="Bound." data-reset {
                div.grid2 {
                    div {
                        label for="nb-number" { "Number (E.164)" }
                        input id="nb-number" name="number" placeholder="+15550001000";
                    }
                    div {
                        label for="nb-line" { "or line" }
                        select id="nb-line" name="line_id" {
                            option value="" { "(any line)" }
                            @for l in &lines { option value=(s(l, "/id")) { (s(l, "/id")) " " (s(l, "/own_number")) } }
                        }
                    }
                    div {
                        label for="nb-call" { "Call flow" }
                        select id="nb-call" name="call_flow_id" data-keep="1" { (flow_options(&flows, "")) }
                    }
                    div {
                        label for="nb-msg" { "Message flow" }
                        select id="nb-msg" name="message_flow_id" data-keep="1" { (flow_options(&flows, "")) }
                    }
                }
                p { (submit("Bind")) }
            }
        }
    }
}

async fn number_list(state: &AdminState) -> Markup {
    let numbers = state.all("/v1.0/numbers", 20).await;
    let flows = state.all("/v1.0/flows", 20).await;
    html! {
        @if numbers.is_empty() { p.muted { "No number is bound yet: calls and SMS to the gateway start no flow." } }
        @else {
            div.scroll { table {
                thead { tr { th { "Number / line" } th { "Flows" } } }
                tbody {
                    @for n in &numbers {
                        @let id = s(n, "/id");
                        @let label = { let num = s(n, "/number"); if num.is_empty() { format!("line {}", s(n, "/line_id")) } else { num } };
                        tr data-number=(id) {
                            td { (label) @let line = s(n, "/line_id"); @if !line.is_empty() && !s(n, "/number").is_empty() { " on " (line) } }
                            td {
                                form.inline data-api={ "PUT /v1.0/numbers/" (id) "/flow_ids" } data-done="Saved." {
                                    div.field {
                                        label for={ "c-" (id) } { "Call flow" }
                                        select id={ "c-" (id) } name="call_flow_id" data-keep="1" { (flow_options(&flows, &s(n, "/call_flow_id"))) }
                                    }
                                    div.field {
                                        label for={ "m-" (id) } { "Message flow" }
                                        select id={ "m-" (id) } name="message_flow_id" data-keep="1" { (flow_options(&flows, &s(n, "/message_flow_id"))) }
                                    }
                                    (submit("Save"))
                                }
                            }
                        }
                    }
                }
            } }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Messages

async fn messages_page(state: &AdminState) -> Markup {
    let lines = state.get("/v1.0/gateway/lines").await;
    let own: Vec<String> = lines["result"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| s(l, "/own_number"))
        .filter(|n| !n.is_empty())
        .collect();
    html! {
        section aria-labelledby="h-send" {
            h2 id="h-send" { "Send an SMS" }
            form.inline id="send-sms" data-api="POST /v1.0/messages" data-done="Queued." {
                input type="hidden" name="source.type" value="tel";
                input type="hidden" name="destinations.0.type" value="tel";
                div.field {
                    label for="ms-from" { "From" }
                    select id="ms-from" name="source.target" { @for n in &own { option value=(n) { (n) } } }
                }
                div.field { label for="ms-to" { "To" } input id="ms-to" name="destinations.0.target" inputmode="tel" required; }
                div.field { label for="ms-text" { "Text" } input id="ms-text" name="text" required; }
                (submit("Send"))
            }
        }
        section aria-labelledby="h-conv" {
            h2 id="h-conv" { "Conversations" }
            div data-frag="conversations" { (conversations(state).await) }
        }
    }
}

async fn conversations(state: &AdminState) -> Markup {
    let messages = state.all("/v1.0/messages", 20).await;
    // Group by the other party, newest conversation first.
    let mut groups: indexmap::IndexMap<String, Vec<Value>> = indexmap::IndexMap::new();
    for m in messages.into_iter().rev() {
        let peer = if m["direction"] == "inbound" {
            s(&m, "/source/target")
        } else {
            s(&m, "/targets/0/destination/target")
        };
        groups.entry(peer).or_default().push(m);
    }
    html! {
        @if groups.is_empty() { p.muted { "No message yet." } }
        @for (n, (peer, msgs)) in groups.iter().enumerate() {
            details.conversation open[n < 3] {
                summary { strong { (peer) } " — " (msgs.len()) " message(s), last " (when(&s(&msgs[0], "/tm_create"))) }
                @let oldest_first: Vec<Value> = msgs.iter().rev().cloned().collect();
                (message_table(&oldest_first))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Calls

async fn calls(state: &AdminState) -> Markup {
    let mut calls = recent_calls(state).await;
    calls.truncate(30);
    let recordings = state.all("/v1.0/recordings", 10).await;
    let mut rows = Vec::new();
    for (n, c) in calls.iter().enumerate() {
        // The executed actions of the newest calls (one request each: bounded).
        let af = s(c, "/activeflow_id");
        let actions = if n < 15 && !af.is_empty() && af != NIL {
            state.get(&format!("/v1.0/activeflows/{af}")).await["executed_actions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let id = s(c, "/id");
        let recs: Vec<&Value> = recordings
            .iter()
            .filter(|r| s(r, "/reference_id") == id)
            .collect();
        let live = c["status"] != "hangup";
        rows.push(html! {
            tr data-call=(id) {
                td { (when(&s(c, "/tm_create"))) }
                td { (s(c, "/direction")) }
                td { (s(c, "/source/target")) }
                td { (s(c, "/destination/target")) }
                td { (s(c, "/line_id")) }
                td class=(state_class(&s(c, "/status"))) { (s(c, "/status")) }
                td {
                    @if live {
                        form data-api={ "POST /v1.0/calls/" (id) "/hangup" } data-done="Hung up." {
                            button.danger type="submit" { "Hang up" }
                            output.status role="status" {}
                        }
                    } @else {
                        (s(c, "/hangup_by")) " · " (s(c, "/hangup_reason"))
                        @let cause = s(c, "/end_cause/detail");
                        @if !cause.is_empty() { br; span.muted { (cause) } }
                    }
                }
                td {
                    @if !actions.is_empty() {
                        details {
                            summary { (actions.len()) " action(s)" }
                            ol { @for a in &actions { li { (s(a, "/type")) " " span class=(state_class(&s(a, "/outcome"))) { (s(a, "/outcome")) } } } }
                        }
                    }
                    @for r in &recs {
                        @let rid = s(r, "/id");
                        div {
                            audio controls preload="none" src={ "/admin/api/v1.0/recordings/" (rid) "/file" } aria-label={ "Recording " (rid) } {}
                            span.muted { " " (s(r, "/duration_ms")) " ms" }
                        }
                    }
                }
            }
        });
    }
    html! {
        @if rows.is_empty() { p.muted { "No call yet." } }
        @else {
            div.scroll { table {
                thead { tr { th { "Time" } th { "Dir." } th { "From" } th { "To" } th { "Line" } th { "Status" } th { "Hang-up" } th { "Flow, recordings" } } }
                tbody { @for r in rows { (r) } }
            } }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Events

async fn events_page(state: &AdminState) -> Markup {
    let health = state.get("/v1.0/gateway/health").await;
    let last = health
        .pointer("/store/last_seq")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let page = state
        .get(&format!(
            "/v1.0/gateway/events?after={}&limit=50",
            last.saturating_sub(50)
        ))
        .await;
    let events = page["events"].as_array().cloned().unwrap_or_default();
    html! {
        p { "Feed: " span id="feed-state" class="warn" { "connecting" } }
        label for="events-filter" { "Filter (type, id or text)" }
        input id="events-filter" type="search" placeholder="call_updated";
        div.scroll { table {
            thead { tr { th { "#" } th { "Time" } th { "Type" } th { "Resource" } th { "Data" } } }
            tbody id="events-log" {
                @for e in events.iter().rev() {
                    tr data-type=(s(e, "/type")) {
                        td { (s(e, "/seq")) } td { (s(e, "/time")) } td { (s(e, "/type")) } td { (s(e, "/resource_id")) }
                        td { pre { (clip(&e["data"].to_string())) } }
                    }
                }
            }
        } }
    }
}

/// Event data shown in the table is cut short: the page stays light, and the whole event is
/// one `GET /v1.0/gateway/events` away.
const EVENT_DATA_SHOWN: usize = 240;

fn clip(text: &str) -> String {
    match text.char_indices().nth(EVENT_DATA_SHOWN) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// Settings

/// Replaces every value whose key names a secret (recursively).
fn mask(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, value) in map.iter_mut() {
                let k = k.to_ascii_lowercase();
                let secret = ["secret", "password", "token", "key"]
                    .iter()
                    .any(|w| k.contains(w));
                if secret && !value.is_null() && !matches!(value, Value::Bool(_)) {
                    *value = Value::String("••••••".into());
                } else {
                    mask(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask),
        _ => {}
    }
}

/// The answer to a token rotation: the new token, shown once.
pub(super) fn rotated(token: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "New API token · Flowgate" }
                link rel="stylesheet" href="/admin/static/app.css";
            }
            body {
                main.login {
                    h1 { "New API token" }
                    p { "Copy it now: it is not shown again." }
                    p { label for="new-token" { "API token" } input id="new-token" readonly value=(token) size="50"; }
                    p { a href="/admin/login" { "Log in again" } }
                }
            }
        }
    }
}

async fn settings_page(state: &AdminState, csrf: &str) -> Markup {
    let mut config = serde_json::to_value(state.config()).unwrap_or(Value::Null);
    mask(&mut config);
    let modems = state.get("/v1.0/gateway/modems").await;
    let modems = modems["result"].as_array().cloned().unwrap_or_default();
    html! {
        section aria-labelledby="h-ussd" {
            h2 id="h-ussd" { "USSD" }
            p.muted { "For example " code { "*100#" } " to check prepaid credit." }
            @for m in &modems {
                @let id = s(m, "/id");
                form.inline data-api="POST /v1.0/gateway/modems/{modem}/ussd" data-show="text" data-done="Reply:" {
                    input type="hidden" name="modem" value=(id);
                    div.field { label for={ "ussd-" (id) } { "Code on " (id) } input id={ "ussd-" (id) } name="code" required; }
                    (submit("Send USSD"))
                }
            }
        }
        section aria-labelledby="h-token" {
            h2 id="h-token" { "API token" }
            p { "Controllers send it as a bearer token; it is kept in " code { "<data dir>/api-token" } ". A new token takes effect at once: controllers with the old one are refused, and every admin session ends (log in again with the new one)." }
            form method="post" action="/admin/token" id="rotate-token" {
                input type="hidden" name="csrf" value=(csrf);
                button.danger type="submit" { "Rotate the API token" }
            }
        }
        section aria-labelledby="h-config" {
            h2 id="h-config" { "Running configuration" }
            p.muted { "Secrets are masked." }
            pre id="config" { (serde_json::to_string_pretty(&config).unwrap_or_default()) }
        }
    }
}
