//! The nats-server these tests share, from the test kit: started once per test binary with
//! JetStream on a free loopback port, and stopped (its store deleted) when the test binary exits.

use std::sync::OnceLock;

use chancery_testkit::nats::{self, Nats};

/// The shared server and its client URL.
static SERVER: OnceLock<Option<(Nats, String)>> = OnceLock::new();

/// The shared server's client URL, the server started on first use. Without a nats-server, fails
/// in CI and says loudly elsewhere that the tests did not run.
pub fn url() -> Option<&'static str> {
    SERVER
        .get_or_init(start)
        .as_ref()
        .map(|(_, url)| url.as_str())
}

fn start() -> Option<(Nats, String)> {
    let binary = nats::require("the NATS backend's tests checked nothing")?;
    let server = Nats::start_until_exit(&binary, 1).unwrap_or_else(|e| panic!("{e}"));
    let url = server.urls().remove(0);
    Some((server, url))
}
