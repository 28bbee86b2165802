//! Renderers: the audio of one playback, produced a frame at a time by the media
//! core (prepared samples, tones, DTMF, silence, echo), and music on hold.

use std::f64::consts::TAU;
use std::sync::Arc;
use std::time::Duration;

use flowgate_dsp::{DtmfGenConfig, DtmfGenerator, ToneGenerator, ToneKind};

use super::error::{MediaError, Result};

/// Produces a playback's audio.
pub(crate) trait Render: Send {
    /// Fills `out` with the next samples. `input` is the caller's audio for the
    /// same instants (after inbound mute), as long as `out`. Returns how many
    /// samples belong to the playback: fewer than `out.len()` means it ended in
    /// this buffer (the rest of `out` is unspecified).
    fn render(&mut self, input: &[i16], out: &mut [i16]) -> usize;
}

/// Samples in `d` at `rate`.
pub(crate) fn samples_in(d: Duration, rate: u32) -> u64 {
    let n = d.as_micros().saturating_mul(u128::from(rate)) / 1_000_000;
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn take(left: &mut u64, want: usize) -> usize {
    let n = usize::try_from(*left).unwrap_or(usize::MAX).min(want);
    *left -= n as u64;
    n
}

/// Prepared samples, one segment after the other (a `play` URL list).
pub(crate) struct Pcm {
    segments: Vec<Arc<[i16]>>,
    seg: usize,
    pos: usize,
}

impl Pcm {
    pub(crate) fn new(segments: Vec<Arc<[i16]>>) -> Self {
        Pcm {
            segments,
            seg: 0,
            pos: 0,
        }
    }
}

impl Render for Pcm {
    fn render(&mut self, _input: &[i16], out: &mut [i16]) -> usize {
        let mut filled = 0;
        while filled < out.len() {
            let Some(seg) = self.segments.get(self.seg) else {
                break;
            };
            let rest = seg.get(self.pos..).unwrap_or(&[]);
            let n = rest.len().min(out.len() - filled);
            out[filled..filled + n].copy_from_slice(&rest[..n]);
            filled += n;
            self.pos += n;
            if self.pos >= seg.len() {
                self.seg += 1;
                self.pos = 0;
            }
        }
        filled
    }
}

/// A tone for a bounded time (or until a finite tone such as the beep ends).
pub(crate) struct Tone {
    generator: ToneGenerator,
    left: u64,
}

impl Tone {
    pub(crate) fn beep(rate: u32) -> Result<Self> {
        Ok(Tone {
            generator: ToneGenerator::beep(rate)?,
            left: u64::MAX,
        })
    }

    pub(crate) fn call_progress(
        zone: &str,
        kind: ToneKind,
        duration: Duration,
        rate: u32,
    ) -> Result<Self> {
        Ok(Tone {
            generator: ToneGenerator::call_progress(zone, kind, rate)?,
            left: samples_in(duration, rate),
        })
    }
}

impl Render for Tone {
    fn render(&mut self, _input: &[i16], out: &mut [i16]) -> usize {
        let n = take(&mut self.left, out.len());
        self.generator.fill(&mut out[..n])
    }
}

/// DTMF digits.
pub(crate) struct Digits(DtmfGenerator);

impl Digits {
    pub(crate) fn new(digits: &str, tone: Duration, gap: Duration, rate: u32) -> Result<Self> {
        let ms = |d: Duration, field: &'static str| {
            u32::try_from(d.as_millis()).map_err(|_| MediaError::InvalidOption {
                field,
                reason: format!("{d:?} is too long"),
            })
        };
        if digits.is_empty() {
            return Err(MediaError::InvalidOption {
                field: "digits",
                reason: "no digits to send".into(),
            });
        }
        let config = DtmfGenConfig {
            on_ms: ms(tone, "duration")?,
            off_ms: ms(gap, "interval")?,
            ..DtmfGenConfig::new(rate)
        };
        let mut g = DtmfGenerator::new(config)?;
        g.queue(digits)?;
        Ok(Digits(g))
    }
}

impl Render for Digits {
    fn render(&mut self, _input: &[i16], out: &mut [i16]) -> usize {
        self.0.fill(out)
    }
}

/// Silence for a while.
pub(crate) struct Silence(pub(crate) u64);

impl Render for Silence {
    fn render(&mut self, _input: &[i16], out: &mut [i16]) -> usize {
        let n = take(&mut self.0, out.len());
        out[..n].fill(0);
        n
    }
}

/// The caller's own audio, same frame: the pipeline adds no buffering.
pub(crate) struct Echo(pub(crate) u64);

impl Render for Echo {
    fn render(&mut self, input: &[i16], out: &mut [i16]) -> usize {
        let n = take(&mut self.0, out.len()).min(input.len());
        out[..n].copy_from_slice(&input[..n]);
        n
    }
}

