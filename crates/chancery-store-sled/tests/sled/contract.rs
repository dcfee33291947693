//! The log contract, run against the sled backend.

use std::sync::Arc;

use chancery_store::contract::{Fixture, LIVE_BUFFER};
use chancery_store_sled::{SledConfig, SledLog};

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = SledConfig {
        live_buffer: LIVE_BUFFER,
        ..SledConfig::default()
    };
    let log = SledLog::open(dir.path().join("log"), config).expect("the log opens");
    // The log must close before its directory goes: the guard drops them in that order.
    let guard = (log.clone(), dir);
    Fixture {
        log: Arc::new(log),
        guard: Box::new(guard),
    }
}

chancery_store::contract_tests!(fixture);
