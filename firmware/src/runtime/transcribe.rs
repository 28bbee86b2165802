//! Speech to text (`transcribe_recording`, `transcribe_start`/`transcribe_stop`) through a
//! LAN recogniser behind an OpenAI-compatible `POST /v1/audio/transcriptions` endpoint
//! (whisper.cpp's server, faster-whisper servers…), configured in `[transcribe]`.
//!
//! VoIPBIN streams call audio to GCP/AWS; the gateway has no cloud, so every transcription
//! here is **batch**: a WAV (a stored recording, or the call audio captured between
//! `transcribe_start` and `transcribe_stop`/hang-up) is posted as `multipart/form-data`
//! (`file`, `model`, `language`, `response_format=json`) and the JSON `text` of the answer
//! becomes a transcript. The form body is built here ([`form_body`], pure) rather than with
//! reqwest's `multipart` feature, which would add crates to the Yocto recipe for four
//! fields.
//!
//! Results land where VoIPBIN puts them: a transcribe record (`/v1.0/transcribes`) with its
//! transcripts, the flow variables `voipbin.transcribe.{id,language,direction}`, and the
//! on-end flow. The text itself is also set as `voipbin.gateway.transcript` (VoIPBIN keeps
//! transcripts only in its API; a flow on the gateway has no other way to branch on them).
//! Every failure — no `[transcribe]`, the endpoint down, an HTTP error, a timeout, an answer
//! without text — is a failed transcribe record and a failed action with the reason; the
//! actions are "swallow" in VoIPBIN, so the flow goes on.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use uuid::Uuid;

use super::{FlowSource, Runtime, StartRequest};
use crate::model::{Recording, RecordingStatus, Transcribe, TranscribeStatus, Transcript};
use crate::store::Batch;
use flowgate_flows::model::ReferenceType;

/// `[transcribe]`: the speech-to-text engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TranscribeConfig {
    /// Base URL of the OpenAI-compatible server (`http://host:port`; the gateway appends
    /// `/v1/audio/transcriptions` unless the URL already ends with it). Empty = the
    /// `transcribe_*` actions fail with "no speech-to-text engine is configured".
    pub endpoint: String,
    /// The `model` form field (`whisper-1` for OpenAI; servers for one model ignore it).
    pub model: String,
    /// Language when the action names none (BCP47, e.g. `en-US`; only the primary subtag is
    /// sent, as the OpenAI API takes ISO-639-1).
    pub language: String,
    /// Sent as `Authorization: Bearer <key>`; empty = no header.
    pub api_key: String,
    /// Bound on one request (upload, recognition, answer), seconds.
    pub timeout_secs: u64,
    /// Largest WAV sent, MiB (OpenAI's limit is 25).
    pub max_file_mib: u64,
}

impl Default for TranscribeConfig {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            model: "whisper-1".into(),
            language: "en-US".into(),
            api_key: String::new(),
            timeout_secs: 60,
            max_file_mib: 25,
        }
    }
}

/// The path the OpenAI API serves transcriptions on.
const PATH: &str = "/v1/audio/transcriptions";

impl TranscribeConfig {
    /// Every problem with these settings as `(key, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut bad =
            |key: &str, message: String| problems.push((format!("transcribe.{key}"), message));
        if !(1..=600).contains(&self.timeout_secs) {
            bad("timeout_secs", "must be between 1 and 600 seconds".into());
        }
        if !(1..=100).contains(&self.max_file_mib) {
            bad("max_file_mib", "must be between 1 and 100 MiB".into());
        }
        if self.language.trim().is_empty() {
            bad("language", "must not be empty (e.g. \"en-US\")".into());
        }
        if self.endpoint.is_empty() {
            return problems;
        }
        let ok_scheme =
            self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://");
        if !ok_scheme || reqwest::Url::parse(&self.endpoint).is_err() {
            bad(
                "endpoint",
                format!("{:?} is not an http(s) URL", self.endpoint),
            );
        }
        if self.model.trim().is_empty() {
            bad("model", "must not be empty when an endpoint is set".into());
        }
        problems
    }

    /// The full URL requests go to.
    fn url(&self) -> String {
        let base = self.endpoint.trim_end_matches('/');
        if base.ends_with(PATH) {
            base.to_owned()
        } else {
            format!("{base}{PATH}")
        }
    }
}

