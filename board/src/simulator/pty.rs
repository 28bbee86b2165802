//! A pseudo-terminal the simulator owns: the master side, async, and the slave side kept open.
//!
//! Holding the slave fd open for the pty's whole life means the gateway side never sees
//! POLLHUP/EIO between its own opens (serialport turns POLLHUP into `BrokenPipe` even with
//! unread data pending). Both sides are put in raw mode so the line discipline neither echoes
//! nor translates line ends: echo is the simulated modem's job.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::pty::openpty;
use nix::sys::termios::{FlushArg, SetArg, cfmakeraw, tcflush, tcgetattr, tcsetattr};
use nix::unistd::ttyname;
use tokio::io::unix::AsyncFd;

/// One pseudo-terminal.
#[derive(Debug)]
pub(crate) struct Pty {
    master: AsyncFd<OwnedFd>,
    /// Never read: kept open so the gateway never sees a hang-up between opens.
    _slave: OwnedFd,
    path: PathBuf,
}

fn os(e: nix::Error) -> io::Error {
    io::Error::from(e)
}

impl Pty {
    /// Opens a raw pty (needs a tokio runtime).
    pub(crate) fn open() -> io::Result<Self> {
        let r = openpty(None, None).map_err(os)?;
        let mut t = tcgetattr(&r.slave).map_err(os)?;
        cfmakeraw(&mut t);
        tcsetattr(&r.slave, SetArg::TCSANOW, &t).map_err(os)?;
        let mut tm = tcgetattr(&r.master).map_err(os)?;
        cfmakeraw(&mut tm);
        tcsetattr(&r.master, SetArg::TCSANOW, &tm).map_err(os)?;
        let flags = fcntl(&r.master, FcntlArg::F_GETFL).map_err(os)?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(&r.master, FcntlArg::F_SETFL(flags)).map_err(os)?;
        let path = ttyname(&r.slave).map_err(os)?;
        Ok(Self {
            master: register(r.master)?,
            _slave: r.slave,
            path,
        })
    }

    /// The slave path (`/dev/pts/N`) the gateway opens.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads what the gateway wrote (waits for data).
    pub(crate) async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.master.readable().await?;
            match guard.try_io(|fd| nix::unistd::read(fd.get_ref(), buf).map_err(os)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Reads what is available now without waiting (`Ok(0)` when nothing is).
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match nix::unistd::read(self.master.get_ref(), buf) {
            Ok(n) => Ok(n),
            Err(nix::Error::EAGAIN) => Ok(0),
            Err(e) => Err(os(e)),
        }
    }

    /// Writes all of `bytes` (waits while the gateway does not read).
    pub(crate) async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let mut guard = self.master.writable().await?;
            match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), bytes).map_err(os)) {
                Ok(Ok(n)) => bytes = bytes.get(n..).unwrap_or_default(),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// Writes what fits now; returns the bytes written (a real-time port drops the rest).
    pub(crate) fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        match nix::unistd::write(self.master.get_ref(), bytes) {
            Ok(n) => Ok(n),
            Err(nix::Error::EAGAIN) => Ok(0),
            Err(e) => Err(os(e)),
        }
    }

    /// Drops data queued in both directions (stale audio from before a call).
    pub(crate) fn flush(&self) {
        let _ = tcflush(self.master.get_ref(), FlushArg::TCIOFLUSH);
    }
}

/// Registers the master with the reactor.
#[expect(
    deprecated,
    reason = "AsyncFd::register is the unsafe replacement; an OwnedFd owns its descriptor for the \
              AsyncFd's whole life, which is the I/O-safety condition it asks for, and this crate \
              denies unsafe code"
)]
fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    AsyncFd::new(fd)
}

/// Points the symlink `link` at `target`, atomically (temporary link, then rename).
pub(crate) fn point_link(link: &Path, target: &Path) -> io::Result<()> {
    let mut tmp = link.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link)
}

/// Removes `link` if it is a symlink (never a regular file someone put there).
pub(crate) fn remove_link(link: &Path) {
    if std::fs::symlink_metadata(link).is_ok_and(|m| m.file_type().is_symlink()) {
        let _ = std::fs::remove_file(link);
    }
}
