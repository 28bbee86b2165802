//! The conference recording: one WAV file of the mix of every participant (VoIPBIN's
//! `POST /v1.0/conferences/{id}/recording_start`), not one per call.
//!
//! A conference has no common clock (each participant's media thread is paced by its own
//! far end, see [`super::conference`]), so the recording brings its own: a thread that
//! takes one 20 ms frame from a [`ConferenceTap`] per tick of the media clock and writes
//! it with the call recordings' [`WavSink`] (8 kHz, header refreshed every second, so a
//! crash leaves a valid file). The tap's queues absorb the drift between that clock and
//! each participant's, as they do between two participants. The mixing is the
//! conference's sans-IO core; this module is only the pacing and the file.
//!
//! The recording ends on [`ConferenceRecording::stop`] (with the reason the caller
//! gives: a stop, the conference's end), at its duration (or the configured cap), when a
//! write fails, or when the handle is dropped; the thread then finalizes the file and
//! reports [`ConferenceRecordingDone`] once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::audio::RECORDING_RATE;
use super::conference::{Conference, ConferenceTap};
use super::context::MediaContext;
use super::error::{MediaError, Result};
use super::record::{RecordSink, WavSink};
use super::types::RecordingEnd;

/// One frame at the recording rate.
const FRAME: usize = (RECORDING_RATE / 50) as usize;
const TICK: Duration = Duration::from_millis(20);

/// Behind the clock by more than this, the recording stops catching up and re-anchors
/// (a stalled thread must not write a burst of concealment frames).
const MAX_LAG: Duration = Duration::from_millis(200);

/// How a finished conference recording ended.
#[derive(Debug, Clone)]
pub struct ConferenceRecordingDone {
    /// The recording.
    pub id: Uuid,
    /// Its file.
    pub path: PathBuf,
    /// Audio written.
    pub duration: Duration,
    /// Why it ended.
    pub reason: RecordingEnd,
}

/// A conference recording in progress. Dropping it stops the recording
/// ([`RecordingEnd::Stopped`]).
pub struct ConferenceRecording {
    id: Uuid,
    path: PathBuf,
    stop: Arc<Mutex<Option<RecordingEnd>>>,
}

impl ConferenceRecording {
    /// Starts recording `conference` into `<data>/recordings/<id>.wav`, at most `limit`
    /// (the configured cap when `None`). The receiver gets the end, once. Blocking: it
    /// creates the file and the thread.
    ///
    /// # Errors
    /// [`MediaError::Io`] when the file cannot be created (or exists),
    /// [`MediaError::Worker`] when the thread cannot be started.
    pub fn start(
        conference: &Conference,
        ctx: &MediaContext,
        id: Uuid,
        limit: Option<Duration>,
    ) -> Result<(Self, oneshot::Receiver<ConferenceRecordingDone>)> {
        let path = ctx.recording_path(id);
        let sink = WavSink::create(&path, RECORDING_RATE)?;
        let limit = limit.unwrap_or(ctx.settings().max_recording);
        let max_frames = limit.as_millis() / TICK.as_millis();
        let stop = Arc::new(Mutex::new(None));
        let (done_tx, done_rx) = oneshot::channel();
        let worker = Worker {
            id,
            path: path.clone(),
            tap: conference.tap(id),
            sink: Box::new(sink),
            stop: Arc::clone(&stop),
            clock: ctx.clock(),
            max_frames: u64::try_from(max_frames).unwrap_or(u64::MAX),
            written: 0,
        };
        let spawned = std::thread::Builder::new()
            .name(format!("confrec-{id}"))
            .spawn(move || {
                let done = worker.run();
                let _ = done_tx.send(done);
            });
        if let Err(e) = spawned {
            let _ = std::fs::remove_file(&path);
            return Err(MediaError::Worker(e.to_string()));
        }
        tracing::info!(recording = %id, path = %path.display(), "conference recording started");
        Ok((ConferenceRecording { id, path, stop }, done_rx))
    }

    /// The recording's id.
    #[must_use]
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The file being written.
    #[must_use]
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Ends the recording for `reason` at the next frame (the first reason given wins).
    pub fn stop(&self, reason: RecordingEnd) {
        self.stop.lock().get_or_insert(reason);
    }
}

impl Drop for ConferenceRecording {
    fn drop(&mut self) {
        self.stop(RecordingEnd::Stopped);
    }
}

struct Worker {
    id: Uuid,
    path: PathBuf,
    tap: ConferenceTap,
    sink: Box<dyn RecordSink>,
    stop: Arc<Mutex<Option<RecordingEnd>>>,
    clock: Arc<dyn super::clock::Clock>,
    max_frames: u64,
    written: u64,
}

