//! Serial PCM: raw 16-bit little-endian mono samples on a tty, 20 ms per frame
//! (320 bytes at 8 kHz), as Huawei (`^DDSETEX=2`), Quectel (`+QPCMV=1,0`) and
//! SIMCom (`+CPCMREG=1`) voice ports and the simulator's voice pty carry them.
//!
//! * Opened non-blocking, raw (no echo, no line discipline, 115200 8N1, no flow
//!   control), flushed of stale audio, and locked with `flock` so a second
//!   opener (another call, another Flowgate) gets a clear "busy" instead of
//!   stealing half the samples. A FIFO or plain file also works (no termios).
//! * Paced by the far end: the session reads a frame, then writes one. A frame
//!   later than the stall tolerance is reported [`FrameStatus::Missing`] and the
//!   session ticks on the port's own schedule until audio flows again; a far end
//!   that floods (a pipe, a burst) is held to real time by the [`Pacer`].
//! * Writes never block: what the tty cannot take now waits in a small queue
//!   (100 ms); beyond that the oldest audio is dropped, so a far end that stopped
//!   reading cannot stall the call or grow latency without bound.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{self, BaudRate, ControlFlags, FlushArg, SetArg, SpecialCharacterIndices};

use super::{AudioPort, FrameStatus, PortError};
use crate::media::audio::{check_call_rate, frame_len};
use crate::media::clock::{Clock, Pacer};
use crate::media::error::{MediaError, Result};

/// How long [`AudioPort::read_buffered`] waits for bytes already on their way.
const BUFFERED_GRACE: Duration = Duration::from_millis(5);

/// Frames of outgoing audio kept when the tty does not take them.
const MAX_QUEUED_FRAMES: usize = 5;

/// Settings of a serial PCM port.
#[derive(Debug, Clone)]
pub struct SerialOptions {
    /// 8000 or 16000.
    pub sample_rate: u32,
    /// How late a frame may be before the session ticks without it.
    pub stall_tolerance: Duration,
}

impl Default for SerialOptions {
    fn default() -> Self {
        SerialOptions {
            sample_rate: 8000,
            stall_tolerance: Duration::from_millis(60),
        }
    }
}

/// A serial PCM voice port.
#[derive(Debug)]
pub struct SerialPcmPort {
    device: String,
    file: Flock<File>,
    rate: u32,
    frame_bytes: usize,
    rx: Vec<u8>,
    tx: Vec<u8>,
    pacer: Pacer,
    clock: Arc<dyn Clock>,
    stall: Duration,
    dropped_frames: u64,
}

fn open_error(device: &str, e: &std::io::Error) -> MediaError {
    let detail = e.to_string();
    let device = device.to_owned();
    match (e.kind(), e.raw_os_error().map(Errno::from_raw)) {
        (ErrorKind::NotFound, _) | (_, Some(Errno::ENODEV | Errno::ENXIO)) => {
            MediaError::DeviceMissing { device, detail }
        }
        (_, Some(Errno::EBUSY)) => MediaError::DeviceBusy { device, detail },
        _ => MediaError::Device {
            device,
            op: "open",
            detail,
        },
    }
}

fn device_error(device: &str, op: &'static str, detail: impl std::fmt::Display) -> MediaError {
    MediaError::Device {
        device: device.to_owned(),
        op,
        detail: detail.to_string(),
    }
}

impl SerialPcmPort {
    /// Opens `path`. Blocking (it is quick, but it is a device open).
    ///
    /// # Errors
    /// [`MediaError::DeviceMissing`], [`MediaError::DeviceBusy`] (locked by another
    /// opener), [`MediaError::DeviceConfig`] (rate, termios).
    pub fn open(path: &Path, options: &SerialOptions, clock: Arc<dyn Clock>) -> Result<Self> {
        let device = path.display().to_string();
        check_call_rate(options.sample_rate, &device)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags((OFlag::O_NOCTTY | OFlag::O_NONBLOCK).bits())
            .open(path)
            .map_err(|e| open_error(&device, &e))?;
        let file =
            Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(
                |(_, errno)| match errno {
                    Errno::EWOULDBLOCK => MediaError::DeviceBusy {
                        device: device.clone(),
                        detail: "another call or process has it open (flock)".into(),
                    },
                    other => device_error(&device, "lock", other),
                },
            )?;
        configure_tty(&file, &device)?;
        let frame_bytes = frame_len(options.sample_rate) * 2;
        tracing::debug!(device = %device, rate = options.sample_rate, "serial PCM port open");
        Ok(SerialPcmPort {
            device,
            file,
            rate: options.sample_rate,
            frame_bytes,
            rx: Vec::with_capacity(8192),
            tx: Vec::with_capacity(frame_bytes * (MAX_QUEUED_FRAMES + 1)),
            pacer: Pacer::new(Duration::from_millis(20)),
            clock,
            stall: options.stall_tolerance,
            dropped_frames: 0,
        })
    }

    /// Path of the device.
    #[must_use]
    pub fn path(&self) -> PathBuf {
        PathBuf::from(&self.device)
    }

    /// Outgoing frames dropped because the far end did not read them.
    #[must_use]
    pub fn dropped_frames(&self) -> u64 {
        self.dropped_frames
    }

