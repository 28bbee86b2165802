//! The daemon under a real notify socket, the way systemd runs the unit (`Type=notify`,
//! `WatchdogSec=`): READY=1 once it serves, WATCHDOG=1 only while the store proves writes,
//! none once the store stalls (then exit 70 for a restart), STOPPING=1 on SIGTERM.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use flowgate_tests::WAIT;

/// The notify socket a test listens on, and the daemon it started.
struct Supervised {
    socket: UnixDatagram,
    child: Option<Child>,
    _dir: tempfile::TempDir,
    stall_file: PathBuf,
}

impl Supervised {
    /// Starts `flowgate-testd run` on the simulated board with `NOTIFY_SOCKET` set, and
    /// `WATCHDOG_USEC` when `watchdog` is given.
    fn start(watchdog: Option<Duration>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket_path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&socket_path).unwrap();
        socket.set_read_timeout(Some(WAIT)).unwrap();
        let config = dir.path().join("flowgate.toml");
        std::fs::write(
            &config,
            format!(
                "[api]\nlisten = \"127.0.0.1:0\"\n[sip]\nlisten = \"127.0.0.1:0\"\n[data]\ndir = {:?}\n[board]\nprofile = \"simulated\"\n[log]\nfilter = \"warn\"\n",
                dir.path().join("data")
            ),
        )
        .unwrap();
        let stall_file = dir.path().join("stall");
        let mut command = Command::new(env!("CARGO_BIN_EXE_flowgate-testd"));
        command
            .args(["run", "--config"])
            .arg(&config)
            .env("NOTIFY_SOCKET", &socket_path)
            .env("FLOWGATE_TESTD_STALL_FILE", &stall_file)
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(interval) = watchdog {
            command.env("WATCHDOG_USEC", interval.as_micros().to_string());
        }
        Self {
            socket,
            child: Some(command.spawn().unwrap()),
            _dir: dir,
            stall_file,
        }
    }

    /// The next datagram, waiting at most [`WAIT`].
    fn next(&self, what: &str) -> String {
        let mut buf = [0_u8; 4096];
        // A signal to the test process (another test's child exiting) interrupts a blocking
        // recv: that is not the end of the wait.
        let n = loop {
            match self.socket.recv(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => {
                    break other.unwrap_or_else(|e| {
                        panic!("no notify message ({what}) within {WAIT:?}: {e}")
                    });
                }
            }
        };
        message(&buf[..n])
    }

    /// Every datagram already queued (the daemon has exited: nothing more can come).
    fn drain(&self) -> Vec<String> {
        self.socket.set_nonblocking(true).unwrap();
        let mut buf = [0_u8; 4096];
        let mut out = Vec::new();
        while let Ok(n) = self.socket.recv(&mut buf) {
            out.push(message(&buf[..n]));
        }
        out
    }

    fn pid(&self) -> String {
        self.child.as_ref().unwrap().id().to_string()
    }

    /// Waits for the daemon to exit, at most `limit` (then kills it and fails).
    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let pid = child.id().to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(limit) {
            Ok(status) => status.unwrap(),
            Err(_) => {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
                panic!("the daemon did not exit within {limit:?}");
            }
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A datagram's assignments (newline-separated; sd-notify ends each with a newline).
fn message(datagram: &[u8]) -> String {
    String::from_utf8_lossy(datagram).trim_end().to_owned()
}

fn stall(path: &Path) {
    std::fs::write(path, b"stall").unwrap();
}

#[test]
fn ready_then_pings_while_the_store_writes_and_none_once_it_stalls() {
    // WATCHDOG_USEC = 2 s: the daemon probes every second (half the interval).
    let mut daemon = Supervised::start(Some(Duration::from_secs(2)));
    assert_eq!(daemon.next("READY"), "READY=1");
    for i in 0..3 {
        assert_eq!(daemon.next(&format!("ping {i}")), "WATCHDOG=1");
    }

    stall(&daemon.stall_file);
    // A probe already past the hook may still ping; the next one blocks and says so.
    loop {
        let message = daemon.next("the stall marker");
        if message == "FLOWGATE_TESTD=stalled" {
            break;
        }
        assert_eq!(message, "WATCHDOG=1", "unexpected message before the stall");
    }
    // The store watchdog's contract: a write stuck for its stall limit (30 s) makes the
    // daemon exit 70 (for a restart), and not one ping goes out meanwhile.
    let status = daemon.wait_exit(Duration::from_secs(90));
    assert_eq!(status.code(), Some(70), "{status:?}");
    let after = daemon.drain();
    assert!(
        !after.iter().any(|m| m == "WATCHDOG=1"),
        "pinged after the store stalled: {after:?}"
    );
}

#[test]
fn sigterm_is_announced_as_stopping_and_exits_cleanly() {
    // No WATCHDOG_USEC: systemd did not ask for pings, so none may come.
    let mut daemon = Supervised::start(None);
    assert_eq!(daemon.next("READY"), "READY=1");
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.pid()])
        .status()
        .unwrap();
    assert_eq!(daemon.next("STOPPING"), "STOPPING=1");
    let status = daemon.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "{status:?}");
    assert_eq!(daemon.drain(), Vec::<String>::new());
}

