//! Call-progress tones (dial, busy, ringback, congestion) per country zone,
//! from a table kept as data (`dsp/data/tones.toml`), a streaming generator
//! for any tone in the `indications.conf` notation, and the beep.
//!
//! The notation (see the head of `tones.toml`): comma-separated segments
//! `FREQ[/MS]`, `FREQ` one of `0`, `f`, `f1+f2`, `f1*f2` (AM); a leading `!`
//! plays a segment on the first pass only.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::error::{DspError, Result};
use crate::level::dbm0_to_amplitude;
use crate::osc::{Osc, to_i16};
use crate::util::{check_rate, ms_to_samples};

/// The built-in table (`dsp/data/tones.toml`).
const BUILTIN: &str = include_str!("../data/tones.toml");

/// Level of each frequency of a call-progress tone unless told otherwise.
/// −13 dBm0 is the North American dial-tone level and a common choice
/// elsewhere.
pub const DEFAULT_TONE_LEVEL_DBM0: f32 = -13.0;

/// Modulation depth of `f1*f2` tones.
const AM_DEPTH: f64 = 0.9;

/// Longest accepted segment (one hour) and frequency list sanity bounds.
const MAX_SEGMENT_MS: u32 = 3_600_000;
const MAX_SEGMENTS: usize = 64;

/// What a segment sounds like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sound {
    /// Nothing.
    Silence,
    /// One sine, or two added (`f1+f2`).
    Sine {
        /// First frequency in Hz.
        f1: f32,
        /// Second frequency in Hz, if any.
        f2: Option<f32>,
    },
    /// `carrier` amplitude-modulated by `modulator` (`f1*f2`), depth 0.9.
    Modulated {
        /// Carrier frequency in Hz.
        carrier: f32,
        /// Modulating frequency in Hz.
        modulator: f32,
    },
}

/// One step of a cadence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// What plays.
    pub sound: Sound,
    /// How long; `None` = forever (only the last segment).
    pub duration_ms: Option<u32>,
    /// Played on the first pass only (`!` prefix).
    pub once: bool,
}

/// A tone: its segments in order. The segments not marked `once` repeat
/// for as long as the tone plays; when all are `once` the tone ends.
#[derive(Debug, Clone, PartialEq)]
pub struct ToneSpec {
    segments: Vec<Segment>,
}

impl ToneSpec {
    /// A one-shot 1 kHz beep of 250 ms.
    #[must_use]
    pub fn beep() -> ToneSpec {
        ToneSpec {
            segments: vec![Segment {
                sound: Sound::Sine {
                    f1: 1000.0,
                    f2: None,
                },
                duration_ms: Some(250),
                once: true,
            }],
        }
    }

    /// The segments in order.
    #[must_use]
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// True when the tone ends by itself (every segment is `once`).
    #[must_use]
    pub fn is_finite(&self) -> bool {
        self.segments.iter().all(|s| s.once)
    }

    /// Parses the `indications.conf` notation.
    ///
    /// # Errors
    /// [`DspError::ToneTable`] naming the segment and what is wrong with it.
    pub fn parse(text: &str) -> Result<ToneSpec> {
        let err = |reason: String| DspError::ToneTable {
            reason: format!("tone {text:?}: {reason}"),
        };
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        if parts.len() > MAX_SEGMENTS {
            return Err(err(format!("more than {MAX_SEGMENTS} segments")));
        }
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let seg = parse_segment(part).map_err(|r| err(format!("segment {}: {r}", i + 1)))?;
            if seg.duration_ms.is_none() && i + 1 != parts.len() {
                return Err(err(format!(
                    "segment {} has no duration but is not the last",
                    i + 1
                )));
            }
            segments.push(seg);
        }
        Ok(ToneSpec { segments })
    }
}

impl FromStr for ToneSpec {
    type Err = DspError;

    fn from_str(s: &str) -> Result<Self> {
        ToneSpec::parse(s)
    }
}