/// Why a transcription failed.
#[derive(Debug, thiserror::Error)]
pub enum TranscribeError {
    /// `[transcribe] endpoint` is empty.
    #[error("no speech-to-text engine is configured ([transcribe] endpoint)")]
    NotConfigured,
    /// The recording cannot be sent.
    #[error("recording {id}: {reason}")]
    Recording {
        /// The recording.
        id: Uuid,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection, or it broke.
    #[error("{url}: {reason}")]
    Unreachable {
        /// Where.
        url: String,
        /// What happened.
        reason: String,
    },
    /// No answer within `timeout_secs`.
    #[error("{url}: no answer within {secs} s")]
    Timeout {
        /// Where.
        url: String,
        /// The bound.
        secs: u64,
    },
    /// The engine answered with an error status.
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        /// Where.
        url: String,
        /// The status.
        status: u16,
        /// The engine's error message, if it gave one.
        message: String,
    },
    /// A 200 without the JSON `text`.
    #[error("{url}: the answer has no transcript: {reason}")]
    BadAnswer {
        /// Where.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

/// The primary language subtag (`en-US` → `en`): what the OpenAI API's `language` takes.
pub fn primary_language(bcp47: &str) -> &str {
    bcp47.split(['-', '_']).next().unwrap_or(bcp47).trim()
}

/// A `multipart/form-data` body: the text `fields`, then the WAV as `file`.
pub fn form_body(boundary: &str, fields: &[(&str, &str)], file_name: &str, wav: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(wav.len() + 512);
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: audio/wav\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(wav);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

/// The transcript in a `response_format=json` answer (`{"text": …}`).
pub fn parse_answer(body: &str) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Answer {
        text: String,
    }
    serde_json::from_str::<Answer>(body)
        .map(|a| a.text.trim().to_owned())
        .map_err(|e| format!("not JSON with a \"text\" string ({e})"))
}

/// The `error.message` of an OpenAI-shaped error body, else the body's start.
fn error_message(body: &str) -> String {
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("error"))
                .and_then(|m| m.as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| body.trim().to_owned());
    message.chars().take(200).collect()
}

/// Sends one WAV to the engine and returns its text.
pub async fn recognise(
    http: &reqwest::Client,
    config: &TranscribeConfig,
    wav: Vec<u8>,
    file_name: &str,
    language: &str,
) -> Result<String, TranscribeError> {
    if config.endpoint.is_empty() {
        return Err(TranscribeError::NotConfigured);
    }
    let url = config.url();
    crate::tls::Roots::get()
        .check_url(&url)
        .map_err(|e| TranscribeError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    // A boundary that cannot occur in the fields; the WAV is binary, so a random one it is.
    let boundary = format!("flowgate-{}", Uuid::new_v4().simple());
    let body = form_body(
        &boundary,
        &[
            ("model", &config.model),
            ("language", primary_language(language)),
            ("response_format", "json"),
        ],
        file_name,
        &wav,
    );
    let mut request = http
        .post(&url)
        .timeout(Duration::from_secs(config.timeout_secs))
        .header(
            reqwest::header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body);
    if !config.api_key.is_empty() {
        request = request.bearer_auth(&config.api_key);
    }
    let failed = |e: reqwest::Error| {
        if e.is_timeout() {
            TranscribeError::Timeout {
                url: url.clone(),
                secs: config.timeout_secs,
            }
        } else if e.is_connect() {
            TranscribeError::Unreachable {
                url: url.clone(),
                reason: "connection failed".into(),
            }
        } else {
            TranscribeError::Unreachable {
                url: url.clone(),
                reason: e.to_string(),
            }
        }
    };
    let response = request.send().await.map_err(failed)?;
    let status = response.status();
    // Transcripts are small; 1 MiB bounds a misbehaving server.
    let text = super::commands::read_limited(response, 1024 * 1024)
        .await
        .map_err(|reason| TranscribeError::BadAnswer {
            url: url.clone(),
            reason,
        })?;
    if !status.is_success() {
        return Err(TranscribeError::Status {
            url,
            status: status.as_u16(),
            message: error_message(&text),
        });
    }
    parse_answer(&text).map_err(|reason| TranscribeError::BadAnswer { url, reason })
}

/// What a transcription is of, and for whom.
#[derive(Debug, Clone)]
pub(crate) struct TranscribeRequest {
    pub activeflow_id: Option<Uuid>,
    pub on_end_flow_id: Option<Uuid>,
    pub reference_type: &'static str,
    pub reference_id: Uuid,
    pub language: String,
    pub direction: String,
    pub provider: String,
    /// The starting flow's variables (inherited by the on-end flow).
    pub inherited: IndexMap<String, String>,
}

/// VoIPBIN's direction rule: `in`, `out`, `both`; anything else (or nothing) is `both`.
pub(crate) fn normalize_direction(direction: &str) -> &'static str {
    match direction {
        "in" => "in",
        "out" => "out",
        _ => "both",
    }
}

impl Runtime {
    /// The `[transcribe]` settings.
    pub(crate) fn transcribe_config(&self) -> &TranscribeConfig {
        &self.inner.options.transcribe
    }

