//! The media side of a live call: the call's media session, the audio commands of a
//! flow, recordings, and the API's audio interrupts.
//!
//! The session is opened on the leg's audio (`Line::audio`) when the line reports it
//! ready (`LegEvent::AudioReady`), or by the first audio command after answering if that
//! event is late. Digits: with a session open, signalled digits go through the session,
//! which merges them with in-band detection so one key press reaches the flow once;
//! without one they go to the flow directly. While the call is bridged, signalled digits
//! the audio did not carry are relayed to the peer.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use flowgate_flows::engine::Outcome;
use flowgate_flows::model::{RecordingStartOption, ReferenceType};
use indexmap::IndexMap;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::LiveCall;
use super::record::{update_call, update_call_with};
use crate::media::{
    CallMedia, EndOfKey, Layer, MediaEvent, MediaEvents, MuteDirection as MediaMute,
    PlaybackOutcome, RecordOptions, RecordingEnd, Source,
};
use crate::model::{Call, Recording, RecordingStatus};
use crate::runtime::mailbox::Signal;
use crate::runtime::{
    FlowSource, MuteDirection, RecordingRequest, RuntimeError, StartRequest, TalkRequest,
};
use crate::store::Batch;

/// How long an audio command waits for the session after the call is answered before it
/// opens the voice port itself (the driver's `AudioReady` normally comes first).
const AUDIO_READY_GRACE: Duration = Duration::from_secs(2);

/// The call's media session, as far as it got.
#[derive(Clone)]
pub(super) enum MediaSlot {
    /// Not open yet.
    Waiting,
    /// Open.
    Open(Arc<CallMedia>),
    /// No audio for this call, and why.
    Unavailable(String),
}

/// What to do when a recording ends.
#[derive(Clone, Default)]
pub(super) struct RecordingOrigin {
    on_end_flow_id: Option<Uuid>,
    /// The starting flow's variables (inherited by the on-end flow, as in VoIPBIN).
    variables: IndexMap<String, String>,
    activeflow: Option<Uuid>,
}

fn media_error(kind: &str, e: impl std::fmt::Display) -> Outcome {
    Outcome::Failed(format!("{kind}: {e}"))
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms.max(0)).unwrap_or(0))
}

impl LiveCall {
    /// The line made the leg's audio available: open the session.
    pub(super) async fn on_audio_ready(&self) {
        if let Err(e) = self.open_media().await {
            warn!(call = %self.inner.id, cause = %e, "no media session for the call");
        }
    }

    /// Opens the session once (concurrent callers wait for the same result).
    async fn open_media(&self) -> Result<Arc<CallMedia>, RuntimeError> {
        let _opening = self.inner.media_open.lock().await;
        match self.inner.media.borrow().clone() {
            MediaSlot::Open(m) => return Ok(m),
            MediaSlot::Unavailable(why) => return Err(RuntimeError::NoAudio(self.inner.id, why)),
            MediaSlot::Waiting => {}
        }
        let Some(ctx) = self.inner.rt.media_context() else {
            let why = "the gateway runs without a media layer".to_owned();
            self.inner
                .media
                .send_replace(MediaSlot::Unavailable(why.clone()));
            return Err(RuntimeError::NoAudio(self.inner.id, why));
        };
        let audio = self.line().audio(self.inner.id);
        match CallMedia::open(audio, &ctx, &self.inner.id.to_string()).await {
            Ok((media, events)) => {
                let media = Arc::new(media);
                self.inner
                    .media
                    .send_replace(MediaSlot::Open(Arc::clone(&media)));
                // The call may have ended while the port opened: its hang-up found no
                // session to close, and this one would hold the voice port until the call's
                // last handle goes, keeping the next call on the modem off it.
                if self.is_ended() {
                    media.close();
                }
                let this = self.clone();
                self.inner
                    .rt
                    .spawn(async move { this.media_events(events).await });
                debug!(call = %self.inner.id, "media session open");
                Ok(media)
            }
            Err(e) => {
                let why = e.to_string();
                self.inner
                    .media
                    .send_replace(MediaSlot::Unavailable(why.clone()));
                Err(RuntimeError::NoAudio(self.inner.id, why))
            }
        }
    }

    /// The session, answering the call first if needed (VoIPBIN's `talk` answers).
    pub(super) async fn media(&self) -> Result<Arc<CallMedia>, RuntimeError> {
        if let MediaSlot::Unavailable(why) = self.inner.media.borrow().clone() {
            return Err(RuntimeError::NoAudio(self.inner.id, why));
        }
        self.answer().await?;
        self.media_unanswered().await
    }

