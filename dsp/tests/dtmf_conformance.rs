//! DTMF conformance suite (analog.md §3.3): Mitel CM7291 side-1 tests as
//! spandsp replicates them, dial-tone tolerance, interruption bridging, the
//! 16 kHz path, and talk-off against espeak-ng speech. Every test except
//! talk-off also runs through a µ-law and an A-law round trip.
//!
//! The figures themselves are printed by
//! `cargo run --release -p flowgate-dsp --example dtmf_report`.

mod common;

use common::signal::{Builder, Munge, Rng, ms};
use common::speech;
use common::suite::{self, Detector, Flowgate, run};
use flowgate_dsp::DtmfConfig;

fn standard() -> Flowgate {
    Flowgate::standard(8000)
}

#[test]
fn decode_check_16_digits_x10() {
    for munge in Munge::ALL {
        let (expect, got) = suite::decode_check(&mut standard(), munge);
        assert_eq!(got, expect, "{}", munge.name());
    }
}

/// Q.24: accept ±1.5 %, reject ±3.5 %; and Mitel's RRB/RCFO pass mark.
#[test]
fn recognition_bandwidth() {
    for munge in Munge::ALL {
        for bw in suite::recognition_bandwidth(&mut standard(), munge) {
            let what = format!(
                "{} digit {} {} tone: N+ {} N- {} RRB {:.1} % RCFO {:.2} %",
                munge.name(),
                bw.digit,
                if bw.high { "high" } else { "low" },
                bw.n_plus,
                bw.n_minus,
                bw.rrb(),
                bw.rcfo()
            );
            assert!(
                bw.n_plus >= 15 && bw.n_minus >= 15,
                "must accept ±1.5 %: {what}"
            );
            assert_eq!(bw.beyond_reject, 0, "must reject ≥ ±3.5 %: {what}");
            assert!(bw.mitel_pass(), "Mitel pass mark: {what}");
        }
    }
}

#[test]
fn twist_normal_8_reverse_4() {
    for munge in Munge::ALL {
        let (normal, reverse) = suite::twist(&mut standard(), munge);
        assert!(
            normal >= 8,
            "{}: normal twist only {normal} dB",
            munge.name()
        );
        assert!(
            reverse >= 4,
            "{}: reverse twist only {reverse} dB",
            munge.name()
        );
    }
}

#[test]
fn dynamic_range_at_least_35_db() {
    for munge in Munge::ALL {
        let range = suite::dynamic_range(&mut standard(), munge);
        let Some((hi, lo)) = range else {
            panic!("{}: no level detected", munge.name());
        };
        assert!(hi - lo >= 35, "{}: {hi} … {lo} dBm0", munge.name());
    }
}

/// Q.24: tones of 40 ms or more are detected, tones of 23 ms or less never.
#[test]
fn guard_time_40_and_23_ms() {
    for munge in Munge::ALL {
        for (dur, got, sent) in suite::guard_time(&mut standard(), munge) {
            if dur >= 40 {
                assert_eq!(got, sent, "{}: {dur} ms tones", munge.name());
            }
            if dur <= 23 {
                assert_eq!(got, 0, "{}: {dur} ms tones", munge.name());
            }
        }
    }
}

/// Mitel test 7: 1000 bursts of 16 digits per noise level, from −13 dBm0
/// noise under −4 dBm0 tones; the acceptable S/N must be ≤ 26 dB. (Through
/// the codecs with 100 bursts, to keep the debug-build test quick.)
#[test]
fn signal_to_noise() {
    for (munge, bursts) in [
        (Munge::Linear, 1000),
        (Munge::Ulaw, 100),
        (Munge::Alaw, 100),
    ] {
        let (snr, log) = suite::signal_to_noise(&mut standard(), munge, -13, bursts);
        let snr = snr.unwrap_or_else(|| panic!("{}: never clean: {log}", munge.name()));
        assert!(
            snr <= 26,
            "{}: acceptable S/N {snr} dB; {log}",
            munge.name()
        );
    }
}

