//! sled's zstd compression, on and off: every tree of a store's two sled databases (the log's
//! index, and the projections' tree, which holds where their pages and blocks are) copied into fresh databases with and without compression, then
//! compared on disk, in the time the copy takes and in the time reading it all back takes.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::reads::{disk_usage, open_sled};
use crate::report::{Figure, MB, Section, figure, machine, today};

/// Entries per sled batch while copying.
const BATCH: usize = 1_000;
/// sled's own default compression level, the one measured.
const ZSTD_LEVEL: i32 = 5;

/// One of a store's sled databases: what it is, where it is under the data directory, and the
/// segment size it is opened with.
struct Database {
    name: &'static str,
    under: &'static str,
    segment_size: Option<usize>,
}

const DATABASES: [Database; 2] = [
    Database {
        name: "the log's index",
        under: "log",
        segment_size: Some(8 * 1024 * 1024),
    },
    Database {
        name: "the projections",
        under: "projections",
        segment_size: None,
    },
];

/// Every tree of a database, read into memory so that copying it times only the writes.
type Trees = Vec<(sled::IVec, Vec<(sled::IVec, sled::IVec)>)>;

fn read_trees(db: &sled::Db) -> anyhow::Result<(Trees, u64)> {
    let mut trees = Vec::new();
    let mut bytes = 0u64;
    for name in db.tree_names() {
        let tree = db.open_tree(&name)?;
        let mut entries = Vec::new();
        for entry in tree.iter() {
            let (key, value) = entry?;
            bytes += (key.len() + value.len()) as u64;
            entries.push((key, value));
        }
        trees.push((name, entries));
    }
    Ok((trees, bytes))
}

/// What one copy measured.
struct Copied {
    write_seconds: f64,
    scan_seconds: f64,
    disk_bytes: u64,
}

/// Copies `trees` into a fresh database in `dir`, flushed; closes it, measures its files, then
/// opens it again and reads every entry back.
fn copy(
    trees: &Trees,
    dir: &Path,
    segment_size: Option<usize>,
    compressed: bool,
) -> anyhow::Result<Copied> {
    let mut config = sled::Config::new()
        .path(dir)
        .flush_every_ms(None)
        .use_compression(compressed)
        .compression_factor(ZSTD_LEVEL);
    if let Some(size) = segment_size {
        config = config.segment_size(size);
    }
    let started = Instant::now();
    {
        let db = config.open()?;
        for (name, entries) in trees {
            let tree = db.open_tree(name)?;
            for chunk in entries.chunks(BATCH) {
                let mut batch = sled::Batch::default();
                for (key, value) in chunk {
                    batch.insert(key.clone(), value.clone());
                }
                tree.apply_batch(batch)?;
            }
        }
        // Written out so its files can be measured; durability is no concern of a scratch copy.
        #[allow(clippy::disallowed_methods)]
        db.flush()?;
    }
    let write_seconds = started.elapsed().as_secs_f64();
    let (disk_bytes, _) = disk_usage(dir)?;
    let started = Instant::now();
    let db = open_sled(dir, segment_size, compressed)?;
    let mut read = 0u64;
    for (name, _) in trees {
        for entry in db.open_tree(name)?.iter() {
            let (key, value) = entry?;
            read += (key.len() + value.len()) as u64;
        }
    }
    let scan_seconds = started.elapsed().as_secs_f64();
    let expected: u64 = trees
        .iter()
        .flat_map(|(_, entries)| entries.iter().map(|(k, v)| (k.len() + v.len()) as u64))
        .sum();
    if read != expected {
        bail!(
            "the copy in {} reads back {read} bytes, not {expected}",
            dir.display()
        );
    }
    Ok(Copied {
        write_seconds,
        scan_seconds,
        disk_bytes,
    })
}

