//! The values the runtime exchanges with a call's media session: what to play,
//! how to record, and the events that come back.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use flowgate_dsp::ToneKind;
use uuid::Uuid;

use super::error::MediaError;

/// Who reported a DTMF digit first: the line's signalling or the in-band detector.
pub use flowgate_line::DtmfSource;

/// The two outgoing audio layers, mixed together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// What the flow does: `talk`, `play`, `beep`, `digits_send`, `echo`. Items
    /// play one after the other in the order they were started.
    Flow,
    /// API interrupts (`POST /calls/{id}/talk`): mixed over the flow layer, which is
    /// lowered by 6 dB while an interrupt plays so the interrupt is understood.
    Interrupt,
}

/// Something to play.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Text to speech with espeak-ng. `text` starting with `<speak` is SSML.
    Tts {
        /// The text (plain or SSML).
        text: String,
        /// BCP 47 language (`en-US`); `None` = the configured default.
        language: Option<String>,
        /// A voice id; honoured when it names an espeak-ng voice (`en-us+f3`,
        /// `gmw/en-US`), otherwise the language decides.
        voice: Option<String>,
    },
    /// http(s) URLs, `file://` URLs or paths inside the sound directories, played
    /// one after the other.
    Urls(Vec<String>),
    /// The 1 kHz, 250 ms beep.
    Beep,
    /// A call-progress tone of the configured zone for `duration`.
    Tone {
        /// Dial, busy, ringback or congestion.
        kind: ToneKind,
        /// How long (tones repeat their cadence until then).
        duration: Duration,
    },
    /// DTMF digits in-band (`digits_send`).
    Digits {
        /// `0-9 * # A-D`.
        digits: String,
        /// Tone length per digit (VoIPBIN `duration`, 100–1000 ms).
        tone: Duration,
        /// Pause between digits (VoIPBIN `interval`).
        gap: Duration,
    },
    /// Silence for `duration`.
    Silence(Duration),
    /// The caller hears themselves for `duration`.
    Echo(Duration),
    /// Samples already at the call's rate.
    Samples(Arc<[i16]>),
}

/// Identifies one playback within a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlaybackId(pub u64);

impl std::fmt::Display for PlaybackId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "playback-{}", self.0)
    }
}

/// Who stopped a playback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// [`CallMedia::stop`](super::CallMedia::stop) or [`Playback::stop`](super::Playback::stop).
    Command,
    /// [`CallMedia::stop_layer`](super::CallMedia::stop_layer).
    LayerCleared,
    /// Its [`Playback`](super::Playback) handle was dropped without `detach`.
    HandleDropped,
    /// The session closed (hang-up) or its port failed.
    Closed,
}

/// How a playback ended.
#[derive(Debug, Clone)]
pub enum PlaybackOutcome {
    /// It played to its end.
    Finished,
    /// It was stopped before its end.
    Stopped(StopCause),
    /// Its audio could not be produced (TTS, download, decoding).
    Failed(Arc<MediaError>),
}

impl PlaybackOutcome {
    /// True for [`PlaybackOutcome::Finished`].
    #[must_use]
    pub fn is_finished(&self) -> bool {
        matches!(self, PlaybackOutcome::Finished)
    }
}

/// Which direction `mute` silences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MuteDirection {
    /// The caller's audio into the gateway: echo and recordings get silence.
    /// (DTMF detection still listens, so an IVR keeps working.)
    In,
    /// The gateway's audio to the caller: the caller hears silence.
    Out,
    /// Both.
    Both,
}

/// Which audio a recording takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordDirection {
    /// The caller (voicemail). The default.
    #[default]
    In,
    /// What the gateway sends.
    Out,
    /// Both, mixed.
    Both,
}

/// The key that ends a recording (`end_of_key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndOfKey {
    /// Keys do not end it (the tones are recorded).
    #[default]
    None,
    /// Any key ends it.
    Any,
    /// This key ends it; other keys are recorded.
    Digit(char),
}

