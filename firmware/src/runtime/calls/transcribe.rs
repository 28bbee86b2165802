//! `transcribe_start` / `transcribe_stop` on a live call. VoIPBIN streams the call to a
//! cloud recogniser; the gateway records the asked-for direction of the call's audio to a
//! recording of its own while the transcription is active, and sends that segment to the
//! `[transcribe]` engine when `transcribe_stop` runs (the flow waits for the text) or when
//! the recording ends by itself — hang-up, the recording cap — (then in the background:
//! the text reaches the transcribe record, the API and the on-end flow). Batch, not real
//! time: nothing is recognised while the call goes on.
//!
//! The capture is a recording (`/v1.0/recordings`, reference the call) but not one of the
//! call's `recording_ids`: a later `transcribe_recording` would otherwise send it twice,
//! and a `recording_start` of the flow can run alongside it.

use flowgate_flows::engine::Outcome;
use flowgate_flows::model::TranscribeOption;
use indexmap::IndexMap;
use tracing::info;
use uuid::Uuid;

use super::LiveCall;
use crate::media::RecordDirection;
use crate::model::Transcribe;
use crate::runtime::mailbox::Signal;
use crate::runtime::transcribe::{
    TranscribeError, TranscribeRequest, normalize_direction, transcribe_variables,
};

/// A transcription running on the call.
pub(super) struct LiveTranscribe {
    record: Transcribe,
    recording_id: Uuid,
    inherited: IndexMap<String, String>,
}

impl LiveCall {
    /// `transcribe_start`: begins capturing the call's audio for a transcription.
    pub(super) async fn transcribe_start(
        &self,
        option: TranscribeOption,
        inherited: IndexMap<String, String>,
    ) -> Outcome {
        let fail = |why: String| Outcome::Failed(format!("transcribe_start: {why}"));
        let rt = self.inner.rt.clone();
        if rt.transcribe_config().endpoint.is_empty() {
            return fail(TranscribeError::NotConfigured.to_string());
        }
        if let Some(t) = self.inner.transcribing.lock().as_ref() {
            return fail(format!(
                "the call is already transcribing ({})",
                t.record.id
            ));
        }
        let direction = match normalize_direction(&option.direction) {
            "in" => RecordDirection::In,
            "out" => RecordDirection::Out,
            _ => RecordDirection::Both,
        };
        let activeflow = self.activeflow();
        let recording = match self.start_capture(direction, activeflow).await {
            Ok(r) => r,
            Err(e) => return fail(e.to_string()),
        };
        let request = TranscribeRequest {
            activeflow_id: activeflow,
            on_end_flow_id: option.on_end_flow_id.non_nil(),
            reference_type: "call",
            reference_id: self.inner.id,
            language: option.language,
            direction: option.direction,
            provider: option.provider,
            inherited,
        };
        let record = match rt.transcribe_create(&request, vec![recording.id]) {
            Ok(r) => r,
            Err(e) => {
                if let Some(m) = self.open_media_session() {
                    let _ = m.stop_recording(recording.id);
                }
                return fail(e.to_string());
            }
        };
        info!(call = %self.inner.id, transcribe = %record.id, recording = %recording.id, direction = %record.direction, "transcription started");
        for (name, value) in transcribe_variables(&record) {
            self.to_flow(Signal::SetVariable { name, value });
        }
        *self.inner.transcribing.lock() = Some(LiveTranscribe {
            record,
            recording_id: recording.id,
            inherited: request.inherited,
        });
        Outcome::Done
    }

    /// `transcribe_stop`: ends the capture, sends it, and waits for the text.
    pub(super) async fn transcribe_stop(&self) -> Outcome {
        let Some(live) = self.inner.transcribing.lock().take() else {
            return Outcome::Failed("transcribe_stop: the call is not transcribing".into());
        };
        // Wait until the file is complete (the session finalizes it and reports the end).
        let finished = self.inner.recording_done.notified();
        if let Some(m) = self.open_media_session()
            && m.stop_recording(live.recording_id).is_ok()
        {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(3), finished).await;
        }
        let Some(done) = self
            .inner
            .rt
            .transcribe_detached(live.record, live.inherited)
            .await
        else {
            return Outcome::Failed("transcribe_stop: the gateway is stopping".into());
        };
        for (name, value) in transcribe_variables(&done) {
            self.to_flow(Signal::SetVariable { name, value });
        }
        if done.error.is_empty() {
            Outcome::Done
        } else {
            Outcome::Failed(format!("transcribe_stop: {}", done.error))
        }
    }

    /// A recording ended: if it was a transcription's capture that `transcribe_stop` did
    /// not end (hang-up, the recording cap), send it now, in the background.
    pub(super) fn transcribe_capture_ended(&self, recording_id: Uuid) {
        let live = {
            let mut slot = self.inner.transcribing.lock();
            if slot
                .as_ref()
                .is_some_and(|t| t.recording_id == recording_id)
            {
                slot.take()
            } else {
                None
            }
        };
        if let Some(live) = live {
            let rt = self.inner.rt.clone();
            rt.clone().spawn(async move {
                rt.transcribe_detached(live.record, live.inherited).await;
            });
        }
    }
}
