//! A leg's audio: the port every transport's audio is read and written through, and how a
//! line tells the media layer where a leg's audio is.
//!
//! Device ports are blocking on purpose: the media layer runs one thread per such call that
//! reads a frame, computes the frame to send and writes it, and a port owns its pacing (it
//! returns about every 20 ms whatever its device does). A blocking frame loop is simpler to
//! reason about than a waker per frame, and it is what ALSA and ttys offer anyway.
//!
//! A port whose far end has no clock of its own (RTP: packets arrive whenever the network
//! delivers them) can instead say [`Pacing::Shared`]: the media layer then drives it from
//! a loop shared by many calls, on that loop's 20 ms clock, through the non-blocking
//! [`AudioPort::read_frame_now`]. A thread per such call costs a wake-up and a timed wait
//! per frame, which dominated the CPU of a gateway with hundreds of SIP calls.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What [`AudioPort::read_frame`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameStatus {
    /// A frame of the far end's audio.
    Received,
    /// No frame came in time (the far end stalled); the buffer holds silence.
    Missing,
}

/// Who keeps a port's 20 ms pace (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pacing {
    /// `read_frame` blocks until the next frame is due: the port owns the clock and gets a
    /// thread of its own.
    #[default]
    Blocking,
    /// The port never needs to wait: a loop shared by many calls calls
    /// [`AudioPort::read_frame_now`] once per 20 ms tick of its own clock.
    Shared,
}

/// Why a port's read or write did not give or take a frame: the port is done either way,
/// but only [`PortError::Failed`] is a fault. A far end that ends the call on purpose (a
/// SIP BYE closes the RTP stream, an analog phone goes on-hook) ends the port too, and
/// reporting that as a failure would warn an admin twice per normal call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The device failed or vanished.
    #[error("audio device {device}: {op} failed: {detail}")]
    Failed {
        /// Device name or path.
        device: String,
        /// `read`, `write`, `recover`, ...
        op: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// The far end ended the stream as a call ends (end of stream): the call's audio is
    /// over and nothing went wrong.
    #[error("audio device {device}: closed: {detail}")]
    Closed {
        /// Device name or path.
        device: String,
        /// Who closed it (`RTP stream closed`, `the analog call is over`).
        detail: String,
    },
}

impl PortError {
    /// The device the error is about.
    #[must_use]
    pub fn device(&self) -> &str {
        match self {
            PortError::Failed { device, .. } | PortError::Closed { device, .. } => device,
        }
    }

    /// Whether the far end closed the stream (a normal end, not a fault).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        matches!(self, PortError::Closed { .. })
    }
}

/// A bidirectional stream of 20 ms mono `i16` frames at [`sample_rate`](Self::sample_rate).
pub trait AudioPort: Send {
    /// 8000 or 16000.
    fn sample_rate(&self) -> u32;

    /// The device, for logs and errors.
    fn device(&self) -> &str;

    /// Fills `frame` (one frame long) with the next frame of the far end's audio. Returns
    /// about every 20 ms whatever the far end does: when it stalls, the port reports
    /// [`FrameStatus::Missing`] on its own clock instead of blocking.
    ///
    /// # Errors
    /// [`PortError::Failed`]: the device failed or vanished; [`PortError::Closed`]: the far
    /// end ended the stream. The session ends either way.
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<FrameStatus, PortError>;

    /// Who keeps the pace; [`Pacing::Blocking`] unless the port implements
    /// [`read_frame_now`](Self::read_frame_now) without blocking.
    fn pacing(&self) -> Pacing {
        Pacing::Blocking
    }

    /// For a [`Pacing::Shared`] port: fills `frame` with the frame due now from what has
    /// arrived so far, without waiting. The default is the blocking
    /// [`read_frame`](Self::read_frame), right for every port that keeps its own pace.
    ///
    /// # Errors
    /// As [`read_frame`](Self::read_frame).
    fn read_frame_now(&mut self, frame: &mut [i16]) -> Result<FrameStatus, PortError> {
        self.read_frame(frame)
    }

