//! SIPp (Debian `sip-tester`, installed by `scripts/deps.sh test`): one call of a scenario,
//! on free loopback ports.

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::ports::{Attempt, free_media_port, free_udp_port, start_bound};

/// How long a whole SIPp run may last (its `-timeout`), and a little more for the test to
/// see it finish.
const RUN: &str = "40s";
const FINISH_WAIT: Duration = Duration::from_secs(60);

/// Starts SIPp with `args` (the scenario, a remote address for a client) on `ip`, a free
/// SIP port and free media ports, for one call; returns the SIP port and the process once
/// SIPp holds its ports (SIP, RTP, and the video socket two above the RTP port).
pub async fn start(ip: &str, args: &[&str]) -> (u16, Child) {
    start_bound(
        "sipp",
        || spawn(ip, args, free_udp_port(), free_media_port()),
        stderr_of,
        port_taken,
    )
    .await
}

/// Starts SIPp on `port` (SIP) and `media` (RTP; RTCP and video above it).
fn spawn(ip: &str, args: &[&str], port: u16, media: u16) -> Attempt {
    let child = Command::new("sipp")
        .args(args)
        .args(["-i", ip, "-p", &port.to_string(), "-mp", &media.to_string()])
        .args(["-m", "1", "-nostdin", "-timeout", RUN])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sipp runs (Debian package sip-tester; scripts/deps.sh test installs it)");
    Attempt {
        child,
        port,
        ports: vec![port, media, media + 2],
    }
}

/// Whether SIPp's stderr says it exited because a port was taken.
fn port_taken(stderr: &str) -> bool {
    stderr.contains("Unable to bind")
}

/// What an exited SIPp wrote to stderr.
fn stderr_of(child: &mut Child) -> String {
    let mut said = String::new();
    if let Some(fd) = child.stderr.take().and_then(|p| p.into_owned_fd().ok()) {
        let _ = std::fs::File::from(fd).read_to_string(&mut said);
    }
    said
}

/// Waits for SIPp to finish its scenario, and fails the test (with SIPp's stderr) if the
/// scenario failed.
pub async fn finished(child: Child) {
    let out = tokio::time::timeout(FINISH_WAIT, child.wait_with_output())
        .await
        .expect("sipp finishes within its run")
        .expect("sipp exit status");
    assert!(
        out.status.success(),
        "sipp failed: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::udp_ports_of;

    /// The launcher's two outcomes: SIPp given a port somebody else holds exits at once
    /// saying so, and is started again on new ports; SIPp on free ports is seen holding
    /// them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sipp_on_a_taken_port_is_started_again_on_new_ports() {
        let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let busy = taken.local_addr().unwrap().port();
        let mut tries = 0;
        let (port, child) = start_bound(
            "sipp",
            || {
                tries += 1;
                let port = if tries == 1 { busy } else { free_udp_port() };
                spawn("127.0.0.1", &["-sn", "uas"], port, free_media_port())
            },
            stderr_of,
            |said| {
                assert!(said.contains("Unable to bind main socket"), "{said}");
                port_taken(said)
            },
        )
        .await;
        assert_eq!(tries, 2);
        assert_ne!(port, busy);
        assert!(udp_ports_of(child.id().unwrap()).contains(&port));
    }
}
