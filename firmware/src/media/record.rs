//! Recordings: the sans-IO [`Recorder`] that decides what goes into a recording
//! and when it ends, and the [`WavSink`] that writes it.
//!
//! # What is recorded
//!
//! The recorder keeps the newest [`KEY_DELAY_MS`] of audio in a delay line before
//! writing it. When the `end_of_key` key is detected in-band, the detector says
//! where the tone began, and the recording is cut there (less a
//! [`KEY_GUARD_MS`] guard for the estimate's error): the key's tone is not in
//! the file. When the modem reported the key first (no position), the delay line
//! is dropped instead, which removes the same span in practice. Other keys are
//! recorded as they sound.
//!
//! `end_of_silence` ends the recording once the recorded audio has been quiet
//! that long (DSP silence detector, −42 dBm0); the silence stays in the file.
//! `duration` cuts at exactly that many samples.
//!
//! # Files and crashes
//!
//! WAV, 8 kHz mono 16-bit (a 16 kHz call is resampled), written incrementally.
//! The header is rewritten every second ([`CHECKPOINT_SECS`]), so after a crash
//! or power loss the file is a valid WAV whose header misses at most the last
//! second (decoders that trust the header stop there; the samples are on disk).
//! On hang-up the session finalizes every recording before it reports `Closed`.

use std::collections::VecDeque;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flowgate_dsp::{Resampler, SilenceConfig, SilenceDetector};
use hound::{SampleFormat, WavSpec, WavWriter};
use uuid::Uuid;

use super::audio::RECORDING_RATE;
use super::error::{MediaError, Result};
use super::render::{Render, Tone, samples_in};
use super::types::{EndOfKey, RecordDirection, RecordOptions, RecordingEnd};

/// Audio held back so a key's tone can be cut out.
pub const KEY_DELAY_MS: u32 = 100;

/// Cut this much before the detector's estimate of a key's start, which can be
/// a few milliseconds late.
pub const KEY_GUARD_MS: u32 = 10;

/// How often the WAV header is brought up to date.
pub const CHECKPOINT_SECS: u32 = 1;

/// Where recorded samples go.
pub(crate) trait RecordSink: Send {
    /// Appends samples at the call rate.
    fn write(&mut self, samples: &[i16]) -> Result<()>;
    /// Completes the file.
    fn finish(&mut self) -> Result<()>;
}

/// A WAV file at 8 kHz, written as the call goes.
pub(crate) struct WavSink {
    path: PathBuf,
    writer: Option<WavWriter<BufWriter<File>>>,
    resampler: Option<Resampler>,
    scratch: Vec<i16>,
    since_checkpoint: u32,
}

impl WavSink {
    /// Creates the file for a call at `call_rate`.
    pub(crate) fn create(path: &Path, call_rate: u32) -> Result<Self> {
        let spec = WavSpec {
            channels: 1,
            sample_rate: RECORDING_RATE,
            bits_per_sample: 16,
            sample_format: SampleFormat::Int,
        };
        // Never overwrite: a recording id names one recording.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| MediaError::io("create", path, e))?;
        let writer = WavWriter::new(BufWriter::new(file), spec)
            .map_err(|e| hound_error("create", path, e))?;
        let resampler = if call_rate == RECORDING_RATE {
            None
        } else {
            Some(Resampler::new(call_rate, RECORDING_RATE)?)
        };
        Ok(WavSink {
            path: path.to_owned(),
            writer: Some(writer),
            resampler,
            scratch: Vec::new(),
            since_checkpoint: 0,
        })
    }

    fn put(&mut self, samples: &[i16]) -> Result<()> {
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        for &s in samples {
            w.write_sample(s)
                .map_err(|e| hound_error("write", &self.path, e))?;
        }
        let n = u32::try_from(samples.len()).unwrap_or(u32::MAX);
        self.since_checkpoint = self.since_checkpoint.saturating_add(n);
        if self.since_checkpoint >= RECORDING_RATE * CHECKPOINT_SECS {
            self.since_checkpoint = 0;
            w.flush().map_err(|e| hound_error("write", &self.path, e))?;
        }
        Ok(())
    }
}