/// Music on hold: a buffer played in a loop.
pub(crate) struct Looping {
    buf: Arc<[i16]>,
    pos: usize,
}

impl Looping {
    pub(crate) fn new(buf: Arc<[i16]>) -> Self {
        Looping { buf, pos: 0 }
    }

    pub(crate) fn fill(&mut self, out: &mut [i16]) {
        if self.buf.is_empty() {
            out.fill(0);
            return;
        }
        for o in out.iter_mut() {
            if self.pos >= self.buf.len() {
                self.pos = 0;
            }
            *o = self.buf[self.pos];
            self.pos += 1;
        }
    }
}

/// The generated music on hold used when no file is configured: a slow, quiet
/// four-note arpeggio (C E G E) of soft bell-like notes with smooth attack and
/// decay, then a rest; about 3.2 s, around −24 dBFS so it never startles.
#[must_use]
pub fn generated_music_on_hold(rate: u32) -> Vec<i16> {
    const NOTES_HZ: [f64; 4] = [261.63, 329.63, 392.0, 329.63];
    let rate_f = f64::from(rate);
    let note = usize::try_from(u64::from(rate) * 450 / 1000).unwrap_or(3600);
    let rest = usize::try_from(u64::from(rate) * 1400 / 1000).unwrap_or(11200);
    let mut out = Vec::with_capacity(note * NOTES_HZ.len() + rest);
    let amplitude = 2000.0;
    for f in NOTES_HZ {
        for i in 0..note {
            let t = i as f64 / rate_f;
            let x = i as f64 / note as f64;
            // 30 ms raised-cosine attack, then an exponential decay to near zero.
            let attack = (t / 0.03).min(1.0);
            let attack = 0.5 - 0.5 * (std::f64::consts::PI * attack).cos();
            let env = attack * (-4.0 * x).exp() * (1.0 - x);
            let v = (TAU * f * t).sin() + 0.3 * (TAU * 2.0 * f * t).sin();
            #[expect(clippy::cast_possible_truncation, reason = "|v·env·amplitude| ≤ 2600")]
            out.push((amplitude * env * v).round() as i16);
        }
    }
    out.resize(out.len() + rest, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(r: &mut dyn Render, frames: usize, len: usize) -> (Vec<i16>, usize) {
        let input: Vec<i16> = (0..len).map(|i| i16::try_from(i).unwrap_or(0)).collect();
        let mut all = Vec::new();
        let mut produced = 0;
        for _ in 0..frames {
            let mut out = vec![0; len];
            let n = r.render(&input, &mut out);
            produced += n;
            all.extend_from_slice(&out[..n]);
            if n < len {
                break;
            }
        }
        (all, produced)
    }

    #[test]
    fn pcm_runs_segments_back_to_back() {
        let mut p = Pcm::new(vec![
            Arc::from(vec![1i16; 150]),
            Arc::from(vec![]),
            Arc::from(vec![2i16; 30]),
        ]);
        let (all, n) = run(&mut p, 5, 160);
        assert_eq!(n, 180);
        assert_eq!(&all[148..152], &[1, 1, 2, 2]);
    }

    #[test]
    fn bounded_sources_end_on_time() {
        let (_, n) = run(
            &mut Silence(samples_in(Duration::from_millis(50), 8000)),
            10,
            160,
        );
        assert_eq!(n, 400);
        let (all, n) = run(&mut Echo(200), 10, 160);
        assert_eq!(n, 200);
        assert_eq!(all[165], 5, "echo copies the input of the same instant");
        let mut busy = Tone::call_progress("us", ToneKind::Busy, Duration::from_millis(100), 8000)
            .expect("busy");
        assert_eq!(run(&mut busy, 10, 160).1, 800);
        let mut beep = Tone::beep(8000).expect("beep");
        assert_eq!(run(&mut beep, 100, 160).1, 2000);
        let mut d = Digits::new(
            "12",
            Duration::from_millis(100),
            Duration::from_millis(50),
            8000,
        )
        .expect("digits");
        assert_eq!(run(&mut d, 100, 160).1, 2000);
        assert!(Digits::new("1x", Duration::from_millis(100), Duration::ZERO, 8000).is_err());
    }

    #[test]
    fn moh_is_quiet_and_loops() {
        let m = generated_music_on_hold(8000);
        assert!(m.len() > 8000 * 3);
        let peak = m.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        assert!(peak > 500 && peak < 4000, "peak {peak}");
        let mut l = Looping::new(Arc::from(vec![1i16, 2, 3]));
        let mut out = [0; 7];
        l.fill(&mut out);
        assert_eq!(out, [1, 2, 3, 1, 2, 3, 1]);
    }
}