fn parse_segment(part: &str) -> std::result::Result<Segment, String> {
    let (once, body) = match part.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, part),
    };
    let (freq, dur) = match body.split_once('/') {
        Some((f, d)) => (f.trim(), Some(d.trim())),
        None => (body, None),
    };
    let duration_ms = match dur {
        None => None,
        Some(d) => {
            let ms: u32 = d
                .parse()
                .map_err(|_| format!("duration {d:?} is not a whole number of ms"))?;
            if ms == 0 || ms > MAX_SEGMENT_MS {
                return Err(format!("duration {ms} ms outside 1..={MAX_SEGMENT_MS}"));
            }
            Some(ms)
        }
    };
    let hz = |s: &str| -> std::result::Result<f32, String> {
        let v: f32 = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a frequency"))?;
        if v.is_finite() && v > 0.0 && v <= 20_000.0 {
            Ok(v)
        } else {
            Err(format!("frequency {s:?} outside 0 < f ≤ 20000 Hz"))
        }
    };
    let sound = if freq == "0" {
        Sound::Silence
    } else if let Some((a, b)) = freq.split_once('+') {
        Sound::Sine {
            f1: hz(a)?,
            f2: Some(hz(b)?),
        }
    } else if let Some((a, b)) = freq.split_once('*') {
        Sound::Modulated {
            carrier: hz(a)?,
            modulator: hz(b)?,
        }
    } else {
        Sound::Sine {
            f1: hz(freq)?,
            f2: None,
        }
    };
    Ok(Segment {
        sound,
        duration_ms,
        once,
    })
}

/// The call-progress tones a zone defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ToneKind {
    /// Dial tone.
    Dial,
    /// Busy (subscriber busy).
    Busy,
    /// Ringback (the far end is ringing).
    Ringback,
    /// Congestion / reorder (network busy).
    Congestion,
}

impl ToneKind {
    /// All kinds, in table order.
    pub const ALL: [ToneKind; 4] = [
        ToneKind::Dial,
        ToneKind::Busy,
        ToneKind::Ringback,
        ToneKind::Congestion,
    ];
}

/// One zone of the tone table.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// Zone code (`us`, `de`, …).
    pub code: String,
    /// Human-readable name.
    pub description: String,
    /// FXS ringing cadence: on, off, on, off… in ms.
    pub ring_cadence_ms: Vec<u32>,
    /// Dial tone.
    pub dial: ToneSpec,
    /// Busy tone.
    pub busy: ToneSpec,
    /// Ringback tone.
    pub ringback: ToneSpec,
    /// Congestion tone.
    pub congestion: ToneSpec,
}

