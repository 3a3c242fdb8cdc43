//! An exclusive advisory lock on a file (`flock`), held until dropped. Writers of a sweep's
//! `summary.csv` and `compare/` take it so the last writer always writes the newest state;
//! a run takes one per stage identity so that two runs never train the same stage at once.

use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::path::Path;

pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Blocks until the lock on `path` (created if missing) is ours.
    pub fn acquire(path: &Path) -> Result<FileLock> {
        let file = open(path)?;
        lock(&file, true).with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(FileLock { _file: file })
    }

    /// The lock on `path` if nobody holds it, else None at once.
    pub fn try_acquire(path: &Path) -> Result<Option<FileLock>> {
        let file = open(path)?;
        match lock(&file, false) {
            Ok(()) => Ok(Some(FileLock { _file: file })),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
        }
    }
}

fn open(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create folder {}", dir.display()))?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))
}

#[cfg(unix)]
fn lock(file: &File, wait: bool) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let operation = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    loop {
        // Closing the file (on drop) releases the lock.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

#[cfg(not(unix))]
fn lock(_file: &File, _wait: bool) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_second_holder_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        let first = FileLock::acquire(&path).unwrap();
        let released = Arc::new(AtomicBool::new(false));
        let seen = released.clone();
        let path2 = path.clone();
        // flock locks belong to the open file, so a second open in another thread blocks.
        let waiter = std::thread::spawn(move || {
            let _second = FileLock::acquire(&path2).unwrap();
            seen.load(Ordering::SeqCst)
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        released.store(true, Ordering::SeqCst);
        drop(first);
        assert!(
            waiter.join().unwrap(),
            "second lock taken while the first was held"
        );
    }

    #[test]
    fn trying_a_held_lock_returns_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/.lock");
        let first = FileLock::try_acquire(&path).unwrap();
        assert!(first.is_some());
        assert!(FileLock::try_acquire(&path).unwrap().is_none());
        drop(first);
        assert!(FileLock::try_acquire(&path).unwrap().is_some());
    }
}
