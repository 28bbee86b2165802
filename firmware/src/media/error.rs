//! The one error type of the media layer, with the context (device, path, URL,
//! voice) a person needs to fix the problem without reading the code.

use std::path::PathBuf;

use thiserror::Error;

/// Why a media operation failed.
#[derive(Debug, Error)]
pub enum MediaError {
    /// The leg has no audio path (a data-only modem, transport `none`): calls can be
    /// answered and signalled digits received, but audio actions cannot run.
    #[error("this call has no audio path: {0}")]
    NoAudioPath(String),
    /// The audio device does not exist.
    #[error("audio device {device} not found: {detail}")]
    DeviceMissing {
        /// Device name or path.
        device: String,
        /// What the system said.
        detail: String,
    },
    /// The audio device is in use by another program (or another call).
    #[error("audio device {device} is busy: {detail}")]
    DeviceBusy {
        /// Device name or path.
        device: String,
        /// What the system said.
        detail: String,
    },
    /// The device cannot be set up the way calls need it.
    #[error("audio device {device} cannot be configured ({setting}): {detail}")]
    DeviceConfig {
        /// Device name or path.
        device: String,
        /// What was being set (rate, channels, period, ...).
        setting: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// Reading or writing the device failed.
    #[error("audio device {device}: {op} failed: {detail}")]
    Device {
        /// Device name or path.
        device: String,
        /// `read`, `write`, `recover`, ...
        op: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// A file operation failed.
    #[error("{op} {path}: {source}", path = path.display())]
    Io {
        /// What was being done (`create`, `read`, `rename`, ...).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An audio file or download is not audio we can decode.
    #[error("cannot decode audio from {what}: {reason}")]
    Decode {
        /// The file path or URL.
        what: String,
        /// Why.
        reason: String,
    },
    /// The audio is longer than the configured limit.
    #[error("audio from {what} is longer than the limit of {limit_secs} s")]
    TooLong {
        /// The file path or URL.
        what: String,
        /// The limit in seconds.
        limit_secs: u64,
    },
    /// A `play` URL that is neither http(s), `file://` nor a path.
    #[error("unsupported media URL {url:?}: {reason}")]
    UnsupportedUrl {
        /// The URL as given.
        url: String,
        /// Why it is refused.
        reason: String,
    },
    /// A local file outside the configured sound directories.
    #[error("{path} is outside the sound directories ({allowed}); copy the file there or add its directory to `media.sound_dirs`", path = path.display())]
    PathNotAllowed {
        /// The path as resolved.
        path: PathBuf,
        /// The directories that are allowed.
        allowed: String,
    },
    /// Downloading a `play` URL failed.
    #[error("fetching {url}: {reason}")]
    Fetch {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A download is larger than the configured cap.
    #[error("{url} is larger than the limit of {limit} bytes")]
    FetchTooLarge {
        /// The URL.
        url: String,
        /// The cap in bytes.
        limit: u64,
    },
    /// No espeak-ng voice for this language.
    #[error(
        "no TTS voice for language {language:?} (espeak-ng has none for it or its base language)"
    )]
    UnknownLanguage {
        /// The BCP 47 tag as given.
        language: String,
    },
    /// The TTS engine cannot be run at all.
    #[error("TTS engine {command:?} is not usable: {reason}")]
    TtsUnavailable {
        /// The configured command.
        command: String,
        /// Why.
        reason: String,
    },
    /// Synthesis of one prompt failed.
    #[error("TTS with voice {voice:?} failed: {reason}")]
    Tts {
        /// The espeak-ng voice.
        voice: String,
        /// Why.
        reason: String,
    },
    /// A request option is out of range.
    #[error("invalid media option `{field}`: {reason}")]
    InvalidOption {
        /// The option.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The DSP refused a setting (tone zone, digit, rate).
    #[error(transparent)]
    Dsp(#[from] flowgate_dsp::DspError),
    /// The call's media session has ended.
    #[error("the call's media session is closed")]
    SessionClosed,
    /// A media function that needs the tokio runtime was called outside it.
    #[error("the media layer must be used from within a tokio runtime")]
    NoRuntime,
    /// A background task of the media layer died (a bug: it is logged).
    #[error("media worker failed: {0}")]
    Worker(String),
}

impl MediaError {
    /// `Io` with context.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        MediaError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Result alias of the media layer.
pub type Result<T, E = MediaError> = std::result::Result<T, E>;

impl From<flowgate_line::PortError> for MediaError {
    fn from(e: flowgate_line::PortError) -> Self {
        match e {
            flowgate_line::PortError::Failed { device, op, detail } => {
                MediaError::Device { device, op, detail }
            }
            // Only reaches callers that used a port after its call ended.
            flowgate_line::PortError::Closed { .. } => MediaError::SessionClosed,
        }
    }
}

impl From<MediaError> for flowgate_line::PortError {
    fn from(e: MediaError) -> Self {
        match e {
            MediaError::Device { device, op, detail } => Self::Failed { device, op, detail },
            other => Self::Failed {
                device: String::new(),
                op: "io",
                detail: other.to_string(),
            },
        }
    }
}
