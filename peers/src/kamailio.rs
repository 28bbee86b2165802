//! kamailio (Debian `kamailio`, installed by `scripts/deps.sh test`): a registrar and proxy
//! from a configuration file, listening on a free loopback port.

use std::path::Path;
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::ports::{Attempt, free_udp_port, start_bound};

/// The file in the run directory that takes kamailio's log (`-E`: to stderr).
const LOG: &str = "kamailio.log";

/// Starts kamailio in the foreground with configuration `cfg`, its run and working
/// directory `dir`, on a free UDP port of 127.0.0.1; returns the port and the process once
/// kamailio holds the port. Its worker processes end when the main process gets SIGTERM
/// (a SIGKILL, as `kill_on_drop` sends, would orphan them): the caller stops it so.
pub async fn start(cfg: &Path, dir: &Path) -> (u16, Child) {
    let dir_arg = dir.display().to_string();
    start_bound(
        "kamailio",
        || {
            let port = free_udp_port();
            let log = std::fs::File::create(dir.join(LOG)).unwrap();
            let child = Command::new("kamailio")
                .args(["-f", &cfg.display().to_string(), "-DD", "-E"])
                .args(["-n", "1", "-m", "32", "-M", "8"])
                .args(["-l", &format!("udp:127.0.0.1:{port}")])
                .args(["-Y", &dir_arg, "-w", &dir_arg])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .expect(
                    "kamailio runs (Debian package kamailio; scripts/deps.sh test installs it)",
                );
            Attempt {
                child,
                port,
                ports: vec![port],
            }
        },
        |_| std::fs::read_to_string(dir.join(LOG)).unwrap_or_default(),
        |said| said.contains("Address already in use"),
    )
    .await
}