    /// Takes the next frame the far end has *already* sent (held by the port or the kernel)
    /// without waiting and without touching the port's pacing; `Ok(false)` when no whole
    /// frame is there. The media layer drains these at hang-up so the end of the caller's
    /// audio reaches the recordings: a port paced to real time can hold a backlog (a far
    /// end that stalled, then sent in a burst) that would otherwise be thrown away with
    /// the port. The default holds nothing back.
    ///
    /// # Errors
    /// The device failed or vanished.
    fn read_buffered(&mut self, frame: &mut [i16]) -> Result<bool, PortError> {
        let _ = frame;
        Ok(false)
    }

    /// Sends one frame towards the far end. Must not block for long: a port that cannot
    /// take the frame now queues or drops it.
    ///
    /// # Errors
    /// As [`read_frame`](Self::read_frame).
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), PortError>;
}

/// Where an ALSA device comes from (for status pages and docs; it changes nothing in how
/// the port is driven).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum AlsaOrigin {
    /// A USB Audio Class card (a modem in UAC mode, `hw:Android`).
    #[default]
    UsbAudio,
    /// A sound card wired to a modem's analog MIC/SPK pins.
    Analog,
    /// An I2S/PCM codec on the board (analog line ports).
    Codec,
}

/// A device the media layer opens for a leg's audio (configuration, kept in board profiles
/// and modem configs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AudioTransport {
    /// Raw PCM on a tty: 8 kHz (or `sample_rate`) s16le mono in 20 ms frames, both
    /// directions (modem voice ports, the simulator).
    SerialPcm {
        /// The tty (`/dev/ttyUSB1`, a stable udev name, or the simulator's pty).
        device: PathBuf,
        /// Sample rate.
        #[serde(default = "default_rate")]
        sample_rate: u32,
    },
    /// An ALSA device pair.
    Alsa {
        /// Playback device (towards the far end).
        playback: String,
        /// Capture device (from the far end).
        capture: String,
        /// Sample rate.
        #[serde(default = "default_rate")]
        sample_rate: u32,
        /// Where the card comes from.
        #[serde(default)]
        origin: AlsaOrigin,
    },
    /// No audio path: calls can be answered and signalled digits received, media actions
    /// cannot run.
    None,
}

fn default_rate() -> u32 {
    8000
}

/// How a leg's audio is reached, as the line says at the moment the media layer asks.
pub enum LegAudio {
    /// No audio for this leg, and why (a data-only modem, a leg that is not up).
    Unavailable(String),
    /// A device to open ([`AudioTransport::None`] is given as [`LegAudio::Unavailable`]).
    Device(AudioTransport),
    /// A port the line opened itself (an RTP stream bound to the negotiated address): the
    /// media layer takes it and owns it from now on.
    Port(Box<dyn AudioPort>),
}

impl LegAudio {
    /// The audio of a device transport (`None` becomes unavailable).
    pub fn from_transport(transport: AudioTransport) -> Self {
        match transport {
            AudioTransport::None => {
                LegAudio::Unavailable("the line has no audio path (transport `none`)".into())
            }
            device => LegAudio::Device(device),
        }
    }
}

impl std::fmt::Debug for LegAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LegAudio::Unavailable(why) => f.debug_tuple("Unavailable").field(why).finish(),
            LegAudio::Device(t) => f.debug_tuple("Device").field(t).finish(),
            LegAudio::Port(p) => f.debug_tuple("Port").field(&p.device()).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_read_as_board_profiles_write_them() {
        let t: AudioTransport =
            serde_json::from_str(r#"{"kind":"serial-pcm","device":"/dev/ttyUSB1"}"#).unwrap();
        assert_eq!(
            t,
            AudioTransport::SerialPcm {
                device: "/dev/ttyUSB1".into(),
                sample_rate: 8000
            }
        );
        let t: AudioTransport = serde_json::from_str(
            r#"{"kind":"alsa","playback":"hw:1","capture":"hw:1","origin":"codec"}"#,
        )
        .unwrap();
        assert!(matches!(
            t,
            AudioTransport::Alsa {
                origin: AlsaOrigin::Codec,
                ..
            }
        ));
    }

    #[test]
    fn no_transport_is_unavailable_audio() {
        assert!(matches!(
            LegAudio::from_transport(AudioTransport::None),
            LegAudio::Unavailable(_)
        ));
    }
}
