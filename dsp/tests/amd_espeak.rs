//! Accuracy of the answering-machine detector on synthetic speech: espeak-ng (Debian package,
//! installed by `scripts/deps.sh`) says short live answers ("hello?") and voicemail greetings
//! in several voices and speeds; each is framed as a call would be (a pause before the answer,
//! silence after) at 8 kHz, and the detector's verdict is tallied. Prints the figures
//! (`cargo test -p flowgate-dsp --test amd_espeak -- --nocapture`) the README quotes.

use flowgate_dsp::{Amd, AmdConfig, AmdStatus, resample};

const HUMAN: &[&str] = &["hello", "hello?", "hi", "yes?", "hello, yes", "speaking"];
const MACHINE: &[&str] = &[
    "Hello, you have reached John Smith. Please leave a message after the tone.",
    "Hi, this is Anna. I can't take your call right now, leave a message.",
    "The person you are calling is not available. Please record your message after the beep.",
    "Thank you for calling Acme Plumbing. Our office is closed.",
    "You have reached the voicemail of extension two one four.",
    "Hello, sorry I missed you, call me back later.",
];
const VOICES: &[(&str, &str)] = &[
    ("en-us", "150"),
    ("en-us", "190"),
    ("en-gb", "170"),
    ("en", "130"),
];

/// espeak-ng's speech for `text` at 8 kHz.
fn speak(text: &str, voice: &str, speed: &str) -> Vec<i16> {
    let out = std::process::Command::new("espeak-ng")
        .args(["-v", voice, "-s", speed, "--stdout", text])
        .output()
        .expect("espeak-ng (run scripts/deps.sh)");
    assert!(out.status.success(), "espeak-ng failed");
    let wav = out.stdout;
    let rate = u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]);
    let data = wav
        .windows(4)
        .position(|w| w == b"data")
        .expect("a data chunk")
        + 8;
    let samples: Vec<i16> = wav[data..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    resample(&samples, rate, 8000).expect("resample")
}

fn verdict(speech: &[i16]) -> AmdStatus {
    let mut amd = Amd::new(AmdConfig::default()).expect("valid");
    // The answering party starts after a short pause, and then waits for us.
    let audio = [vec![0i16; 8 * 300], speech.to_vec(), vec![0i16; 8 * 6000]].concat();
    amd.process(&audio)
        .expect("decides within the analysis time")
        .status
}

#[test]
fn detector_tells_live_answers_from_greetings() {
    let tally = |texts: &[&str], want: AmdStatus| {
        let mut right = 0;
        let mut total = 0;
        for text in texts {
            for (voice, speed) in VOICES {
                let got = verdict(&speak(text, voice, speed));
                total += 1;
                if got == want {
                    right += 1;
                } else {
                    println!("  {want:?} heard as {got:?}: {text:?} ({voice}, {speed} wpm)");
                }
            }
        }
        (right, total)
    };
    let (human_right, human_total) = tally(HUMAN, AmdStatus::Human);
    let (machine_right, machine_total) = tally(MACHINE, AmdStatus::Machine);
    println!(
        "amd accuracy: human {human_right}/{human_total}, machine {machine_right}/{machine_total}"
    );
    // Floors well under the measured figures (README), so a regression fails the test.
    assert!(
        human_right * 10 >= human_total * 8,
        "human {human_right}/{human_total}"
    );
    assert!(
        machine_right * 10 >= machine_total * 9,
        "machine {machine_right}/{machine_total}"
    );
}