    /// The session, without answering (an outgoing leg's early media).
    pub(super) async fn media_unanswered(&self) -> Result<Arc<CallMedia>, RuntimeError> {
        if let MediaSlot::Unavailable(why) = self.inner.media.borrow().clone() {
            return Err(RuntimeError::NoAudio(self.inner.id, why));
        }
        let mut slot = self.inner.media.subscribe();
        let ready = tokio::time::timeout(
            AUDIO_READY_GRACE,
            slot.wait_for(|s| !matches!(s, MediaSlot::Waiting)),
        )
        .await;
        match ready.ok().and_then(Result::ok).map(|s| s.clone()) {
            Some(MediaSlot::Open(m)) => Ok(m),
            Some(MediaSlot::Unavailable(why)) => Err(RuntimeError::NoAudio(self.inner.id, why)),
            // Boxed for the reason `answer` boxes: opening is a large future that a
            // long-running action (echo, play) would otherwise keep the size of.
            _ => Box::pin(self.open_media()).await,
        }
    }

    /// The session, if it is open.
    pub(super) fn open_media_session(&self) -> Option<Arc<CallMedia>> {
        match self.inner.media.borrow().clone() {
            MediaSlot::Open(m) => Some(m),
            _ => None,
        }
    }

    /// Closes the session (hang-up); recordings are finalized by the session.
    pub(super) fn close_media(&self) {
        if let Some(m) = self.open_media_session() {
            m.close();
        }
    }

    /// A digit the line signalled: through the session (merged with in-band detection), or
    /// straight to the flow when there is no session.
    pub(super) fn route_signalled_dtmf(&self, digit: char) {
        if let Some(m) = self.open_media_session()
            && m.signalled_dtmf(digit).is_ok()
        {
            return;
        }
        self.to_flow(Signal::Dtmf(digit));
    }

    /// Relays a digit to the call this one is bridged to: out of band where its line can,
    /// in-band otherwise.
    fn relay_to_peer(&self, digit: char) {
        let Some(peer) = self.inner.live.lock().peer.clone() else {
            return;
        };
        self.relay_digit_to(peer, digit);
    }

    /// Sends `digit` to `peer`: out of band where its line can, in-band otherwise.
    pub(super) fn relay_digit_to(&self, peer: LiveCall, digit: char) {
        let rt = self.inner.rt.clone();
        rt.spawn(async move {
            let digits = digit.to_string();
            if peer.capabilities().dtmf_signalled
                && peer.line().send_dtmf(peer.id(), &digits).await.is_ok()
            {
                return;
            }
            if let Some(media) = peer.open_media_session() {
                let tone = Source::Digits {
                    digits,
                    tone: Duration::from_millis(100),
                    gap: Duration::ZERO,
                };
                if let Ok(p) = media.play(Layer::Interrupt, tone) {
                    p.detach();
                }
            }
        });
    }

    async fn media_events(&self, mut events: MediaEvents) {
        while let Some(event) = events.recv().await {
            match event {
                MediaEvent::Dtmf { digit, source } => {
                    debug!(call = %self.inner.id, %digit, ?source, "dtmf");
                    self.conference_digit(digit, source);
                    self.to_flow(Signal::Dtmf(digit));
                }
                MediaEvent::RelayDigit { digit } => {
                    if !self.conference_relay(digit) {
                        self.relay_to_peer(digit);
                    }
                }
                MediaEvent::RecordingFinished {
                    id,
                    duration,
                    reason,
                    ..
                } => {
                    if let Err(e) = self.finish_recording(id, duration, &reason).await {
                        warn!(call = %self.inner.id, recording = %id, cause = %e, "recording end not stored");
                    }
                }
                MediaEvent::PortFailed { error } => {
                    warn!(call = %self.inner.id, cause = %error, "voice port failed");
                    self.inner
                        .media
                        .send_replace(MediaSlot::Unavailable(format!(
                            "the voice port failed: {error}"
                        )));
                }
                MediaEvent::Closed => break,
                MediaEvent::PlaybackStarted { .. }
                | MediaEvent::PlaybackFinished { .. }
                | MediaEvent::RecordingStarted { .. } => {}
            }
        }
    }

