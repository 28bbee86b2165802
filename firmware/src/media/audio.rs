//! Audio formats: the call frame (20 ms of mono `i16`), decoding files and
//! downloads (WAV through hound; MP3, FLAC, OGG/Vorbis and the WAV variants hound
//! does not read through symphonia's reader for the container) into mono samples
//! at the call rate, and writing WAV. MP3, FLAC and OGG/Vorbis are cargo features
//! (off by default: flash size) and the tests build them.
//!
//! Decoding never panics on bad input: every decoder error becomes a
//! [`MediaError::Decode`], and the decoders run under `catch_unwind` as a last
//! guard, because a panic inside a third-party decoder on a hostile file must not
//! take a call (or the daemon) down. (The release profile aborts on panic, so there the
//! guard is the fuzzing of `media_decode`, which counts any panic as a finding.) Containers are checked first (see
//! `sanitize`) so a file cannot make symphonia allocate what it merely declares.
//!
//! Any channel count is mixed down to mono by averaging; any rate the DSP
//! resampler accepts is converted.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use flowgate_dsp::resample;
use hound::{SampleFormat, WavReader, WavSpec, WavWriter};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
#[cfg(feature = "flac")]
use symphonia::default::formats::FlacReader;
#[cfg(feature = "mp3")]
use symphonia::default::formats::MpaReader;
#[cfg(feature = "ogg-vorbis")]
use symphonia::default::formats::OggReader;
use symphonia::default::formats::WavReader as SymWavReader;

use super::error::{MediaError, Result};
use super::sanitize::{Container, sanitize};

/// Length of one frame in milliseconds.
pub const FRAME_MS: u32 = 20;

/// Call sample rates the media layer runs at.
pub const CALL_RATES: [u32; 2] = [8000, 16000];

/// Rate of recordings and of the WAV helpers' default.
pub const RECORDING_RATE: u32 = 8000;

/// Limit used by the public helpers ([`read_audio_file`], [`read_audio_bytes`]).
const HELPER_MAX_SECS: u64 = 3600;

/// Samples in one 20 ms frame at `rate`.
#[must_use]
pub fn frame_len(rate: u32) -> usize {
    usize::try_from(rate / (1000 / FRAME_MS)).unwrap_or(160)
}

/// Checks that `rate` is a call rate.
pub(crate) fn check_call_rate(rate: u32, device: &str) -> Result<()> {
    if CALL_RATES.contains(&rate) {
        Ok(())
    } else {
        Err(MediaError::DeviceConfig {
            device: device.to_owned(),
            setting: "sample rate",
            detail: format!("{rate} Hz is not a call rate (8000 or 16000)"),
        })
    }
}

/// Decoded audio: mono samples at their own rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Mono samples.
    pub samples: Vec<i16>,
    /// Their rate in Hz.
    pub rate: u32,
}

impl Decoded {
    /// Resamples to `rate` (no-op when equal).
    ///
    /// # Errors
    /// [`MediaError::Dsp`] when the resampler cannot convert between the rates.
    pub fn into_rate(self, rate: u32) -> Result<Vec<i16>> {
        if self.rate == rate {
            return Ok(self.samples);
        }
        Ok(resample(&self.samples, self.rate, rate)?)
    }
}

/// Decodes a file (the format comes from its content).
///
/// # Errors
/// [`MediaError::Io`] when it cannot be read, [`MediaError::Decode`] when it is
/// not audio we understand, [`MediaError::TooLong`] beyond `max_secs`.
pub fn decode_file(path: &Path, max_secs: u64) -> Result<Decoded> {
    let bytes = std::fs::read(path).map_err(|e| MediaError::io("read", path, e))?;
    decode_bytes(bytes, &path.display().to_string(), max_secs)
}

