//! The tokio runtime a synchronous test (a proptest case, a `#[test]` fn) drives its async code on.

/// A multi-threaded runtime with `workers` worker threads, timers and I/O enabled.
///
/// # Panics
/// When the OS refuses the threads: a test cannot run without them.
pub fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap_or_else(|error| panic!("a tokio runtime with {workers} workers: {error}"))
}

/// What every case of a property test shares, built once: a one-worker runtime, a temporary
/// directory, and what `init` made with them (a log in the directory, say).
pub struct SharedFixture<T> {
    pub runtime: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
    pub value: T,
}

impl<T> SharedFixture<T> {
    /// # Panics
    /// When the temporary directory cannot be made: a test cannot run without it.
    pub fn new(init: impl FnOnce(&tokio::runtime::Runtime, &std::path::Path) -> T) -> Self {
        let dir = tempfile::tempdir()
            .unwrap_or_else(|error| panic!("a temporary directory for the fixture: {error}"));
        let runtime = runtime(1);
        let value = init(&runtime, dir.path());
        SharedFixture {
            runtime,
            dir,
            value,
        }
    }
}