fn hound_error(op: &'static str, path: &Path, e: hound::Error) -> MediaError {
    let source = match e {
        hound::Error::IoError(io) => io,
        other => std::io::Error::other(other.to_string()),
    };
    MediaError::io(op, path, source)
}

impl RecordSink for WavSink {
    fn write(&mut self, samples: &[i16]) -> Result<()> {
        match self.resampler.as_mut() {
            None => self.put(samples),
            Some(r) => {
                let mut buf = std::mem::take(&mut self.scratch);
                buf.clear();
                r.process(samples, &mut buf);
                let res = self.put(&buf);
                self.scratch = buf;
                res
            }
        }
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(r) = self.resampler.as_mut() {
            let mut tail = Vec::new();
            r.flush(&mut tail);
            self.put(&tail)?;
        }
        match self.writer.take() {
            Some(w) => w
                .finalize()
                .map_err(|e| hound_error("finalize", &self.path, e)),
            None => Ok(()),
        }
    }
}

/// What a finished recording reports.
pub(crate) struct Finished {
    pub(crate) id: Uuid,
    pub(crate) path: PathBuf,
    pub(crate) duration: Duration,
    pub(crate) reason: RecordingEnd,
}

enum State {
    Beeping(Tone),
    Active,
}

/// One recording in progress (sans-IO apart from its sink).
pub(crate) struct Recorder {
    id: Uuid,
    path: PathBuf,
    rate: u32,
    end_of_key: EndOfKey,
    direction: RecordDirection,
    sink: Box<dyn RecordSink>,
    state: State,
    /// Delay line: samples not yet written, the first at absolute position `pending_pos`.
    pending: VecDeque<i16>,
    pending_pos: u64,
    delay: usize,
    /// Samples taken into the recording so far, and the most it may take.
    taken: u64,
    limit: u64,
    /// Samples handed to the sink.
    written: u64,
    silence: Option<(SilenceDetector, u64)>,
    error: Option<MediaError>,
}

impl Recorder {
    /// A recorder at call rate `rate`; `cap` bounds a recording without a duration.
    pub(crate) fn new(
        id: Uuid,
        path: PathBuf,
        opts: &RecordOptions,
        sink: Box<dyn RecordSink>,
        rate: u32,
        cap: Duration,
    ) -> Result<Self> {
        let duration = opts
            .duration
            .filter(|d| !d.is_zero())
            .unwrap_or(cap)
            .min(cap);
        let silence = match opts.end_of_silence.filter(|d| !d.is_zero()) {
            Some(d) => Some((
                SilenceDetector::new(SilenceConfig::new(rate))?,
                u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            )),
            None => None,
        };
        let state = if opts.beep_start {
            State::Beeping(Tone::beep(rate)?)
        } else {
            State::Active
        };
        let delay =
            usize::try_from(u64::from(rate) * u64::from(KEY_DELAY_MS) / 1000).unwrap_or(800);
        Ok(Recorder {
            id,
            path,
            rate,
            end_of_key: opts.end_of_key,
            direction: opts.direction,
            sink,
            state,
            pending: VecDeque::with_capacity(delay * 2),
            pending_pos: 0,
            delay,
            taken: 0,
            limit: samples_in(duration, rate),
            written: 0,
            silence,
            error: None,
        })
    }

    pub(crate) fn id(&self) -> Uuid {
        self.id
    }

    /// While beeping, mixes the beep into the outgoing frame. Returns true when
    /// the recording's audio starts with the next frame.
    pub(crate) fn beep(&mut self, out: &mut [i16]) -> bool {
        let State::Beeping(tone) = &mut self.state else {
            return false;
        };
        let mut beep = vec![0i16; out.len()];
        let n = tone.render(&[], &mut beep);
        flowgate_dsp::mix_into(out, &beep[..n], flowgate_dsp::Gain::UNITY);
        if n < out.len() {
            self.state = State::Active;
            return true;
        }
        false
    }

