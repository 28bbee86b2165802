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
                "[api]\nlisten = \"127.0.0.1:0\"\n[data]\ndir = {:?}\n[board]\nprofile = \"simulated\"\n[log]\nfilter = \"warn\"\n",
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
        let n = self
            .socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no notify message ({what}) within {WAIT:?}: {e}"));
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
