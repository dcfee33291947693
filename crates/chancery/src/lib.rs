//! Chancery as a library: what the `chancery` binary is made of, so that tests and benchmarks
//! can run it in-process. [`server`] serves the API over the stores of a data directory
//! ([`data`]) as configured ([`config`]); [`exchange`] reads and writes the NDJSON formats of
//! import and export; [`datasets`] imports GDELT, ICEWS and POLECAT files and exports GDELT and
//! POLECAT rows; [`timelinejs`] publishes a timeline for TimelineJS; [`demo`] carries the
//! example scenario.

pub mod config;
pub mod data;
pub mod datasets;
pub mod demo;
pub mod exchange;
pub mod server;
pub mod timelinejs;
pub mod tokens;
pub mod ui;
