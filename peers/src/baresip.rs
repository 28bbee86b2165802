//! baresip (Debian `baresip`, installed by `scripts/deps.sh test`): a phone with one
//! account, playing test audio into its calls, configured in a directory of the test's own.

use std::path::Path;
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::ports::{Attempt, free_udp_port, start_bound};

/// The file in the configuration directory that takes baresip's output: it prints its
/// errors to stdout, and a pipe nobody reads would stall it.
const LOG: &str = "baresip.log";

/// The WAV in the configuration directory that baresip's `aufile` source plays.
const AUDIO: &str = "audio.wav";

/// Starts baresip from `dir` with the account line `account` (baresip's `accounts`
/// syntax), playing `audio` (8 kHz mono samples) into its calls, running the menu `command`
/// at start and quitting after `run_secs`. Returns once baresip holds its SIP port.
pub async fn start(
    dir: &Path,
    account: &str,
    audio: &[i16],
    command: &str,
    run_secs: u32,
) -> Child {
    let audio_file = dir.join(AUDIO);
    write_wav(&audio_file, audio);
    std::fs::write(dir.join("accounts"), format!("{account}\n")).unwrap();
    std::fs::write(dir.join("contacts"), "").unwrap();
    let (_, child) = start_bound(
        "baresip",
        || {
            let sip_port = free_udp_port();
            // baresip picks its RTP ports itself within this range, and tries another
            // when one is taken.
            let rtp = 50_000 + (sip_port % 500) * 2;
            let config = format!(
                "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\naudio_player aubridge,flowgate\naudio_source aufile,{}\naudio_alert aubridge,flowgate\nrtp_ports {rtp}-{}\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\nmodule aubridge.so\nmodule_app account.so\nmodule_app menu.so\n",
                audio_file.display(),
                rtp + 40
            );
            std::fs::write(dir.join("config"), config).unwrap();
            let log = std::fs::File::create(dir.join(LOG)).unwrap();
            let child = Command::new("baresip")
                .args(["-f", &dir.display().to_string(), "-t", &run_secs.to_string()])
                .args(["-e", command])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .expect("baresip runs (Debian package baresip; scripts/deps.sh test installs it)");
            Attempt {
                child,
                port: sip_port,
                ports: vec![sip_port],
            }
        },
        |_| std::fs::read_to_string(dir.join(LOG)).unwrap_or_default(),
        |said| said.contains("Address already in use"),
    )
    .await;
    child
}

/// Writes `samples` as the 8 kHz mono 16-bit WAV that baresip's `aufile` reads.
fn write_wav(path: &Path, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for s in samples {
        w.write_sample(*s).unwrap();
    }
    w.finalize().unwrap();
}
