//! Caller ID as audio: [`CidSender`] renders a caller ID into the burst an FXS port plays
//! (FSK with seizure and mark signal, optionally after a DT-AS alert, or DTMF CLIP);
//! [`CidReceiver`] decodes caller ID from FXO line audio — Bell 202 and V.23 FSK and DTMF CLIP
//! at once, whichever the exchange sends.

use flowgate_dsp::{
    DtmfConfig, DtmfDetector, DtmfDigit, DtmfEvent, DtmfGenConfig, DtmfGenerator, FskDemodConfig,
    FskDemodulator, FskEvent, FskModConfig, FskModulator, FskStandard, ToneGenerator, ToneSpec,
};

use super::PortError;
use crate::cid::dtmf::DtmfClipReceiver;
use crate::cid::frame::FrameAssembler;
use crate::cid::{CallerId, CidError, Layout, Message, encode};
use crate::line::fxs::CidMode;

/// Channel seizure length in bits (GR-30 and EN 300 659: 300).
pub const SEIZURE_BITS: usize = 300;
/// Mark signal length in bits (GR-30: 180; EN 300 659: 180 ± 25).
pub const MARK_BITS: usize = 180;
/// Mark bits after the message (spandsp sends 5; a few more let slow receivers finish).
pub const TRAILER_BITS: usize = 10;
/// DT-AS (dual-tone alerting signal, 2130 + 2750 Hz) length.
pub const DTAS_MS: u32 = 80;
/// Gap between DT-AS and the FSK (EN 300 659-1: 45…500 ms).
pub const DTAS_GAP_MS: u32 = 100;
/// DTMF CLIP digits: 70 ms on, 70 ms off.
pub const DTMF_CLIP_MS: u32 = 70;
/// Caller-ID signal level (GR-30 / EN 300 659 nominal −13.5 dBm).
pub const CID_LEVEL_DBM0: f32 = -13.0;

fn dsp(e: flowgate_dsp::DspError) -> PortError {
    PortError::Dsp(e.to_string())
}

/// A caller-ID burst being played.
#[derive(Debug, Clone)]
pub struct CidSender {
    audio: Vec<i16>,
    pos: usize,
}

impl CidSender {
    /// Renders `caller` in `mode` at `rate` Hz.
    ///
    /// # Errors
    /// [`PortError::CallerId`] when the message cannot be built (SDMF without a date, DTMF
    /// variant without a number); [`PortError::Dsp`] for an unsupported rate.
    pub fn new(caller: &CallerId, mode: CidMode, rate: u32) -> Result<Self, PortError> {
        let mut audio = Vec::new();
        let fsk = |standard: FskStandard, layout: Layout, audio: &mut Vec<i16>| {
            let bytes = encode(&Message::CallerId(caller.clone()), layout)?;
            let mut m = FskModulator::new(FskModConfig {
                level_dbm0: CID_LEVEL_DBM0,
                ..FskModConfig::new(standard, rate)
            })
            .map_err(dsp)?;
            m.queue_seizure(SEIZURE_BITS);
            m.queue_marks(MARK_BITS);
            m.queue_bytes(&bytes);
            m.queue_marks(TRAILER_BITS);
            let n = usize::try_from(m.remaining_samples()).unwrap_or(0);
            let start = audio.len();
            audio.resize(start + n, 0);
            m.fill(&mut audio[start..]);
            Ok::<(), PortError>(())
        };
        match mode {
            CidMode::Off => {}
            CidMode::Bell(layout) => fsk(FskStandard::Bell202, layout, &mut audio)?,
            CidMode::EtsiAfterRing(layout) => fsk(FskStandard::V23, layout, &mut audio)?,
            CidMode::EtsiPreRing(layout) => {
                let spec = ToneSpec::parse(&format!("!2130+2750/{DTAS_MS},!0/{DTAS_GAP_MS}"))
                    .map_err(dsp)?;
                let mut g = ToneGenerator::new(&spec, rate, CID_LEVEL_DBM0 - 3.0).map_err(dsp)?;
                let n = usize::try_from(u64::from(DTAS_MS + DTAS_GAP_MS) * u64::from(rate) / 1000)
                    .unwrap_or(0);
                audio.resize(n, 0);
                g.fill(&mut audio);
                fsk(FskStandard::V23, layout, &mut audio)?;
            }
            CidMode::Dtmf(variant) => {
                let digits = crate::cid::dtmf::encode(caller, variant).ok_or(
                    PortError::CallerId(CidError::BadField {
                        field: "DTMF CLIP of this variant needs a number",
                    }),
                )?;
                let mut g = DtmfGenerator::new(DtmfGenConfig {
                    on_ms: DTMF_CLIP_MS,
                    off_ms: DTMF_CLIP_MS,
                    ..DtmfGenConfig::new(rate)
                })
                .map_err(dsp)?;
                g.queue(&digits).map_err(dsp)?;
                let n = usize::try_from(g.remaining_samples()).unwrap_or(0);
                audio.resize(n, 0);
                g.fill(&mut audio);
            }
        }
        Ok(Self { audio, pos: 0 })
    }

    /// Total length in samples.
    #[must_use]
    pub fn len(&self) -> usize {
        self.audio.len()
    }

