//! Time zones for `condition_datetime`, read from the system's tzdata (TZif files, RFC 8536)
//! instead of tables compiled into the binary.
//!
//! The IANA database compiled in (chrono-tz) was over a megabyte of the daemon's flash; a
//! board image carries `/usr/share/zoneinfo` anyway (the Yocto recipe depends on `tzdata`),
//! and updates there reach the gateway without a new firmware.
//!
//! The engine stays sans-IO: it asks the process-wide [`ZoneSource`] installed with
//! [`install`] for a parsed [`Zone`]. The daemon and the CLI install a [`ZoneinfoDir`] (the
//! only file reading in this crate, a thin shell: name check, bounded read, cache); a process
//! that installs nothing (fuzzing, most unit tests) knows `UTC` only. Parsing the TZif bytes,
//! including the POSIX TZ footer that covers times after the last transition, is tz-rs's
//! (a small, dependency-free, maintained parser), behind [`Zone::from_tzif`].
//!
//! `UTC` needs no file, so the engine's default time zone works on an image without tzdata.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, FixedOffset, Offset as _, Utc};

/// The zone every process knows, with or without tzdata.
pub const UTC: &str = "UTC";

/// Where tzdata installs the TZif files (`TZDIR` overrides it, as for the C library).
pub const DEFAULT_ZONEINFO_DIR: &str = "/usr/share/zoneinfo";

/// Largest TZif file read. The biggest zones with 64-bit data are a few KiB; the cap keeps a
/// mis-pointed `TZDIR` from reading something large into memory.
const MAX_TZIF_BYTES: u64 = 256 * 1024;

/// Longest zone name accepted (the longest IANA name is about 30 bytes).
const MAX_NAME_LEN: usize = 64;

/// Why a time zone is not available.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TzError {
    /// Not of the form of an IANA name (`Area/Location`), so never looked up: also what keeps
    /// a name built from flow variables from reaching outside the zoneinfo directory.
    #[error("`{0}` is not an IANA time zone name")]
    BadName(String),
    /// Well formed, but no such zone in the installed tzdata.
    #[error("`{name}` is not an IANA time zone name (no such zone in {dir})")]
    NotFound {
        /// The zone name.
        name: String,
        /// The zoneinfo directory searched.
        dir: String,
    },
    /// The file exists but could not be read, or is not a valid TZif file.
    #[error("time zone `{name}`: {reason}")]
    Unreadable {
        /// The zone name.
        name: String,
        /// What went wrong, with the path.
        reason: String,
    },
    /// No time zone database in this process (nothing installed): only `UTC` is known.
    #[error("time zone `{0}`: no time zone database is loaded (only UTC is known)")]
    NoDatabase(String),
}

/// A parsed time zone: its offsets from UTC over time.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    inner: tz::TimeZone,
}

impl Zone {
    /// Coordinated Universal Time.
    pub fn utc() -> Self {
        Self {
            inner: tz::TimeZone::utc(),
        }
    }

    /// Parses the contents of a TZif file (versions 1 to 4; the v2+ 64-bit data and footer
    /// rule are used when present). Sans-IO: the caller reads the bytes.
    pub fn from_tzif(bytes: &[u8]) -> Result<Self, String> {
        tz::TimeZone::from_tz_data(bytes)
            .map(|inner| Self { inner })
            .map_err(|e| format!("not a valid TZif file: {e}"))
    }

    /// The offset from UTC in force at `at`. Instants the file cannot describe (far outside
    /// its data, with no footer rule) fall back to UTC rather than failing the flow.
    pub fn offset_at(&self, at: DateTime<Utc>) -> FixedOffset {
        let seconds = self
            .inner
            .find_local_time_type(at.timestamp())
            .map_or(0, |t| t.ut_offset());
        // tz-rs keeps offsets within ±25 h, FixedOffset's range: the fallback is unreachable.
        FixedOffset::east_opt(seconds).unwrap_or(Utc.fix())
    }

    /// `at` as local time in this zone.
    pub fn local(&self, at: DateTime<Utc>) -> DateTime<FixedOffset> {
        at.with_timezone(&self.offset_at(at))
    }
}

