//! Cross-check of the DTMF generator (and the resampler) with an independent
//! decoder, multimon-ng, which reads 22 050 Hz raw audio. Skipped, with a
//! message, when multimon-ng is not installed (Debian package `multimon-ng`).

use std::io::Write;
use std::process::{Command, Stdio};

use flowgate_dsp::{DtmfGenConfig, DtmfGenerator, resample};

fn multimon(samples_22k: &[i16]) -> Option<String> {
    let mut child = match Command::new("multimon-ng")
        .args(["-q", "-a", "DTMF", "-t", "raw", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skipped: multimon-ng not available ({e}); Debian package `multimon-ng`");
            return None;
        }
    };
    let bytes: Vec<u8> = samples_22k.iter().flat_map(|s| s.to_le_bytes()).collect();
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(&bytes)
        .expect("multimon-ng reads its input");
    let out = child.wait_with_output().expect("multimon-ng runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    Some(
        text.lines()
            .filter_map(|l| l.strip_prefix("DTMF: "))
            .collect::<String>(),
    )
}

#[test]
fn multimon_decodes_our_digits() {
    let digits = "123A456B789C*0#D";
    for (rate, on_ms, off_ms) in [(8000, 100, 100), (8000, 60, 60), (16000, 100, 100)] {
        let mut g = DtmfGenerator::new(DtmfGenConfig {
            on_ms,
            off_ms,
            ..DtmfGenConfig::new(rate)
        })
        .expect("valid");
        g.queue(digits).expect("valid digits");
        let n = usize::try_from(g.remaining_samples()).expect("small") + 4000;
        let mut audio = vec![0i16; n];
        g.fill(&mut audio);
        let audio_22k = resample(&audio, rate, 22050).expect("supported ratio");
        let Some(decoded) = multimon(&audio_22k) else {
            return;
        };
        assert_eq!(decoded, digits, "{rate} Hz, {on_ms}/{off_ms} ms");
    }
}
