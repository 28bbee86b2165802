//! The disk budget: how much of the board's flash the data directory may use, and what the
//! store does when it is used up.
//!
//! [`DiskBudget::assess`] is the decision (sans-IO: the sizes are inputs); [`DiskGuard`] is
//! the shared verdict the store consults on every commit; [`measure`] is the thin I/O shell
//! (the data directory's size, the file system's free space).
//!
//! # States
//!
//! - **ok**: below 90 % of `[data] max_disk_mib`.
//! - **pressure**: 90 % or more. While the directory keeps growing, retention prunes beyond
//!   its age and count limits (see `sync::retention`), a quarter of the oldest ended records
//!   per round.
//! - **full**: the budget is reached and the directory is still growing, or the file system
//!   has less than the reserve left. The store refuses batches that *create* something (any
//!   `*_created` event: a new activeflow, call, message, recording, flow…) with
//!   [`StoreError::DiskFull`]; updates and deletes still go through, so running flows finish
//!   and pruning works. The API answers `507 Insufficient Storage` (code `DISK_FULL`); an
//!   inbound SMS that cannot be stored is not acknowledged, so it stays on the modem until
//!   there is room.
//!
//! Why "still growing": sled does not give the space of deleted records back to the file
//! system at once. It reuses it for new writes, and cuts the file only when the segments at
//! its end are free. After pruning, the file can stay at its size for a long time while
//! holding plenty of free room; refusing work (or pruning more) for as long as it stays
//! there would empty the database for nothing. A directory at the budget that no longer
//! grows is using the room pruning made; one that still grows (by more than 1 MiB between
//! two measurements) is not, and is stopped.
//!
//! Why refuse before the disk is really full: sled 0.34 treats a failed log write as fatal
//! (every later operation fails until the database is reopened), and deleting needs free
//! space too (tombstones, then compaction rewrites live data into fresh segments). The
//! reserve keeps that room.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use super::StoreError;

const MIB: u64 = 1024 * 1024;

/// The budget: the most the data directory may hold, and the free space the file system must
/// keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskBudget {
    /// `[data] max_disk_mib`, in bytes.
    pub max_bytes: u64,
    /// Free space the file system must keep for sled's own compaction and for deletes.
    pub reserve_bytes: u64,
}

/// The verdict of [`DiskBudget::assess`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskState {
    /// Room to spare.
    Ok,
    /// Nearly full: prune harder.
    Pressure,
    /// Full: refuse new work.
    Full,
}

impl DiskBudget {
    /// A budget of `max_mib` MiB; the reserve is 5 % of it, at least 16 MiB.
    pub fn from_mib(max_mib: u64) -> Self {
        let max_bytes = max_mib.saturating_mul(MIB);
        Self {
            max_bytes,
            reserve_bytes: (max_bytes / 20).max(16 * MIB),
        }
    }

    /// Whether the directory grew by more than 1 MiB since the `previous` measurement (the
    /// first measurement counts as growth).
    pub fn growing(previous: Option<u64>, used: u64) -> bool {
        previous.is_none_or(|p| used > p.saturating_add(MIB))
    }

    /// The state for `used` bytes in the data directory (`previous` at the measurement
    /// before) and `fs_free` bytes free on its file system.
    pub fn assess(&self, previous: Option<u64>, used: u64, fs_free: u64) -> DiskState {
        if fs_free < self.reserve_bytes {
            return DiskState::Full;
        }
        if used >= self.max_bytes && Self::growing(previous, used) {
            return DiskState::Full;
        }
        if used >= self.max_bytes / 100 * 90 {
            DiskState::Pressure
        } else {
            DiskState::Ok
        }
    }
}

/// The current disk verdict, shared by the store (which refuses creations when full), the
/// retention task (which sets it) and the API. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct DiskGuard {
    inner: Arc<GuardInner>,
}

#[derive(Debug)]
struct GuardInner {
    state: AtomicU8,
    used: AtomicU64,
    max: AtomicU64,
    /// Creations refused so far (watchable: tests and metrics wait on it).
    refused: tokio::sync::watch::Sender<u64>,
}

