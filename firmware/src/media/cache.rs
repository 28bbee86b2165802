//! A size-capped directory of cached files (synthesized prompts, downloaded
//! `play` URLs), keyed by a SHA-256 of what produced them.
//!
//! * **Atomic writes**: a file is written under a temporary name and renamed into
//!   place, so a reader (or a crash) never sees half an entry.
//! * **LRU-ish eviction**: after each insert, while the directory holds more than
//!   the cap, the entry used longest ago goes. "Used" is the file's access time,
//!   which a hit sets explicitly (so `noatime` mounts do not matter); the
//!   modification time stays the time the entry was written, which is what the
//!   optional freshness limit (`ttl`) compares with.
//! * Blocking file I/O: call it from a blocking thread.

use std::fs::{self, File, FileTimes};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use super::audio::write_atomic;
use super::error::{MediaError, Result};

/// Temporary files older than this are leftovers of a crash and are removed.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// A cache directory.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    cap_bytes: u64,
    ttl: Option<Duration>,
    /// One eviction scan at a time.
    evicting: Mutex<()>,
}

/// Hex SHA-256 over the parts, each length-prefixed so `("ab","c")` and
/// `("a","bc")` differ.
pub(crate) fn hash_key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

impl DiskCache {
    /// Opens (creating) the directory.
    pub(crate) fn new(dir: PathBuf, cap_bytes: u64, ttl: Option<Duration>) -> Result<Self> {
        fs::create_dir_all(&dir).map_err(|e| MediaError::io("create directory", &dir, e))?;
        Ok(DiskCache {
            dir,
            cap_bytes,
            ttl,
            evicting: Mutex::new(()),
        })
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{key}.{ext}"))
    }

    /// The entry's path if it exists and is fresh; marks it used.
    pub(crate) fn get(&self, key: &str, ext: &str) -> Option<PathBuf> {
        let path = self.path(key, ext);
        let meta = fs::metadata(&path).ok()?;
        if let (Some(ttl), Ok(written)) = (self.ttl, meta.modified()) {
            let age = SystemTime::now()
                .duration_since(written)
                .unwrap_or_default();
            if age > ttl {
                return None;
            }
        }
        if let Ok(f) = File::open(&path) {
            // Best effort: a failure only makes eviction less accurate.
            let _ = f.set_times(FileTimes::new().set_accessed(SystemTime::now()));
        }
        Some(path)
    }

    /// Stores an entry atomically, then evicts old entries beyond the cap (never
    /// the one just written).
    pub(crate) fn put(&self, key: &str, ext: &str, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.path(key, ext);
        write_atomic(&path, bytes)?;
        self.evict(&path);
        Ok(path)
    }

    /// Total size of the entries, in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.entries().iter().map(|e| e.1).sum()
    }

    /// `(path, size, last used)` of every entry; removes stale temporary files.
    fn entries(&self) -> Vec<(PathBuf, u64, SystemTime)> {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let now = SystemTime::now();
        let mut out = Vec::new();
        for entry in rd.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let path = entry.path();
            let used = meta
                .accessed()
                .or_else(|_| meta.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let age = now
                    .duration_since(meta.modified().unwrap_or(now))
                    .unwrap_or_default();
                if age > STALE_TMP {
                    let _ = fs::remove_file(&path);
                }
                continue;
            }
            out.push((path, meta.len(), used));
        }
        out
    }

    fn evict(&self, keep: &Path) {
        let _guard = self.evicting.lock();
        let mut entries = self.entries();
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        if total <= self.cap_bytes {
            return;
        }
        entries.sort_by_key(|e| e.2);
        for (path, size, _) in entries {
            if total <= self.cap_bytes {
                break;
            }
            if path == keep {
                continue;
            }
            match fs::remove_file(&path) {
                Ok(()) => {
                    total = total.saturating_sub(size);
                    tracing::debug!(path = %path.display(), size, "cache entry evicted");
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cache eviction failed")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_length_prefixed() {
        assert_ne!(hash_key(&["ab", "c"]), hash_key(&["a", "bc"]));
        assert_eq!(hash_key(&["x"]).len(), 64);
    }

    #[test]
    fn put_get_and_evict_least_recently_used() {
        let dir = tempfile::tempdir().expect("dir");
        let cache = DiskCache::new(dir.path().join("c"), 250, None).expect("cache");
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let a = cache.put("a", "bin", &[0; 100]).expect("a");
        let b = cache.put("b", "bin", &[0; 100]).expect("b");
        // Make `a` the least recently used, then use `b`.
        File::open(&a)
            .expect("a")
            .set_times(FileTimes::new().set_accessed(old))
            .expect("t");
        File::open(&b)
            .expect("b")
            .set_times(FileTimes::new().set_accessed(old + Duration::from_secs(10)))
            .expect("t");
        assert!(cache.get("b", "bin").is_some());
        cache.put("c", "bin", &[0; 100]).expect("c");
        assert!(
            cache.get("a", "bin").is_none(),
            "a was the least recently used"
        );
        assert!(cache.get("b", "bin").is_some());
        assert!(cache.get("c", "bin").is_some());
        assert_eq!(cache.size(), 200);
        // An entry larger than the cap is still kept right after it was written.
        cache.put("big", "bin", &[0; 300]).expect("big");
        assert!(cache.get("big", "bin").is_some());
    }

    #[test]
    fn ttl_makes_old_entries_misses() {
        let dir = tempfile::tempdir().expect("dir");
        let cache = DiskCache::new(
            dir.path().to_path_buf(),
            1 << 20,
            Some(Duration::from_secs(60)),
        )
        .expect("cache");
        let p = cache.put("k", "bin", b"x").expect("put");
        assert!(cache.get("k", "bin").is_some());
        let long_ago = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&p)
            .expect("open")
            .set_times(FileTimes::new().set_modified(long_ago))
            .expect("t");
        assert!(cache.get("k", "bin").is_none());
    }
}