/// Decodes audio held in memory (the format comes from its content). `what`
/// names it in errors.
///
/// # Errors
/// [`MediaError::Decode`], [`MediaError::TooLong`].
pub fn decode_bytes(bytes: Vec<u8>, what: &str, max_secs: u64) -> Result<Decoded> {
    let guarded = |f: &dyn Fn() -> Result<Decoded>| {
        catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
            Err(MediaError::Decode {
                what: what.to_owned(),
                reason: "the decoder crashed on this data".into(),
            })
        })
    };
    let is_riff = bytes.starts_with(b"RIFF");
    if is_riff {
        match guarded(&|| decode_wav(&bytes, what, max_secs)) {
            Ok(d) => return Ok(d),
            // hound reads PCM and float WAV; symphonia also knows µ-law, A-law
            // and ADPCM WAV, so give it a try before giving up.
            Err(MediaError::Decode { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let (bytes, container) = sanitize(bytes, what)?;
    guarded(&|| decode_symphonia(bytes.clone(), container, what, max_secs))
}

fn decode_error(what: &str, reason: impl std::fmt::Display) -> MediaError {
    MediaError::Decode {
        what: what.to_owned(),
        reason: reason.to_string(),
    }
}

fn too_long(what: &str, max_secs: u64) -> MediaError {
    MediaError::TooLong {
        what: what.to_owned(),
        limit_secs: max_secs,
    }
}

/// Sample frames allowed for `max_secs` at `rate`.
fn frame_limit(rate: u32, max_secs: u64) -> u64 {
    u64::from(rate).saturating_mul(max_secs)
}

/// Averages interleaved frames of `channels` into mono, appending to `out`.
fn mix_down(interleaved: impl Iterator<Item = i32>, channels: usize, out: &mut Vec<i16>) {
    let channels = channels.max(1);
    let mut acc = 0i64;
    let mut n = 0usize;
    let divisor = i64::try_from(channels).unwrap_or(1);
    for s in interleaved {
        acc += i64::from(s);
        n += 1;
        if n == channels {
            let v = (acc / divisor).clamp(i64::from(i16::MIN), i64::from(i16::MAX));
            out.push(i16::try_from(v).unwrap_or_default());
            acc = 0;
            n = 0;
        }
    }
}

fn decode_wav(bytes: &[u8], what: &str, max_secs: u64) -> Result<Decoded> {
    let reader = WavReader::new(Cursor::new(bytes)).map_err(|e| decode_error(what, e))?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels);
    if channels == 0 || spec.sample_rate == 0 {
        return Err(decode_error(what, "WAV header with zero channels or rate"));
    }
    let frames = u64::from(reader.duration());
    if frames > frame_limit(spec.sample_rate, max_secs) {
        return Err(too_long(what, max_secs));
    }
    // The header's length is a claim: reserve no more than the bytes hold.
    let mut samples = Vec::with_capacity(usize::try_from(frames).unwrap_or(0).min(bytes.len() / 2));
    let bits = u32::from(spec.bits_per_sample);
    let err = |e: hound::Error| decode_error(what, e);
    match spec.sample_format {
        SampleFormat::Int if bits <= 16 => {
            // hound returns 8-bit samples unscaled (−128..127): bring every
            // width to the 16-bit scale.
            let shift = 16 - bits;
            let it = reader
                .into_samples::<i16>()
                .map(|s| s.map(|v| i32::from(v) << shift));
            let all: std::result::Result<Vec<i32>, _> = it.collect();
            mix_down(all.map_err(err)?.into_iter(), channels, &mut samples);
        }
        SampleFormat::Int if bits <= 32 => {
            let shift = bits - 16;
            let all: std::result::Result<Vec<i32>, _> = reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| v >> shift))
                .collect();
            mix_down(all.map_err(err)?.into_iter(), channels, &mut samples);
        }
        SampleFormat::Int => return Err(decode_error(what, format!("{bits}-bit samples"))),
        SampleFormat::Float => {
            let all: std::result::Result<Vec<f32>, _> = reader.into_samples::<f32>().collect();
            mix_down(
                all.map_err(err)?.into_iter().map(float_to_i32),
                channels,
                &mut samples,
            );
        }
    }
    Ok(Decoded {
        samples,
        rate: spec.sample_rate,
    })
}

