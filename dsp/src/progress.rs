//! Call-progress tone detection: recognises the tones of a zone of the tone table (dial,
//! busy, ringback, congestion) by frequency and cadence.
//!
//! Every 10 ms block is classified per tone as "on" when the energy at the tone's frequencies
//! (Goertzel) carries at least half of the block's energy and the block is louder than the
//! minimum level. The on/off run lengths are then matched against the tone's cadence from the
//! table: a continuous tone (dial tone) is reported after 1 s on; a cadenced tone after
//! `cycles` complete repetitions, every run within ±20 % (at least ±40 ms) of the table. Used by
//! FXO disconnect supervision (busy/congestion from the exchange, Asterisk's `busydetect` +
//! `busycount`) and to hear dial tone before dialling.

use std::collections::VecDeque;
use std::f64::consts::TAU;

use crate::error::{DspError, Result};
use crate::level::dbm0_to_power;
use crate::tones::{Sound, ToneKind, ToneSpec, Zone};
use crate::util::check_rate;

/// Block length in ms.
const BLOCK_MS: u32 = 10;
/// A continuous tone counts after this long: longer than any burst of a cadenced tone with
/// nearby frequencies (India's 750 ms busy bursts share dial tone's 400 Hz carrier; 10 ms
/// blocks cannot tell Australia's 413+438 Hz dial tone from its 425 Hz busy tone).
const CONTINUOUS_MS: u32 = 1000;

/// Settings of the [`ProgressDetector`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressConfig {
    /// 8000 or 16000 Hz.
    pub sample_rate: u32,
    /// Quietest tone recognised. Default −40 dBm0.
    pub min_level_dbm0: f32,
    /// Share of the block energy the tone's frequencies must carry. Default 0.5.
    pub min_energy_fraction: f32,
    /// Repetitions of a cadence before it is reported. Default 2.
    pub cycles: usize,
}

impl ProgressConfig {
    /// Defaults at `sample_rate`.
    #[must_use]
    pub fn new(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            min_level_dbm0: -40.0,
            min_energy_fraction: 0.5,
            cycles: 2,
        }
    }
}

#[derive(Debug, Clone)]
struct Target {
    kind: ToneKind,
    /// Goertzel coefficients `2cos ω` of the tone's frequencies.
    coefs: Vec<f64>,
    /// The repeating on/off pattern (merged runs); empty for a continuous tone.
    pattern: Vec<(bool, u32)>,
    on: bool,
    run_ms: u32,
    history: VecDeque<(bool, u32)>,
    reported: bool,
}

/// Recognises call-progress tones in received audio.
#[derive(Debug, Clone)]
pub struct ProgressDetector {
    config: ProgressConfig,
    block: usize,
    buf: Vec<i16>,
    min_power: f64,
    targets: Vec<Target>,
}

fn frequencies(spec: &ToneSpec) -> Vec<f32> {
    let mut f = Vec::new();
    for s in spec.segments() {
        match s.sound {
            Sound::Silence => {}
            Sound::Sine { f1, f2 } => {
                f.push(f1);
                f.extend(f2);
            }
            Sound::Modulated { carrier, .. } => f.push(carrier),
        }
    }
    f.sort_by(f32::total_cmp);
    f.dedup();
    f
}

fn pattern(spec: &ToneSpec) -> Vec<(bool, u32)> {
    let mut p: Vec<(bool, u32)> = Vec::new();
    for s in spec.segments().iter().filter(|s| !s.once) {
        let Some(ms) = s.duration_ms else {
            return Vec::new();
        };
        let on = !matches!(s.sound, Sound::Silence);
        match p.last_mut() {
            Some((o, d)) if *o == on => *d += ms,
            _ => p.push((on, ms)),
        }
    }
    // A pattern that ends in the state it starts with wraps around.
    if p.len() > 1
        && let (Some(&(first, a)), Some(&(last, b))) = (p.first(), p.last())
        && first == last
    {
        p.pop();
        p[0] = (first, a + b);
    }
    if p.iter().all(|(on, _)| *on) {
        Vec::new()
    } else {
        p
    }
}

