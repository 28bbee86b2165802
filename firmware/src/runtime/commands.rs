//! Where every engine command is performed. Commands on the flow's call (answer, media,
//! digits, `connect`…) go to the call ([`LiveCall::perform`]); the rest are performed
//! here: HTTP (`fetch`, `webhook_send`), the flow store (`fetch_flow`), the SMS queue
//! (`message_send`, `conversation_send`), outbound calls (`call`), e-mail (`email_send`,
//! [`super::email`]), speech to text of recordings (`transcribe_recording`,
//! [`super::transcribe`]), and clear failures for
//! actions that need parts the gateway does not have.
//!
//! Every command becomes a `'static` future returning an [`Outcome`]; the runner may drop it
//! at any time (interrupts), so nothing here leaves work half-done across an `.await` that
//! matters: store writes are single batches, and async webhooks are detached tasks.

use flowgate_flows::engine::{Command, Outcome};
use flowgate_flows::model::{
    ActionType, Address, CommandOption, ConversationSendOption, EmailSendOption, FetchFlowOption,
    FetchOption, MessageSendOption, ReferenceType, TranscribeOption, WebhookSendOption,
    parse_actions,
};
use futures::FutureExt;
use futures::future::BoxFuture;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::Runtime;
use super::calls::LiveCall;
use crate::model::{ActiveflowRecord, derived_id};

/// Performs `command` for the activeflow `record`, on its `call` if it runs on one.
pub(crate) fn perform(
    rt: &Runtime,
    record: &ActiveflowRecord,
    call: Option<&LiveCall>,
    command: Command,
) -> BoxFuture<'static, Outcome> {
    let kind = command.kind();
    // A stable key for this step: the same after a restart, different for every cursor
    // move. Commands with side effects outside the gateway derive their ids from it.
    let step_key = derived_id(&[
        "step",
        &record.id.to_string(),
        &record.engine.stats().executions.to_string(),
    ]);
    match command.option {
        CommandOption::Fetch(option) => fetch(
            rt.clone(),
            record.id,
            record.reference_id.unwrap_or_else(Uuid::nil),
            option,
        )
        .boxed(),
        CommandOption::FetchFlow(option) => ready(fetch_flow(rt, &option)),
        CommandOption::WebhookSend(option) => webhook_send(rt.clone(), record.id, option),
        CommandOption::MessageSend(option) => ready(message_send(rt, record, step_key, option)),
        CommandOption::ConversationSend(option) => {
            ready(conversation_send(rt, record, step_key, option))
        }
        CommandOption::Call(option) => {
            let rt = rt.clone();
            let parent = record.clone();
            async move { super::calls::dial_from_flow(&rt, &parent, step_key, option).await }
                .boxed()
        }
        CommandOption::EmailSend(option) => email_send(rt.clone(), record.id, option),
        CommandOption::AiTalk(_) | CommandOption::AiTask(_) | CommandOption::AiSummary(_) => {
            ready(unavailable(kind, "the gateway has no AI service"))
        }
        CommandOption::TranscribeRecording(option) => {
            let rt = rt.clone();
            let record = record.clone();
            async move { transcribe_recording(&rt, &record, option).await }.boxed()
        }
        CommandOption::CaseCreate(_) => ready(unavailable(kind, "the gateway has no CRM")),
        option => match call {
            Some(call) => call.perform(
                record,
                step_key,
                Command {
                    action_id: command.action_id,
                    option,
                },
            ),
            None => ready(Outcome::Failed(format!(
                "{kind}: the activeflow has no live call"
            ))),
        },
    }
}

fn ready(outcome: Outcome) -> BoxFuture<'static, Outcome> {
    futures::future::ready(outcome).boxed()
}

fn unavailable(kind: ActionType, why: &str) -> Outcome {
    Outcome::Failed(format!("{kind} is not available: {why}"))
}