    pub(crate) fn is_active(&self) -> bool {
        matches!(self.state, State::Active)
    }

    pub(crate) fn direction(&self) -> RecordDirection {
        self.direction
    }

    fn write_until(&mut self, pos: u64) {
        let n = usize::try_from(pos.saturating_sub(self.pending_pos))
            .unwrap_or(usize::MAX)
            .min(self.pending.len());
        if n == 0 {
            return;
        }
        let chunk: Vec<i16> = self.pending.drain(..n).collect();
        self.pending_pos += n as u64;
        if self.error.is_none() {
            match self.sink.write(&chunk) {
                Ok(()) => self.written += n as u64,
                Err(e) => self.error = Some(e),
            }
        }
    }

    /// Feeds the recorded audio of one frame whose first sample is at absolute
    /// position `pos`. Returns why the recording ended, if it did.
    pub(crate) fn feed(&mut self, pos: u64, audio: &[i16]) -> Option<RecordingEnd> {
        if !self.is_active() {
            return None;
        }
        if self.taken == 0 && self.pending.is_empty() {
            self.pending_pos = pos;
        }
        let room = usize::try_from(self.limit - self.taken).unwrap_or(usize::MAX);
        let audio = &audio[..audio.len().min(room)];
        self.pending.extend(audio.iter().copied());
        self.taken += audio.len() as u64;
        let end_of_pending = self.pending_pos + self.pending.len() as u64;
        self.write_until(end_of_pending.saturating_sub(self.delay as u64));
        if self.error.is_some() {
            let e = self.error.take().map(Arc::new);
            return e.map(RecordingEnd::Failed);
        }
        if self.taken >= self.limit {
            return Some(RecordingEnd::Duration);
        }
        if let Some((det, limit_ms)) = &mut self.silence {
            det.process(audio);
            if det.silence_ms() >= *limit_ms {
                return Some(RecordingEnd::Silence);
            }
        }
        None
    }

    /// A merged key press. `at` is where its tone began (in-band) if known.
    /// Returns `Key` when it ends the recording; the key is cut off.
    pub(crate) fn key(&mut self, digit: char, at: Option<u64>) -> Option<RecordingEnd> {
        if !self.is_active() || !self.end_of_key.ends_on(digit) {
            return None;
        }
        let guard = u64::from(self.rate) * u64::from(KEY_GUARD_MS) / 1000;
        let cut = at
            .map_or(self.pending_pos, |a| a.saturating_sub(guard))
            .max(self.pending_pos);
        self.write_until(cut);
        self.pending.clear();
        Some(RecordingEnd::Key(digit))
    }

