//! ALSA: one thread per PCM (capture and playback), each opening its PCM in
//! non-blocking mode (a busy device fails at once with a clear error instead of
//! hanging the call) and waiting on it with `snd_pcm_wait`.
//!
//! * **Low latency, set explicitly**: one period per frame (20 ms: 160 frames at
//!   8 kHz) and 4 periods of buffer; playback starts once 2 periods are queued.
//!   Without explicit values a `file` PCM negotiates absurd sizes (a 34 M-frame
//!   buffer).
//! * **xruns** (`EPIPE`, `ESTRPIPE`) are recovered with `snd_pcm_recover`,
//!   counted, and the stream restarted; the call goes on with a click.
//! * **Pacing**: each capture thread runs a [`Pacer`], so a `file`/`null` PCM
//!   (which returns at once) is held to one frame per 20 ms while a real card,
//!   which blocks, drives the schedule itself.
//! * **Queues**: captured frames wait in a short queue for the media loop (the
//!   capture thread blocks when it is full, as the device would); frames to play
//!   wait in a short queue for the playback thread, and when that is full the
//!   oldest is dropped, so a device that stopped consuming never blocks the call.

use std::collections::VecDeque;
use std::ffi::CString;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use alsa::pcm::{Access, Format, HwParams, PCM};
use alsa::{Direction, ValueOr};
use parking_lot::{Condvar, Mutex};

use super::{AudioPort, FrameStatus, PortError};
use crate::media::audio::{check_call_rate, frame_len};
use crate::media::clock::{Clock, Pacer};
use crate::media::error::{MediaError, Result};

/// How long a PCM thread waits on the device or its queue before it looks at
/// the stop flag again.
const POLL_MS: u32 = 100;

/// Settings of an ALSA port.
#[derive(Debug, Clone)]
pub struct AlsaOptions {
    /// 8000 or 16000 (the device must take it; use a `plughw:` device to convert).
    pub sample_rate: u32,
    /// Periods in the device buffer.
    pub periods: u32,
    /// Playback starts once this many periods are queued.
    pub start_periods: u32,
    /// Captured frames waiting for the media loop.
    pub capture_queue: usize,
    /// Frames waiting for the playback device (beyond that the oldest is dropped).
    pub playback_queue: usize,
    /// How late a captured frame may be before the session ticks without it.
    pub stall_tolerance: Duration,
    /// How long opening a PCM may take.
    pub open_timeout: Duration,
}

impl Default for AlsaOptions {
    fn default() -> Self {
        AlsaOptions {
            sample_rate: 8000,
            periods: 4,
            start_periods: 2,
            capture_queue: 4,
            playback_queue: 4,
            stall_tolerance: Duration::from_millis(60),
            open_timeout: Duration::from_secs(10),
        }
    }
}

/// Counters of an ALSA port.
#[derive(Debug, Default)]
pub struct AlsaStats {
    xruns: AtomicU64,
    dropped: AtomicU64,
    captured: AtomicU64,
    played: AtomicU64,
}

impl AlsaStats {
    /// Over- and underruns recovered.
    pub fn xruns(&self) -> u64 {
        self.xruns.load(Ordering::Relaxed)
    }
    /// Frames dropped because a queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
    /// Frames read from the capture PCM.
    pub fn captured(&self) -> u64 {
        self.captured.load(Ordering::Relaxed)
    }
    /// Frames written to the playback PCM.
    pub fn played(&self) -> u64 {
        self.played.load(Ordering::Relaxed)
    }
}

/// A bounded frame queue between a PCM thread and the media loop.
#[derive(Debug)]
struct Queue {
    inner: Mutex<QueueState>,
    changed: Condvar,
    cap: usize,
}

/// What [`Queue::push_blocking`] did.
enum Push {
    Done,
    /// Still full after the timeout: the frame comes back.
    Full(Vec<i16>),
    Closed,
}