    /// Stores a new transcribe record (`progressing`).
    pub(crate) fn transcribe_create(
        &self,
        request: &TranscribeRequest,
        recording_ids: Vec<Uuid>,
    ) -> Result<Transcribe, super::RuntimeError> {
        let now = Utc::now();
        let language = if request.language.trim().is_empty() {
            self.transcribe_config().language.clone()
        } else {
            request.language.clone()
        };
        let record = Transcribe {
            id: Uuid::now_v7(),
            activeflow_id: request.activeflow_id,
            on_end_flow_id: request.on_end_flow_id,
            reference_type: request.reference_type.into(),
            reference_id: request.reference_id,
            status: TranscribeStatus::Progressing,
            language,
            direction: normalize_direction(&request.direction).into(),
            provider: request.provider.clone(),
            recording_ids,
            transcripts: Vec::new(),
            error: String::new(),
            tm_create: now,
            tm_update: now,
        };
        self.transcribe_put(&record, "transcribe_created")?;
        Ok(record)
    }

    fn transcribe_put(&self, record: &Transcribe, event: &str) -> Result<(), super::RuntimeError> {
        let db = self.db();
        let mut batch = Batch::new();
        batch.put(&db.transcribes, record.id, record)?;
        batch.event(
            event,
            record.id,
            serde_json::to_value(record).unwrap_or_default(),
        );
        db.store.commit(batch)?;
        Ok(())
    }

    /// Sends the transcribe's recordings to the engine, stores the outcome, starts the
    /// on-end flow; returns the finished record (`done` or `failed`, with `error`).
    pub(crate) async fn transcribe_run(
        &self,
        mut record: Transcribe,
        inherited: IndexMap<String, String>,
    ) -> Transcribe {
        let mut errors = Vec::new();
        for id in record.recording_ids.clone() {
            match self.transcribe_one(id, &record.language).await {
                Ok(text) => record.transcripts.push(Transcript {
                    direction: record.direction.clone(),
                    message: text,
                    recording_id: id,
                    tm_transcript: Utc::now(),
                }),
                Err(e) => errors.push(e.to_string()),
            }
        }
        record.status = if errors.is_empty() {
            TranscribeStatus::Done
        } else {
            TranscribeStatus::Failed
        };
        record.error = errors.join("; ");
        record.tm_update = Utc::now();
        let event = if errors.is_empty() {
            "transcribe_done"
        } else {
            "transcribe_failed"
        };
        if let Err(e) = self.transcribe_put(&record, event) {
            warn!(transcribe = %record.id, cause = %e, "transcription result not stored");
        }
        if errors.is_empty() {
            info!(transcribe = %record.id, recordings = record.recording_ids.len(), "transcribed");
        } else {
            warn!(transcribe = %record.id, cause = %record.error, "transcription failed");
        }
        if let Some(flow_id) = record.on_end_flow_id {
            // As VoIPBIN: a new activeflow referencing the transcribe, inheriting the flow's
            // variables, with the transcribe's own.
            let mut request = StartRequest::new(
                FlowSource::Stored(flow_id),
                ReferenceType::Transcribe,
                Some(record.id),
            );
            request.reference_activeflow_id = record.activeflow_id;
            request.inherited = inherited;
            request.variables = transcribe_variables(&record).into_iter().collect();
            if let Err(e) = self.start(request).await {
                warn!(transcribe = %record.id, flow = %flow_id, cause = %e, "transcribe on_end_flow_id not started");
            }
        }
        record
    }

    /// [`Self::transcribe_run`] in a task of its own: a flow's command future may be dropped
    /// at any time (the caller hangs up during recognition), and the transcription must still
    /// reach its record. A shutdown abandons it; the next start marks it failed
    /// ([`Self::transcribe_recover`]). `None` when it was abandoned.
    pub(crate) async fn transcribe_detached(
        &self,
        record: Transcribe,
        inherited: IndexMap<String, String>,
    ) -> Option<Transcribe> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let rt = self.clone();
        self.spawn(async move {
            let cancel = rt.cancel_token().clone();
            tokio::select! {
                done = rt.transcribe_run(record, inherited) => {
                    let _ = tx.send(done);
                }
                () = cancel.cancelled() => {}
            }
        });
        rx.await.ok()
    }

    /// At start: transcriptions a previous run left `progressing` can never finish (their
    /// capture or request died with it); they become `failed` with the reason.
    pub(crate) fn transcribe_recover(&self) -> Result<usize, super::RuntimeError> {
        let mut n = 0;
        for entry in self.db().transcribes.iter() {
            let (_, mut record) = entry?;
            if record.status != TranscribeStatus::Progressing {
                continue;
            }
            record.status = TranscribeStatus::Failed;
            record.error = "the gateway stopped before the transcription finished".into();
            record.tm_update = Utc::now();
            self.transcribe_put(&record, "transcribe_failed")?;
            n += 1;
        }
        Ok(n)
    }