impl ProgressDetector {
    /// A detector for `kinds` of `zone`.
    ///
    /// # Errors
    /// [`DspError::UnsupportedSampleRate`]; [`DspError::InvalidConfig`] for a fraction outside
    /// 0…1, zero cycles, or a tone without frequencies.
    pub fn new(zone: &Zone, kinds: &[ToneKind], config: ProgressConfig) -> Result<Self> {
        check_rate(
            "progress tone detector",
            config.sample_rate,
            &[8000, 16000],
            "8000, 16000",
        )?;
        let bad = |field: &'static str, reason: String| DspError::InvalidConfig {
            component: "progress tone detector",
            field,
            reason,
        };
        if !(0.0..=1.0).contains(&config.min_energy_fraction) {
            return Err(bad("min_energy_fraction", "must be 0…1".into()));
        }
        if config.cycles == 0 {
            return Err(bad("cycles", "must be at least 1".into()));
        }
        let rate = f64::from(config.sample_rate);
        let mut targets = Vec::new();
        for &kind in kinds {
            let spec = zone.tone(kind);
            let f = frequencies(spec);
            if f.is_empty() {
                return Err(bad(
                    "kinds",
                    format!("{kind:?} of zone {} has no frequency", zone.code),
                ));
            }
            targets.push(Target {
                kind,
                coefs: f
                    .iter()
                    .map(|&f| 2.0 * (TAU * f64::from(f) / rate).cos())
                    .collect(),
                pattern: pattern(spec),
                on: false,
                run_ms: 0,
                history: VecDeque::new(),
                reported: false,
            });
        }
        let block = usize::try_from(config.sample_rate * BLOCK_MS / 1000).unwrap_or(80);
        Ok(Self {
            block,
            buf: Vec::with_capacity(block),
            min_power: f64::from(dbm0_to_power(config.min_level_dbm0)),
            targets,
            config,
        })
    }

    /// Forgets all history.
    pub fn reset(&mut self) {
        self.buf.clear();
        for t in &mut self.targets {
            t.on = false;
            t.run_ms = 0;
            t.history.clear();
            t.reported = false;
        }
    }

    /// Feeds samples; `on_tone` is called when a tone is recognised (once per episode: again
    /// only after it stopped matching).
    pub fn process(&mut self, mut samples: &[i16], mut on_tone: impl FnMut(ToneKind)) {
        while !samples.is_empty() {
            let take = (self.block - self.buf.len()).min(samples.len());
            self.buf.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            if self.buf.len() == self.block {
                self.block_done(&mut on_tone);
                self.buf.clear();
            }
        }
    }

    fn block_done(&mut self, on_tone: &mut impl FnMut(ToneKind)) {
        let n = self.buf.len() as f64;
        let energy: f64 = self.buf.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        let loud = energy / n >= self.min_power;
        let cycles = self.config.cycles;
        let fraction = f64::from(self.config.min_energy_fraction);
        for t in &mut self.targets {
            let tone: f64 = t
                .coefs
                .iter()
                .map(|&c| goertzel(&self.buf, c) * 2.0 / n)
                .sum();
            let on = loud && tone >= fraction * energy;
            if on == t.on {
                t.run_ms += BLOCK_MS;
            } else {
                if t.run_ms > 0 {
                    t.history.push_back((t.on, t.run_ms));
                    let keep = (t.pattern.len() * (cycles + 1)).max(4);
                    while t.history.len() > keep {
                        t.history.pop_front();
                    }
                }
                t.on = on;
                t.run_ms = BLOCK_MS;
            }
            let matched = if t.pattern.is_empty() {
                t.on && t.run_ms >= CONTINUOUS_MS
            } else {
                cadence_matches(&t.pattern, &t.history, cycles)
            };
            if matched && !t.reported {
                t.reported = true;
                on_tone(t.kind);
            } else if !matched && t.pattern.is_empty() && !t.on {
                t.reported = false;
            } else if !matched && !t.pattern.is_empty() && !t.on && t.run_ms > 2000 {
                t.reported = false;
                t.history.clear();
            }
        }
    }
}

