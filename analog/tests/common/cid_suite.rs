//! The caller-ID accuracy suite shared by the floor test, the side-by-side report
//! (`examples/cid_report.rs`) and the benchmark: deterministic callers, bursts from our
//! transmitter or spandsp's, level and noise munging, and decoders behind one trait.
#![allow(dead_code, unreachable_pub)]

use flowgate_analog::cid::{CallerId, DateTime, Layout, Message};
use flowgate_analog::line::fxs::CidMode;
use flowgate_analog::port::cid::{CidReceiver, CidReceiverConfig, CidResult, CidSender};
use flowgate_dsp::level::rms_dbm0;

/// Bell 202 (Telcordia "CLASS") or V.23 (ETSI "CLIP").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standard {
    Bell,
    V23,
}

impl Standard {
    pub const ALL: [Standard; 2] = [Standard::Bell, Standard::V23];

    pub fn name(self) -> &'static str {
        match self {
            Standard::Bell => "Bell 202 MDMF",
            Standard::V23 => "V.23 ETSI",
        }
    }
}

/// Deterministic pseudo-random numbers (xorshift64*), so every run sees the same signals.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn gaussian(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Uniform in 0..n.
    pub fn below(&mut self, n: u8) -> u8 {
        u8::try_from(self.next_u64() % u64::from(n)).unwrap_or(0)
    }
}

/// `n` callers: 10-digit numbers, names of 4…15 letters and spaces, valid dates.
pub fn callers(n: usize, seed: u64) -> Vec<CallerId> {
    let mut r = Rng::new(seed);
    (0..n)
        .map(|_| {
            let number: String = (0..10).map(|_| char::from(b'0' + r.below(10))).collect();
            let len = 4 + usize::from(r.below(12));
            let name: String = (0..len)
                .map(|i| {
                    if i > 0 && r.below(6) == 0 {
                        ' '
                    } else {
                        char::from(b'A' + r.below(26))
                    }
                })
                .collect();
            let dt = DateTime::new(1 + r.below(12), 1 + r.below(28), r.below(24), r.below(60))
                .expect("valid date");
            CallerId::new(&number, Some(name.trim())).at(dt)
        })
        .collect()
}

/// Our transmitter's burst (seizure, marks, message) for `caller`.
pub fn ours_tx(caller: &CallerId, standard: Standard) -> Vec<i16> {
    let mode = match standard {
        Standard::Bell => CidMode::Bell(Layout::Mdmf),
        Standard::V23 => CidMode::EtsiAfterRing(Layout::Etsi),
    };
    CidSender::new(caller, mode, 8000)
        .expect("renders")
        .samples()
        .to_vec()
}

/// The fields a decoder must get right.
pub fn same(a: &CallerId, b: &CallerId) -> bool {
    a.number == b.number && a.name == b.name && a.datetime == b.datetime
}

/// A caller-ID decoder under test.
pub trait Decoder {
    fn name(&self) -> String;
    /// Decodes one trial's audio from a fresh state.
    fn decode(&mut self, audio: &[i16]) -> Vec<CallerId>;
}

/// Our receiver, listening for one FSK standard.
pub struct Ours {
    rx: CidReceiver,
    config: CidReceiverConfig,
}

impl Ours {
    pub fn new(standard: Standard) -> Ours {
        let config = CidReceiverConfig {
            bell: standard == Standard::Bell,
            v23: standard == Standard::V23,
            dtmf: false,
            sample_rate: 8000,
        };
        Ours {
            rx: CidReceiver::new(config).expect("8 kHz"),
            config,
        }
    }
}

impl Decoder for Ours {
    fn name(&self) -> String {
        "flowgate".into()
    }

    fn decode(&mut self, audio: &[i16]) -> Vec<CallerId> {
        self.rx = CidReceiver::new(self.config).expect("8 kHz");
        let mut out = Vec::new();
        for frame in audio.chunks(160) {
            self.rx.process(frame, |r| {
                if let CidResult::Message(Message::CallerId(c)) = r {
                    out.push(c);
                }
            });
        }
        out
    }
}

/// Scales `burst` to `level_dbm0` (its own power), pads it with `pad` samples of silence on
/// both sides, and adds white Gaussian noise `snr_db` below the burst's power (`None`: none).
pub fn trial(
    burst: &[i16],
    level_dbm0: f64,
    snr_db: Option<f64>,
    rng: &mut Rng,
    pad: usize,
) -> Vec<i16> {
    let now = f64::from(rms_dbm0(burst));
    let gain = 10f64.powf((level_dbm0 - now) / 20.0);
    let mut x: Vec<f64> = vec![0.0; pad];
    x.extend(burst.iter().map(|&s| f64::from(s) * gain));
    x.extend(std::iter::repeat_n(0.0, pad));
    if let Some(snr) = snr_db {
        let p: f64 = burst
            .iter()
            .map(|&s| (f64::from(s) * gain).powi(2))
            .sum::<f64>()
            / burst.len() as f64;
        let sigma = (p / 10f64.powf(snr / 10.0)).sqrt();
        for v in &mut x {
            *v += sigma * rng.gaussian();
        }
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "clamped to the i16 range first"
    )]
    x.iter()
        .map(|&v| v.round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

/// Trials of `callers` from `tx` under one condition: how many each decoder got wrong.
pub fn errors(
    decoders: &mut [Box<dyn Decoder>],
    bursts: &[(CallerId, Vec<i16>)],
    level_dbm0: f64,
    snr_db: Option<f64>,
    seed: u64,
) -> Vec<usize> {
    let mut rng = Rng::new(seed);
    let mut errs = vec![0; decoders.len()];
    for (caller, burst) in bursts {
        let audio = trial(burst, level_dbm0, snr_db, &mut rng, 2400);
        for (d, e) in decoders.iter_mut().zip(&mut errs) {
            let got = d.decode(&audio);
            if !(got.len() == 1 && same(&got[0], caller)) {
                *e += 1;
            }
        }
    }
    errs
}