    async fn transcribe_one(&self, id: Uuid, language: &str) -> Result<String, TranscribeError> {
        let config = self.transcribe_config().clone();
        if config.endpoint.is_empty() {
            return Err(TranscribeError::NotConfigured);
        }
        let recording = self.recording_for_transcription(id)?;
        let file_name = recording.filenames.first().cloned().unwrap_or_default();
        let Some(dir) = self
            .media_context()
            .map(|m| m.recordings_dir().to_path_buf())
        else {
            return Err(TranscribeError::Recording {
                id,
                reason: "the gateway runs without a media layer (no recordings directory)".into(),
            });
        };
        let wav = read_wav(&dir, &file_name, config.max_file_mib)
            .await
            .map_err(|reason| TranscribeError::Recording { id, reason })?;
        recognise(self.http(), &config, wav, &file_name, language).await
    }

    fn recording_for_transcription(&self, id: Uuid) -> Result<Recording, TranscribeError> {
        let bad = |reason: String| TranscribeError::Recording { id, reason };
        let recording = self
            .db()
            .recordings
            .get(id)
            .map_err(|e| bad(e.to_string()))?
            .ok_or_else(|| bad("it does not exist (deleted?)".into()))?;
        if recording.status == RecordingStatus::Recording {
            return Err(bad("it is still recording".into()));
        }
        Ok(recording)
    }
}

/// Reads a recording's WAV from `dir`, refusing names that leave it and files over the cap.
async fn read_wav(dir: &Path, name: &str, max_mib: u64) -> Result<Vec<u8>, String> {
    let plain = Path::new(name).file_name().is_some_and(|f| f == name) && !name.starts_with('.');
    if !plain {
        return Err(format!("unusable file name {name:?}"));
    }
    let path = dir.join(name);
    let len = tokio::fs::metadata(&path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if len > max_mib.saturating_mul(1024 * 1024) {
        return Err(format!(
            "the file is {len} bytes, over [transcribe] max_file_mib = {max_mib}"
        ));
    }
    tokio::fs::read(&path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `voipbin.transcribe.*` (VoIPBIN's names) and the gateway's `voipbin.gateway.transcript`.
pub(crate) fn transcribe_variables(t: &Transcribe) -> Vec<(String, String)> {
    vec![
        ("voipbin.transcribe.id".into(), t.id.to_string()),
        ("voipbin.transcribe.language".into(), t.language.clone()),
        ("voipbin.transcribe.direction".into(), t.direction.clone()),
        (
            "voipbin.gateway.transcript".into(),
            t.transcripts
                .iter()
                .map(|s| s.message.as_str())
                .filter(|m| !m.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_body_has_the_fields_and_the_file() {
        let body = form_body("B", &[("model", "m"), ("language", "en")], "x.wav", b"RIFF");
        let text = String::from_utf8(body).unwrap();
        assert_eq!(
            text,
            "--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n\
             --B\r\nContent-Disposition: form-data; name=\"language\"\r\n\r\nen\r\n\
             --B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.wav\"\r\n\
             Content-Type: audio/wav\r\n\r\nRIFF\r\n--B--\r\n"
        );
    }

    #[test]
    fn answers_and_errors_are_read() {
        assert_eq!(parse_answer(r#"{"text":" one two "}"#).unwrap(), "one two");
        assert!(parse_answer(r#"{"segments":[]}"#).is_err());
        assert!(parse_answer("one two").is_err());
        assert_eq!(
            error_message(r#"{"error":{"message":"bad model","type":"x"}}"#),
            "bad model"
        );
        assert_eq!(error_message("gateway down"), "gateway down");
    }

    #[test]
    fn languages_and_directions_follow_the_apis() {
        assert_eq!(primary_language("en-US"), "en");
        assert_eq!(primary_language("de"), "de");
        assert_eq!(normalize_direction("in"), "in");
        assert_eq!(normalize_direction(""), "both");
        assert_eq!(normalize_direction("up"), "both");
    }

    #[test]
    fn config_is_validated() {
        assert!(TranscribeConfig::default().problems().is_empty());
        let c = TranscribeConfig {
            endpoint: "ftp://x".into(),
            timeout_secs: 0,
            model: String::new(),
            ..TranscribeConfig::default()
        };
        let keys: Vec<String> = c.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "transcribe.timeout_secs",
                "transcribe.endpoint",
                "transcribe.model"
            ]
        );
        let c = TranscribeConfig {
            endpoint: "http://stt.lan:8080/".into(),
            ..TranscribeConfig::default()
        };
        assert_eq!(c.url(), "http://stt.lan:8080/v1/audio/transcriptions");
        let c = TranscribeConfig {
            endpoint: "http://stt.lan/v1/audio/transcriptions".into(),
            ..TranscribeConfig::default()
        };
        assert_eq!(c.url(), "http://stt.lan/v1/audio/transcriptions");
    }
}