    fn flush_tx(&mut self) -> Result<()> {
        while !self.tx.is_empty() {
            match (&*self.file).write(&self.tx) {
                Ok(0) => break,
                Ok(n) => {
                    self.tx.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(device_error(&self.device, "write", e)),
            }
        }
        Ok(())
    }

    /// Waits for bytes until `deadline` (clock time); returns how long it blocked.
    fn fill_rx(&mut self, timeout: Duration) -> Result<Duration> {
        let ms = u32::try_from(timeout.as_millis().max(1)).unwrap_or(u32::MAX);
        let before = self.clock.now();
        let revents = {
            let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
            match poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(_) | Err(Errno::EINTR) => fds[0].revents().unwrap_or(PollFlags::empty()),
                Err(e) => return Err(device_error(&self.device, "poll", e)),
            }
        };
        let waited = self.clock.now().saturating_sub(before);
        if revents.contains(PollFlags::POLLIN) {
            let mut buf = [0u8; 4096];
            match (&*self.file).read(&mut buf) {
                // A modem's voice tty stays open across calls (a call's end comes on the
                // AT channel and the line closes the session): end of file here means the
                // device went away (USB unplugged, modem reset), a failure, unlike an RTP
                // stream's `PortError::Closed`.
                Ok(0) => {
                    return Err(device_error(
                        &self.device,
                        "read",
                        "the far end closed the port",
                    ));
                }
                Ok(n) => self.rx.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) => return Err(device_error(&self.device, "read", e)),
            }
        } else if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL)
        {
            return Err(device_error(
                &self.device,
                "read",
                format!("the far end hung up ({revents:?})"),
            ));
        }
        Ok(waited)
    }
}

fn configure_tty(file: &Flock<File>, device: &str) -> Result<()> {
    let mut t = match termios::tcgetattr(file.as_fd()) {
        Ok(t) => t,
        // A FIFO or a plain file: nothing to configure.
        Err(Errno::ENOTTY | Errno::EINVAL) => return Ok(()),
        Err(e) => return Err(device_error(device, "tcgetattr", e)),
    };
    termios::cfmakeraw(&mut t);
    let cfg = |e: Errno| MediaError::DeviceConfig {
        device: device.to_owned(),
        setting: "termios",
        detail: e.to_string(),
    };
    termios::cfsetspeed(&mut t, BaudRate::B115200).map_err(cfg)?;
    t.control_flags |= ControlFlags::CLOCAL | ControlFlags::CREAD;
    t.control_flags &= !ControlFlags::CRTSCTS;
    t.control_chars[SpecialCharacterIndices::VMIN as usize] = 0;
    t.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
    termios::tcsetattr(file.as_fd(), SetArg::TCSANOW, &t).map_err(cfg)?;
    // Audio queued before the call is stale.
    let _ = termios::tcflush(file.as_fd(), FlushArg::TCIOFLUSH);
    Ok(())
}

impl AudioPort for SerialPcmPort {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn device(&self) -> &str {
        &self.device
    }

    fn read_frame(&mut self, frame: &mut [i16]) -> std::result::Result<FrameStatus, PortError> {
        let mut waited = Duration::ZERO;
        // Fixed for this frame: before the first frame the schedule has no
        // anchor and the deadline would otherwise move with `now`.
        let deadline = self.pacer.stall_deadline(self.clock.now(), self.stall);
        loop {
            if self.rx.len() >= self.frame_bytes {
                for (s, b) in frame.iter_mut().zip(self.rx.chunks_exact(2)) {
                    *s = i16::from_le_bytes([b[0], b[1]]);
                }
                self.rx.drain(..self.frame_bytes);
                if let Some(until) = self.pacer.on_frame(self.clock.now(), waited) {
                    self.clock.sleep_until(until);
                }
                return Ok(FrameStatus::Received);
            }
            let now = self.clock.now();
            if now >= deadline {
                self.pacer.on_missing(now);
                frame.fill(0);
                return Ok(FrameStatus::Missing);
            }
            waited += self.fill_rx(deadline - now)?;
        }
    }

    fn read_buffered(&mut self, frame: &mut [i16]) -> std::result::Result<bool, PortError> {
        // What the tty holds now; the short poll lets bytes the far end already wrote but
        // the kernel has not yet handed to this side (a pty pushes them from a work queue)
        // arrive, without waiting for the far end to send more.
        while self.rx.len() < self.frame_bytes {
            let before = self.rx.len();
            self.fill_rx(BUFFERED_GRACE)?;
            if self.rx.len() == before {
                return Ok(false);
            }
        }
        for (s, b) in frame.iter_mut().zip(self.rx.chunks_exact(2)) {
            *s = i16::from_le_bytes([b[0], b[1]]);
        }
        self.rx.drain(..self.frame_bytes);
        Ok(true)
    }

    fn write_frame(&mut self, frame: &[i16]) -> std::result::Result<(), PortError> {
        for s in frame {
            self.tx.extend_from_slice(&s.to_le_bytes());
        }
        let cap = self.frame_bytes * MAX_QUEUED_FRAMES;
        if self.tx.len() > cap {
            // The front may be the rest of a frame the tty took half of: keep it,
            // or the far end's byte stream would lose its sample alignment.
            let head = self.tx.len() % self.frame_bytes;
            let frames = (self.tx.len() - cap).div_ceil(self.frame_bytes);
            let end = (head + frames * self.frame_bytes).min(self.tx.len());
            self.tx.drain(head..end);
            self.dropped_frames += frames as u64;
            tracing::debug!(device = %self.device, dropped = self.dropped_frames, "far end not reading: audio dropped");
        }
        Ok(self.flush_tx()?)
    }
}