#[derive(Debug, Default)]
struct QueueState {
    frames: VecDeque<Vec<i16>>,
    error: Option<MediaError>,
    closed: bool,
}

impl Queue {
    fn new(cap: usize) -> Arc<Self> {
        Arc::new(Queue {
            inner: Mutex::new(QueueState::default()),
            changed: Condvar::new(),
            cap: cap.max(1),
        })
    }

    /// Capture side: waits up to `timeout` for room.
    fn push_blocking(&self, frame: Vec<i16>, timeout: Duration) -> Push {
        let mut q = self.inner.lock();
        while q.frames.len() >= self.cap && !q.closed {
            if self.changed.wait_for(&mut q, timeout).timed_out() && q.frames.len() >= self.cap {
                return if q.closed {
                    Push::Closed
                } else {
                    Push::Full(frame)
                };
            }
        }
        if q.closed {
            return Push::Closed;
        }
        q.frames.push_back(frame);
        self.changed.notify_all();
        Push::Done
    }

    /// Playback side: drops the oldest frame when full. Returns true if one was dropped.
    fn push_dropping(&self, frame: Vec<i16>) -> bool {
        let mut q = self.inner.lock();
        let dropped = if q.frames.len() >= self.cap {
            q.frames.pop_front().is_some()
        } else {
            false
        };
        q.frames.push_back(frame);
        self.changed.notify_all();
        dropped
    }

    fn pop(&self, timeout: Duration) -> std::result::Result<Option<Vec<i16>>, MediaError> {
        let mut q = self.inner.lock();
        loop {
            if let Some(f) = q.frames.pop_front() {
                self.changed.notify_all();
                return Ok(Some(f));
            }
            if let Some(e) = q.error.take() {
                q.closed = true;
                return Err(e);
            }
            if q.closed {
                return Ok(None);
            }
            if self.changed.wait_for(&mut q, timeout).timed_out() {
                return Ok(q.frames.pop_front());
            }
        }
    }

    fn fail(&self, e: MediaError) {
        let mut q = self.inner.lock();
        q.error = Some(e);
        self.changed.notify_all();
    }

    fn take_error(&self) -> Option<MediaError> {
        self.inner.lock().error.take()
    }

    fn close(&self) {
        self.inner.lock().closed = true;
        self.changed.notify_all();
    }
}

/// Classifies an error of `snd_pcm_open`.
pub(crate) fn open_error(device: &str, errno: i32, detail: String) -> MediaError {
    let device = device.to_owned();
    match nix::errno::Errno::from_raw(errno) {
        nix::errno::Errno::ENOENT | nix::errno::Errno::ENODEV | nix::errno::Errno::ENXIO => {
            MediaError::DeviceMissing { device, detail }
        }
        nix::errno::Errno::EBUSY | nix::errno::Errno::EAGAIN => {
            MediaError::DeviceBusy { device, detail }
        }
        _ => MediaError::Device {
            device,
            op: "open",
            detail,
        },
    }
}

fn config_error(device: &str, setting: &'static str, e: impl std::fmt::Display) -> MediaError {
    MediaError::DeviceConfig {
        device: device.to_owned(),
        setting,
        detail: e.to_string(),
    }
}

fn io_error(device: &str, op: &'static str, e: impl std::fmt::Display) -> MediaError {
    MediaError::Device {
        device: device.to_owned(),
        op,
        detail: e.to_string(),
    }
}

