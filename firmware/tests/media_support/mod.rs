//! Helpers shared by the media test binaries: contexts in temp dirs, far ends
//! that exchange frames in lockstep, signal measurements, event collection.

#![allow(dead_code, unreachable_pub)]

use std::f64::consts::TAU;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flowgate::media::{
    CallMedia, ChannelPeer, Clock, MediaContext, MediaEvent, MediaEvents, MediaSettings,
};
use flowgate_dsp::{DtmfGenConfig, DtmfGenerator};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Generous timeout for anything the tests wait on.
pub const WAIT: Duration = Duration::from_secs(20);

/// Samples per frame at 8 kHz.
pub const F: usize = 160;

/// A media context with its data dir in `dir`.
pub fn context(dir: &Path) -> MediaContext {
    MediaContext::new(settings(dir)).expect("context")
}

/// Default settings with the data dir in `dir`.
pub fn settings(dir: &Path) -> MediaSettings {
    MediaSettings {
        data_dir: dir.to_owned(),
        ..MediaSettings::default()
    }
}

/// A context whose ports pace on `clock`.
pub fn context_with_clock(dir: &Path, clock: Arc<dyn Clock>) -> MediaContext {
    MediaContext::with_clock(settings(dir), clock).expect("context")
}

/// The far end of a call: sends a frame of caller audio, gets the frame the
/// gateway answered with.
pub trait FarEnd {
    /// One frame in, one frame out.
    fn swap(&mut self, frame: &[i16]) -> Vec<i16>;
}

impl FarEnd for ChannelPeer {
    fn swap(&mut self, frame: &[i16]) -> Vec<i16> {
        ChannelPeer::exchange(self, frame, WAIT).expect("the session answered the frame")
    }
}

/// The far end of a serial PCM port: the master side of a pty.
pub struct PtyFar {
    pub master: File,
    pub slave_path: PathBuf,
    // Kept open so the pty does not hang up before the port opens it.
    _slave: File,
}

impl PtyFar {
    /// A new pty pair.
    pub fn new() -> PtyFar {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let slave_path = nix::unistd::ttyname(&pty.slave).expect("ttyname");
        PtyFar {
            master: File::from(pty.master),
            slave_path,
            _slave: File::from(pty.slave),
        }
    }

    /// Writes raw samples (s16le).
    pub fn send(&mut self, samples: &[i16]) {
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        self.master.write_all(&bytes).expect("write to pty");
    }

    /// Reads exactly `n` samples, waiting up to [`WAIT`].
    pub fn recv(&mut self, n: usize) -> Vec<i16> {
        let mut bytes = vec![0u8; n * 2];
        let mut got = 0;
        while got < bytes.len() {
            let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
            let ready =
                poll(&mut fds, PollTimeout::try_from(WAIT).expect("timeout")).expect("poll");
            assert!(ready > 0, "the port sent nothing within {WAIT:?}");
            got += self.master.read(&mut bytes[got..]).expect("read pty");
        }
        bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    }
}

impl FarEnd for PtyFar {
    fn swap(&mut self, frame: &[i16]) -> Vec<i16> {
        self.send(frame);
        self.recv(frame.len())
    }
}

/// Mean square of the samples.
pub fn power(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples
        .iter()
        .map(|&s| f64::from(s) * f64::from(s))
        .sum::<f64>()
        / samples.len() as f64
}

/// Normalised power of `freq` in the samples (Goertzel), comparable to [`power`].
pub fn tone_power(samples: &[i16], freq: f64, rate: f64) -> f64 {
    let w = TAU * freq / rate;
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s = f64::from(x) + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let p = s1 * s1 + s2 * s2 - c * s1 * s2;
    let n = samples.len().max(1) as f64;
    2.0 * p / (n * n)
}

/// A sine of `freq` Hz, `ms` long, amplitude `amp`, at `rate`.
pub fn sine(freq: f64, ms: u32, amp: f64, rate: u32) -> Vec<i16> {
    let n = usize::try_from(u64::from(rate) * u64::from(ms) / 1000).expect("small");
    #[expect(
        clippy::cast_possible_truncation,
        reason = "|amp| stays within i16 in the tests"
    )]
    (0..n)
        .map(|i| (amp * (TAU * freq * i as f64 / f64::from(rate)).sin()).round() as i16)
        .collect()
}