impl Zone {
    /// The tone of `kind`.
    #[must_use]
    pub fn tone(&self, kind: ToneKind) -> &ToneSpec {
        match kind {
            ToneKind::Dial => &self.dial,
            ToneKind::Busy => &self.busy,
            ToneKind::Ringback => &self.ringback,
            ToneKind::Congestion => &self.congestion,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    zones: BTreeMap<String, RawZone>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    description: String,
    ring_cadence: Vec<u32>,
    dial: String,
    busy: String,
    ringback: String,
    congestion: String,
}

/// The per-zone tone table.
#[derive(Debug, Clone, PartialEq)]
pub struct ToneTable {
    zones: BTreeMap<String, Zone>,
}

impl ToneTable {
    /// The table compiled in from `dsp/data/tones.toml` (parsed once).
    ///
    /// # Errors
    /// Only if the shipped file were invalid, which the tests rule out.
    pub fn builtin() -> Result<&'static ToneTable> {
        static TABLE: OnceLock<Result<ToneTable>> = OnceLock::new();
        TABLE
            .get_or_init(|| ToneTable::from_toml(BUILTIN))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Parses a table in the `tones.toml` format.
    ///
    /// # Errors
    /// [`DspError::ToneTable`] naming the zone, the field and the problem.
    pub fn from_toml(text: &str) -> Result<ToneTable> {
        let raw: RawTable = toml::from_str(text).map_err(|e| DspError::ToneTable {
            reason: e.to_string(),
        })?;
        let mut zones = BTreeMap::new();
        for (code, z) in raw.zones {
            let in_zone = |field: &str, e: DspError| DspError::ToneTable {
                reason: format!("zone {code:?} {field}: {e}"),
            };
            let parse = |field: &str, s: &str| ToneSpec::parse(s).map_err(|e| in_zone(field, e));
            if z.ring_cadence.is_empty() || z.ring_cadence.contains(&0) {
                return Err(DspError::ToneTable {
                    reason: format!("zone {code:?} ring_cadence: needs non-zero durations"),
                });
            }
            let zone = Zone {
                description: z.description,
                ring_cadence_ms: z.ring_cadence,
                dial: parse("dial", &z.dial)?,
                busy: parse("busy", &z.busy)?,
                ringback: parse("ringback", &z.ringback)?,
                congestion: parse("congestion", &z.congestion)?,
                code: code.clone(),
            };
            zones.insert(code, zone);
        }
        Ok(ToneTable { zones })
    }

    /// The zone with this code (case-insensitive).
    ///
    /// # Errors
    /// [`DspError::UnknownZone`] listing the known codes.
    pub fn zone(&self, code: &str) -> Result<&Zone> {
        self.zones
            .get(&code.to_ascii_lowercase())
            .ok_or_else(|| DspError::UnknownZone {
                zone: code.to_owned(),
                known: self.zones.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    /// All zones, ordered by code.
    pub fn zones(&self) -> impl Iterator<Item = &Zone> {
        self.zones.values()
    }
}

/// A segment ready to play.
#[derive(Debug, Clone, Copy)]
struct Prepared {
    kind: Sound,
    a: Osc,
    b: Osc,
    samples: Option<u64>,
    once: bool,
}

/// Streams a [`ToneSpec`] into caller buffers, phase-continuous across
/// calls; cadences run on from one call to the next.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    segments: Vec<Prepared>,
    idx: usize,
    left: Option<u64>,
    first_pass: bool,
    finished: bool,
    a: Osc,
    b: Osc,
}

impl ToneGenerator {
    /// A generator for `spec` at `sample_rate` (8000 or 16000 Hz) with each
    /// frequency at `level_dbm0`.
    ///
    /// # Errors
    /// [`DspError::UnsupportedSampleRate`]; [`DspError::InvalidConfig`] when
    /// a frequency is at or above half the sample rate, the level is not
    /// finite or above +3 dBm0, or the spec is empty.
    pub fn new(spec: &ToneSpec, sample_rate: u32, level_dbm0: f32) -> Result<Self> {
        check_rate("tone generator", sample_rate, &[8000, 16000], "8000, 16000")?;
        let invalid = |field: &'static str, reason: String| DspError::InvalidConfig {
            component: "tone generator",
            field,
            reason,
        };
        if !level_dbm0.is_finite() || level_dbm0 > 3.0 {
            return Err(invalid(
                "level_dbm0",
                format!("{level_dbm0} is not a level at or below +3 dBm0"),
            ));
        }
        if spec.segments.is_empty() {
            return Err(invalid("spec", "a tone needs at least one segment".into()));
        }
        let amp = f64::from(dbm0_to_amplitude(level_dbm0));
        let nyquist = f64::from(sample_rate) / 2.0;
        let osc = |f: f32, a: f64| -> Result<Osc> {
            if f64::from(f) >= nyquist {
                return Err(invalid(
                    "spec",
                    format!("{f} Hz is not below half the sample rate ({nyquist} Hz)"),
                ));
            }
            Ok(Osc::new(f64::from(f), sample_rate, a))
        };
        let silent = Osc::new(0.0, sample_rate, 0.0);
        let segments = spec
            .segments
            .iter()
            .map(|s| {
                let (a, b) = match s.sound {
                    Sound::Silence => (silent, silent),
                    Sound::Sine { f1, f2 } => {
                        (osc(f1, amp)?, f2.map_or(Ok(silent), |f| osc(f, amp))?)
                    }
                    // Peak-normalised: carrier·(1 + m·sin)/(1 + m).
                    Sound::Modulated { carrier, modulator } => (
                        osc(carrier, amp / (1.0 + AM_DEPTH))?,
                        osc(modulator, AM_DEPTH)?,
                    ),
                };
                Ok(Prepared {
                    kind: s.sound,
                    a,
                    b,
                    samples: s
                        .duration_ms
                        .map(|ms| ms_to_samples(ms, sample_rate).max(1)),
                    once: s.once,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut g = Self {
            segments,
            idx: 0,
            left: None,
            first_pass: true,
            finished: false,
            a: silent,
            b: silent,
        };
        g.enter(0);
        Ok(g)
    }

    /// A one-shot 1 kHz, 250 ms beep at −10 dBm0.
    ///
    /// # Errors
    /// [`DspError::UnsupportedSampleRate`] for rates other than 8000/16000.
    pub fn beep(sample_rate: u32) -> Result<Self> {
        ToneGenerator::new(&ToneSpec::beep(), sample_rate, -10.0)
    }

    /// The tone `kind` of zone `zone` from the built-in table, at
    /// [`DEFAULT_TONE_LEVEL_DBM0`].
    ///
    /// # Errors
    /// [`DspError::UnknownZone`] or [`DspError::UnsupportedSampleRate`].
    pub fn call_progress(zone: &str, kind: ToneKind, sample_rate: u32) -> Result<Self> {
        let spec = ToneTable::builtin()?.zone(zone)?.tone(kind);
        ToneGenerator::new(spec, sample_rate, DEFAULT_TONE_LEVEL_DBM0)
    }

    fn enter(&mut self, idx: usize) {
        self.idx = idx;
        if let Some(seg) = self.segments.get(idx) {
            self.a = seg.a;
            self.b = seg.b;
            self.left = seg.samples;
        }
    }

    /// Index of the segment after `idx` on the current pass, wrapping to the
    /// repeating segments; `None` when the tone is over.
    fn following(&mut self, idx: usize) -> Option<usize> {
        if let Some(off) = self.segments[idx + 1..]
            .iter()
            .position(|s| !s.once || self.first_pass)
        {
            return Some(idx + 1 + off);
        }
        self.first_pass = false;
        self.segments.iter().position(|s| !s.once)
    }

    /// Writes the next `out.len()` samples. Returns how many belong to the
    /// tone: `out.len()` unless a finite tone (such as the beep) ended in
    /// this buffer, in which case the rest is silence.
    pub fn fill(&mut self, out: &mut [i16]) -> usize {
        let mut i = 0;
        while i < out.len() {
            if self.finished {
                out[i..].fill(0);
                return i;
            }
            let Some(seg) = self.segments.get(self.idx) else {
                self.finished = true;
                continue;
            };
            let kind = seg.kind;
            let rest = &mut out[i..];
            let n = match self.left {
                None => rest.len(),
                Some(left) => rest.len().min(usize::try_from(left).unwrap_or(usize::MAX)),
            };
            let chunk = &mut rest[..n];
            match kind {
                Sound::Silence => chunk.fill(0),
                Sound::Sine { f2: None, .. } => {
                    for o in chunk.iter_mut() {
                        *o = to_i16(self.a.next());
                    }
                }
                Sound::Sine { f2: Some(_), .. } => {
                    for o in chunk.iter_mut() {
                        *o = to_i16(self.a.next() + self.b.next());
                    }
                }
                Sound::Modulated { .. } => {
                    for o in chunk.iter_mut() {
                        *o = to_i16(self.a.next() * (1.0 + self.b.next()));
                    }
                }
            }
            i += n;
            if let Some(left) = self.left {
                let left = left - n as u64;
                self.left = Some(left);
                if left == 0 {
                    match self.following(self.idx) {
                        Some(next) => self.enter(next),
                        None => self.finished = true,
                    }
                }
            }
        }
        i
    }

    /// True once a finite tone has played completely.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Starts the tone again from its first segment.
    pub fn restart(&mut self) {
        self.first_pass = true;
        self.finished = false;
        self.enter(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::level::rms_dbm0;

    #[test]
    fn builtin_table_has_every_required_zone() {
        let t = ToneTable::builtin().expect("table parses");
        for code in [
            "us", "uk", "de", "fr", "nl", "dk", "se", "es", "it", "in", "au", "jp", "cn", "br",
            "za",
        ] {
            let z = t.zone(code).expect(code);
            assert!(!z.ring_cadence_ms.is_empty());
            for kind in ToneKind::ALL {
                let mut g = ToneGenerator::new(z.tone(kind), 8000, -13.0).expect(code);
                let mut buf = vec![0i16; 8000];
                assert_eq!(g.fill(&mut buf), 8000, "{code} {kind:?} repeats");
                assert!(buf.iter().any(|&s| s != 0), "{code} {kind:?} is audible");
            }
        }
        assert!(matches!(t.zone("xx"), Err(DspError::UnknownZone { .. })));
        assert_eq!(t.zone("DE").expect("case-insensitive").code, "de");
    }

    #[test]
    fn parses_the_notation() {
        let s = ToneSpec::parse("480+620/500,0/500").expect("valid");
        assert_eq!(
            s.segments()[0].sound,
            Sound::Sine {
                f1: 480.0,
                f2: Some(620.0)
            }
        );
        assert_eq!(s.segments()[1].sound, Sound::Silence);
        assert_eq!(s.segments()[1].duration_ms, Some(500));
        let am = ToneSpec::parse("400*25").expect("valid");
        assert_eq!(
            am.segments()[0].sound,
            Sound::Modulated {
                carrier: 400.0,
                modulator: 25.0
            }
        );
        assert!(ToneSpec::parse("!1000/250").expect("valid").is_finite());
        for bad in [
            "",
            "abc",
            "350/0",
            "350,440/100",
            "350+",
            "350/-5",
            "nan",
            "1e9",
        ] {
            assert!(ToneSpec::parse(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn busy_cadence_and_level() {
        // US busy: 500 ms of 480+620 at -13 dBm0 each, then 500 ms silence.
        let mut g = ToneGenerator::call_progress("us", ToneKind::Busy, 8000).expect("valid");
        let mut buf = vec![0i16; 16000];
        for c in buf.chunks_mut(160) {
            g.fill(c);
        }
        let level = rms_dbm0(&buf[100..3900]);
        assert!((level + 9.99).abs() < 0.1, "two tones at -13 dBm0: {level}");
        assert!(buf[4000..8000].iter().all(|&s| s == 0));
        assert!(buf[8000..8100].iter().any(|&s| s != 0));
        // Phase-continuous: chunked output equals one-shot output.
        let mut g2 = ToneGenerator::call_progress("us", ToneKind::Busy, 8000).expect("valid");
        let mut one = vec![0i16; 16000];
        g2.fill(&mut one);
        assert_eq!(one, buf);
    }

    #[test]
    fn beep_ends_and_once_segments_play_once() {
        let mut g = ToneGenerator::beep(8000).expect("valid");
        let mut buf = vec![0i16; 3000];
        assert_eq!(g.fill(&mut buf), 2000);
        assert!(g.is_finished());
        assert!(buf[2000..].iter().all(|&s| s == 0));
        g.restart();
        assert!(!g.is_finished());

        let spec = ToneSpec::parse("!1000/10,!0/10,500/10,0/10").expect("valid");
        let mut g = ToneGenerator::new(&spec, 8000, -10.0).expect("valid");
        let mut buf = vec![0i16; 400];
        g.fill(&mut buf);
        let loud = |r: std::ops::Range<usize>| buf[r].iter().any(|&s| s != 0);
        assert!(loud(0..80) && !loud(80..160) && loud(160..240) && !loud(240..320));
        assert!(loud(320..400), "the repeating part starts again");
    }

    #[test]
    fn am_tone_has_its_sidebands() {
        let spec = ToneSpec::parse("400*25").expect("valid");
        let mut g = ToneGenerator::new(&spec, 8000, -13.0).expect("valid");
        let mut buf = vec![0i16; 8000];
        g.fill(&mut buf);
        let peak = buf.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        let expect = crate::level::dbm0_to_amplitude(-13.0);
        assert!(f32::from(peak) <= expect + 1.0 && f32::from(peak) > expect * 0.9);
        assert!(ToneGenerator::new(&spec, 8000, f32::NAN).is_err());
        let high = ToneSpec::parse("5000").expect("valid");
        assert!(ToneGenerator::new(&high, 8000, -10.0).is_err());
        assert!(ToneGenerator::new(&high, 16000, -10.0).is_ok());
    }

    #[test]
    fn table_errors_name_the_zone() {
        let bad = r#"[zones.xx]
description = "x"
ring_cadence = [1000]
dial = "425"
busy = "425/abc"
ringback = "425"
congestion = "425"
"#;
        let e = ToneTable::from_toml(bad).expect_err("invalid").to_string();
        assert!(e.contains("xx") && e.contains("busy"), "{e}");
        assert!(ToneTable::from_toml("zones = 3").is_err());
    }
}