/// Opens and configures one PCM.
fn open_pcm(device: &str, dir: Direction, opts: &AlsaOptions) -> Result<PCM> {
    let name = CString::new(device).map_err(|_| MediaError::DeviceMissing {
        device: device.escape_debug().to_string(),
        detail: "the name contains a NUL byte".into(),
    })?;
    let pcm =
        PCM::open(&name, dir, true).map_err(|e| open_error(device, e.errno(), e.to_string()))?;
    let period = i64::try_from(frame_len(opts.sample_rate)).unwrap_or(160);
    {
        let hwp =
            HwParams::any(&pcm).map_err(|e| config_error(device, "hardware parameters", e))?;
        hwp.set_access(Access::RWInterleaved)
            .map_err(|e| config_error(device, "interleaved access", e))?;
        hwp.set_format(Format::s16())
            .map_err(|e| config_error(device, "format S16", e))?;
        hwp.set_channels(1).map_err(|e| {
            config_error(device, "mono (use a plughw: or plug device to convert)", e)
        })?;
        let rate = hwp
            .set_rate_near(opts.sample_rate, ValueOr::Nearest)
            .map_err(|e| config_error(device, "sample rate", e))?;
        if rate != opts.sample_rate {
            return Err(config_error(
                device,
                "sample rate",
                format!(
                    "{} Hz asked, the device offers {rate} Hz (use a plughw: device to resample)",
                    opts.sample_rate
                ),
            ));
        }
        hwp.set_period_size_near(period, ValueOr::Nearest)
            .map_err(|e| config_error(device, "period size", e))?;
        hwp.set_buffer_size_near(period * i64::from(opts.periods.max(2)))
            .map_err(|e| config_error(device, "buffer size", e))?;
        pcm.hw_params(&hwp)
            .map_err(|e| config_error(device, "hardware parameters", e))?;
    }
    let (buffer, period) = pcm
        .get_params()
        .map_err(|e| config_error(device, "hardware parameters", e))?;
    {
        let period = i64::try_from(period).unwrap_or(160);
        let swp = pcm
            .sw_params_current()
            .map_err(|e| config_error(device, "software parameters", e))?;
        swp.set_avail_min(period)
            .map_err(|e| config_error(device, "avail_min", e))?;
        if dir == Direction::Playback {
            let start = (period * i64::from(opts.start_periods.max(1)))
                .min(i64::try_from(buffer).unwrap_or(period));
            swp.set_start_threshold(start)
                .map_err(|e| config_error(device, "start threshold", e))?;
        }
        pcm.sw_params(&swp)
            .map_err(|e| config_error(device, "software parameters", e))?;
    }
    tracing::debug!(device, ?dir, buffer, period, "ALSA PCM open");
    Ok(pcm)
}

/// Recovers from an xrun or suspend (true), or lets `EAGAIN` pass (false);
/// errors that are not recoverable come back.
fn recover(
    pcm: &PCM,
    device: &str,
    op: &'static str,
    e: alsa::Error,
    stats: &AlsaStats,
) -> Result<bool> {
    let errno = e.errno();
    if errno == libc_eagain() {
        return Ok(false);
    }
    pcm.try_recover(e, true)
        .map_err(|e2| io_error(device, op, format!("{e}; recovery failed: {e2}")))?;
    stats.xruns.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(device, op, errno, "ALSA xrun recovered");
    Ok(true)
}

fn libc_eagain() -> i32 {
    nix::errno::Errno::EAGAIN as i32
}

struct Shared {
    stop: AtomicBool,
    stats: AlsaStats,
    clock: Arc<dyn Clock>,
}