    /// Writes what is pending (unless a key cut it) and completes the file.
    pub(crate) fn finish(mut self, reason: RecordingEnd) -> Finished {
        let end = self.pending_pos + self.pending.len() as u64;
        self.write_until(end);
        let mut reason = reason;
        if let Some(e) = self.error.take() {
            reason = RecordingEnd::Failed(Arc::new(e));
        }
        if let Err(e) = self.sink.finish() {
            reason = RecordingEnd::Failed(Arc::new(e));
        }
        let micros = self.written.saturating_mul(1_000_000) / u64::from(self.rate.max(1));
        Finished {
            id: self.id,
            path: self.path,
            duration: Duration::from_micros(micros),
            reason,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use parking_lot::Mutex;

    /// A sink that keeps the samples in memory.
    #[derive(Clone, Default)]
    pub(crate) struct MemSink(pub(crate) Arc<Mutex<(Vec<i16>, bool)>>);

    impl RecordSink for MemSink {
        fn write(&mut self, samples: &[i16]) -> Result<()> {
            self.0.lock().0.extend_from_slice(samples);
            Ok(())
        }
        fn finish(&mut self) -> Result<()> {
            self.0.lock().1 = true;
            Ok(())
        }
    }

    fn recorder(opts: RecordOptions) -> (Recorder, MemSink) {
        let sink = MemSink::default();
        let r = Recorder::new(
            Uuid::nil(),
            "x.wav".into(),
            &opts,
            Box::new(sink.clone()),
            8000,
            Duration::from_secs(60),
        )
        .expect("recorder");
        (r, sink)
    }

    fn frame(v: i16) -> Vec<i16> {
        vec![v; 160]
    }

    #[test]
    fn key_is_cut_where_its_tone_began() {
        let (mut r, sink) = recorder(RecordOptions {
            end_of_key: EndOfKey::Digit('#'),
            ..RecordOptions::default()
        });
        for k in 0..10u64 {
            assert!(
                r.feed(1000 + k * 160, &frame(i16::try_from(k).unwrap_or(0)))
                    .is_none()
            );
        }
        assert!(r.key('5', Some(2000)).is_none(), "other keys do not end it");
        let end = r.key('#', Some(1000 + 9 * 160 + 120));
        assert!(matches!(end, Some(RecordingEnd::Key('#'))));
        let done = r.finish(RecordingEnd::Key('#'));
        let (samples, finished) = sink.0.lock().clone();
        assert!(finished);
        // Up to the key's start less the 10 ms guard.
        assert_eq!(samples.len(), 9 * 160 + 40);
        assert_eq!(done.duration, Duration::from_micros((9 * 160 + 40) * 125));
    }

    #[test]
    fn duration_cuts_exactly_and_silence_ends() {
        let (mut r, sink) = recorder(RecordOptions {
            duration: Some(Duration::from_millis(50)),
            ..RecordOptions::default()
        });
        assert!(r.feed(0, &frame(1)).is_none());
        assert!(r.feed(160, &frame(1)).is_none());
        assert!(matches!(
            r.feed(320, &frame(1)),
            Some(RecordingEnd::Duration)
        ));
        r.finish(RecordingEnd::Duration);
        assert_eq!(sink.0.lock().0.len(), 400);

        let (mut r, _) = recorder(RecordOptions {
            end_of_silence: Some(Duration::from_secs(1)),
            ..RecordOptions::default()
        });
        let mut ended = None;
        for k in 0..100u64 {
            if let Some(e) = r.feed(k * 160, &frame(0)) {
                ended = Some((k, e));
                break;
            }
        }
        let (k, e) = ended.expect("silence ends it");
        assert!(matches!(e, RecordingEnd::Silence));
        assert_eq!(k, 49, "1 s of silence is 50 frames");
    }

    #[test]
    fn beep_comes_first_and_is_not_recorded() {
        let (mut r, sink) = recorder(RecordOptions {
            beep_start: true,
            ..RecordOptions::default()
        });
        let mut frames = 0;
        loop {
            let mut out = frame(0);
            assert!(r.feed(0, &frame(7)).is_none());
            let started = r.beep(&mut out);
            frames += 1;
            if started {
                break;
            }
            assert!(out.iter().any(|&s| s != 0));
        }
        assert_eq!(frames, 13, "250 ms beep");
        assert!(sink.0.lock().0.is_empty());
        r.feed(160, &frame(3));
        r.finish(RecordingEnd::Stopped);
        assert_eq!(sink.0.lock().0, frame(3));
    }

    #[test]
    fn wav_sink_writes_8khz_for_wideband_calls() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("r.wav");
        let mut s = WavSink::create(&path, 16000).expect("sink");
        s.write(&vec![1000; 16000]).expect("write");
        s.finish().expect("finish");
        let d = crate::media::audio::decode_file(&path, 10).expect("decode");
        assert_eq!(d.rate, 8000);
        assert_eq!(d.samples.len(), 8000);
    }
}
