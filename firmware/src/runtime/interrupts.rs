//! Call interrupts from the API: they act on a live call directly and do not move the flow
//! cursor (VoIPBIN §5.2) — `talk` over whatever the call is doing, recordings, hold, mute,
//! hang-up — plus transfers between the calls the gateway holds.

use flowgate_flows::model::Address;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Runtime, RuntimeError};
use crate::model::{Call, CallStatus, Recording};

/// `POST /calls/{id}/talk`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct TalkRequest {
    /// Text (plain or SSML).
    pub text: String,
    /// BCP 47 language (default from the config).
    pub language: String,
    /// Voice name of the TTS engine.
    pub voice_id: String,
    /// Accepted for VoIPBIN compatibility; the gateway has one local TTS engine.
    pub provider: String,
}

/// `POST /calls/{id}/recording_start` (VoIPBIN's fields).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct RecordingRequest {
    /// Only `wav`.
    pub format: String,
    /// Seconds of silence that end the recording (0 = never).
    pub end_of_silence: i64,
    /// `none`, `any`, `*` or `#`.
    pub end_of_key: String,
    /// Longest recording, seconds (0 = unlimited).
    pub duration: i64,
    /// Beep before recording.
    pub beep_start: bool,
    /// Flow started when the recording ends.
    pub on_end_flow_id: Option<Uuid>,
}

/// Which direction `mute` silences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MuteDirection {
    /// Both ways (also what `""` means).
    #[default]
    #[serde(alias = "")]
    Both,
    /// What the caller says does not reach the gateway (recordings, DTMF detection).
    In,
    /// The caller hears nothing from the gateway.
    Out,
}

/// `POST /transfers` transfer types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransferType {
    /// The caller is held (music, muted) while the transferer talks to the transferee;
    /// completes when the transferer hangs up.
    Attended,
    /// The transferer is dropped at once and the caller hears ringback.
    Blind,
}

/// `POST /transfers`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TransferRequest {
    /// Attended or blind.
    pub transfer_type: TransferType,
    /// The call that asks for the transfer.
    pub transferer_call_id: Uuid,
    /// Where to transfer to.
    #[schema(value_type = Vec<Object>)]
    pub transferee_addresses: Vec<Address>,
}

/// A transfer in progress or done.
///
/// On the gateway a transfer is a network transfer (explicit call transfer, `AT+CHLD=4`)
/// between two calls of one modem: `transferer_call_id` names the gateway's call to hand
/// over; it is put on hold, the transferee is dialled on the same modem, and the network
/// joins the two so the gateway drops out of both. Blind: joined as soon as the transferee
/// rings (the caller hears ringback). Attended: joined once the transferee answers (the
/// caller waits on hold). If the transferee cannot be reached or the network refuses, the
/// caller is taken back off hold and its flow continues.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transfer {
    /// Id.
    pub id: Uuid,
    /// Type.
    pub transfer_type: TransferType,
    /// The call handed over.
    pub transferer_call_id: Uuid,
    /// The call to the transferee.
    pub transferee_call_id: Option<Uuid>,
    /// The new outbound call(s).
    pub call_ids: Vec<Uuid>,
    /// `transferred` (the network joined the calls) or `pending` (attended: waiting for the
    /// transferee to answer; the calls' records show the outcome).
    pub status: String,
}

impl Runtime {
    /// The live call `id`, or why there is none.
    fn live_call(&self, id: Uuid) -> Result<super::calls::LiveCall, RuntimeError> {
        match self.live_call_by_id(id) {
            Some(c) => Ok(c),
            None => match self.db().calls.get(id)? {
                Some(call) if call.status == CallStatus::Hangup => Err(RuntimeError::CallOver(id)),
                Some(_) => Err(RuntimeError::CallOver(id)),
                None => Err(RuntimeError::CallNotFound(id)),
            },
        }
    }

    /// Speaks `request.text` over the call without moving its flow.
    pub async fn call_talk(&self, id: Uuid, request: TalkRequest) -> Result<(), RuntimeError> {
        let call = self.live_call(id)?;
        call.interrupt_talk(request).await
    }

    /// Starts a recording on the call.
    pub async fn call_recording_start(
        &self,
        id: Uuid,
        request: RecordingRequest,
    ) -> Result<Recording, RuntimeError> {
        let call = self.live_call(id)?;
        call.start_recording(request, None).await
    }

    /// Stops the call's recording.
    pub async fn call_recording_stop(&self, id: Uuid) -> Result<Recording, RuntimeError> {
        let call = self.live_call(id)?;
        call.stop_recording().await
    }

    /// Whether the call is up for a media stream (`404` / `409` before a WebSocket upgrade).
    pub fn call_media_stream_check(&self, id: Uuid) -> Result<(), RuntimeError> {
        self.live_call(id).map(|_| ())
    }

    /// Starts a WebSocket media stream on the call (answering it if needed, like the other
    /// media interrupts): the ends carry 8 kHz frames both ways until they are dropped or
    /// the call ends.
    pub async fn call_media_stream(
        &self,
        id: Uuid,
    ) -> Result<crate::media::MediaStreamEnds, RuntimeError> {
        let call = self.live_call(id)?;
        call.media_stream().await
    }

    /// Puts the call on hold (music on hold) or takes it off.
    pub async fn call_hold(&self, id: Uuid, on: bool) -> Result<Call, RuntimeError> {
        let call = self.live_call(id)?;
        call.set_hold(on).await
    }

    /// Mutes or unmutes a direction of the call.
    pub async fn call_mute(
        &self,
        id: Uuid,
        direction: MuteDirection,
        on: bool,
    ) -> Result<Call, RuntimeError> {
        let call = self.live_call(id)?;
        call.set_mute(direction, on).await
    }

    /// Transfers between calls the gateway holds.
    pub async fn transfer(&self, request: TransferRequest) -> Result<Transfer, RuntimeError> {
        let call = self.live_call(request.transferer_call_id)?;
        call.transfer(request).await
    }
}
