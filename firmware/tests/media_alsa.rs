//! The ALSA port without a sound card.
//!
//! ALSA reads its configuration once per process, so each test instantiates
//! `tests/alsa/flowgate-test.conf.in` in its own temporary directory and runs
//! its body in a child process (this test binary again, filtered to the one
//! test) with `ALSA_CONFIG_PATH` pointing at it. The parent prepares inputs and
//! checks outputs on disk; the child talks to ALSA.
//!
//! * `file` PCMs over `{ type null }` move exact bytes but do not pace: the port
//!   must keep real time itself (checked with a manual clock, and with an upper
//!   bound on frames per wall-clock time).
//! * One test needs a real-time device: a private PulseAudio daemon with a null
//!   sink, reached through ALSA's `pulse` plugin.

mod media_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowgate::media::port::{AlsaOptions, AlsaPort};
use flowgate::media::{
    AudioPort, CallMedia, Clock, FrameStatus, Layer, ManualClock, MediaError, MediaEvent, Source,
    SystemClock,
};
use flowgate_line::{AlsaOrigin, AudioTransport, LegAudio};
use media_support::*;

/// Set in the child: the test's directory.
const CHILD_DIR: &str = "FLOWGATE_MEDIA_ALSA_DIR";

fn child_dir() -> Option<PathBuf> {
    std::env::var_os(CHILD_DIR).map(PathBuf::from)
}

/// Writes the ALSA configuration for `dir` and returns its path.
fn instantiate(dir: &Path) -> PathBuf {
    let template = include_str!("alsa/flowgate-test.conf.in");
    let conf = dir.join("asound.conf");
    std::fs::write(
        &conf,
        template.replace("@DIR@", dir.to_str().expect("utf-8 temp dir")),
    )
    .expect("write config");
    conf
}

/// Runs `test` (this binary's test of that name) in a child with the config.
fn run_child(test: &str, dir: &Path) {
    let conf = instantiate(dir);
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("ALSA_CONFIG_PATH", &conf)
        .env(CHILD_DIR, dir)
        .output()
        .expect("run the child");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "child {test} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "the child did not run {test}:\n{stdout}"
    );
}

fn raw(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

fn pattern(frames: usize) -> Vec<i16> {
    (0..frames * F)
        .map(|i| i16::try_from(i % 3001).expect("small") - 1500)
        .collect()
}

#[test]
fn playback_and_capture_move_exact_bytes_paced_by_the_port_clock() {
    let Some(_dir) = child_dir() else {
        let dir = tempfile::tempdir().expect("dir");
        // 100 frames of infile for 50 frames read: capture past the end of the
        // infile would return stale data, and the capture thread reads ahead.
        std::fs::write(dir.path().join("capture.raw"), raw(&pattern(100))).expect("infile");
        run_child(
            "playback_and_capture_move_exact_bytes_paced_by_the_port_clock",
            dir.path(),
        );
        let played = std::fs::read(dir.path().join("play.raw")).expect("play.raw");
        let expected: Vec<i16> = (0..50i16).flat_map(|k| vec![k * 100 + 1; F]).collect();
        assert_eq!(
            played,
            raw(&expected),
            "exactly the frames written, no padding"
        );
        return;
    };
    let clock = ManualClock::new();
    let opts = AlsaOptions {
        playback_queue: 100,
        ..AlsaOptions::default()
    };
    let mut port = AlsaPort::open("gw_play", "gw_cap", &opts, clock.clone()).expect("open");
    let mut captured = Vec::new();
    let mut frame = vec![0i16; F];
    for k in 0..50i16 {
        assert_eq!(
            port.read_frame(&mut frame).expect("read"),
            FrameStatus::Received
        );
        captured.extend_from_slice(&frame);
        port.write_frame(&vec![k * 100 + 1; F]).expect("write");
    }
    let (xruns, dropped) = (port.stats().xruns(), port.stats().dropped());
    drop(port);
    assert_eq!(captured, pattern(50), "capture reads the infile");
    assert_eq!((xruns, dropped), (0, 0));
    // A file PCM returns at once; the port slept on its clock for every frame
    // (the capture thread may be a few frames ahead: its queue holds 4).
    let now = clock.now();
    assert!(
        now >= Duration::from_millis(49 * 20) && now <= Duration::from_millis(55 * 20),
        "{now:?}"
    );
}

#[test]
fn a_session_on_file_pcms_keeps_real_time() {
    let Some(dir) = child_dir() else {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("capture.raw"), raw(&vec![0i16; 8000 * 30]))
            .expect("infile");
        run_child("a_session_on_file_pcms_keeps_real_time", dir.path());
        let played = std::fs::read(dir.path().join("play.raw")).expect("play.raw");
        let samples: Vec<i16> = played
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        let prompt = sine(800.0, 400, 8000.0, 8000);
        let at = samples
            .windows(64)
            .position(|w| w == &prompt[..64])
            .expect("the prompt was played");
        assert_eq!(&samples[at..at + prompt.len()], &prompt[..]);
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let data = tempfile::tempdir().expect("data");
        let ctx = context(data.path());
        let transport = AudioTransport::Alsa {
            playback: "gw_play".into(),
            capture: "gw_cap".into(),
            sample_rate: 8000,
            origin: AlsaOrigin::UsbAudio,
        };
        let started = Instant::now();
        let (media, mut events) = CallMedia::open(LegAudio::Device(transport), &ctx, "alsa-call")
            .await
            .expect("open");
        let mut pb = media
            .play(
                Layer::Flow,
                Source::Samples(sine(800.0, 400, 8000.0, 8000).into()),
            )
            .expect("play");
        assert!(pb.wait().await.is_finished());
        media.close();
        media.closed().await;
        let elapsed = started.elapsed();
        let bytes = std::fs::metadata(dir.join("play.raw"))
            .expect("play.raw")
            .len();
        let frames = bytes / 320;
        // Sleeps never end early, so a port that keeps real time cannot have
        // written more frames than the time allows (plus its queues).
        let allowed = u64::try_from(elapsed.as_millis() / 20).expect("small") + 12;
        assert!(
            frames >= 20 && frames <= allowed,
            "{frames} frames in {elapsed:?}"
        );
        assert!(
            std::iter::from_fn(|| events.try_recv().ok()).any(|e| matches!(e, MediaEvent::Closed))
        );
    });
}

