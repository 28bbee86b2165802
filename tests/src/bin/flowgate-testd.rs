//! The `flowgate` binary under another name, for tests that need a separate daemon process.
//!
//! One addition for the service-manager test (`tests/e2e/systemd.rs`): when
//! `FLOWGATE_TESTD_STALL_FILE` names a file that exists, the store's write probe blocks for
//! good, as a deadlocked sled write would, after telling the notify socket
//! `FLOWGATE_TESTD=stalled` (so the test knows from which datagram on no ping may come).

use std::path::Path;

fn main() -> std::process::ExitCode {
    if std::env::var_os("FLOWGATE_TESTD_STALL_FILE").is_some() {
        // Only fails if a hook is already set, which nothing else in this binary does.
        let _ = flowgate::store::watchdog::set_probe_hook(stall_when_asked);
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