fn float_to_i32(v: f32) -> i32 {
    let v = if v.is_finite() {
        v.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    #[expect(
        clippy::cast_possible_truncation,
        reason = "clamped to ±32767 just above"
    )]
    let s = (v * 32767.0).round() as i32;
    s
}

fn decode_symphonia(
    bytes: Vec<u8>,
    container: Container,
    what: &str,
    max_secs: u64,
) -> Result<Decoded> {
    let mss = MediaSourceStream::new(
        Box::new(Cursor::new(bytes)),
        MediaSourceStreamOptions::default(),
    );
    let opts = FormatOptions::default();
    let opened: std::result::Result<Box<dyn FormatReader>, SymError> = match container {
        Container::Wav => SymWavReader::try_new(mss, &opts).map(|r| Box::new(r) as _),
        #[cfg(feature = "flac")]
        Container::Flac => FlacReader::try_new(mss, &opts).map(|r| Box::new(r) as _),
        #[cfg(feature = "ogg-vorbis")]
        Container::Ogg => OggReader::try_new(mss, &opts).map(|r| Box::new(r) as _),
        #[cfg(feature = "mp3")]
        Container::Mpeg => MpaReader::try_new(mss, &opts).map(|r| Box::new(r) as _),
        // A decoder left out of this build (firmware/Cargo.toml features).
        #[cfg(not(all(feature = "flac", feature = "ogg-vorbis", feature = "mp3")))]
        other => {
            return Err(decode_error(
                what,
                format!(
                    "{other:?} audio is not available in this build of flowgate (cargo feature \"{}\")",
                    other.feature()
                ),
            ));
        }
    };
    let mut format =
        opened.map_err(|e| decode_error(what, format!("unreadable {container:?} ({e})")))?;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| decode_error(what, "no audio track"))?;
    let track_id = track.id;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| decode_error(what, format!("unsupported codec ({e})")))?;
    let mut rate = track.codec_params.sample_rate;
    let mut samples = Vec::new();
    let mut buf: Option<SampleBuffer<i16>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            // A chained stream changing its parameters: what came so far is the prompt.
            Err(SymError::ResetRequired) => break,
            Err(e) => return Err(decode_error(what, e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            // One corrupt packet: skip it as players do.
            Err(SymError::DecodeError(_)) => continue,
            Err(e) => return Err(decode_error(what, e)),
        };
        let spec = *decoded.spec();
        rate = Some(spec.rate);
        let channels = spec.channels.count();
        let capacity = decoded.capacity();
        let sb = match &mut buf {
            Some(b) if b.capacity() >= capacity * channels => b,
            _ => buf.insert(SampleBuffer::new(capacity as u64, spec)),
        };
        sb.copy_interleaved_ref(decoded);
        mix_down(
            sb.samples().iter().map(|&s| i32::from(s)),
            channels,
            &mut samples,
        );
        if samples.len() as u64 > frame_limit(spec.rate, max_secs) {
            return Err(too_long(what, max_secs));
        }
    }
    let rate = rate
        .filter(|r| *r > 0)
        .ok_or_else(|| decode_error(what, "no sample rate"))?;
    if samples.is_empty() {
        return Err(decode_error(what, "no audio in it"));
    }
    Ok(Decoded { samples, rate })
}

/// Reads any supported audio file into mono samples at `rate` (up to an hour).
///
/// # Errors
/// As [`decode_file`], plus [`MediaError::Dsp`] for a rate the resampler refuses.
pub fn read_audio_file(path: &Path, rate: u32) -> Result<Vec<i16>> {
    decode_file(path, HELPER_MAX_SECS)?.into_rate(rate)
}

