//! Answering-machine detection: is the party that answered a person or a machine?
//!
//! A person answers with a short word ("hello?") and then waits; a machine plays a long
//! greeting of many words, or says nothing at first. The detector measures exactly that on
//! the answered party's audio, with the parameters Asterisk's `AMD()` application is known
//! for (same names, same defaults, milliseconds), and decides once:
//!
//! | finding | verdict | cause |
//! |---|---|---|
//! | no speech for `initial_silence` | machine | `INITIALSILENCE` |
//! | speech, then `after_greeting_silence` of silence | human | `HUMAN` |
//! | `maximum_number_of_words` words | machine | `MAXWORDS` |
//! | speech longer than `greeting` in total | machine | `LONGGREETING` |
//! | one word longer than `maximum_word_length` | machine | `MAXWORDLENGTH` |
//! | no decision within `total_analysis_time` | not sure | `TOOLONG` |
//!
//! A frame is speech when its mean absolute amplitude exceeds `silence_threshold` (Asterisk's
//! energy measure, on 16-bit samples). A word is speech lasting at least
//! `minimum_word_length`; it ends after `between_words_silence` of silence. Shorter bursts
//! (clicks, line noise) neither count as words nor interrupt a silence.
//!
//! Sans-IO: feed frames of any length at any rate with [`Amd::process`]; time is the number
//! of samples seen.

use crate::{DspError, Result};

/// The detector's parameters (Asterisk `amd.conf` names and defaults, milliseconds).
#[derive(Debug, Clone, PartialEq)]
pub struct AmdConfig {
    /// Sample rate of the audio, Hz.
    pub sample_rate: u32,
    /// Silence before any speech that makes the answer a machine.
    pub initial_silence: u32,
    /// Total speech (the greeting) longer than this is a machine.
    pub greeting: u32,
    /// Silence after speech that makes the answer a person.
    pub after_greeting_silence: u32,
    /// No verdict after this long is "not sure".
    pub total_analysis_time: u32,
    /// Speech shorter than this is not a word.
    pub minimum_word_length: u32,
    /// Silence that ends a word.
    pub between_words_silence: u32,
    /// This many words is a machine.
    pub maximum_number_of_words: u32,
    /// Mean absolute amplitude (16-bit) at or below which a frame is silence.
    pub silence_threshold: u32,
    /// A single word longer than this is a machine.
    pub maximum_word_length: u32,
}

impl Default for AmdConfig {
    fn default() -> Self {
        Self {
            sample_rate: 8000,
            initial_silence: 2500,
            greeting: 1500,
            after_greeting_silence: 800,
            total_analysis_time: 5000,
            minimum_word_length: 100,
            between_words_silence: 50,
            maximum_number_of_words: 3,
            silence_threshold: 256,
            maximum_word_length: 5000,
        }
    }
}

/// Who answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmdStatus {
    /// A person.
    Human,
    /// An answering machine or voicemail.
    Machine,
    /// No decision in the analysis time.
    NotSure,
}

impl AmdStatus {
    /// Asterisk's `AMDSTATUS` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Human => "HUMAN",
            Self::Machine => "MACHINE",
            Self::NotSure => "NOTSURE",
        }
    }
}

/// Why the detector decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmdCause {
    /// No speech for `initial_silence`.
    InitialSilence,
    /// Speech followed by `after_greeting_silence`.
    Human,
    /// `maximum_number_of_words` reached.
    MaxWords,
    /// Total speech longer than `greeting`.
    LongGreeting,
    /// One word longer than `maximum_word_length`.
    MaxWordLength,
    /// `total_analysis_time` reached.
    TooLong,
}

impl AmdCause {
    /// Asterisk's `AMDCAUSE` keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InitialSilence => "INITIALSILENCE",
            Self::Human => "HUMAN",
            Self::MaxWords => "MAXWORDS",
            Self::LongGreeting => "LONGGREETING",
            Self::MaxWordLength => "MAXWORDLENGTH",
            Self::TooLong => "TOOLONG",
        }
    }
}

/// The verdict, with what was measured when it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmdResult {
    /// Who answered.
    pub status: AmdStatus,
    /// Why.
    pub cause: AmdCause,
    /// Words counted.
    pub words: u32,
    /// Total speech, ms.
    pub speech_ms: u32,
    /// Audio analysed, ms.
    pub elapsed_ms: u32,
}