impl Worker {
    /// One frame: the mix into the file, or why the recording ends (sans-IO but for the
    /// sink).
    fn step(&mut self, frame: &mut [i16; FRAME]) -> Option<RecordingEnd> {
        if let Some(reason) = self.stop.lock().take() {
            return Some(reason);
        }
        if self.written >= self.max_frames {
            return Some(RecordingEnd::Duration);
        }
        self.tap.receive(frame, RECORDING_RATE);
        if let Err(e) = self.sink.write(frame) {
            return Some(RecordingEnd::Failed(Arc::new(e)));
        }
        self.written += 1;
        None
    }

    fn run(mut self) -> ConferenceRecordingDone {
        let mut frame = [0i16; FRAME];
        let mut deadline = self.clock.now();
        let reason = loop {
            if let Some(reason) = self.step(&mut frame) {
                break reason;
            }
            deadline += TICK;
            let now = self.clock.now();
            if now > deadline + MAX_LAG {
                deadline = now;
            }
            self.clock.sleep_until(deadline);
        };
        drop(self.tap);
        let reason = match self.sink.finish() {
            Ok(()) => reason,
            Err(e) => RecordingEnd::Failed(Arc::new(e)),
        };
        let duration = TICK * u32::try_from(self.written).unwrap_or(u32::MAX);
        tracing::info!(recording = %self.id, ms = duration.as_millis(), ?reason, "conference recording ended");
        ConferenceRecordingDone {
            id: self.id,
            path: self.path,
            duration,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{ManualClock, MediaSettings};

    /// Keeps what is written, for the frame-level test.
    struct Memory(Arc<Mutex<Vec<i16>>>);

    impl RecordSink for Memory {
        fn write(&mut self, samples: &[i16]) -> Result<()> {
            self.0.lock().extend_from_slice(samples);
            Ok(())
        }
        fn finish(&mut self) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_frame_is_the_mix_of_every_participant_and_the_tap_is_no_participant() {
        let conf = Conference::new();
        let (a, b, c) = (
            conf.join(Uuid::from_u128(1)),
            conf.join(Uuid::from_u128(2)),
            conf.join(Uuid::from_u128(3)),
        );
        let written = Arc::new(Mutex::new(Vec::new()));
        let mut worker = Worker {
            id: Uuid::from_u128(9),
            path: PathBuf::new(),
            tap: conf.tap(Uuid::from_u128(9)),
            sink: Box::new(Memory(written.clone())),
            stop: Arc::new(Mutex::new(None)),
            clock: ManualClock::new(),
            max_frames: 40,
            written: 0,
        };
        assert_eq!(conf.participants().len(), 3, "the tap is not listed");
        let mut frame = [0i16; FRAME];
        // The join cues play first (finite).
        for _ in 0..20 {
            assert!(worker.step(&mut frame).is_none());
        }
        a.send(&[100; FRAME], 8000);
        b.send(&[20; FRAME], 8000);
        c.send(&[3; FRAME], 8000);
        assert!(worker.step(&mut frame).is_none());
        assert!(frame.iter().all(|&s| s == 123), "everybody, once");
        conf.set_muted(Uuid::from_u128(2), true);
        a.send(&[100; FRAME], 8000);
        b.send(&[20; FRAME], 8000);
        c.send(&[3; FRAME], 8000);
        assert!(worker.step(&mut frame).is_none());
        assert!(
            frame.iter().all(|&s| s == 103),
            "a muted participant is not recorded"
        );
        worker.stop.lock().replace(RecordingEnd::Stopped);
        assert!(matches!(
            worker.step(&mut frame),
            Some(RecordingEnd::Stopped)
        ));
        assert_eq!(written.lock().len(), 22 * FRAME);
        drop(worker);
        assert!(!conf.is_empty());
        drop((a, b, c));
        assert!(conf.is_empty());
    }

    #[test]
    fn the_file_ends_at_its_duration() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = MediaSettings {
            data_dir: dir.path().to_path_buf(),
            ..MediaSettings::default()
        };
        // The manual clock never waits: the thread writes the second at once.
        let ctx = MediaContext::with_clock(settings, ManualClock::new()).expect("context");
        let conf = Conference::new();
        let _a = conf.join(Uuid::from_u128(1));
        let id = Uuid::from_u128(9);
        let (rec, done) = ConferenceRecording::start(&conf, &ctx, id, Some(Duration::from_secs(1)))
            .expect("start");
        let done = done.blocking_recv().expect("done");
        assert!(matches!(done.reason, RecordingEnd::Duration));
        assert_eq!(done.duration, Duration::from_secs(1));
        let reader = hound::WavReader::open(rec.path()).expect("wav");
        assert_eq!(reader.spec().sample_rate, 8000);
        assert_eq!(reader.len(), 8000);
        assert!(
            ConferenceRecording::start(&conf, &ctx, id, None).is_err(),
            "a recording id names one file"
        );
    }
}
