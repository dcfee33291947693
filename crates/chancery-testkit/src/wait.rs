//! Polling for a condition that nothing signals, such as what an HTTP endpoint answers. What a
//! child process says is waited for on its output instead ([`crate::server::Process::wait_line`]).

use std::time::{Duration, Instant};

use crate::{Error, Result};

/// How often [`until`] asks again.
const POLL: Duration = Duration::from_millis(50);

/// Asks `done` every 50 ms until it holds; [`Error::TimedOut`] (naming `what`) after `patience`.
pub fn until(what: &str, patience: Duration, mut done: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + patience;
    while !done() {
        if Instant::now() >= deadline {
            return Err(Error::TimedOut {
                what: what.to_owned(),
                patience,
            });
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}
