//! Finding the Python the test tools live in, shared by the board's python-gsmmodem test and
//! the end-to-end tests (`tests/src/lib.rs` includes this file by path: `board` cannot depend
//! on the test crate, which depends on it).

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The Python that can import `module`: `$FLOWGATE_PYTHON`, the venv `scripts/deps.sh test`
/// makes in the target directory, or `python3` on the path. Panics with the fix when none can.
pub fn python_with(module: &str) -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("FLOWGATE_PYTHON") {
        candidates.push(PathBuf::from(p));
    }
    // A test binary is <target>/<profile>/deps/<name>.
    if let Ok(exe) = std::env::current_exe()
        && let Some(target) = exe.ancestors().nth(3)
    {
        candidates.push(target.join("pyvenv/bin/python3"));
    }
    candidates.push(PathBuf::from("python3"));
    for c in &candidates {
        let ok = Command::new(c)
            .args(["-c", &format!("import {module}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return c.clone();
        }
    }
    panic!(
        "no Python with {module} (tried {candidates:?}): run `scripts/deps.sh test`, which \
         installs it into <target>/pyvenv, or set FLOWGATE_PYTHON"
    );
}
