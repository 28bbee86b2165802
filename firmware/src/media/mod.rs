//! Call audio: ports, TTS, playback, recording, per-call media sessions.
//!
//! The runtime never touches samples. For each call with audio it opens a
//! [`CallMedia`] session on the modem's [`AudioTransport`](flowgate_board::modem::AudioTransport)
//! and drives it with commands; the session reports [`MediaEvent`]s.
//!
//! ```no_run
//! # async fn demo(transport: flowgate_board::modem::AudioTransport) -> Result<(), flowgate::media::MediaError> {
//! use flowgate::media::{CallMedia, Layer, MediaContext, MediaSettings, Source};
//! let ctx = MediaContext::new(MediaSettings::default())?;
//! let (media, mut events) = CallMedia::open(&transport, &ctx, "call-1").await?;
//! let mut prompt = media.play(Layer::Flow, Source::Tts {
//!     text: "Press 1 for sales".into(), language: Some("en-US".into()), voice: None,
//! })?;
//! let outcome = prompt.wait().await;
//! media.close();
//! # Ok(()) }
//! ```
//!
//! # Parts
//!
//! | module | role |
//! |---|---|
//! | [`port`] | serial PCM, ALSA and in-process ports; pacing |
//! | `core` | the sans-IO per-frame state machine (layers, hold, mute, DTMF, recordings) |
//! | `session` | [`CallMedia`]: the handle and the blocking media thread per call |
//! | `context` | [`MediaContext`]: settings, TTS + cache, downloads + cache, MOH, counters |
//! | `tts` | espeak-ng voices (BCP 47 → voice) and runs |
//! | `fetch` | `play` URLs: http(s) downloads and confined local files |
//! | `record` | recordings: end on key / silence / duration, WAV writing |
//! | `dtmf` | merging in-band and modem digits (one press, one digit) |
//! | [`audio`] | decoding (WAV, MP3, FLAC, OGG/Vorbis), WAV writing, frame sizes |
//!
//! The pure DSP (DTMF detector and generator, tones, resampler, levels, mixing)
//! is the `flowgate-dsp` crate.

pub mod audio;
mod cache;
pub mod clock;
mod context;
mod core;
mod dtmf;
mod error;
mod fetch;
pub mod port;
mod record;
mod render;
mod session;
mod tts;
mod types;

pub use audio::{read_audio_bytes, read_audio_file, wav_bytes, write_wav};
pub use clock::{Clock, ManualClock, SystemClock};
pub use context::{MediaContext, MediaSettings, MediaStats};
pub use dtmf::DEFAULT_WINDOW as DTMF_MERGE_WINDOW;
pub use error::{MediaError, Result};
pub use port::{AudioPort, ChannelPeer, ChannelPort, FrameStatus, PortOptions};
pub use record::{CHECKPOINT_SECS, KEY_DELAY_MS, KEY_GUARD_MS};
pub use render::generated_music_on_hold;
pub use session::{CallMedia, MediaEvents, Playback};
pub use types::{
    DigitSource, EndOfKey, Layer, MediaEvent, MuteDirection, PlaybackId, PlaybackOutcome,
    RecordDirection, RecordOptions, RecordingEnd, RecordingInfo, Source, StopCause,
};