    /// Plays `source` on the flow layer and waits for it (`async` detaches it instead).
    pub(super) async fn play_and_wait(&self, kind: &str, source: Source, detach: bool) -> Outcome {
        let media = match self.media().await {
            Ok(m) => m,
            Err(e) => return media_error(kind, e),
        };
        let mut playback = match media.play(Layer::Flow, source) {
            Ok(p) => p,
            Err(e) => return media_error(kind, e),
        };
        if detach {
            playback.detach();
            return Outcome::Done;
        }
        // Dropping `playback` (an interrupt dropped this future) stops it at the next frame.
        match playback.wait().await {
            PlaybackOutcome::Finished | PlaybackOutcome::Stopped(_) => Outcome::Done,
            PlaybackOutcome::Failed(e) => media_error(kind, e),
        }
    }

    /// `echo`: the caller hears themselves for `duration`.
    pub(super) async fn echo(&self, duration_ms: i64) -> Outcome {
        let duration = if duration_ms > 0 {
            millis(duration_ms)
        } else {
            Duration::from_secs(180)
        };
        let media = match self.media().await {
            Ok(m) => m,
            Err(e) => return media_error("echo", e),
        };
        match media.echo(duration) {
            Ok(mut p) => match p.wait().await {
                PlaybackOutcome::Failed(e) => media_error("echo", e),
                _ => Outcome::Done,
            },
            Err(e) => media_error("echo", e),
        }
    }

    /// `digits_send`: the line's out-of-band digits (what GSM networks carry reliably);
    /// in-band tones on the voice path when the line has none or refuses.
    pub(super) async fn send_digits(&self, digits: &str, tone_ms: i64, gap_ms: i64) -> Outcome {
        let tone = if tone_ms > 0 { tone_ms } else { 100 };
        let signalled = if self.capabilities().dtmf_signalled {
            self.line()
                .send_dtmf(self.inner.id, digits)
                .await
                .map_err(|e| e.to_string())
        } else {
            Err("the line has no out-of-band digits".to_owned())
        };
        match signalled {
            Ok(()) => {
                // VoIPBIN moves on after duration·n + interval·(n−1).
                let n = i64::try_from(digits.chars().count()).unwrap_or(i64::MAX);
                let total = tone
                    .saturating_mul(n)
                    .saturating_add(gap_ms.max(0).saturating_mul((n - 1).max(0)));
                tokio::time::sleep(millis(total)).await;
                Outcome::Done
            }
            Err(line_error) => {
                debug!(call = %self.inner.id, cause = %line_error, "no out-of-band digits; sending in-band");
                let source = Source::Digits {
                    digits: digits.to_owned(),
                    tone: millis(tone),
                    gap: millis(gap_ms),
                };
                match self.play_and_wait("digits_send", source, false).await {
                    Outcome::Failed(e) => {
                        Outcome::Failed(format!("digits_send: line: {line_error}; in-band: {e}"))
                    }
                    other => other,
                }
            }
        }
    }