/// Where zones come from. Implementations are shared by every engine of the process.
pub trait ZoneSource: Send + Sync {
    /// The zone called `name` (already checked by [`check_name`]).
    fn zone(&self, name: &str) -> Result<Arc<Zone>, TzError>;
}

static SOURCE: OnceLock<Arc<dyn ZoneSource>> = OnceLock::new();

/// Installs the process's zone source. The first call wins (a process has one tzdata);
/// returns false when one was installed already.
pub fn install(source: Arc<dyn ZoneSource>) -> bool {
    SOURCE.set(source).is_ok()
}

/// The zone called `name`: `UTC` always, others from the installed [`ZoneSource`].
pub fn lookup(name: &str) -> Result<Arc<Zone>, TzError> {
    if name == UTC {
        static UTC_ZONE: OnceLock<Arc<Zone>> = OnceLock::new();
        return Ok(UTC_ZONE.get_or_init(|| Arc::new(Zone::utc())).clone());
    }
    check_name(name)?;
    match SOURCE.get() {
        Some(source) => source.zone(name),
        None => Err(TzError::NoDatabase(name.to_owned())),
    }
}

/// Whether `name` has the form of a zone name: `/`-separated parts of ASCII letters, digits,
/// `_`, `-` and `+`, none empty or starting with `-` (tzdata's own rule for its file names),
/// so `..`, absolute paths and the database's other files (`zone.tab`, `tzdata.zi`) are
/// never opened.
pub fn check_name(name: &str) -> Result<(), TzError> {
    let well_formed = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('-')
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+'))
        });
    if well_formed {
        Ok(())
    } else {
        Err(TzError::BadName(name.to_owned()))
    }
}

/// Zones read from a zoneinfo directory (tzdata's layout: `Europe/Berlin` is the file
/// `<dir>/Europe/Berlin`), each parsed once and kept: a process uses a handful.
#[derive(Debug)]
pub struct ZoneinfoDir {
    dir: PathBuf,
    cache: Mutex<HashMap<String, Arc<Zone>>>,
}

impl ZoneinfoDir {
    /// Zones from `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Zones from `$TZDIR` when set and not empty, else [`DEFAULT_ZONEINFO_DIR`].
    pub fn from_env() -> Self {
        match std::env::var_os("TZDIR") {
            Some(dir) if !dir.is_empty() => Self::new(dir),
            _ => Self::new(DEFAULT_ZONEINFO_DIR),
        }
    }

    /// The directory read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn read(&self, name: &str) -> Result<Zone, TzError> {
        let path = self.dir.join(name);
        let unreadable = |reason: String| TzError::Unreadable {
            name: name.to_owned(),
            reason: format!("{}: {reason}", path.display()),
        };
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(TzError::NotFound {
                    name: name.to_owned(),
                    dir: self.dir.display().to_string(),
                });
            }
            Err(e) => return Err(unreadable(e.to_string())),
        };
        let mut bytes = Vec::new();
        file.take(MAX_TZIF_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| unreadable(e.to_string()))?;
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_TZIF_BYTES {
            return Err(unreadable(format!("larger than {MAX_TZIF_BYTES} bytes")));
        }
        Zone::from_tzif(&bytes).map_err(unreadable)
    }
}

impl ZoneSource for ZoneinfoDir {
    fn zone(&self, name: &str) -> Result<Arc<Zone>, TzError> {
        check_name(name)?;
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned();
        if let Some(zone) = cached {
            return Ok(zone);
        }
        // Read outside the lock: a slow file system must not stall other lookups.
        let zone = Arc::new(self.read(name)?);
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), zone.clone());
        Ok(zone)
    }
}

