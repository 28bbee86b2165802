//! Call audio: ports, TTS, playback, recording, per-call media sessions.
//!
//! The runtime never touches samples. For each call with audio it opens a
//! [`CallMedia`] session on the leg's audio ([`LegAudio`](flowgate_line::LegAudio): a device
//! or a port the line made) and drives it with commands; the session reports
//! [`MediaEvent`]s.
//!
//! ```no_run
//! # async fn demo(transport: flowgate_line::AudioTransport) -> Result<(), flowgate::media::MediaError> {
//! use flowgate::media::{CallMedia, Layer, MediaContext, MediaSettings, Source};
//! let ctx = MediaContext::new(MediaSettings::default())?;
//! let audio = flowgate_line::LegAudio::from_transport(transport);
//! let (media, mut events) = CallMedia::open(audio, &ctx, "call-1").await?;
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
//! | `session` | [`CallMedia`]: the handle, and the frame loop of a session |
//! | `frameloop` | the shared frame loop: a few threads running the sessions of ports without a clock (RTP) |
//! | `context` | [`MediaContext`]: settings, TTS + cache, downloads + cache, MOH, counters |
//! | `tts` | espeak-ng voices (BCP 47 → voice) and runs |
//! | `fetch` | `play` URLs: http(s) downloads and confined local files |
//! | `record` | recordings: end on key / silence / duration, WAV writing |
//! | `dtmf` | merging in-band and signalled digits (one press, one digit) |
//! | [`bridge`] | joining two calls' audio frame by frame |
//! | [`conference`] | N calls mixed: each hears the others, join/leave tones, mute |
//! | [`confrec`] | the conference recording: the mix of everybody as one WAV |
//! | [`external`] | external media: a call's audio as G.711 RTP to a LAN host, and back; the same taps for WebSocket media streams |
//! | [`wsmedia`] | the WebSocket media stream's wire formats (`rtp`, `sln`, `audiosocket`), sans-IO |
//! | [`audio`] | decoding (WAV, MP3, FLAC, OGG/Vorbis), WAV writing, frame sizes |
//! | `sanitize` | container checks against allocation bombs before symphonia |
//!
//! The pure DSP (DTMF detector and generator, tones, resampler, levels, mixing)
//! is the `flowgate-dsp` crate.

pub mod audio;
pub mod bridge;
mod cache;
pub mod clock;
pub mod conference;
pub mod confrec;
mod context;
mod core;
mod dtmf;
mod error;
pub mod external;
mod fetch;
mod frameloop;
pub mod port;
mod record;
mod render;
mod sanitize;
mod session;
mod tts;
mod types;
pub mod wsmedia;

pub use audio::{read_audio_bytes, read_audio_file, wav_bytes, write_wav};
pub use bridge::{BridgeEnd, bridge_pair};
pub use clock::{Clock, ManualClock, SystemClock};
pub use conference::{Conference, ConferenceEnd, ConferenceTap, Participant};
pub use confrec::{ConferenceRecording, ConferenceRecordingDone};
pub use context::{MediaContext, MediaSettings, MediaStats};
pub use dtmf::DEFAULT_WINDOW as DTMF_MERGE_WINDOW;
pub use error::{MediaError, Result};
pub use external::{ExternalMediaInfo, ExternalMediaOptions, MediaStreamEnds, TapDirection};
pub use port::{AudioPort, ChannelPeer, ChannelPort, FrameStatus, Pacing, PortOptions};
pub use record::{CHECKPOINT_SECS, KEY_DELAY_MS, KEY_GUARD_MS};
pub use render::generated_music_on_hold;
pub use session::{CallMedia, MediaEvents, Playback};
pub use types::{
    DtmfSource, EndOfKey, Layer, MediaEvent, MuteDirection, PlaybackId, PlaybackOutcome,
    RecordDirection, RecordOptions, RecordingEnd, RecordingInfo, Source, StopCause,
};

/// The per-frame core, exposed for the criterion benchmarks (`benches/media.rs`)
/// only: not part of the API the runtime uses.
#[doc(hidden)]
pub mod bench {
    use std::sync::Arc;
    use std::time::Duration;

    use super::core::{Command, MediaCore};
    use super::record::{RecordSink, Recorder};
    use super::render::{Looping, Pcm};
    use super::{Layer, PlaybackId, RecordOptions, Result};

    struct NullSink;

    impl RecordSink for NullSink {
        fn write(&mut self, _samples: &[i16]) -> Result<()> {
            Ok(())
        }
        fn finish(&mut self) -> Result<()> {
            Ok(())
        }
    }

    /// A [`MediaCore`] driven directly, without a port or a thread.
    pub struct CoreBench {
        core: MediaCore,
        rate: u32,
        next: u64,
    }

    impl CoreBench {
        /// A core at `rate`.
        ///
        /// # Errors
        /// An unsupported rate.
        pub fn new(rate: u32) -> Result<Self> {
            Ok(CoreBench {
                core: MediaCore::new(rate, Duration::from_millis(300))?,
                rate,
                next: 1,
            })
        }

        /// Plays `samples` on `layer`, looping forever (so the benchmark measures
        /// a steady state).
        pub fn play_loop(&mut self, layer: Layer, samples: Arc<[i16]>) {
            let id = PlaybackId(self.next);
            self.next += 1;
            let render: Box<dyn super::render::Render> =
                Box::new(LoopRender(Looping::new(samples)));
            self.core.apply(Command::Enqueue {
                id,
                layer,
                render: Some(render),
            });
        }

        /// Plays `samples` once on `layer`.
        pub fn play_once(&mut self, layer: Layer, samples: Arc<[i16]>) {
            let id = PlaybackId(self.next);
            self.next += 1;
            self.core.apply(Command::Enqueue {
                id,
                layer,
                render: Some(Box::new(Pcm::new(vec![samples]))),
            });
        }

        /// Starts a recording of the caller whose samples are discarded.
        ///
        /// # Errors
        /// Never in practice (a beep-less recorder).
        pub fn record(&mut self) -> Result<()> {
            let r = Recorder::new(
                uuid::Uuid::nil(),
                "bench.wav".into(),
                &RecordOptions {
                    end_of_silence: Some(Duration::from_secs(3600)),
                    ..RecordOptions::default()
                },
                Box::new(NullSink),
                self.rate,
                Duration::from_secs(u64::from(u32::MAX)),
            )?;
            self.core.apply(Command::Record(Box::new(r)));
            Ok(())
        }

        /// Joins the peer at the other end of a bridge.
        pub fn bridge(&mut self, end: super::BridgeEnd) {
            self.core.apply(Command::Bridge(Some(Box::new(end))));
        }

        /// One frame; events are dropped.
        pub fn tick(&mut self, input: &[i16], output: &mut [i16]) {
            self.core.tick(input, output);
            self.core.drain_events().for_each(drop);
        }
    }

    struct LoopRender(Looping);

    impl super::render::Render for LoopRender {
        fn render(&mut self, _input: &[i16], out: &mut [i16]) -> usize {
            self.0.fill(out);
            out.len()
        }
    }
}