    /// `amd`: answering-machine detection on the answered party's audio (Asterisk AMD's
    /// defaults). As in VoIPBIN, a machine with `machine_handle: hangup` hangs the call up
    /// with reason `amd`; anything else lets the flow go on, at once with `async`, else
    /// after the verdict. The gateway also sets `voipbin.gateway.amd_status`
    /// (`HUMAN`/`MACHINE`/`NOTSURE`) and `voipbin.gateway.amd_cause` (Asterisk's causes),
    /// which VoIPBIN does not expose.
    pub(super) async fn amd(&self, option: flowgate_flows::model::AmdOption) -> Outcome {
        let media = match self.media().await {
            Ok(m) => m,
            Err(e) => return Outcome::Failed(format!("amd: {e}")),
        };
        let config = flowgate_dsp::AmdConfig {
            sample_rate: media.rate(),
            ..flowgate_dsp::AmdConfig::default()
        };
        let verdict = match media.detect_machine(config) {
            Ok(rx) => rx,
            Err(e) => return Outcome::Failed(format!("amd: {e}")),
        };
        let hangup_on_machine = option.machine_handle == "hangup";
        let this = self.clone();
        let work = async move {
            let Ok(result) = verdict.await else {
                return Outcome::Failed("amd: the call's audio ended before a verdict".into());
            };
            tracing::info!(
                call = %this.inner.id,
                status = result.status.as_str(),
                cause = result.cause.as_str(),
                words = result.words,
                speech_ms = result.speech_ms,
                "answering-machine detection"
            );
            for (name, value) in [
                ("voipbin.gateway.amd_status", result.status.as_str()),
                ("voipbin.gateway.amd_cause", result.cause.as_str()),
            ] {
                this.to_flow(Signal::SetVariable {
                    name: name.into(),
                    value: value.into(),
                });
            }
            if hangup_on_machine && result.status == flowgate_dsp::AmdStatus::Machine {
                this.hangup("amd").await;
                this.close_media();
                return Outcome::Hangup;
            }
            Outcome::Done
        };
        if option.r#async {
            self.inner.rt.spawn(async move {
                work.await;
            });
            Outcome::Done
        } else {
            work.await
        }
    }

    /// `recording_start` from a flow: starts it and sets `voipbin.recording.*`.
    pub(super) async fn flow_recording_start(
        &self,
        option: RecordingStartOption,
        variables: IndexMap<String, String>,
    ) -> Outcome {
        let activeflow = self.inner.live.lock().activeflow;
        let request = RecordingRequest {
            format: option.format,
            end_of_silence: option.end_of_silence,
            end_of_key: option.end_of_key,
            duration: option.duration,
            beep_start: option.beep_start,
            on_end_flow_id: option.on_end_flow_id.non_nil(),
        };
        match self
            .start_recording_with(
                request,
                RecordingOrigin {
                    on_end_flow_id: None,
                    variables,
                    activeflow,
                },
            )
            .await
        {
            Ok(recording) => {
                // Queued before this command completes, so the next action already sees them.
                for (name, value) in recording_variables(&recording) {
                    self.to_flow(Signal::SetVariable { name, value });
                }
                Outcome::Done
            }
            Err(e) => Outcome::Failed(format!("recording_start: {e}")),
        }
    }

    /// Starts a recording (API: no originating flow).
    pub(crate) async fn start_recording(
        &self,
        request: RecordingRequest,
        _activeflow: Option<Uuid>,
    ) -> Result<Recording, RuntimeError> {
        self.start_recording_with(request, RecordingOrigin::default())
            .await
    }

    async fn start_recording_with(
        &self,
        request: RecordingRequest,
        mut origin: RecordingOrigin,
    ) -> Result<Recording, RuntimeError> {
        if !request.format.is_empty() && request.format != "wav" {
            return Err(RuntimeError::Invalid(format!(
                "recording format {:?}: only wav is supported",
                request.format
            )));
        }
        let end_of_key = EndOfKey::parse(&request.end_of_key)
            .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        if request.end_of_silence < 0 || request.duration < 0 {
            return Err(RuntimeError::Invalid(
                "end_of_silence and duration must not be negative".into(),
            ));
        }
        if let Some(current) = self.db_call()?.and_then(|c| c.recording_id) {
            return Err(RuntimeError::Invalid(format!(
                "the call is already recording ({current})"
            )));
        }
        origin.on_end_flow_id = request.on_end_flow_id.filter(|u| !u.is_nil());
        let media = self.media().await?;
        let secs = |s: i64| (s > 0).then(|| Duration::from_secs(u64::try_from(s).unwrap_or(0)));
        let id = Uuid::now_v7();
        let info = media
            .start_recording(RecordOptions {
                id: Some(id),
                end_of_silence: secs(request.end_of_silence),
                end_of_key,
                duration: secs(request.duration),
                beep_start: request.beep_start,
                ..RecordOptions::default()
            })
            .await
            .map_err(|e| RuntimeError::NoAudio(self.inner.id, e.to_string()))?;
        let file = info
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let now = Utc::now();
        let recording = Recording {
            id,
            reference_type: "call".into(),
            reference_id: self.inner.id,
            activeflow_id: origin.activeflow,
            status: RecordingStatus::Recording,
            format: "wav".into(),
            recording_name: id.to_string(),
            filenames: vec![file],
            duration_ms: 0,
            end_reason: String::new(),
            on_end_flow_id: origin.on_end_flow_id,
            tm_start: now,
            tm_end: None,
        };
        self.inner.recordings.lock().insert(id, origin);
        let db = self.inner.rt.db();
        let mut batch = Batch::new();
        batch.put(&db.recordings, id, &recording)?;
        batch.event(
            "recording_created",
            id,
            serde_json::to_value(&recording).unwrap_or_default(),
        );
        update_call_with(&self.inner.rt, self.inner.id, batch, |c| {
            c.recording_id = Some(id);
            c.recording_ids.push(id);
        })?;
        info!(call = %self.inner.id, recording = %id, "recording started");
        Ok(recording)
    }

    /// Starts recording `direction` of the call for a transcription: a stored recording of
    /// the call, but not the call's current one nor one of its `recording_ids` (see
    /// `transcribe`), so it needs no free recording slot.
    pub(super) async fn start_capture(
        &self,
        direction: crate::media::RecordDirection,
        activeflow: Option<Uuid>,
    ) -> Result<Recording, RuntimeError> {
        let media = self.media().await?;
        let id = Uuid::now_v7();
        let info = media
            .start_recording(RecordOptions {
                id: Some(id),
                direction,
                ..RecordOptions::default()
            })
            .await
            .map_err(|e| RuntimeError::NoAudio(self.inner.id, e.to_string()))?;
        let recording = Recording {
            id,
            reference_type: "call".into(),
            reference_id: self.inner.id,
            activeflow_id: activeflow,
            status: RecordingStatus::Recording,
            format: "wav".into(),
            recording_name: id.to_string(),
            filenames: info
                .path
                .file_name()
                .map(|f| vec![f.to_string_lossy().into_owned()])
                .unwrap_or_default(),
            duration_ms: 0,
            end_reason: String::new(),
            on_end_flow_id: None,
            tm_start: Utc::now(),
            tm_end: None,
        };
        self.inner.recordings.lock().insert(
            id,
            RecordingOrigin {
                activeflow,
                ..RecordingOrigin::default()
            },
        );
        let db = self.inner.rt.db();
        let mut batch = Batch::new();
        batch.put(&db.recordings, id, &recording)?;
        batch.event(
            "recording_created",
            id,
            serde_json::to_value(&recording).unwrap_or_default(),
        );
        if let Err(e) = db.store.commit(batch) {
            let _ = media.stop_recording(id);
            return Err(e.into());
        }
        Ok(recording)
    }

    /// Stops the current recording and waits (briefly) until its file is complete.
    pub(crate) async fn stop_recording(&self) -> Result<Recording, RuntimeError> {
        let Some(id) = self.db_call()?.and_then(|c| c.recording_id) else {
            return Err(RuntimeError::Invalid("the call is not recording".into()));
        };
        let finished = self.inner.recording_done.notified();
        if let Some(m) = self.open_media_session() {
            m.stop_recording(id)
                .map_err(|e| RuntimeError::NoAudio(self.inner.id, e.to_string()))?;
        }
        let _ = tokio::time::timeout(Duration::from_secs(3), finished).await;
        self.inner
            .rt
            .db()
            .recordings
            .get(id)?
            .ok_or(RuntimeError::Invalid(format!("recording {id} is gone")))
    }

    async fn finish_recording(
        &self,
        id: Uuid,
        duration: Duration,
        reason: &RecordingEnd,
    ) -> Result<(), RuntimeError> {
        let end_reason = match reason {
            RecordingEnd::Stopped => "stop".to_owned(),
            RecordingEnd::Key(k) => format!("key:{k}"),
            RecordingEnd::Silence => "silence".into(),
            RecordingEnd::Duration => "duration".into(),
            RecordingEnd::Hangup => "hangup".into(),
            RecordingEnd::Failed(e) => format!("failed: {e}"),
        };
        let db = self.inner.rt.db();
        let Some(mut recording) = db.recordings.get(id)? else {
            return Ok(());
        };
        recording.status = RecordingStatus::Ended;
        recording.duration_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        recording.end_reason = end_reason;
        recording.tm_end = Some(Utc::now());
        let mut batch = Batch::new();
        batch.put(&db.recordings, id, &recording)?;
        batch.event(
            "recording_updated",
            id,
            serde_json::to_value(&recording).unwrap_or_default(),
        );
        // One commit: a client that sees the recording ended can start the next one at once
        // (two commits let it in between, to "the call is already recording").
        update_call_with(&self.inner.rt, self.inner.id, batch, |c| {
            if c.recording_id == Some(id) {
                c.recording_id = None;
            }
        })?;
        self.inner.recording_done.notify_waiters();
        info!(call = %self.inner.id, recording = %id, ms = recording.duration_ms, reason = %recording.end_reason, "recording ended");

        self.transcribe_capture_ended(id);
        let origin = self.inner.recordings.lock().remove(&id).unwrap_or_default();
        if let Some(flow_id) = recording.on_end_flow_id {
            // VoIPBIN: the on-end flow runs with reference_type "" and the variables of the
            // flow that started the recording, plus the recording's own.
            let mut request =
                StartRequest::new(FlowSource::Stored(flow_id), ReferenceType::None, None);
            request.reference_activeflow_id = origin.activeflow;
            request.inherited = origin.variables;
            request.variables = recording_variables(&recording).into_iter().collect();
            if let Err(e) = self.inner.rt.start(request).await {
                warn!(recording = %id, flow = %flow_id, cause = %e, "recording on_end_flow_id not started");
            }
        }
        Ok(())
    }

    fn db_call(&self) -> Result<Option<Call>, RuntimeError> {
        Ok(self.inner.rt.db().calls.get(self.inner.id)?)
    }

    /// API `talk`: speak over whatever the call does, without moving its flow.
    pub(crate) async fn interrupt_talk(&self, request: TalkRequest) -> Result<(), RuntimeError> {
        if request.text.trim().is_empty() {
            return Err(RuntimeError::Invalid("talk: text is empty".into()));
        }
        let media = self.media().await?;
        let source = Source::Tts {
            text: request.text,
            language: Some(request.language).filter(|l| !l.is_empty()),
            voice: Some(request.voice_id).filter(|v| !v.is_empty()),
        };
        let playback = media
            .play(Layer::Interrupt, source)
            .map_err(|e| RuntimeError::NoAudio(self.inner.id, e.to_string()))?;
        playback.detach();
        Ok(())
    }

    /// Hold: music on hold to the caller (both layers pause), or back.
    pub(crate) async fn set_hold(&self, on: bool) -> Result<Call, RuntimeError> {
        let media = self.media().await?;
        media
            .hold(on)
            .await
            .map_err(|e| RuntimeError::NoAudio(self.inner.id, e.to_string()))?;
        update_call(&self.inner.rt, self.inner.id, |c| c.hold = on)?
            .ok_or(RuntimeError::CallNotFound(self.inner.id))
    }

    /// Mute a direction, or unmute it.
    pub(crate) async fn set_mute(
        &self,
        direction: MuteDirection,
        on: bool,
    ) -> Result<Call, RuntimeError> {
        let media = self.media().await?;
        let d = match direction {
            MuteDirection::Both => MediaMute::Both,
            MuteDirection::In => MediaMute::In,
            MuteDirection::Out => MediaMute::Out,
        };
        media
            .mute(d, on)
            .map_err(|e| RuntimeError::NoAudio(self.inner.id, e.to_string()))?;
        let name = match direction {
            MuteDirection::Both => "both",
            MuteDirection::In => "in",
            MuteDirection::Out => "out",
        };
        update_call(&self.inner.rt, self.inner.id, |c| {
            c.mute_direction = mute_state(&c.mute_direction, name, on);
        })?
        .ok_or(RuntimeError::CallNotFound(self.inner.id))
    }
}