/// The detector. One per answered call; it decides once.
#[derive(Debug, Clone)]
pub struct Amd {
    config: AmdConfig,
    /// Samples per analysis frame (10 ms).
    frame_len: usize,
    frame_sum: u64,
    frame_fill: usize,
    elapsed_ms: u32,
    /// Consecutive speech, ms (the current burst).
    voice_ms: u32,
    /// Consecutive silence, ms.
    silence_ms: u32,
    /// Speech in counted words, ms.
    speech_ms: u32,
    words: u32,
    in_word: bool,
    result: Option<AmdResult>,
}

/// Analysis frame length: Asterisk works on 20 ms frames; 10 ms halves the time quantum.
const FRAME_MS: u32 = 10;

impl Amd {
    /// A detector with `config`.
    ///
    /// # Errors
    /// [`DspError::InvalidConfig`] for a sample rate below 100 Hz, or times that cannot
    /// decide (zero analysis time, zero words).
    pub fn new(config: AmdConfig) -> Result<Self> {
        if config.sample_rate < 100 {
            return Err(DspError::InvalidConfig {
                component: "amd",
                field: "sample_rate",
                reason: "below 100 Hz".into(),
            });
        }
        if config.total_analysis_time == 0 || config.maximum_number_of_words == 0 {
            return Err(DspError::InvalidConfig {
                component: "amd",
                field: "total_analysis_time",
                reason: "total_analysis_time and maximum_number_of_words must be positive".into(),
            });
        }
        let frame_len = usize::try_from(config.sample_rate / 1000 * FRAME_MS)
            .unwrap_or(80)
            .max(1);
        Ok(Self {
            config,
            frame_len,
            frame_sum: 0,
            frame_fill: 0,
            elapsed_ms: 0,
            voice_ms: 0,
            silence_ms: 0,
            speech_ms: 0,
            words: 0,
            in_word: false,
            result: None,
        })
    }

    /// The verdict, once taken.
    pub fn result(&self) -> Option<AmdResult> {
        self.result
    }

    /// Analyses `samples`; returns the verdict when it is taken (then every later call
    /// returns it again without analysing).
    pub fn process(&mut self, samples: &[i16]) -> Option<AmdResult> {
        for &s in samples {
            if self.result.is_some() {
                break;
            }
            self.frame_sum += u64::from(s.unsigned_abs());
            self.frame_fill += 1;
            if self.frame_fill == self.frame_len {
                let mean = self.frame_sum / u64::try_from(self.frame_len).unwrap_or(1);
                self.frame_sum = 0;
                self.frame_fill = 0;
                self.frame(mean > u64::from(self.config.silence_threshold));
            }
        }
        self.result
    }

    fn decide(&mut self, status: AmdStatus, cause: AmdCause) {
        self.result = Some(AmdResult {
            status,
            cause,
            words: self.words,
            speech_ms: self.speech_ms,
            elapsed_ms: self.elapsed_ms,
        });
    }

