//! The two audio edges of an analog port runner.
//!
//! - The **line side** ([`PortIo`]): the port's clock and its 20 ms frames to and from the
//!   line — the simulated board's telephone or exchange ([`SimPortIo`]), the codec's ALSA
//!   PCM on a real board ([`DevicePortIo`], any [`AudioPort`]), or nothing
//!   ([`SilentPortIo`]: a real port without an audio device still signals).
//! - The **call side** ([`CallAudio`]): the port the media layer gets as the leg's audio
//!   (`LegAudio::Port`) while the port is connected; frames cross to the runner over
//!   channels.
//!
//! The runner owns the port and must poll it every few ms, so nothing here blocks it: a
//! device's blocking reads run on their own pump thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use flowgate_analog::Millis;
use flowgate_analog::port::FRAME;
#[cfg(feature = "simulator")]
use flowgate_analog::sim::{Chip, SimBoard, SimClock};
use flowgate_line::{AudioPort, FrameStatus, PortError};
use tracing::warn;

/// Frames the call side waits for before it reports one missing (three frames of jitter).
const CALL_STALL: Duration = Duration::from_millis(60);
/// Frames queued from the call towards the line at most; older ones are dropped (drift).
pub(crate) const CALL_QUEUE: usize = 3;

/// The line side of a port: its clock and its audio towards the line.
pub trait PortIo: Send + 'static {
    /// Now, in the port's time base (ms from any origin, monotonic).
    fn now(&mut self) -> Millis;
    /// Exchanges one 20 ms frame: `to_line` goes out, `from_line` is filled with what came
    /// in (silence when nothing did).
    fn exchange(&mut self, to_line: &[i16], from_line: &mut [i16]);
    /// What the side is (logs).
    fn describe(&self) -> String;
}

#[cfg(feature = "simulator")]
/// A port on the simulated board: simulated time follows the real clock (the drivers'
/// initialisation delays may have moved it ahead; it never goes back), audio is the
/// simulated telephone's or exchange's.
pub struct SimPortIo {
    board: SimBoard,
    clock: SimClock,
    chip: Chip,
    origin: Instant,
    base: Millis,
}

#[cfg(feature = "simulator")]
impl SimPortIo {
    /// The side of `chip` on `board`, its clock starting from the board's now.
    #[must_use]
    pub fn new(board: SimBoard, chip: Chip) -> Self {
        let clock = board.clock();
        let base = clock.now();
        Self {
            board,
            clock,
            chip,
            origin: Instant::now(),
            base,
        }
    }
}

#[cfg(feature = "simulator")]
impl PortIo for SimPortIo {
    fn now(&mut self) -> Millis {
        let real = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.board.advance_to(self.base.saturating_add(real));
        self.clock.now()
    }

    fn exchange(&mut self, to_line: &[i16], from_line: &mut [i16]) {
        let got = match self.chip {
            Chip::Slic => self.board.fxs_frame(to_line),
            Chip::Daa => self.board.fxo_frame(to_line),
        };
        copy_frame(&got, from_line);
    }

    fn describe(&self) -> String {
        format!("simulated {:?}", self.chip)
    }
}

/// A real port without an audio device: the clock only (signalling works, tones and DTMF do
/// not).
pub struct SilentPortIo {
    origin: Instant,
}