/// DTMF `digits` as caller audio (`on_ms` tone, `off_ms` pause), 8 kHz.
pub fn dtmf(digits: &str, on_ms: u32, off_ms: u32) -> Vec<i16> {
    let mut g = DtmfGenerator::new(DtmfGenConfig {
        on_ms,
        off_ms,
        ..DtmfGenConfig::new(8000)
    })
    .expect("gen");
    g.queue(digits).expect("digits");
    let n = usize::try_from(g.remaining_samples()).expect("small");
    let mut out = vec![0i16; n.div_ceil(F) * F];
    g.fill(&mut out);
    out
}

/// Cuts samples into whole frames (the last padded with silence).
pub fn frames(samples: &[i16], frame: usize) -> Vec<Vec<i16>> {
    samples
        .chunks(frame)
        .map(|c| {
            let mut f = c.to_vec();
            f.resize(frame, 0);
            f
        })
        .collect()
}

/// Everything the session reported so far.
pub fn drain(events: &mut MediaEvents) -> Vec<MediaEvent> {
    let mut out = Vec::new();
    while let Ok(e) = events.try_recv() {
        out.push(e);
    }
    out
}

/// The digits among events.
/// Sends `keys` as DTMF (100 ms on, 100 ms off) frame by frame and, at frame `at`, passes
/// `modem` to the session as the modem's own report of the key sounding then. Returns the
/// events seen meanwhile.
pub fn dtmf_with_modem_report(
    media: &CallMedia,
    far: &mut dyn FarEnd,
    events: &mut MediaEvents,
    keys: &str,
    at: usize,
    modem: char,
) -> Vec<MediaEvent> {
    let mut seen = Vec::new();
    for (k, f) in frames(&dtmf(keys, 100, 100), F).iter().enumerate() {
        if k == at {
            media.signalled_dtmf(modem).expect("modem digit");
        }
        far.swap(f);
        seen.extend(drain(events));
    }
    seen
}

pub fn digits(events: &[MediaEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Dtmf { digit, .. } => Some(*digit),
            _ => None,
        })
        .collect()
}

/// Waits (asynchronously) for an event matching `pred`, returning it.
pub async fn wait_event(
    events: &mut MediaEvents,
    mut pred: impl FnMut(&MediaEvent) -> bool,
) -> MediaEvent {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(e)) if pred(&e) => return e,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the session ended before the expected event"),
            Err(_) => panic!("no matching event within {WAIT:?}"),
        }
    }
}

/// Exchanges silent frames until an event matching `pred` shows up; returns the
/// last (up to 64) frames exchanged, the last one being the frame in which the
/// event happened, and the events seen. Audio being prepared in the background
/// (TTS, downloads) keeps the loop going for many frames, hence the big bound.
pub fn exchange_until(
    far: &mut dyn FarEnd,
    events: &mut MediaEvents,
    frame: usize,
    max_frames: usize,
    mut pred: impl FnMut(&MediaEvent) -> bool,
) -> (Vec<Vec<i16>>, Vec<MediaEvent>) {
    // The loop blocks this worker; `block_in_place` hands the worker's queued
    // tasks (the background preparation of a playback) to another thread.
    tokio::task::block_in_place(|| exchange_loop(far, events, frame, max_frames, &mut pred))
}

fn exchange_loop(
    far: &mut dyn FarEnd,
    events: &mut MediaEvents,
    frame: usize,
    max_frames: usize,
    pred: &mut dyn FnMut(&MediaEvent) -> bool,
) -> (Vec<Vec<i16>>, Vec<MediaEvent>) {
    let silence = vec![0i16; frame];
    let mut outs = std::collections::VecDeque::new();
    let mut seen = Vec::new();
    for _ in 0..max_frames {
        outs.push_back(far.swap(&silence));
        if outs.len() > 64 {
            outs.pop_front();
        }
        let evs = drain(events);
        let hit = evs.iter().any(&mut *pred);
        seen.extend(evs);
        if hit {
            return (outs.into(), seen);
        }
        std::thread::yield_now();
    }
    panic!("no matching event within {max_frames} frames; saw {seen:?}");
}