    /// True for an empty burst.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.audio.is_empty()
    }

    /// True once everything was played.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.pos >= self.audio.len()
    }

    /// Plays the next samples into `out` (silence after the end); returns how many carried
    /// the burst.
    pub fn fill(&mut self, out: &mut [i16]) -> usize {
        let n = out.len().min(self.audio.len() - self.pos);
        out[..n].copy_from_slice(&self.audio[self.pos..self.pos + n]);
        out[n..].fill(0);
        self.pos += n;
        n
    }

    /// The whole burst.
    #[must_use]
    pub fn samples(&self) -> &[i16] {
        &self.audio
    }
}

/// What the receiver found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CidResult {
    /// A message decoded.
    Message(Message),
    /// A message was seen but damaged.
    Error(CidError),
}

/// Which signalling the receiver listens for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidReceiverConfig {
    /// Bell 202 FSK.
    pub bell: bool,
    /// V.23 FSK.
    pub v23: bool,
    /// DTMF CLIP.
    pub dtmf: bool,
    /// Sample rate.
    pub sample_rate: u32,
}

impl CidReceiverConfig {
    /// Everything at `rate`.
    #[must_use]
    pub fn all(rate: u32) -> Self {
        Self {
            bell: true,
            v23: true,
            dtmf: true,
            sample_rate: rate,
        }
    }
}

#[derive(Debug, Clone)]
struct FskPath {
    demod: FskDemodulator,
    frames: FrameAssembler,
}

/// Decodes caller ID from line audio.
#[derive(Debug, Clone)]
pub struct CidReceiver {
    fsk: Vec<FskPath>,
    dtmf: Option<(DtmfDetector, DtmfClipReceiver)>,
    rate: u32,
    samples: u64,
    /// The last message and when, to drop the copy the other FSK demodulator decodes from
    /// the same burst (Bell and V.23 tones are close enough for both to read either).
    last: Option<(Message, u64)>,
}

impl CidReceiver {
    /// A receiver.
    ///
    /// # Errors
    /// [`PortError::Dsp`] for an unsupported rate.
    pub fn new(config: CidReceiverConfig) -> Result<Self, PortError> {
        let mut fsk = Vec::new();
        for (on, standard) in [
            (config.bell, FskStandard::Bell202),
            (config.v23, FskStandard::V23),
        ] {
            if on {
                fsk.push(FskPath {
                    demod: FskDemodulator::new(FskDemodConfig::new(standard, config.sample_rate))
                        .map_err(dsp)?,
                    frames: FrameAssembler::new(),
                });
            }
        }
        let dtmf = if config.dtmf {
            Some((
                DtmfDetector::new(DtmfConfig::new(config.sample_rate)).map_err(dsp)?,
                DtmfClipReceiver::new(),
            ))
        } else {
            None
        };
        Ok(Self {
            fsk,
            dtmf,
            rate: config.sample_rate,
            samples: 0,
            last: None,
        })
    }

    /// Forgets partial messages and detector state.
    pub fn reset(&mut self) {
        for p in &mut self.fsk {
            p.demod.reset();
            p.frames.reset();
        }
        if let Some((d, r)) = &mut self.dtmf {
            d.reset();
            r.reset();
        }
        self.last = None;
    }

    /// Feeds line audio; `on_result` receives each decoded message or damaged message.
    pub fn process(&mut self, samples: &[i16], mut on_result: impl FnMut(CidResult)) {
        let mut found: Vec<CidResult> = Vec::new();
        for p in &mut self.fsk {
            let frames = &mut p.frames;
            p.demod.process(samples, |e| {
                let r = match e {
                    FskEvent::Byte(b) => frames.push(b),
                    FskEvent::FramingError => frames.framing_error().map(Err),
                    FskEvent::CarrierDown => frames.carrier_lost().map(Err),
                    FskEvent::MarkSignal => {
                        frames.mark_signal();
                        None
                    }
                    FskEvent::CarrierUp => None,
                };
                match r {
                    Some(Ok(m)) => found.push(CidResult::Message(m)),
                    Some(Err(e)) => found.push(CidResult::Error(e)),
                    None => {}
                }
            });
        }
        let ms = |n: u64, rate: u32| n * 1000 / u64::from(rate.max(1));
        let now_ms = ms(self.samples, self.rate);
        if let Some((det, clip)) = &mut self.dtmf {
            det.process_with(samples, |e| {
                if let DtmfEvent::Start { digit, at, .. } = e {
                    let t = ms(at, self.rate);
                    if let Some(cid) = clip.push(DtmfDigit::to_char(digit), t) {
                        found.push(CidResult::Message(Message::CallerId(cid)));
                    }
                }
            });
        }
        self.samples += samples.len() as u64;
        for r in found {
            if let CidResult::Message(m) = &r {
                // One burst, two demodulators: report a message once.
                if self
                    .last
                    .as_ref()
                    .is_some_and(|(l, t)| l == m && now_ms.saturating_sub(*t) < 2000)
                {
                    continue;
                }
                self.last = Some((m.clone(), now_ms));
            } else if self
                .last
                .as_ref()
                .is_some_and(|(_, t)| now_ms.saturating_sub(*t) < 2000)
            {
                // The other demodulator's failure on a burst already decoded.
                continue;
            }
            on_result(r);
        }
    }
}