/// Installs the machine's tzdata for this test process (tests that need real zones).
#[cfg(test)]
pub(crate) fn install_system_zones_for_tests() {
    install(Arc::new(ZoneinfoDir::new(DEFAULT_ZONEINFO_DIR)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone as _, Timelike as _};

    fn system() -> ZoneinfoDir {
        ZoneinfoDir::new(DEFAULT_ZONEINFO_DIR)
    }

    fn berlin_bytes() -> Vec<u8> {
        std::fs::read(Path::new(DEFAULT_ZONEINFO_DIR).join("Europe/Berlin"))
            .expect("the build machine has tzdata (Europe/Berlin)")
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("valid instant")
    }

    #[test]
    fn a_real_tzif_file_gives_summer_and_winter_time() {
        let zone = Zone::from_tzif(&berlin_bytes()).expect("parses");
        for (at, offset) in [
            (utc(2024, 7, 1, 10, 30), 7200),
            (utc(2024, 1, 15, 10, 30), 3600),
            // The last summer-time switch of 2024: 01:00 UTC on 27 October.
            (utc(2024, 10, 27, 0, 59), 7200),
            (utc(2024, 10, 27, 1, 0), 3600),
            // Far beyond the file's transitions: the footer rule
            // (`CET-1CEST,M3.5.0,M10.5.0/3`).
            (utc(2100, 7, 1, 0, 0), 7200),
        ] {
            assert_eq!(zone.offset_at(at).local_minus_utc(), offset, "at {at}");
        }
        assert_eq!(zone.local(utc(2024, 7, 1, 10, 30)).hour(), 12);
    }

    #[test]
    fn malformed_tzif_is_an_error_not_a_panic() {
        let good = berlin_bytes();
        for bad in [
            &b""[..],
            b"TZif",
            b"TZjf2\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
            &good[..good.len() / 2],
            &good[..44],
        ] {
            assert!(Zone::from_tzif(bad).is_err(), "{bad:?}");
        }
        // Counts that promise more data than there is.
        let mut lying = good.clone();
        lying[32..36].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(Zone::from_tzif(&lying).is_err());
        // Any truncation or flipped byte: an error or a zone, never a panic.
        for cut in 0..good.len() {
            let _ = Zone::from_tzif(&good[..cut]);
        }
        for i in 0..good.len() {
            let mut flipped = good.clone();
            flipped[i] ^= 0xff;
            if let Ok(zone) = Zone::from_tzif(&flipped) {
                let _ = zone.offset_at(utc(2024, 7, 1, 0, 0));
            }
        }
    }

    #[test]
    fn names_that_could_leave_the_directory_are_refused() {
        for bad in [
            "",
            "../etc/passwd",
            "/etc/localtime",
            "Europe/../../x",
            "Europe//Berlin",
            "zone.tab",
            "-rf",
            "Europe/Berlin\0",
            "Europe/Berlin/",
        ] {
            assert_eq!(
                check_name(bad),
                Err(TzError::BadName(bad.to_owned())),
                "{bad}"
            );
        }
        for good in [
            "UTC",
            "Europe/Berlin",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
            "EST5EDT",
        ] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn zones_come_from_the_directory_and_are_cached() {
        let zones = system();
        let a = zones.zone("Europe/Berlin").expect("Berlin");
        let b = zones.zone("Europe/Berlin").expect("Berlin again");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(
            zones.zone("Mars/Olympus"),
            Err(TzError::NotFound {
                name: "Mars/Olympus".into(),
                dir: DEFAULT_ZONEINFO_DIR.into()
            })
        );
        let err = zones.zone("Mars/Olympus").expect_err("missing").to_string();
        assert!(err.contains("is not an IANA time zone name"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_tzif_is_unreadable() {
        let dir = std::env::temp_dir().join(format!("flowgate-tz-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("Area")).expect("dir");
        std::fs::write(dir.join("Area/Junk"), b"not a zone").expect("write");
        let zones = ZoneinfoDir::new(&dir);
        let err = zones.zone("Area/Junk").expect_err("junk");
        assert!(matches!(err, TzError::Unreadable { .. }), "{err:?}");
        assert!(err.to_string().contains("not a valid TZif file"), "{err}");
        // A directory is not a zone either.
        assert!(zones.zone("Area").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn utc_needs_no_database() {
        let zone = lookup(UTC).expect("UTC");
        assert_eq!(zone.offset_at(utc(2024, 7, 1, 0, 0)).local_minus_utc(), 0);
    }
}