#[test]
fn missing_devices_and_bad_rates_are_clear_errors() {
    let Some(_dir) = child_dir() else {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("capture.raw"), raw(&vec![0i16; 8000])).expect("infile");
        run_child("missing_devices_and_bad_rates_are_clear_errors", dir.path());
        return;
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
    let err = AlsaPort::open(
        "gw_nosuch",
        "gw_cap",
        &AlsaOptions::default(),
        clock.clone(),
    )
    .expect_err("missing");
    assert!(
        matches!(err, MediaError::DeviceMissing { ref device, .. } if device == "gw_nosuch"),
        "{err}"
    );
    let err = AlsaPort::open("gw_play", "hw:7,0", &AlsaOptions::default(), clock.clone())
        .expect_err("no card");
    assert!(err.to_string().contains("hw:7,0"), "{err}");
    let opts = AlsaOptions {
        sample_rate: 11025,
        ..AlsaOptions::default()
    };
    let err = AlsaPort::open("gw_play", "gw_cap", &opts, clock).expect_err("rate");
    assert!(matches!(err, MediaError::DeviceConfig { .. }), "{err}");
}

/// The private PulseAudio daemon, stopped (by its pid) when dropped.
struct Pulse(Child);

impl Drop for Pulse {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_pulse(dir: &Path) -> Pulse {
    let p = dir.join("pulse");
    for d in ["run", "state", "home"] {
        std::fs::create_dir_all(p.join(d)).expect("mkdir");
    }
    let socket = p.join("native");
    let child = Command::new("pulseaudio")
        .args([
            "-n",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--use-pid-file=no",
            "--log-target=stderr",
            "-L",
            &format!(
                "module-native-protocol-unix socket={} auth-anonymous=1",
                socket.display()
            ),
            "-L",
            "module-null-sink sink_name=gwsink rate=8000 channels=1 format=s16le",
            "-L",
            "module-always-sink",
        ])
        .env("PULSE_RUNTIME_PATH", p.join("run"))
        .env("PULSE_STATE_PATH", p.join("state"))
        .env("HOME", p.join("home"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pulseaudio (Debian package `pulseaudio`) starts");
    let mut pulse = Pulse(child);
    // Wait for its socket to appear (or for it to die).
    let deadline = Instant::now() + WAIT;
    while !socket.exists() {
        if let Ok(Some(status)) = pulse.0.try_wait() {
            panic!("pulseaudio exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "pulseaudio did not create {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    pulse
}

#[test]
fn real_time_loopback_through_a_pulseaudio_null_sink() {
    let Some(_dir) = child_dir() else {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("capture.raw"), raw(&vec![0i16; 8000])).expect("infile");
        let _pulse = start_pulse(dir.path());
        run_child(
            "real_time_loopback_through_a_pulseaudio_null_sink",
            dir.path(),
        );
        return;
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
    let mut port = AlsaPort::open(
        "gw_pulse_play",
        "gw_pulse_cap",
        &AlsaOptions::default(),
        clock,
    )
    .expect("open");
    let tone = sine(1000.0, 4000, 10_000.0, 8000);
    let mut captured = Vec::new();
    let mut frame = vec![0i16; F];
    let mut received = 0;
    let started = Instant::now();
    for out in frames(&tone, F) {
        if port.read_frame(&mut frame).expect("read") == FrameStatus::Received {
            received += 1;
        }
        captured.extend_from_slice(&frame);
        port.write_frame(&out).expect("write");
    }
    let elapsed = started.elapsed();
    drop(port);
    // A real device paces itself: 200 frames take about 4 s.
    assert!(elapsed >= Duration::from_millis(3000), "{elapsed:?}");
    assert!(received > 100, "{received} frames captured");
    // What we played comes back on the sink's monitor.
    let last = &captured[captured.len() - 8000..];
    let p1k = tone_power(last, 1000.0, 8000.0);
    assert!(p1k > 1e6, "1 kHz power {p1k} in the captured audio");
    assert!(p1k > 0.5 * power(last), "mostly the tone");
}