/// `transcribe_recording`: as VoIPBIN, one transcription per recording of the flow's call
/// (call flows only), each sent to the `[transcribe]` engine in turn; the flow waits for
/// the text. Unlike VoIPBIN, a flow that is not on a call, or a call without finished
/// recordings, fails the action with the reason instead of doing nothing silently.
async fn transcribe_recording(
    rt: &Runtime,
    record: &ActiveflowRecord,
    option: TranscribeOption,
) -> Outcome {
    use super::transcribe::{TranscribeRequest, transcribe_variables};
    let fail = |why: String| Outcome::Failed(format!("transcribe_recording: {why}"));
    if rt.transcribe_config().endpoint.is_empty() {
        return fail(super::transcribe::TranscribeError::NotConfigured.to_string());
    }
    let call_id = match (record.reference_type, record.reference_id) {
        (ReferenceType::Call, Some(id)) => id,
        _ => {
            return fail(
                "the flow is not on a call (VoIPBIN transcribes call recordings only)".into(),
            );
        }
    };
    let call = match rt.db().calls.get(call_id) {
        Ok(Some(call)) => call,
        Ok(None) => return fail(format!("call {call_id} does not exist")),
        Err(e) => return fail(e.to_string()),
    };
    let mut finished = Vec::new();
    for id in &call.recording_ids {
        match rt.db().recordings.get(*id) {
            Ok(Some(r)) if r.status == crate::model::RecordingStatus::Ended => finished.push(*id),
            Ok(Some(_)) => {
                warn!(activeflow = %record.id, recording = %id, "still recording: not transcribed");
            }
            Ok(None) => {}
            Err(e) => return fail(e.to_string()),
        }
    }
    if finished.is_empty() {
        return fail(format!("call {call_id} has no finished recordings"));
    }
    let mut texts = Vec::new();
    let mut errors = Vec::new();
    let mut last = None;
    for recording_id in finished {
        let request = TranscribeRequest {
            activeflow_id: Some(record.id),
            on_end_flow_id: option.on_end_flow_id.non_nil(),
            reference_type: "recording",
            reference_id: recording_id,
            language: option.language.clone(),
            direction: option.direction.clone(),
            provider: option.provider.clone(),
            inherited: record.engine.variables().to_map(),
        };
        let created = match rt.transcribe_create(&request, vec![recording_id]) {
            Ok(t) => t,
            Err(e) => return fail(e.to_string()),
        };
        let Some(done) = rt.transcribe_detached(created, request.inherited).await else {
            return fail("the gateway is stopping".into());
        };
        if done.error.is_empty() {
            texts.extend(done.transcripts.iter().map(|t| t.message.clone()));
        } else {
            errors.push(done.error.clone());
        }
        last = Some(done);
    }
    if let Some(mut last) = last {
        // The variables name the last transcription (VoIPBIN sets them per transcribe, so
        // the last write wins there too); the text is every recording's, in order.
        last.transcripts = texts
            .into_iter()
            .map(|message| crate::model::Transcript {
                direction: last.direction.clone(),
                message,
                recording_id: last.reference_id,
                tm_transcript: last.tm_update,
            })
            .collect();
        for (name, value) in transcribe_variables(&last) {
            let _ = rt.signal(
                record.id,
                super::mailbox::Signal::SetVariable { name, value },
            );
        }
    }
    if errors.is_empty() {
        Outcome::Done
    } else {
        fail(errors.join("; "))
    }
}

/// `fetch`: POST/GET `{activeflow_id, reference_id}`, expect 200 and a JSON array of actions.
async fn fetch(
    rt: Runtime,
    activeflow_id: Uuid,
    reference_id: Uuid,
    option: FetchOption,
) -> Outcome {
    let method = match option.event_method.to_ascii_uppercase().as_str() {
        "" | "GET" => reqwest::Method::GET,
        "POST" => reqwest::Method::POST,
        "PUT" => reqwest::Method::PUT,
        // VoIPBIN builds the request with whatever method the flow names; validation
        // admits these four, so the runtime performs all four.
        "DELETE" => reqwest::Method::DELETE,
        other => return Outcome::Failed(format!("fetch: unsupported method {other}")),
    };
    if let Err(e) = crate::tls::Roots::get().check_url(&option.event_url) {
        return Outcome::Failed(format!("fetch {}: {e}", option.event_url));
    }
    let body = serde_json::json!({ "activeflow_id": activeflow_id, "reference_id": reference_id });
    let response = match rt
        .http()
        .request(method, &option.event_url)
        .json(&body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(format!("fetch {}: {}", option.event_url, describe(&e))),
    };
    if response.status() != reqwest::StatusCode::OK {
        return Outcome::Failed(format!(
            "fetch {}: HTTP {} (200 required)",
            option.event_url,
            response.status()
        ));
    }
    let text = match read_limited(response, rt.inner.options.max_response_bytes).await {
        Ok(t) => t,
        Err(e) => return Outcome::Failed(format!("fetch {}: {e}", option.event_url)),
    };
    match parse_actions(&text, &rt.guards().limits) {
        Ok(actions) => Outcome::Actions(actions),
        Err(e) => Outcome::Failed(format!(
            "fetch {}: the response is not a valid action list: {e}",
            option.event_url
        )),
    }
}