impl SilentPortIo {
    /// A silent side.
    #[must_use]
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for SilentPortIo {
    fn default() -> Self {
        Self::new()
    }
}

impl PortIo for SilentPortIo {
    fn now(&mut self) -> Millis {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn exchange(&mut self, _to_line: &[i16], from_line: &mut [i16]) {
        from_line.fill(0);
    }

    fn describe(&self) -> String {
        "no audio device".into()
    }
}

/// A real port's codec behind an [`AudioPort`] (the ALSA PCM of the chip's timeslot). A pump
/// thread does the blocking reads and writes; the runner exchanges frames without waiting.
pub struct DevicePortIo {
    origin: Instant,
    device: String,
    to_pump: SyncSender<Vec<i16>>,
    from_pump: Receiver<Vec<i16>>,
    stop: Arc<AtomicBool>,
}

impl DevicePortIo {
    /// Starts the pump on `port`.
    ///
    /// # Errors
    /// The pump thread could not be started.
    pub fn start(mut port: Box<dyn AudioPort>) -> std::io::Result<Self> {
        let device = port.device().to_owned();
        let (to_pump, pump_in) = mpsc::sync_channel::<Vec<i16>>(CALL_QUEUE);
        let (pump_out, from_pump) = mpsc::sync_channel::<Vec<i16>>(CALL_QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let name = device.clone();
        std::thread::Builder::new()
            .name(format!("analog-pcm {device}"))
            .spawn(move || {
                let mut frame = vec![0i16; FRAME];
                let mut last_out = vec![0i16; FRAME];
                while !stopping.load(Ordering::Relaxed) {
                    if let Err(e) = port.read_frame(&mut frame) {
                        warn!(device = %name, cause = %e, "analog port audio failed; the port goes on without audio");
                        return;
                    }
                    // A full queue means the runner is behind: drop the frame, it is real time.
                    if let Err(TrySendError::Disconnected(_)) = pump_out.try_send(frame.clone()) {
                        return;
                    }
                    if let Ok(out) = pump_in.try_recv() {
                        last_out = out;
                    } else {
                        last_out.fill(0);
                    }
                    if let Err(e) = port.write_frame(&last_out) {
                        warn!(device = %name, cause = %e, "analog port audio failed; the port goes on without audio");
                        return;
                    }
                }
            })?;
        Ok(Self {
            origin: Instant::now(),
            device,
            to_pump,
            from_pump,
            stop,
        })
    }
}

impl Drop for DevicePortIo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl PortIo for DevicePortIo {
    fn now(&mut self) -> Millis {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn exchange(&mut self, to_line: &[i16], from_line: &mut [i16]) {
        let _ = self.to_pump.try_send(to_line.to_vec());
        match self.from_pump.try_recv() {
            Ok(f) => copy_frame(&f, from_line),
            Err(_) => from_line.fill(0),
        }
    }

    fn describe(&self) -> String {
        self.device.clone()
    }
}

fn copy_frame(src: &[i16], dst: &mut [i16]) {
    let n = src.len().min(dst.len());
    dst[..n].copy_from_slice(&src[..n]);
    dst[n..].fill(0);
}

/// The runner's end of a call's audio.
pub(crate) struct CallAudioEnd {
    pub(crate) to_call: Sender<Vec<i16>>,
    pub(crate) from_call: Receiver<Vec<i16>>,
}

/// A connected analog call's audio, as the media layer sees it: 20 ms frames at 8 kHz,
/// paced by the port runner (one frame per frame of the line).
pub struct CallAudio {
    device: String,
    from_line: Receiver<Vec<i16>>,
    to_line: Sender<Vec<i16>>,
}

impl CallAudio {
    /// A connected pair: the media layer's port and the runner's end.
    pub(crate) fn pair(device: String) -> (CallAudio, CallAudioEnd) {
        let (to_call, from_line) = mpsc::channel();
        let (to_line, from_call) = mpsc::channel();
        (
            CallAudio {
                device,
                from_line,
                to_line,
            },
            CallAudioEnd { to_call, from_call },
        )
    }

    /// The runner drops its end when the call ends (on-hook, or a port fault the line
    /// reports itself): for the media layer that is the end of the call's audio.
    fn closed(&self) -> PortError {
        PortError::Closed {
            device: self.device.clone(),
            detail: "the analog call is over".into(),
        }
    }
}

impl AudioPort for CallAudio {
    fn sample_rate(&self) -> u32 {
        8000
    }

    fn device(&self) -> &str {
        &self.device
    }

    fn read_frame(&mut self, frame: &mut [i16]) -> Result<FrameStatus, PortError> {
        match self.from_line.recv_timeout(CALL_STALL) {
            Ok(f) => {
                copy_frame(&f, frame);
                Ok(FrameStatus::Received)
            }
            Err(RecvTimeoutError::Timeout) => {
                frame.fill(0);
                Ok(FrameStatus::Missing)
            }
            Err(RecvTimeoutError::Disconnected) => Err(self.closed()),
        }
    }

    fn write_frame(&mut self, frame: &[i16]) -> Result<(), PortError> {
        self.to_line.send(frame.to_vec()).map_err(|_| self.closed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_audio_reports_stalls_and_the_end() {
        let (mut port, end) = CallAudio::pair("fxs0".into());
        let mut frame = vec![1i16; FRAME];
        end.to_call.send(vec![7; FRAME]).expect("open");
        assert_eq!(port.read_frame(&mut frame), Ok(FrameStatus::Received));
        assert_eq!(frame[0], 7);
        assert_eq!(port.read_frame(&mut frame), Ok(FrameStatus::Missing));
        assert!(frame.iter().all(|&s| s == 0));
        port.write_frame(&[3; FRAME]).expect("open");
        assert_eq!(end.from_call.try_recv().expect("sent")[0], 3);
        // The call is over: the end of the stream, not a failure of the port.
        drop(end);
        assert!(port.read_frame(&mut frame).is_err_and(|e| e.is_closed()));
        assert!(port.write_frame(&frame).is_err_and(|e| e.is_closed()));
    }
}