/// The fields of one journal-protocol datagram (`KEY=value` lines; a value with a newline
/// comes as `KEY\n<u64 le length><bytes>\n`).
fn journal_fields(datagram: &[u8]) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let Some(line_end) = rest.iter().position(|&b| b == b'\n') else {
            break;
        };
        let line = &rest[..line_end];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            fields.push((
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            ));
            rest = &rest[line_end + 1..];
        } else {
            let key = String::from_utf8_lossy(line).into_owned();
            let after = &rest[line_end + 1..];
            let len = usize::try_from(u64::from_le_bytes(after[..8].try_into().unwrap())).unwrap();
            let value = String::from_utf8_lossy(&after[8..8 + len]).into_owned();
            fields.push((key, value));
            rest = &after[8 + len + 1..];
        }
    }
    fields
}

#[test]
fn journald_logging_sends_tracing_fields_as_journal_fields() {
    // The journal's socket path is fixed (/run/systemd/journal/socket): run the daemon in a
    // private mount namespace with an empty /run holding the test's socket there.
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    let socket = UnixDatagram::bind(journal.join("socket")).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let config = dir.path().join("flowgate.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\nlisten = \"127.0.0.1:0\"\n[sip]\nlisten = \"127.0.0.1:0\"\n[data]\ndir = {:?}\n[board]\nprofile = \"simulated\"\n[log]\nfilter = \"info\"\nformat = \"journald\"\n",
            dir.path().join("data")
        ),
    )
    .unwrap();
    let as_root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let mut command = Command::new("unshare");
    if !as_root {
        command.arg("--map-root-user");
    }
    let script = format!(
        "mount -t tmpfs none /run && mkdir -p /run/systemd/journal && mount --bind {} /run/systemd/journal && exec {} run --config {}",
        journal.display(),
        env!("CARGO_BIN_EXE_flowgate-testd"),
        config.display()
    );
    let mut child = command
        .args(["--mount", "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut buf = vec![0_u8; 65536];
    let received = loop {
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        };
        let fields = journal_fields(&buf[..n]);
        if fields
            .iter()
            .any(|(k, v)| k == "MESSAGE" && v == "flowgate is up")
        {
            break Ok(fields);
        }
    };
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let up = received.unwrap_or_else(|e| {
        panic!(
            "no 'flowgate is up' journal entry within {WAIT:?}: {e}; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let get = |key: &str| up.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    // tracing-journald maps info to "notice" (5), warn to 4, error to 3; the event's fields
    // come under the FLOWGATE_ prefix.
    assert_eq!(get("PRIORITY"), Some("5"), "{up:?}");
    assert_eq!(get("FLOWGATE_BOARD"), Some("simulated"), "{up:?}");
    assert!(
        get("FLOWGATE_ADDR").is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{up:?}"
    );
}