fn close(observed: u32, expected: u32) -> bool {
    let tol = (expected / 5).max(40);
    observed.abs_diff(expected) <= tol
}

/// True when the last `cycles × pattern.len()` completed runs follow the pattern at some
/// rotation.
fn cadence_matches(
    pattern: &[(bool, u32)],
    history: &VecDeque<(bool, u32)>,
    cycles: usize,
) -> bool {
    let need = pattern.len() * cycles;
    if history.len() < need {
        return false;
    }
    let recent: Vec<(bool, u32)> = history.iter().skip(history.len() - need).copied().collect();
    (0..pattern.len()).any(|rot| {
        recent.iter().enumerate().all(|(i, &(on, ms))| {
            let (p_on, p_ms) = pattern[(rot + i) % pattern.len()];
            on == p_on && close(ms, p_ms)
        })
    })
}

/// `|X(ω)|²` by Goertzel, `coef = 2cos ω`.
fn goertzel(samples: &[i16], coef: f64) -> f64 {
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s = f64::from(x) + coef * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    s1 * s1 + s2 * s2 - coef * s1 * s2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tones::{ToneGenerator, ToneTable};

    fn play(zone: &str, kind: ToneKind, ms: usize) -> Vec<i16> {
        let mut g = ToneGenerator::call_progress(zone, kind, 8000).expect("tone");
        let mut v = vec![0i16; ms * 8];
        g.fill(&mut v);
        v
    }

    fn detect(zone: &str, audio: &[i16]) -> Vec<(usize, ToneKind)> {
        let z = ToneTable::builtin()
            .expect("table")
            .zone(zone)
            .expect("zone");
        let mut d =
            ProgressDetector::new(z, &ToneKind::ALL, ProgressConfig::new(8000)).expect("ok");
        let mut out = Vec::new();
        for (i, frame) in audio.chunks(160).enumerate() {
            d.process(frame, |k| out.push((i * 20, k)));
        }
        out
    }

    #[test]
    fn recognises_every_zone_and_kind() {
        let table = ToneTable::builtin().expect("table");
        for zone in table.zones() {
            for kind in [ToneKind::Dial, ToneKind::Busy, ToneKind::Congestion] {
                let audio = play(&zone.code, kind, 6000);
                let found = detect(&zone.code, &audio);
                // Where busy and congestion share frequency and cadence (au), either will do:
                // both mean the far end is gone.
                let same = |a: ToneKind, b: ToneKind| {
                    a == b || (zone.code == "au" && a != ToneKind::Dial && b != ToneKind::Dial)
                };
                assert!(
                    found.iter().any(|&(_, k)| same(k, kind)),
                    "zone {} {kind:?}: {found:?}",
                    zone.code
                );
                // Busy and congestion can share a cadence in some zones; never dial for them.
                if kind != ToneKind::Dial {
                    assert!(
                        !found.iter().any(|&(_, k)| k == ToneKind::Dial),
                        "zone {} {kind:?}: {found:?}",
                        zone.code
                    );
                }
            }
        }
    }

    #[test]
    fn us_busy_is_told_from_congestion_and_silence_is_nothing() {
        let found = detect("us", &play("us", ToneKind::Busy, 4000));
        assert!(found.iter().all(|&(_, k)| k == ToneKind::Busy), "{found:?}");
        assert!(!found.is_empty());
        let found = detect("us", &play("us", ToneKind::Congestion, 4000));
        assert!(
            found.iter().all(|&(_, k)| k == ToneKind::Congestion),
            "{found:?}"
        );
        assert!(detect("us", &vec![0; 16000]).is_empty());
        let dial = detect("us", &play("us", ToneKind::Dial, 1500));
        assert_eq!(dial.len(), 1);
        assert!(dial[0].0 <= 1100, "{dial:?}");
    }
}
