//! Cross-check of the caller ID the FXS port sends with an independent decoder, multimon-ng
//! (`-a CLIPFSK`, which reads 22 050 Hz raw audio). Skipped, with a message, when multimon-ng
//! is not installed (Debian package `multimon-ng`, installed by `scripts/deps.sh test`).

use std::io::Write;
use std::process::{Command, Stdio};

use flowgate_analog::cid::{Absence, CallerId, DateTime, Layout};
use flowgate_analog::line::fxs::CidMode;
use flowgate_analog::port::cid::CidSender;
use flowgate_dsp::resample;

fn multimon(audio_8k: &[i16]) -> Option<String> {
    let mut padded = vec![0i16; 4000];
    padded.extend_from_slice(audio_8k);
    padded.extend(vec![0i16; 4000]);
    let audio = resample(&padded, 8000, 22050).expect("supported ratio");
    let mut child = match Command::new("multimon-ng")
        .args(["-q", "-a", "CLIPFSK", "-t", "raw", "-"])
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
    let bytes: Vec<u8> = audio.iter().flat_map(|s| s.to_le_bytes()).collect();
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(&bytes)
        .expect("multimon-ng reads");
    let out = child.wait_with_output().expect("multimon-ng runs");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn dt() -> DateTime {
    DateTime::new(11, 23, 18, 45).expect("valid")
}

#[test]
fn multimon_decodes_our_etsi_caller_id() {
    let caller = CallerId::new("0123456789", Some("GATEWAY TEST")).at(dt());
    for mode in [
        CidMode::EtsiAfterRing(Layout::Etsi),
        CidMode::EtsiPreRing(Layout::Etsi),
        CidMode::EtsiAfterRing(Layout::Mdmf),
    ] {
        let burst = CidSender::new(&caller, mode, 8000).expect("renders");
        let Some(text) = multimon(burst.samples()) else {
            return;
        };
        assert!(text.contains("DATE=11231845"), "{mode:?}: {text}");
        assert!(text.contains("CID=0123456789"), "{mode:?}: {text}");
        assert!(text.contains("CNT=GATEWAY TEST"), "{mode:?}: {text}");
    }
}

#[test]
fn multimon_sees_withheld_numbers() {
    let caller = CallerId::absent(Absence::Private).at(dt());
    let burst =
        CidSender::new(&caller, CidMode::EtsiAfterRing(Layout::Etsi), 8000).expect("renders");
    let Some(text) = multimon(burst.samples()) else {
        return;
    };
    assert!(text.contains("DATE=11231845"), "{text}");
    assert!(text.contains("RACLI=P"), "{text}");
    assert!(text.contains("RACNT=P"), "{text}");
}

#[test]
fn multimon_reads_our_bell_202_too() {
    let caller = CallerId::new("6095551212", Some("JOHN SMITH")).at(dt());
    let burst = CidSender::new(&caller, CidMode::Bell(Layout::Mdmf), 8000).expect("renders");
    let Some(text) = multimon(burst.samples()) else {
        return;
    };
    // multimon-ng's CLIP demodulator is V.23, but 1200/2200 Hz Bell 202 is close enough for it.
    assert!(text.contains("CID=6095551212"), "{text}");
    assert!(text.contains("CNT=JOHN SMITH"), "{text}");
}