/// Measures compression on the sled databases of the data directory `dir` (a store of the
/// reads or replay bench, stopped).
pub fn run(dir: &Path, runs: usize, out: &Path, command: &str) -> anyhow::Result<()> {
    if runs == 0 {
        bail!("compression needs at least one run");
    }
    let mut figures = Vec::new();
    let mut notes = Vec::new();
    for database in &DATABASES {
        let (measured, note) = measure_database(dir, database, runs)?;
        figures.extend(measured);
        notes.push(note);
    }
    notes.push(format!(
        "Each tree of each database is read into memory, then copied in key order into a fresh sled database (batches of {BATCH}, one flush at the end) with `use_compression` on (zstd level {ZSTD_LEVEL}, sled's default) or off, alternating which goes first; the copy is closed, its files measured (allocated blocks), then opened again and read back whole, every byte counted against the source. A copy is written in order and once, so its files are smaller than a store grown by appends: the ratio, not the size, is what this measures."
    ));
    crate::report::write(
        out,
        "compression",
        Section {
            title: "sled's zstd compression, on and off".into(),
            command: command.into(),
            machine: machine(),
            date: today(),
            scale: format!("the sled databases of {}; {runs} runs", dir.display()),
            figures,
            notes,
        },
    )
}

/// Every run's copies of one database: MB on disk, seconds writing, seconds reading back.
#[derive(Default)]
struct Copies {
    disk_mb: Vec<f64>,
    write_seconds: Vec<f64>,
    scan_seconds: Vec<f64>,
}

/// Copies `database` of the data directory `dir` `runs` times each way. Answers its figures,
/// compressed against plain, and a note on what it holds.
fn measure_database(
    dir: &Path,
    database: &Database,
    runs: usize,
) -> anyhow::Result<(Vec<Figure>, String)> {
    let source_dir = dir.join(database.under);
    if !source_dir.exists() {
        bail!(
            "{} is not a data directory: it has no {}",
            dir.display(),
            database.under
        );
    }
    let (trees, held) = {
        let db = open_sled(&source_dir, database.segment_size, false)
            .with_context(|| format!("cannot open {}", source_dir.display()))?;
        read_trees(&db)?
    };
    let (source_disk, _) = disk_usage(&source_dir)?;
    let mut plain = Copies::default();
    let mut zstd = Copies::default();
    for run in 0..runs {
        // Alternate which goes first, so neither always finds the page cache warmer.
        let order = if run % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for compressed in order {
            let scratch = tempfile::Builder::new()
                .prefix("chancery-bench-compression-")
                .tempdir()?;
            let copied = copy(&trees, scratch.path(), database.segment_size, compressed)?;
            eprintln!(
                "compression run {run}: {} {}: {:.1} MB on disk, written in {:.2} s, read back in {:.2} s",
                database.name,
                if compressed { "with zstd" } else { "without" },
                copied.disk_bytes as f64 / MB,
                copied.write_seconds,
                copied.scan_seconds
            );
            let side = if compressed { &mut zstd } else { &mut plain };
            side.disk_mb.push(copied.disk_bytes as f64 / MB);
            side.write_seconds.push(copied.write_seconds);
            side.scan_seconds.push(copied.scan_seconds);
        }
    }
    let without = |what: &str| format!("{what}, without compression");
    let figures = vec![
        figure(
            format!("{}: on disk with zstd level {ZSTD_LEVEL}", database.name),
            &zstd.disk_mb,
            "MB",
            without("the same trees copied the same way"),
            &plain.disk_mb,
        ),
        figure(
            format!("{}: copied in, with zstd", database.name),
            &zstd.write_seconds,
            "s",
            without("the same copy"),
            &plain.write_seconds,
        ),
        figure(
            format!("{}: read back whole, with zstd", database.name),
            &zstd.scan_seconds,
            "s",
            without("the same scan"),
            &plain.scan_seconds,
        ),
    ];
    let note = format!(
        "{}: {} trees holding {:.1} MB of keys and values; the store's own files take {:.1} MB.",
        database.name,
        trees.len(),
        held as f64 / MB,
        source_disk as f64 / MB
    );
    Ok((figures, note))
}