impl Default for GuardInner {
    fn default() -> Self {
        Self {
            state: AtomicU8::new(0),
            used: AtomicU64::new(0),
            max: AtomicU64::new(0),
            refused: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl DiskGuard {
    /// Records a new verdict with the measurement behind it.
    pub fn set(&self, state: DiskState, used: u64, max: u64) {
        self.inner.used.store(used, Ordering::Relaxed);
        self.inner.max.store(max, Ordering::Relaxed);
        let code = match state {
            DiskState::Ok => 0,
            DiskState::Pressure => 1,
            DiskState::Full => 2,
        };
        self.inner.state.store(code, Ordering::Release);
    }

    /// The current verdict (ok until the first measurement).
    pub fn state(&self) -> DiskState {
        match self.inner.state.load(Ordering::Acquire) {
            0 => DiskState::Ok,
            1 => DiskState::Pressure,
            _ => DiskState::Full,
        }
    }

    /// Bytes used at the last measurement.
    pub fn used(&self) -> u64 {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// How many creations were refused so far; the receiver changes with every refusal.
    pub fn refusals(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.refused.subscribe()
    }

    /// `Err(DiskFull)` when the disk is full: what a creation gets (counted).
    ///
    /// # Errors
    /// [`StoreError::DiskFull`] while the state is full.
    pub fn admit(&self) -> Result<(), StoreError> {
        if self.state() == DiskState::Full {
            self.inner.refused.send_modify(|n| *n += 1);
            return Err(StoreError::DiskFull {
                used_mib: self.used() / MIB,
                max_mib: self.inner.max.load(Ordering::Relaxed) / MIB,
            });
        }
        Ok(())
    }
}

/// What [`measure`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskUsage {
    /// Bytes of every file under the data directory (database, recordings, caches).
    pub used: u64,
    /// Bytes the file system holding it still has for unprivileged writers.
    pub fs_free: u64,
}

/// Measures the data directory `dir`.
///
/// # Errors
/// The directory or its file system could not be read.
pub fn measure(dir: &Path) -> std::io::Result<DiskUsage> {
    let stat = nix::sys::statvfs::statvfs(dir).map_err(std::io::Error::from)?;
    // The C types are 32-bit on some boards' targets and 64-bit here.
    #[allow(clippy::useless_conversion)]
    let fs_free =
        u64::from(stat.blocks_available()).saturating_mul(u64::from(stat.fragment_size()));
    Ok(DiskUsage {
        used: dir_size(dir)?,
        fs_free,
    })
}

/// Sum of the sizes of the files under `dir` (symlinks not followed).
fn dir_size(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0u64;
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        let entries = match std::fs::read_dir(&next) {
            Ok(entries) => entries,
            // A directory removed while we walk (a temporary file, a pruned recording).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                total = total.saturating_add(meta.len());
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_budget_and_full_means_still_growing() {
        let budget = DiskBudget::from_mib(1000);
        let free = 10_000 * MIB;
        let used = |mib: u64| mib * MIB;
        assert_eq!(budget.assess(None, used(100), free), DiskState::Ok);
        assert_eq!(
            budget.assess(Some(used(890)), used(905), free),
            DiskState::Pressure
        );
        // At the budget and growing: full (the first measurement counts as growth).
        assert_eq!(budget.assess(None, used(1000), free), DiskState::Full);
        assert_eq!(
            budget.assess(Some(used(990)), used(1002), free),
            DiskState::Full
        );
        // At the budget but no longer growing: the room pruning made is being reused.
        assert_eq!(
            budget.assess(Some(used(1002)), used(1002) + 1000, free),
            DiskState::Pressure
        );
        assert_eq!(
            budget.assess(Some(used(1010)), used(1005), free),
            DiskState::Pressure
        );
        assert_eq!(
            budget.assess(Some(used(600)), used(500), free),
            DiskState::Ok
        );
        assert!(DiskBudget::growing(Some(used(10)), used(12)));
        assert!(!DiskBudget::growing(Some(used(10)), used(10) + 100));
    }

    #[test]
    fn a_nearly_full_file_system_is_full_whatever_the_budget() {
        let budget = DiskBudget::from_mib(1000);
        assert_eq!(budget.reserve_bytes, 50 * MIB);
        assert_eq!(
            budget.assess(Some(10 * MIB), 10 * MIB, 49 * MIB),
            DiskState::Full
        );
        assert_eq!(DiskBudget::from_mib(64).reserve_bytes, 16 * MIB);
    }

    #[test]
    fn the_guard_refuses_only_when_full() {
        let guard = DiskGuard::default();
        assert!(guard.admit().is_ok());
        guard.set(DiskState::Pressure, 950 * MIB, 1000 * MIB);
        assert!(guard.admit().is_ok());
        guard.set(DiskState::Full, 1001 * MIB, 1000 * MIB);
        assert_eq!(*guard.refusals().borrow(), 0);
        match guard.admit() {
            Err(StoreError::DiskFull { used_mib, max_mib }) => {
                assert_eq!((used_mib, max_mib), (1001, 1000));
            }
            other => panic!("expected DiskFull, got {other:?}"),
        }
        assert_eq!(*guard.refusals().borrow(), 1);
    }

    #[test]
    fn measuring_counts_files_in_subdirectories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), vec![0u8; 1000]).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub").join("b"), vec![0u8; 234]).unwrap();
        let usage = measure(dir.path()).unwrap();
        assert_eq!(usage.used, 1234);
        assert!(usage.fs_free > 0);
    }
}
