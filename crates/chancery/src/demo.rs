//! The example scenario: the US-China trade talks of spring 2018, paraphrased from a news report
//! from Beijing, as an event file loaded by `chancery serve --demo` and by tests.

use chancery_store::EventLog;

use crate::exchange::{self, ExchangeError, ImportSummary, Progress, Source};

/// The demo's event file, as committed in `demo/`.
pub const DEMO_EVENTS: &str = include_str!("../demo/us-china-trade-2018.ndjson");

/// The demo's timeline.
pub const DEMO_TIMELINE: &str = "us-china-trade";

/// Who the demo's events are recorded by.
pub const DEMO_RECORDER: &str = "demo";

/// Loads the demo into a log, recorded by [`DEMO_RECORDER`]. Safe to repeat: events already
/// present are skipped.
pub async fn load(log: &dyn EventLog) -> Result<ImportSummary, ExchangeError> {
    let nothing = |_: Progress| {};
    exchange::import(log, &Source::Text(DEMO_EVENTS), DEMO_RECORDER, &nothing).await
}