impl EndOfKey {
    /// Parses VoIPBIN's values: `""`/`none`, `any`, or one DTMF key.
    ///
    /// # Errors
    /// [`MediaError::InvalidOption`] for anything else.
    pub fn parse(s: &str) -> Result<Self, MediaError> {
        match s.trim() {
            "" | "none" => Ok(EndOfKey::None),
            "any" => Ok(EndOfKey::Any),
            k => {
                let mut chars = k.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if flowgate_dsp::DtmfDigit::from_char(c).is_some() => {
                        Ok(EndOfKey::Digit(c.to_ascii_uppercase()))
                    }
                    _ => Err(MediaError::InvalidOption {
                        field: "end_of_key",
                        reason: format!("{k:?} is not none, any or a DTMF key"),
                    }),
                }
            }
        }
    }

    pub(crate) fn ends_on(self, digit: char) -> bool {
        match self {
            EndOfKey::None => false,
            EndOfKey::Any => true,
            EndOfKey::Digit(d) => d == digit,
        }
    }
}

/// Options of a recording (`recording_start`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordOptions {
    /// Use this id (the file is `<data>/recordings/<id>.wav`); `None` = a new v7 UUID.
    pub id: Option<Uuid>,
    /// Seconds of silence that end it; `None` or zero = off.
    pub end_of_silence: Option<Duration>,
    /// Key that ends it (the key itself is not recorded).
    pub end_of_key: EndOfKey,
    /// Longest recording; `None` or zero = up to the configured cap.
    pub duration: Option<Duration>,
    /// Beep to the caller before recording starts (the beep is not recorded).
    pub beep_start: bool,
    /// Which audio.
    pub direction: RecordDirection,
}

/// A recording that started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingInfo {
    /// Its id.
    pub id: Uuid,
    /// The WAV file being written.
    pub path: PathBuf,
}

/// Why a recording ended.
#[derive(Debug, Clone)]
pub enum RecordingEnd {
    /// [`CallMedia::stop_recording`](super::CallMedia::stop_recording).
    Stopped,
    /// The `end_of_key` key was pressed.
    Key(char),
    /// `end_of_silence` seconds of silence.
    Silence,
    /// `duration` (or the configured cap) reached.
    Duration,
    /// The session closed (hang-up).
    Hangup,
    /// Writing the file failed; what was written before is kept.
    Failed(Arc<MediaError>),
}

/// What a session reports.
#[derive(Debug, Clone)]
pub enum MediaEvent {
    /// A playback's first sample went out.
    PlaybackStarted {
        /// The playback.
        id: PlaybackId,
        /// Its layer.
        layer: Layer,
    },
    /// A playback ended (also delivered to its [`Playback`](super::Playback) handle).
    PlaybackFinished {
        /// The playback.
        id: PlaybackId,
        /// Its layer.
        layer: Layer,
        /// How.
        outcome: PlaybackOutcome,
    },
    /// The caller pressed a key (in-band and modem reports merged: one per press).
    Dtmf {
        /// `0-9 * # A-D`.
        digit: char,
        /// Which report came first.
        source: DtmfSource,
    },
    /// A digit the line signalled that the audio did not carry, while the call is
    /// bridged: relay it to the peer (out of band, or in-band where the peer has no
    /// signalling).
    RelayDigit {
        /// The digit.
        digit: char,
    },
    /// A recording's audio starts now (after its beep, if any).
    RecordingStarted {
        /// The recording.
        id: Uuid,
    },
    /// A recording ended and its file is complete.
    RecordingFinished {
        /// The recording.
        id: Uuid,
        /// The WAV file.
        path: PathBuf,
        /// Audio in the file.
        duration: Duration,
        /// Why it ended.
        reason: RecordingEnd,
    },
    /// The audio port failed; the session has ended. Not sent when the far end closed the
    /// port (`PortError::Closed`, a hang-up): then `Closed` alone ends the events.
    PortFailed {
        /// Why.
        error: Arc<MediaError>,
    },
    /// The session has ended: every playback and recording is finished.
    Closed,
}