/// Reads supported audio held in memory (a WAV upload, say) into mono samples
/// at `rate` (up to an hour).
///
/// # Errors
/// As [`decode_bytes`].
pub fn read_audio_bytes(bytes: &[u8], rate: u32) -> Result<Vec<i16>> {
    decode_bytes(bytes.to_vec(), "uploaded audio", HELPER_MAX_SECS)?.into_rate(rate)
}

fn mono_spec(rate: u32) -> WavSpec {
    WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: SampleFormat::Int,
    }
}

/// A mono 16-bit WAV file's bytes.
///
/// # Errors
/// [`MediaError::Decode`] only if the WAV would exceed the format's 4 GiB.
pub fn wav_bytes(samples: &[i16], rate: u32) -> Result<Vec<u8>> {
    let mut out = Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    let what = "WAV output";
    let mut w = WavWriter::new(&mut out, mono_spec(rate)).map_err(|e| decode_error(what, e))?;
    let mut i16w =
        w.get_i16_writer(u32::try_from(samples.len()).map_err(|e| decode_error(what, e))?);
    for &s in samples {
        i16w.write_sample(s);
    }
    i16w.flush().map_err(|e| decode_error(what, e))?;
    w.finalize().map_err(|e| decode_error(what, e))?;
    Ok(out.into_inner())
}

/// Writes samples to a mono 16-bit WAV file, atomically (temporary file, then
/// rename), so a reader never sees half a file.
///
/// # Errors
/// [`MediaError::Io`].
pub fn write_wav(path: &Path, samples: &[i16], rate: u32) -> Result<()> {
    let bytes = wav_bytes(samples, rate)?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a
/// rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&tmp, bytes).map_err(|e| MediaError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        MediaError::io("rename into", path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| i16::try_from((i % 200) * 100).unwrap_or(0) - 10_000)
            .collect()
    }

    #[test]
    fn wav_round_trip() {
        let s = tone(800);
        let bytes = wav_bytes(&s, 8000).expect("wav");
        assert_eq!(bytes.len(), 44 + 1600);
        let d = decode_bytes(bytes.clone(), "t", 10).expect("decode");
        assert_eq!(
            d,
            Decoded {
                samples: s.clone(),
                rate: 8000
            }
        );
        assert_eq!(read_audio_bytes(&bytes, 8000).expect("read"), s);
        let up = read_audio_bytes(&bytes, 16000).expect("resample");
        assert_eq!(up.len(), 1600);
    }

    #[test]
    fn stereo_and_8_bit_are_mixed_and_scaled() {
        let mut out = Cursor::new(Vec::new());
        let spec = WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 8,
            sample_format: SampleFormat::Int,
        };
        let mut w = WavWriter::new(&mut out, spec).expect("writer");
        for _ in 0..10 {
            w.write_sample(100i8).expect("l");
            w.write_sample(-20i8).expect("r");
        }
        w.finalize().expect("fin");
        let d = decode_bytes(out.into_inner(), "t", 10).expect("decode");
        assert_eq!(d.samples, vec![40 * 256; 10]);
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_panic() {
        for bytes in [
            vec![],
            b"RIFF\x10\0\0\0WAVEjunk".to_vec(),
            vec![0xffu8; 4096],
            b"ID3\x04garbage".to_vec(),
        ] {
            let err = decode_bytes(bytes, "junk.bin", 10).expect_err("not audio");
            assert!(matches!(err, MediaError::Decode { .. }), "{err}");
        }
    }

    #[test]
    fn too_long_is_refused() {
        let bytes = wav_bytes(&tone(8000 * 3), 8000).expect("wav");
        let err = decode_bytes(bytes, "long.wav", 2).expect_err("too long");
        assert!(matches!(err, MediaError::TooLong { limit_secs: 2, .. }));
    }

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("x.wav");
        write_wav(&p, &[1, 2, 3], 8000).expect("write");
        write_wav(&p, &[4, 5], 8000).expect("rewrite");
        assert_eq!(read_audio_file(&p, 8000).expect("read"), vec![4, 5]);
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }
}
