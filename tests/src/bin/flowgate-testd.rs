//! The `flowgate` binary under another name, for tests that need a separate daemon process.
//!
//! One addition for the service-manager test (`tests/e2e/systemd.rs`): when
//! `FLOWGATE_TESTD_STALL_FILE` names a file that exists, the store's write probe blocks for
//! good, as a deadlocked sled write would, after telling the notify socket
//! `FLOWGATE_TESTD=stalled` (so the test knows from which datagram on no ping may come).
//!
//! And one for the SMS crash tests (`tests/e2e/crash.rs`): `FLOWGATE_TESTD_CRASH_AT` names a
//! point of `flowgate_board::crashpoint`; the first time the daemon reaches it, the daemon
//! has itself killed with SIGKILL, exactly as `kill -9` from outside would.

use std::path::Path;

fn main() -> std::process::ExitCode {
    if std::env::var_os("FLOWGATE_TESTD_STALL_FILE").is_some() {
        // Only fails if a hook is already set, which nothing else in this binary does.
        let _ = flowgate::store::watchdog::set_probe_hook(stall_when_asked);
    }
    if std::env::var_os("FLOWGATE_TESTD_CRASH_AT").is_some() {
        let _ = flowgate_board::crashpoint::set_hook(die_when_asked);
    }
    flowgate::cli::main()
}

/// The probe hook: blocks the probe's thread for good once the stall file exists.
fn stall_when_asked() {
    let Some(file) = std::env::var_os("FLOWGATE_TESTD_STALL_FILE") else {
        return;
    };
    if !Path::new(&file).exists() {
        return;
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Custom("FLOWGATE_TESTD=stalled")]);
    loop {
        std::thread::park();
    }
}

/// The crash-point hook: SIGKILL at the chosen point (nothing after it runs: the thread
/// waits for the signal).
fn die_when_asked(point: &'static str) {
    if std::env::var("FLOWGATE_TESTD_CRASH_AT").is_ok_and(|want| want == point) {
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status();
        loop {
            std::thread::park();
        }
    }
}
