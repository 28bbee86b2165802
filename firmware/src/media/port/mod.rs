//! Audio ports: where a call's frames come from and go to.
//!
//! Every transport is an [`AudioPort`]: read one 20 ms frame of the caller's audio,
//! write one frame back. The port owns its pacing (see [`crate::media::clock`]):
//! `read_frame` returns about every 20 ms whatever the device does, and reports a
//! frame as [`FrameStatus::Missing`] instead of blocking when the far end stalls,
//! so the session keeps ticking (timers, commands, recordings) on its own clock.
//!
//! | transport | port | paced by |
//! |---|---|---|
//! | modem voice tty (Huawei, Quectel TTY, SIMCom), simulator | [`SerialPcmPort`] | the far end (one frame in, one frame out); own clock during stalls and floods |
//! | ALSA (USB audio, sound card, I2S codec) | [`AlsaPort`] | the device; own clock for `file`/`null` PCMs |
//! | in-process (tests, benches, software peers) | [`ChannelPort`] | whoever feeds it |

mod alsa;
mod channel;
mod serial;

use std::sync::Arc;
use std::time::Duration;

use flowgate_board::modem::AudioTransport;

pub use self::alsa::{AlsaOptions, AlsaPort};
pub use self::channel::{ChannelPeer, ChannelPort};
pub use self::serial::{SerialOptions, SerialPcmPort};
use super::clock::Clock;
use super::error::{MediaError, Result};

/// What [`AudioPort::read_frame`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameStatus {
    /// A frame of caller audio.
    Received,
    /// No frame came in time (the far end stalled); the buffer holds silence.
    Missing,
}

/// A bidirectional stream of 20 ms mono `i16` frames at [`sample_rate`](Self::sample_rate).
pub trait AudioPort: Send {
    /// 8000 or 16000.
    fn sample_rate(&self) -> u32;

    /// The device, for logs and errors.
    fn device(&self) -> &str;

    /// Fills `frame` (one frame long) with the next frame of caller audio.
    ///
    /// # Errors
    /// The device failed or vanished; the session ends with `PortFailed`.
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<FrameStatus>;

    /// Sends one frame towards the caller. Must not block for long: a port that
    /// cannot take the frame now queues or drops it.
    ///
    /// # Errors
    /// The device failed or vanished.
    fn write_frame(&mut self, frame: &[i16]) -> Result<()>;
}

/// Port settings that are not part of the modem profile.
#[derive(Debug, Clone)]
pub struct PortOptions {
    /// How late a frame may be before the session ticks without it.
    pub stall_tolerance: Duration,
    /// ALSA buffer geometry.
    pub alsa: AlsaOptions,
}

impl Default for PortOptions {
    fn default() -> Self {
        PortOptions {
            stall_tolerance: Duration::from_millis(60),
            alsa: AlsaOptions::default(),
        }
    }
}

/// Opens the port for a modem's voice transport. Blocking: call it from a
/// blocking thread (the session does).
///
/// # Errors
/// [`MediaError::NoAudioPath`] for `None`; device errors naming the device.
pub fn open_transport(
    transport: &AudioTransport,
    options: &PortOptions,
    clock: Arc<dyn Clock>,
) -> Result<Box<dyn AudioPort>> {
    match transport {
        AudioTransport::SerialPcm {
            device,
            sample_rate,
        } => {
            let opts = SerialOptions {
                sample_rate: *sample_rate,
                stall_tolerance: options.stall_tolerance,
            };
            Ok(Box::new(SerialPcmPort::open(device, &opts, clock)?))
        }
        AudioTransport::Alsa {
            playback,
            capture,
            sample_rate,
            ..
        } => {
            let opts = AlsaOptions {
                sample_rate: *sample_rate,
                ..options.alsa.clone()
            };
            Ok(Box::new(AlsaPort::open(playback, capture, &opts, clock)?))
        }
        AudioTransport::None => Err(MediaError::NoAudioPath),
    }
}