fn capture_thread(
    pcm: PCM,
    device: String,
    opts: AlsaOptions,
    queue: Arc<Queue>,
    shared: Arc<Shared>,
) {
    let run = || -> Result<()> {
        let io = pcm.io_i16().map_err(|e| io_error(&device, "capture", e))?;
        pcm.start().map_err(|e| io_error(&device, "start", e))?;
        let n = frame_len(opts.sample_rate);
        let mut pacer = Pacer::new(Duration::from_millis(20));
        while !shared.stop.load(Ordering::Relaxed) {
            let mut frame = vec![0i16; n];
            let mut got = 0;
            let mut waited = Duration::ZERO;
            while got < n {
                if shared.stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let before = shared.clock.now();
                let ready = pcm.wait(Some(POLL_MS));
                waited += shared.clock.now().saturating_sub(before);
                if let Err(e) = ready {
                    if recover(&pcm, &device, "wait", e, &shared.stats)? {
                        pcm.start().map_err(|e| io_error(&device, "restart", e))?;
                    }
                    continue;
                }
                match io.readi(&mut frame[got..]) {
                    Ok(k) => got += k,
                    Err(e) => {
                        if recover(&pcm, &device, "read", e, &shared.stats)? {
                            pcm.start().map_err(|e| io_error(&device, "restart", e))?;
                        }
                    }
                }
            }
            shared.stats.captured.fetch_add(1, Ordering::Relaxed);
            if let Some(until) = pacer.on_frame(shared.clock.now(), waited) {
                shared.clock.sleep_until(until);
            }
            loop {
                match queue.push_blocking(frame, Duration::from_millis(u64::from(POLL_MS))) {
                    Push::Done => break,
                    Push::Full(back) if !shared.stop.load(Ordering::Relaxed) => frame = back,
                    Push::Full(_) | Push::Closed => return Ok(()),
                }
            }
        }
        Ok(())
    };
    if let Err(e) = run() {
        tracing::warn!(device = %device, error = %e, "ALSA capture failed");
        queue.fail(e);
    }
}

fn playback_thread(pcm: PCM, device: String, queue: Arc<Queue>, shared: Arc<Shared>) {
    let run = || -> Result<()> {
        let io = pcm.io_i16().map_err(|e| io_error(&device, "playback", e))?;
        loop {
            let frame = match queue.pop(Duration::from_millis(u64::from(POLL_MS))) {
                Ok(Some(f)) => f,
                Ok(None) if shared.stop.load(Ordering::Relaxed) => return Ok(()),
                Ok(None) => continue,
                Err(e) => return Err(e),
            };
            // On close the queue is drained (at most `playback_queue` frames),
            // unless the device stopped taking audio.
            let mut off = 0;
            while off < frame.len() {
                match io.writei(&frame[off..]) {
                    Ok(k) => off += k,
                    Err(e) if e.errno() == libc_eagain() => {
                        if shared.stop.load(Ordering::Relaxed) {
                            return Ok(());
                        }
                        if let Err(e) = pcm.wait(Some(POLL_MS)) {
                            recover(&pcm, &device, "wait", e, &shared.stats)?;
                        }
                    }
                    Err(e) => {
                        recover(&pcm, &device, "write", e, &shared.stats)?;
                    }
                }
            }
            shared.stats.played.fetch_add(1, Ordering::Relaxed);
        }
    };
    if let Err(e) = run() {
        tracing::warn!(device = %device, error = %e, "ALSA playback failed");
        queue.fail(e);
    }
}

/// An ALSA port: a playback PCM and a capture PCM, each with its own thread.
pub struct AlsaPort {
    name: String,
    rate: u32,
    captured: Arc<Queue>,
    to_play: Arc<Queue>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    stall: Duration,
}