    fn frame(&mut self, voiced: bool) {
        let c = &self.config;
        self.elapsed_ms += FRAME_MS;
        if voiced {
            self.voice_ms += FRAME_MS;
            if self.voice_ms >= c.minimum_word_length {
                // A real word: the silence before it is over.
                self.silence_ms = 0;
                if !self.in_word {
                    self.in_word = true;
                    self.words += 1;
                    self.speech_ms += self.voice_ms - FRAME_MS;
                }
                self.speech_ms += FRAME_MS;
            }
        } else {
            self.silence_ms += FRAME_MS;
            if self.silence_ms >= c.between_words_silence {
                self.in_word = false;
                self.voice_ms = 0;
            }
        }
        let (words, greeting, word_len) =
            (c.maximum_number_of_words, c.greeting, c.maximum_word_length);
        let heard = self.words > 0;
        if self.words >= words {
            self.decide(AmdStatus::Machine, AmdCause::MaxWords);
        } else if self.speech_ms > greeting {
            self.decide(AmdStatus::Machine, AmdCause::LongGreeting);
        } else if self.in_word && self.voice_ms > word_len {
            self.decide(AmdStatus::Machine, AmdCause::MaxWordLength);
        } else if !heard && self.silence_ms >= self.config.initial_silence {
            self.decide(AmdStatus::Machine, AmdCause::InitialSilence);
        } else if heard && self.silence_ms >= self.config.after_greeting_silence {
            self.decide(AmdStatus::Human, AmdCause::Human);
        } else if self.elapsed_ms >= self.config.total_analysis_time {
            self.decide(AmdStatus::NotSure, AmdCause::TooLong);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ms` of a 300 Hz tone at about −16 dBFS (speech-like energy).
    #[allow(clippy::cast_possible_truncation, reason = "bounded to ±5000")]
    fn voice(ms: u32) -> Vec<i16> {
        (0..ms * 8)
            .map(|i| {
                (5000.0 * (f64::from(i) * 2.0 * std::f64::consts::PI * 300.0 / 8000.0).sin()) as i16
            })
            .collect()
    }

    fn silence(ms: u32) -> Vec<i16> {
        vec![0; usize::try_from(ms * 8).unwrap_or(0)]
    }

    fn run(parts: &[Vec<i16>]) -> AmdResult {
        let mut amd = Amd::new(AmdConfig::default()).expect("valid");
        for p in parts {
            if let Some(r) = amd.process(p) {
                return r;
            }
        }
        amd.process(&silence(10_000)).expect("decides")
    }

    #[test]
    fn hello_then_silence_is_human() {
        let r = run(&[silence(400), voice(500)]);
        assert_eq!(
            (r.status, r.cause, r.words),
            (AmdStatus::Human, AmdCause::Human, 1)
        );
        assert_eq!(r.elapsed_ms, 400 + 500 + 800);
    }

    #[test]
    fn many_words_are_a_machine() {
        let mut parts = vec![silence(300)];
        for _ in 0..5 {
            parts.push(voice(250));
            parts.push(silence(150));
        }
        let r = run(&parts);
        assert_eq!(
            (r.status, r.cause, r.words),
            (AmdStatus::Machine, AmdCause::MaxWords, 3)
        );
    }

    #[test]
    fn one_long_greeting_is_a_machine() {
        let r = run(&[voice(2000)]);
        assert_eq!(
            (r.status, r.cause),
            (AmdStatus::Machine, AmdCause::LongGreeting)
        );
    }

    #[test]
    fn silence_is_a_machine_and_clicks_do_not_count() {
        let r = run(&[silence(1000), voice(40), silence(2000)]);
        assert_eq!(
            (r.status, r.cause, r.words),
            (AmdStatus::Machine, AmdCause::InitialSilence, 0)
        );
        // The click's 40 ms are not silence, but they do not restart it either.
        assert_eq!(r.elapsed_ms, 2540);
    }

    #[test]
    fn undecided_audio_is_not_sure() {
        let config = AmdConfig {
            greeting: 10_000,
            maximum_number_of_words: 100,
            after_greeting_silence: 10_000,
            ..AmdConfig::default()
        };
        let mut amd = Amd::new(config).expect("valid");
        let mut r = None;
        for _ in 0..20 {
            r = amd.process(&voice(200)).or(amd.process(&silence(100)));
        }
        let r = r.expect("decided");
        assert_eq!((r.status, r.cause), (AmdStatus::NotSure, AmdCause::TooLong));
    }

    #[test]
    fn frames_of_any_length_give_the_same_verdict() {
        let audio: Vec<i16> = [
            silence(300),
            voice(400),
            silence(100),
            voice(300),
            silence(1000),
        ]
        .concat();
        let whole = run(std::slice::from_ref(&audio));
        let mut amd = Amd::new(AmdConfig::default()).expect("valid");
        let mut split = None;
        for chunk in audio.chunks(7) {
            split = amd.process(chunk).or(split);
        }
        assert_eq!(Some(whole), split);
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(
            Amd::new(AmdConfig {
                sample_rate: 50,
                ..AmdConfig::default()
            })
            .is_err()
        );
        assert!(
            Amd::new(AmdConfig {
                maximum_number_of_words: 0,
                ..AmdConfig::default()
            })
            .is_err()
        );
    }
}
