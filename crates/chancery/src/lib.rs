//! Chancery as a library: what the `chancery` binary is made of, so that tests and benchmarks
//! can run it in-process. [`data`] opens the stores of a data directory; [`exchange`] reads and
//! writes the NDJSON formats of import and export; [`demo`] carries the example scenario.

pub mod data;
pub mod demo;
pub mod exchange;