impl std::fmt::Debug for AlsaPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlsaPort")
            .field("name", &self.name)
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl AlsaPort {
    /// Opens both PCMs (each in its thread) and starts streaming. Blocking.
    ///
    /// # Errors
    /// [`MediaError::DeviceMissing`] / [`MediaError::DeviceBusy`] /
    /// [`MediaError::DeviceConfig`] naming the device.
    pub fn open(
        playback: &str,
        capture: &str,
        opts: &AlsaOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        check_call_rate(opts.sample_rate, capture)?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            stats: AlsaStats::default(),
            clock,
        });
        let captured = Queue::new(opts.capture_queue);
        let to_play = Queue::new(opts.playback_queue);
        let mut port = AlsaPort {
            name: format!("alsa playback={playback} capture={capture}"),
            rate: opts.sample_rate,
            captured: captured.clone(),
            to_play: to_play.clone(),
            shared: shared.clone(),
            threads: Vec::new(),
            stall: opts.stall_tolerance,
        };
        for (device, dir) in [
            (capture, Direction::Capture),
            (playback, Direction::Playback),
        ] {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<()>>(1);
            let (name, thread_opts, shared) = (device.to_owned(), opts.clone(), shared.clone());
            let queue = if dir == Direction::Capture {
                captured.clone()
            } else {
                to_play.clone()
            };
            let thread_name = if dir == Direction::Capture {
                "alsa-capture"
            } else {
                "alsa-playback"
            };
            let handle = std::thread::Builder::new()
                .name(thread_name.into())
                .spawn(move || match open_pcm(&name, dir, &thread_opts) {
                    Ok(pcm) => {
                        let _ = tx.send(Ok(()));
                        if dir == Direction::Capture {
                            capture_thread(pcm, name, thread_opts, queue, shared);
                        } else {
                            playback_thread(pcm, name, queue, shared);
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                })
                .map_err(|e| MediaError::Worker(format!("cannot start an ALSA thread: {e}")))?;
            port.threads.push(handle);
            match rx.recv_timeout(opts.open_timeout) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(MediaError::Device {
                        device: device.to_owned(),
                        op: "open",
                        detail: format!("no answer within {:?}", opts.open_timeout),
                    });
                }
            }
        }
        Ok(port)
    }

    /// The port's counters.
    #[must_use]
    pub fn stats(&self) -> &AlsaStats {
        &self.shared.stats
    }
}

impl AudioPort for AlsaPort {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn device(&self) -> &str {
        &self.name
    }

    fn read_frame(&mut self, frame: &mut [i16]) -> std::result::Result<FrameStatus, PortError> {
        match self.captured.pop(Duration::from_millis(20) + self.stall)? {
            Some(f) => {
                let n = f.len().min(frame.len());
                frame[..n].copy_from_slice(&f[..n]);
                frame[n..].fill(0);
                Ok(FrameStatus::Received)
            }
            None => {
                frame.fill(0);
                Ok(FrameStatus::Missing)
            }
        }
    }

    fn write_frame(&mut self, frame: &[i16]) -> std::result::Result<(), PortError> {
        if let Some(e) = self.to_play.take_error() {
            return Err(e.into());
        }
        if self.to_play.push_dropping(frame.to_vec()) {
            self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

impl Drop for AlsaPort {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.captured.close();
        self.to_play.close();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_errors_are_classified() {
        assert!(matches!(
            open_error("hw:9", 2, "x".into()),
            MediaError::DeviceMissing { .. }
        ));
        let busy = open_error(
            "hw:0",
            nix::errno::Errno::EBUSY as i32,
            "Device or resource busy".into(),
        );
        assert!(matches!(&busy, MediaError::DeviceBusy { device, .. } if device == "hw:0"));
        assert!(busy.to_string().contains("hw:0"));
        assert!(matches!(
            open_error("x", 13, "perm".into()),
            MediaError::Device { op: "open", .. }
        ));
    }

    #[test]
    fn playback_queue_drops_oldest_and_capture_queue_waits() {
        let q = Queue::new(2);
        assert!(!q.push_dropping(vec![1]));
        assert!(!q.push_dropping(vec![2]));
        assert!(q.push_dropping(vec![3]));
        assert_eq!(q.pop(Duration::ZERO).ok().flatten(), Some(vec![2]));
        let c = Queue::new(1);
        assert!(matches!(
            c.push_blocking(vec![1], Duration::from_millis(1)),
            Push::Done
        ));
        // Full: the frame comes back after the timeout.
        assert!(
            matches!(c.push_blocking(vec![2], Duration::from_millis(1)), Push::Full(f) if f == [2])
        );
        c.close();
        assert!(matches!(
            c.push_blocking(vec![3], Duration::from_millis(1)),
            Push::Closed
        ));
    }
}