/// Reads a response body up to `max` bytes.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    max: usize,
) -> Result<String, String> {
    if response
        .content_length()
        .is_some_and(|n| n > u64::try_from(max).unwrap_or(u64::MAX))
    {
        return Err(format!("response larger than {max} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > max {
            return Err(format!("response larger than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| "response is not UTF-8".to_owned())
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        e.to_string()
    }
}

fn fetch_flow(rt: &Runtime, option: &FetchFlowOption) -> Outcome {
    let Some(flow_id) = option.flow_id.non_nil() else {
        return Outcome::Failed("fetch_flow: no flow_id".into());
    };
    match rt.db().flows.get(flow_id) {
        Ok(Some(flow)) => Outcome::Actions(flow.actions),
        Ok(None) => Outcome::Failed(format!("fetch_flow: flow {flow_id} does not exist")),
        Err(e) => Outcome::Failed(format!("fetch_flow: {e}")),
    }
}

/// `email_send` through the configured SMTP relay; the flow waits for the relay's answer.
fn email_send(
    rt: Runtime,
    activeflow_id: Uuid,
    option: EmailSendOption,
) -> BoxFuture<'static, Outcome> {
    async move {
        let recordings = rt
            .media_context()
            .map(|m| m.recordings_dir().to_path_buf());
        match super::email::send(
            &rt.inner.options.email,
            rt.db(),
            recordings.as_deref(),
            &option,
        )
        .await
        {
            Ok(()) => {
                info!(activeflow = %activeflow_id, recipients = option.destinations.len(), "e-mail sent");
                Outcome::Done
            }
            Err(e) => {
                warn!(activeflow = %activeflow_id, cause = %e, "email_send failed");
                Outcome::Failed(format!("email_send: {e}"))
            }
        }
    }
    .boxed()
}

fn webhook_send(
    rt: Runtime,
    activeflow_id: Uuid,
    option: WebhookSendOption,
) -> BoxFuture<'static, Outcome> {
    let method = match option.method.to_ascii_uppercase().as_str() {
        "" | "POST" => reqwest::Method::POST,
        "GET" => reqwest::Method::GET,
        "PUT" => reqwest::Method::PUT,
        "DELETE" => reqwest::Method::DELETE,
        other => {
            return ready(Outcome::Failed(format!(
                "webhook_send: unsupported method {other}"
            )));
        }
    };
    let content_type = if option.data_type.is_empty() {
        "application/json".to_owned()
    } else {
        option.data_type.clone()
    };
    let request = rt
        .http()
        .request(method, &option.uri)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(option.data.clone());
    let uri = option.uri.clone();
    let send = async move {
        match request.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("webhook_send {uri}: HTTP {}", r.status())),
            Err(e) => Err(format!("webhook_send {uri}: {}", describe(&e))),
        }
    };
    if option.sync {
        async move {
            match send.await {
                Ok(()) => Outcome::Done,
                Err(e) => Outcome::Failed(e),
            }
        }
        .boxed()
    } else {
        // VoIPBIN sends async webhooks from a goroutine: the flow goes on at once.
        rt.spawn(async move {
            if let Err(e) = send.await {
                warn!(activeflow = %activeflow_id, cause = %e, "async webhook_send failed");
            }
        });
        ready(Outcome::Done)
    }
}

fn message_send(
    rt: &Runtime,
    record: &ActiveflowRecord,
    step_key: Uuid,
    option: MessageSendOption,
) -> Outcome {
    if option.destinations.is_empty() {
        return Outcome::Failed("message_send: no destinations".into());
    }
    if option.text.is_empty() {
        return Outcome::Failed("message_send: empty text".into());
    }
    // Reply through the modem the conversation (or call) came in on, when the flow has one.
    let modem_id = record
        .engine
        .variable("voipbin.gateway.modem_id")
        .map(str::to_owned)
        .unwrap_or_default();
    queue(
        rt,
        step_key,
        record.id,
        option.source,
        option.destinations,
        option.text,
        modem_id,
    )
}

fn conversation_send(
    rt: &Runtime,
    record: &ActiveflowRecord,
    step_key: Uuid,
    option: ConversationSendOption,
) -> Outcome {
    let Some(conversation_id) = option.conversation_id.non_nil() else {
        return Outcome::Failed("conversation_send: no conversation_id".into());
    };
    let conversation = match rt.db().conversations.get(conversation_id) {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Outcome::Failed(format!(
                "conversation_send: conversation {conversation_id} does not exist"
            ));
        }
        Err(e) => return Outcome::Failed(format!("conversation_send: {e}")),
    };
    if option.text.is_empty() {
        return Outcome::Failed("conversation_send: empty text".into());
    }
    queue(
        rt,
        step_key,
        record.id,
        conversation.self_address,
        vec![conversation.peer],
        option.text,
        conversation.modem_id,
    )
}

fn queue(
    rt: &Runtime,
    id: Uuid,
    activeflow_id: Uuid,
    source: Address,
    destinations: Vec<Address>,
    text: String,
    modem_id: String,
) -> Outcome {
    match super::sms::queue_outbound(
        rt,
        id,
        Some(activeflow_id),
        source,
        destinations,
        text,
        modem_id,
    ) {
        Ok(message) => {
            debug!(activeflow = %activeflow_id, message = %message.id, "message queued");
            Outcome::Done
        }
        Err(e) => Outcome::Failed(format!("message_send: {e}")),
    }
}
