//! The log contract, run against the NATS backend.

use crate::{server, support};

// The block is the first thing each generated test evaluates: without a nats-server the test
// returns there (outside CI, having said so; in CI `server::url` fails it).
chancery_store::contract_tests!({
    if server::url().is_none() {
        return;
    }
    support::fixture
});