/// The muted direction after muting/unmuting `name` on top of `current`.
fn mute_state(current: &str, name: &str, on: bool) -> String {
    let (mut muted_in, mut muted_out) = match current {
        "both" => (true, true),
        "in" => (true, false),
        "out" => (false, true),
        _ => (false, false),
    };
    let (touch_in, touch_out) = match name {
        "in" => (true, false),
        "out" => (false, true),
        _ => (true, true),
    };
    if touch_in {
        muted_in = on;
    }
    if touch_out {
        muted_out = on;
    }
    match (muted_in, muted_out) {
        (true, true) => "both",
        (true, false) => "in",
        (false, true) => "out",
        (false, false) => "",
    }
    .to_owned()
}

/// `voipbin.recording.*` for a recording.
pub(super) fn recording_variables(r: &Recording) -> Vec<(String, String)> {
    vec![
        ("voipbin.recording.id".into(), r.id.to_string()),
        (
            "voipbin.recording.reference_type".into(),
            r.reference_type.clone(),
        ),
        (
            "voipbin.recording.reference_id".into(),
            r.reference_id.to_string(),
        ),
        ("voipbin.recording.format".into(), r.format.clone()),
        (
            "voipbin.recording.recording_name".into(),
            r.recording_name.clone(),
        ),
        ("voipbin.recording.filenames".into(), r.filenames.join(",")),
    ]
}

#[cfg(test)]
mod tests {
    use super::mute_state;

    #[test]
    fn mute_directions_combine() {
        assert_eq!(mute_state("", "in", true), "in");
        assert_eq!(mute_state("in", "out", true), "both");
        assert_eq!(mute_state("both", "in", false), "out");
        assert_eq!(mute_state("out", "both", false), "");
    }
}
