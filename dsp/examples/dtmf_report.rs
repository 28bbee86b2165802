//! Prints the DTMF conformance figures (analog.md §3.3) as a compact table
//! for the README: our detector, and spandsp's side by side when built with
//! `--features spandsp-compare`.
//!
//! ```text
//! cargo run --release -p flowgate-dsp --example dtmf_report
//! cargo run --release -p flowgate-dsp --features spandsp-compare --example dtmf_report
//! ```
//!
//! Talk-off needs espeak-ng (Debian package `espeak-ng`).

#[path = "../tests/common/mod.rs"]
mod common;

use common::signal::Munge;
use common::speech;
use common::suite::{self, Detector, Flowgate};
use flowgate_dsp::DtmfConfig;

fn main() {
    let mut detectors: Vec<Box<dyn Detector>> = vec![Box::new(Flowgate::standard(8000))];
    let mut notch = DtmfConfig::new(8000);
    notch.dial_tone_notch_hz = Some(DtmfConfig::NORTH_AMERICAN_DIAL_TONE);
    detectors.push(Box::new(Flowgate::new(notch, "flowgate+notch")));
    #[cfg(feature = "spandsp-compare")]
    detectors.push(Box::new(common::spandsp::Spandsp::new()));

    let speech = match speech::corpus(8000, usize::MAX) {
        Ok(c) => Some(speech::at_all_levels(&c)),
        Err(e) => {
            eprintln!("talk-off skipped: {e}");
            None
        }
    };

    let names: Vec<String> = detectors.iter().map(|d| d.name()).collect();
    println!("| figure | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(names.len()));
    for munge in Munge::ALL {
        let row = |label: &str, cells: Vec<String>| {
            println!("| {label} ({}) | {} |", munge.name(), cells.join(" | "));
        };
        let mut cells = Vec::new();
        for d in &mut detectors {
            let s = suite::scorecard(d.as_mut(), munge);
            cells.push(format!(
                "missed {}/{} (+{} wrong), false {} on {} reject bursts",
                s.missed, s.expected, s.wrong, s.false_digits, s.reject_bursts
            ));
        }
        row("scorecard", cells);

        let mut cells = Vec::new();
        for d in &mut detectors {
            let (expect, got) = suite::decode_check(d.as_mut(), munge);
            let ok = got == expect;
            cells.push(format!(
                "{}/{}{}",
                if ok {
                    expect.len()
                } else {
                    common_prefix(&expect, &got)
                },
                expect.len(),
                if ok { "" } else { " ✗" }
            ));
        }
        row("decode 16×10 @ −4 dBm0", cells);

        let mut cells = Vec::new();
        for d in &mut detectors {
            let bw = suite::recognition_bandwidth(d.as_mut(), munge);
            let min_accept = bw
                .iter()
                .map(|b| b.n_plus.min(b.n_minus))
                .min()
                .unwrap_or(0);
            let max_accept = bw
                .iter()
                .map(|b| b.n_plus.max(b.n_minus))
                .max()
                .unwrap_or(0);
            let beyond: usize = bw.iter().map(|b| b.beyond_reject).sum();
            let mitel = bw.iter().all(suite::Bandwidth::mitel_pass);
            cells.push(format!(
                "accept ±{:.1}…{:.1} %, {beyond} hits ≥ 3.5 %, Mitel {}",
                f64::from(min_accept) / 10.0,
                f64::from(max_accept) / 10.0,
                if mitel { "pass" } else { "FAIL" }
            ));
        }
        row("bandwidth (1,5,9,D @ −17 dBm0)", cells);

        let mut cells = Vec::new();
        for d in &mut detectors {
            let (normal, reverse) = suite::twist(d.as_mut(), munge);
            cells.push(format!("normal {normal} dB, reverse {reverse} dB"));
        }
        row("twist", cells);

        let mut cells = Vec::new();
        for d in &mut detectors {
            cells.push(match suite::dynamic_range(d.as_mut(), munge) {
                Some((hi, lo)) => format!("{} dB ({hi:+} … {lo} dBm0)", hi - lo),
                None => "none".into(),
            });
        }
        row("dynamic range", cells);

        let mut cells = Vec::new();
        for d in &mut detectors {
            let g = suite::guard_time(d.as_mut(), munge);
            let all = g
                .iter()
                .filter(|(_, got, n)| got == n)
                .map(|(ms, ..)| *ms)
                .min()
                .unwrap_or(0);
            let none = g
                .iter()
                .filter(|(_, got, _)| *got == 0)
                .map(|(ms, ..)| *ms)
                .max()
                .unwrap_or(0);
            let responses: usize = g.iter().map(|(_, got, _)| got).sum();
            cells.push(format!(
                "all ≥ {all} ms, none ≤ {none} ms ({responses} responses)"
            ));
        }
        row("guard time", cells);

        let mut cells = Vec::new();
        for d in &mut detectors {
            let (snr, _) = suite::signal_to_noise(d.as_mut(), munge, -13, 1000);
            let (ext, _) = suite::signal_to_noise(d.as_mut(), munge, -4, 100);
            cells.push(format!(
                "{} (sweep from 0 dB: {})",
                snr.map_or("none".into(), |s| format!("{s} dB")),
                ext.map_or("none".into(), |s| format!("{s} dB"))
            ));
        }
        row("acceptable S/N", cells);

        let mut cells = Vec::new();
        for d in &mut detectors {
            cells.push(match suite::dial_tone(d.as_mut(), munge) {
                Some(l) => format!("S/DT {} dB (dial tone ≤ {l} dBm0)", -15 - l),
                None => "fails at −30 dBm0".into(),
            });
        }
        row("dial tone under −15 dBm0 digits", cells);
    }
    if let Some(speech) = &speech {
        let mut cells = Vec::new();
        for d in &mut detectors {
            let (n, digits) = suite::talk_off(d.as_mut(), speech);
            cells.push(if n == 0 {
                "0".to_owned()
            } else {
                format!("{n} ({digits})")
            });
        }
        println!(
            "| talk-off, {:.0} s espeak-ng speech | {} |",
            speech::seconds(speech, 8000),
            cells.join(" | ")
        );
    }
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}
