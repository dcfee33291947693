//! Reopening an embedded database whose file lock this process has just released, shared by
//! the embedded log and the projections (both keep their indexes in sled).

use std::time::{Duration, Instant};

/// How long a reopen waits for a lock this process released.
const RELEASE_WAIT: Duration = Duration::from_secs(2);

/// Opens a database with `open`, retrying for up to two seconds while it fails because its file
/// lock is held (sled says "could not acquire lock"): sled closes its file from a background
/// thread pool shortly after the last handle is dropped, so an immediate reopen (a restart within
/// one process, a test) can find the lock still held. Another process holding it fails after the
/// wait, with sled's message saying so.
pub fn open_released<T, E: std::fmt::Display>(
    mut open: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let deadline = Instant::now() + RELEASE_WAIT;
    loop {
        match open() {
            Err(e)
                if e.to_string().contains("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}