/// Signal-to-dial-tone ratio ≤ 10 dB without the notch, ≤ −12 dB with it.
#[test]
fn dial_tone_tolerance() {
    let mut notched = DtmfConfig::new(8000);
    notched.dial_tone_notch_hz = Some(DtmfConfig::NORTH_AMERICAN_DIAL_TONE);
    for munge in Munge::ALL {
        let plain = suite::dial_tone(&mut standard(), munge);
        assert!(
            plain.is_some_and(|l| -15 - l <= 10),
            "{}: without notch, dial tone up to {plain:?} dBm0",
            munge.name()
        );
        let with = suite::dial_tone(&mut Flowgate::new(notched.clone(), "notch"), munge);
        assert!(
            with.is_some_and(|l| -15 - l <= -12),
            "{}: with notch, dial tone up to {with:?} dBm0",
            munge.name()
        );
    }
}

/// Interruptions of up to 10 ms are bridged; a 40 ms pause separates two
/// presses of the same key.
#[test]
fn interruptions_are_bridged_and_pauses_are_not() {
    let mut rng = Rng::new(11);
    for munge in Munge::ALL {
        for gap_ms in [2.0, 5.0, 8.0, 10.0] {
            for _ in 0..8 {
                let mut b = Builder::new(8000);
                b.silence(400 + rng.below(51));
                b.digit(&mut rng, (852.0, -8.0), (1477.0, -8.0), ms(8000, 60.0));
                b.silence(ms(8000, gap_ms));
                b.digit(&mut rng, (852.0, -8.0), (1477.0, -8.0), ms(8000, 60.0));
                b.silence(800);
                let got = run(&mut standard(), &b.finish(munge));
                assert_eq!(got, "9", "{}: {gap_ms} ms gap", munge.name());
            }
        }
        for _ in 0..8 {
            let mut b = Builder::new(8000);
            b.silence(400 + rng.below(51));
            b.digit(&mut rng, (852.0, -8.0), (1477.0, -8.0), ms(8000, 50.0));
            b.silence(ms(8000, 40.0));
            b.digit(&mut rng, (852.0, -8.0), (1477.0, -8.0), ms(8000, 50.0));
            b.silence(800);
            let got = run(&mut standard(), &b.finish(munge));
            assert_eq!(got, "99", "{}: 40 ms pause", munge.name());
        }
    }
}

/// The 16 kHz detector meets the same decode, bandwidth and guard-time marks.
#[test]
fn sixteen_khz() {
    let mut det = Flowgate::standard(16000);
    assert_eq!(det.rate(), 16000);
    let (expect, got) = suite::decode_check(&mut det, Munge::Linear);
    assert_eq!(got, expect);
    for (dur, got, sent) in suite::guard_time(&mut det, Munge::Linear) {
        if dur >= 40 {
            assert_eq!(got, sent, "{dur} ms");
        }
        if dur <= 23 {
            assert_eq!(got, 0, "{dur} ms");
        }
    }
    let (normal, reverse) = suite::twist(&mut det, Munge::Linear);
    assert!(normal >= 8 && reverse >= 4, "twist {normal}/{reverse}");
}

/// No digits on several minutes of synthetic speech in ten languages.
#[test]
fn talk_off_on_espeak_speech() {
    let corpus = speech::corpus(8000, usize::MAX).unwrap_or_else(|e| panic!("{e}"));
    let signals = speech::at_all_levels(&corpus);
    let seconds = speech::seconds(&signals, 8000);
    assert!(seconds > 300.0, "corpus too short: {seconds:.0} s");
    let (false_digits, digits) = suite::talk_off(&mut standard(), &signals);
    println!("talk-off: {false_digits} false digits in {seconds:.0} s of speech {digits}");
    assert_eq!(false_digits, 0, "false digits on speech: {digits}");
    // The 16 kHz detector on part of the same speech at 16 kHz.
    let corpus16 = speech::corpus(16000, 5).unwrap_or_else(|e| panic!("{e}"));
    let signals16 = speech::at_all_levels(&corpus16);
    let (false16, digits16) = suite::talk_off(&mut Flowgate::standard(16000), &signals16);
    assert_eq!(false16, 0, "false digits on 16 kHz speech: {digits16}");
}
