//! An in-process port: frames travel over channels to a [`ChannelPeer`] that
//! plays the far end. Tests and benchmarks drive sessions through it in lockstep
//! (one frame in, one frame out); a software transport can use it too.
//! [`ChannelPort::shared_pair`] makes a port without a clock of its own, driven by the
//! media layer's shared frame loop like an RTP stream.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError, channel};
use std::time::Duration;

use super::{AudioPort, FrameStatus, Pacing, PortError};
use crate::media::audio::{check_call_rate, frame_len};
use crate::media::error::{MediaError, Result};

/// The session's side.
#[derive(Debug)]
pub struct ChannelPort {
    rate: u32,
    name: String,
    from_peer: Receiver<Vec<i16>>,
    to_peer: Sender<Vec<i16>>,
    stall: Option<Duration>,
    pacing: Pacing,
}

/// The far end's side.
#[derive(Debug)]
pub struct ChannelPeer {
    rate: u32,
    to_port: Sender<Vec<i16>>,
    from_port: Receiver<Vec<i16>>,
}

impl ChannelPort {
    /// A connected pair at `rate`. With `stall: None` the session waits for the
    /// peer's every frame (lockstep); with `Some(d)` it ticks with silence when no
    /// frame came for `d`.
    ///
    /// # Errors
    /// [`MediaError::DeviceConfig`] for a rate other than 8000/16000.
    pub fn pair(rate: u32, stall: Option<Duration>) -> Result<(ChannelPort, ChannelPeer)> {
        check_call_rate(rate, "channel")?;
        let (to_port, from_peer) = channel();
        let (to_peer, from_port) = channel();
        Ok((
            ChannelPort {
                rate,
                name: format!("channel@{rate}"),
                from_peer,
                to_peer,
                stall,
                pacing: Pacing::Blocking,
            },
            ChannelPeer {
                rate,
                to_port,
                from_port,
            },
        ))
    }
}

impl ChannelPort {
    /// A connected pair at `rate` whose port has [`Pacing::Shared`]: the session runs on
    /// the shared frame loop's 20 ms clock and takes the peer's frame when one is queued
    /// (`Missing` otherwise), as it does with an RTP stream.
    ///
    /// # Errors
    /// [`MediaError::DeviceConfig`] for a rate other than 8000/16000.
    pub fn shared_pair(rate: u32) -> Result<(ChannelPort, ChannelPeer)> {
        let (mut port, peer) = ChannelPort::pair(rate, None)?;
        port.pacing = Pacing::Shared;
        Ok((port, peer))
    }
}

fn copy_frame(got: &[i16], frame: &mut [i16]) {
    let n = got.len().min(frame.len());
    frame[..n].copy_from_slice(&got[..n]);
    frame[n..].fill(0);
}

/// The peer dropped without a word: the stand-in for a device that vanished (tests
/// drive port failures this way), so a failure, not [`PortError::Closed`].
fn closed(op: &'static str) -> PortError {
    PortError::Failed {
        device: "channel".into(),
        op,
        detail: "the peer is gone".into(),
    }
}

impl AudioPort for ChannelPort {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn device(&self) -> &str {
        &self.name
    }

    fn read_frame(&mut self, frame: &mut [i16]) -> std::result::Result<FrameStatus, PortError> {
        let got = match self.stall {
            None => self.from_peer.recv().map_err(|_| closed("read"))?,
            Some(d) => match self.from_peer.recv_timeout(d) {
                Ok(f) => f,
                Err(RecvTimeoutError::Timeout) => {
                    frame.fill(0);
                    return Ok(FrameStatus::Missing);
                }
                Err(RecvTimeoutError::Disconnected) => return Err(closed("read")),
            },
        };
        copy_frame(&got, frame);
        Ok(FrameStatus::Received)
    }

    fn pacing(&self) -> Pacing {
        self.pacing
    }

    fn read_frame_now(&mut self, frame: &mut [i16]) -> std::result::Result<FrameStatus, PortError> {
        if self.pacing == Pacing::Blocking {
            return self.read_frame(frame);
        }
        match self.from_peer.try_recv() {
            Ok(got) => {
                copy_frame(&got, frame);
                Ok(FrameStatus::Received)
            }
            Err(TryRecvError::Empty) => {
                frame.fill(0);
                Ok(FrameStatus::Missing)
            }
            Err(TryRecvError::Disconnected) => Err(closed("read")),
        }
    }

    fn write_frame(&mut self, frame: &[i16]) -> std::result::Result<(), PortError> {
        self.to_peer
            .send(frame.to_vec())
            .map_err(|_| closed("write"))
    }
}

impl ChannelPeer {
    /// Samples per frame.
    #[must_use]
    pub fn frame_len(&self) -> usize {
        frame_len(self.rate)
    }

    /// Sends one frame of caller audio (shorter frames are padded with silence).
    ///
    /// # Errors
    /// [`MediaError::Device`] when the session is gone.
    pub fn send(&self, frame: &[i16]) -> Result<()> {
        self.to_port
            .send(frame.to_vec())
            .map_err(|_| MediaError::from(closed("send")))
    }

    /// The next frame the session sent, waiting up to `timeout`.
    #[must_use]
    pub fn recv(&self, timeout: Duration) -> Option<Vec<i16>> {
        self.from_port.recv_timeout(timeout).ok()
    }

    /// Sends a frame and returns the frame the session answered it with.
    #[must_use]
    pub fn exchange(&self, frame: &[i16], timeout: Duration) -> Option<Vec<i16>> {
        self.send(frame).ok()?;
        self.recv(timeout)
    }
}
