//! `/v1.0/messages`: send SMS (queued, stored before the answer, sent by the SMS sender with
//! retries) and list what was sent and received.

use axum::Json;
use axum::extract::State;
use flowgate_flows::model::Address;
use serde::Deserialize;
use uuid::Uuid;

use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, Problem};
use super::schema::AddressDoc;
use super::{ApiState, PageQuery, listing};
use crate::model::Message;

listing!(
    /// A page of messages.
    MessageList,
    Message
);

/// `POST /v1.0/messages`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(super) struct CreateMessage {
    /// Our side (the number to send from; it picks the modem).
    #[schema(value_type = AddressDoc)]
    source: Address,
    /// Recipients (type `tel` or empty).
    #[schema(value_type = Vec<AddressDoc>)]
    destinations: Vec<Address>,
    /// The text (split into parts when long).
    text: String,
}

/// Lists messages (both directions), oldest first.
#[utoipa::path(get, path = "/v1.0/messages", tag = "messages", params(PageQuery),
    responses((status = 200, description = "A page of messages", body = MessageList)))]
pub(super) async fn list(
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<MessageList>, ApiError> {
    let (result, next_page_token) = q.page(&state.runtime().db().messages, |m| m)?;
    Ok(Json(MessageList {
        result,
        next_page_token,
    }))
}

/// Queues an SMS; answers once it is stored. Its status moves from `queued` to `sent`,
/// `delivered` or `failed` (`message_updated` events).
#[utoipa::path(post, path = "/v1.0/messages", tag = "messages", request_body = CreateMessage,
    responses(
        (status = 200, description = "The queued message", body = Message),
        (status = 503, description = "`SHUTTING_DOWN`", body = super::error::ErrorBody),
    ))]
pub(super) async fn create(
    State(state): State<ApiState>,
    ApiJson(body): ApiJson<CreateMessage>,
) -> Result<Json<Message>, ApiError> {
    let mut problems = Vec::new();
    if body.destinations.is_empty() {
        problems.push(Problem {
            path: "destinations".into(),
            message: "name at least one recipient".into(),
        });
    }
    for (i, d) in body.destinations.iter().enumerate() {
        if d.target.trim().is_empty() || !(d.kind.is_empty() || d.kind == "tel") {
            problems.push(Problem {
                path: format!("destinations[{i}]"),
                message: format!(
                    "an SMS goes to a `tel` address with a target, not type {:?} target {:?}",
                    d.kind, d.target
                ),
            });
        }
    }
    if body.text.is_empty() {
        problems.push(Problem {
            path: "text".into(),
            message: "the text must not be empty".into(),
        });
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(
            "INVALID_BODY",
            "the message cannot be sent",
            problems,
        ));
    }
    let message = state
        .runtime()
        .send_message(body.source, body.destinations, body.text)?;
    state.runtime().db().store.flush().await?;
    Ok(Json(message))
}

/// One message with the delivery state of each recipient.
#[utoipa::path(get, path = "/v1.0/messages/{id}", tag = "messages", params(("id" = Uuid, Path, description = "Message id")),
    responses((status = 200, description = "The message", body = Message)))]
pub(super) async fn get_one(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Message>, ApiError> {
    let message = state
        .runtime()
        .db()
        .messages
        .get(id)?
        .ok_or_else(|| ApiError::not_found(format_args!("message {id}")))?;
    Ok(Json(message))
}
