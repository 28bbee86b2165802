//! Free loopback ports, and which UDP ports a process holds.

use std::net::UdpSocket;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::Child;

/// How long a peer may take to bind its ports.
const BIND_WAIT: Duration = Duration::from_secs(30);

/// A free UDP port on loopback (bound then released; the kernel does not hand it out
/// again at once, but another process may take it).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free even UDP port for media: RTP there, RTCP next, and, for SIPp, its video socket
/// two above, which it binds too.
pub fn free_media_port() -> u16 {
    loop {
        let p = free_udp_port();
        if p.is_multiple_of(2) && p < 65_000 && UdpSocket::bind(("127.0.0.1", p + 2)).is_ok() {
            return p;
        }
    }
}

/// Waits until `child` holds every UDP port of `ports`, or has exited: `Ok` once it holds
/// them or finished successfully before they were seen (a short scenario may), its exit
/// status if it failed.
async fn bound(child: &mut Child, ports: &[u16]) -> Result<(), ExitStatus> {
    let pid = child.id().expect("the peer has just been started");
    let deadline = tokio::time::Instant::now() + BIND_WAIT;
    loop {
        if let Some(status) = child.try_wait().expect("the peer's status") {
            return if status.success() {
                Ok(())
            } else {
                Err(status)
            };
        }
        let held = udp_ports_of(pid);
        if ports.iter().all(|p| held.contains(p)) {
            return Ok(());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the peer did not bind {ports:?} within {BIND_WAIT:?}"
        );
        // A process's sockets cannot be awaited: poll them.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The local UDP (IPv4) ports process `pid` has sockets on: its socket inodes from
/// `/proc/<pid>/fd`, looked up in `/proc/net/udp`.
pub fn udp_ports_of(pid: u32) -> Vec<u16> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let inodes: Vec<String> = fds
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let inode = fields.get(9)?;
            let port = fields.get(1)?.rsplit(':').next()?;
            inodes
                .iter()
                .any(|i| i == inode)
                .then(|| u16::from_str_radix(port, 16).ok())?
        })
        .collect()
}

/// A peer being started: the process, the port it was given, and every UDP port it
/// must hold before it counts as started.
pub(crate) struct Attempt {
    pub child: Child,
    pub port: u16,
    pub ports: Vec<u16>,
}

/// Starts peer `name` through `spawn` (which picks fresh ports each time) until it holds
/// its ports. A start that failed because a port was taken (`taken` reads that from what
/// `output` says the peer printed) is tried again on new ports; any other failure at start
/// fails the test with that output. The port and the running process.
pub(crate) async fn start_bound(
    name: &str,
    mut spawn: impl FnMut() -> Attempt,
    output: impl Fn(&mut Child) -> String,
    taken: impl Fn(&str) -> bool,
) -> (u16, Child) {
    const TRIES: usize = 5;
    for _ in 0..TRIES {
        let mut attempt = spawn();
        match bound(&mut attempt.child, &attempt.ports).await {
            Ok(()) => return (attempt.port, attempt.child),
            Err(status) => {
                let said = output(&mut attempt.child);
                if !taken(&said) {
                    panic!("{name} exited as it started ({status}): {said}");
                }
            }
        }
    }
    panic!("{name} found its ports taken {TRIES} times in a row");
}
