//! Faults of the disk, and an operator's way out of them: a full disk (the server on a small
//! tmpfs), damaged data files at open, and an online backup restored into a fresh directory.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use chancery_testkit::http::Reply;
use chancery_testkit::server::Process;
use chancery_testkit::{ci, disk};
use serde_json::{Value, json};

use crate::support::*;

/// A `chancery serve` over a data directory the test chose, with a token of each role, once it
/// is ready; killed when dropped.
fn serve(data: &Path, extra: &[&str]) -> Server {
    let server = Server::start_in(data, &with_tokens(extra));
    server.wait_ready();
    server
}

/// Why a batch was refused: its error's code, reason (where it has one) and message.
#[derive(Debug)]
struct Refused {
    code: String,
    reason: String,
    message: String,
}

/// Records a batch: the (id, position) of each event, or why it was refused.
fn record(server: &Server, events: &[Value]) -> Result<Vec<(String, u64)>, Refused> {
    let body = server
        .graphql(Some(RECORDER), RECORD, json!({ "events": events }))
        .json_body();
    if let Some(error) = body["errors"].get(0) {
        let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
        return Err(Refused {
            code: text(&error["extensions"]["code"]),
            reason: text(&error["extensions"]["reason"]),
            message: text(&error["message"]),
        });
    }
    Ok(body["data"]["recordEvents"]["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in {body}"))
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_owned(),
                e["position"].as_u64().unwrap(),
            )
        })
        .collect())
}

/// An online backup through `GET /export`.
fn backup(server: &Server) -> Vec<u8> {
    backup_pausing(server, || {})
}

/// An online backup that reads the first 64 KiB of the answer, runs `pause`, then reads the
/// rest: a slow reader, during whose transfer the log moves on.
fn backup_pausing(server: &Server, pause: impl FnOnce()) -> Vec<u8> {
    let admin = format!("Bearer {ADMIN}");
    let mut stream = server
        .http()
        .send("GET", "/export", &[("Authorization", &admin)], None)
        .unwrap();
    let mut raw = vec![0u8; 64 << 10];
    stream.read_exact(&mut raw).unwrap();
    pause();
    stream.read_to_end(&mut raw).unwrap();
    let reply = Reply::parse(&raw).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.body
}

const RECORD: &str = r#"mutation($events: [EventInput!]!) {
  recordEvents(timeline: "us-china-trade", events: $events) { events { id position } }
}"#;

/// Event `n` of a test: demands, offers and statements by either side on three issues, with
/// text of `padding` characters, so that positions and standoffs change as they go.
fn event(n: u64, padding: usize) -> Value {
    let (actor, target) = if n.is_multiple_of(2) {
        ("USA", "CHN")
    } else {
        ("CHN", "USA")
    };
    let issue = ["tariffs", "trade-deficit", "made-in-china-2025"][(n / 2 % 3) as usize];
    let text = format!("terms {n} {}", "x".repeat(padding));
    let act = match n % 3 {
        0 => json!({ "demand": { "terms": text } }),
        1 => json!({ "offer": { "terms": text } }),
        _ => json!({ "statement": { "claim": text } }),
    };
    json!({
        "id": format!("01970000-0000-7000-8000-{n:012x}"),
        "occurred": { "start": format!("2018-06-{:02}", 1 + n % 28) },
        "actors": [{ "party": actor }],
        "targets": [{ "party": target }],
        "issues": [issue],
        "summary": format!("event {n} {}", "s".repeat(padding / 2)),
        "sources": [{ "publication": "Fault Wire", "attribution": "OFFICIAL" }],
        "act": act,
    })
}

/// The records of an export, by position: (id, stored line).
fn records_of(export: &[u8]) -> (Value, BTreeMap<u64, (String, Vec<u8>)>) {
    let mut lines = export.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    let header: Value = serde_json::from_slice(lines.next().expect("a header line")).unwrap();
    let mut records = BTreeMap::new();
    for line in lines {
        let record: Value = serde_json::from_slice(line).unwrap();
        records.insert(
            record["position"].as_u64().unwrap(),
            (
                record["event"]["id"].as_str().unwrap().to_owned(),
                line.to_vec(),
            ),
        );
    }
    (header, records)
}

/// A tmpfs mounted on a fresh directory, unmounted when dropped (also when the test panics).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one of `mib` MiB; `None` (after a loud notice) where mounting is not allowed,
    /// outside CI. In CI it must work.
    fn mount(mib: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            outcome => {
                let why = match outcome {
                    Ok(out) => stderr(&out),
                    Err(e) => e.to_string(),
                };
                ci::not_run(
                    &format!("cannot mount a tmpfs ({}; run as root)", why.trim()),
                    "the disk-full test checked nothing",
                );
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes free, as `df` says.
    fn free(&self) -> u64 {
        let out = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(self.path())
            .output()
            .unwrap();
        stdout(&out)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected df output: {}", stdout(&out)))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Something still holds a file: detach it now, it goes when released.
            let _ = Command::new("umount").arg("-l").arg(self.path()).status();
        }
    }
}

/// Writes a file of `bytes` zeros (or as many as fit) and answers how many fit.
fn fill(path: &Path, bytes: u64) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut written = 0;
    while written < bytes {
        let n = (bytes - written).min(chunk.len() as u64) as usize;
        match file.write(&chunk[..n]) {
            Ok(0) | Err(_) => break,
            Ok(n) => written += n as u64,
        }
    }
    written
}

/// Asserts that an export holds positions 1 to `head` without a gap, each acknowledged event
/// at the position its append answered.
fn check_export(export: &[u8], head: u64, acknowledged: &[(String, u64)], when: &str) {
    let (header, records) = records_of(export);
    assert_eq!(header["events"].as_u64(), Some(head), "{when}");
    assert_eq!(
        records.keys().copied().collect::<Vec<_>>(),
        (1..=head).collect::<Vec<_>>(),
        "{when}: gapless"
    );
    for (id, position) in acknowledged {
        assert_eq!(
            records.get(position).map(|(i, _)| i),
            Some(id),
            "{when}: acknowledged {id} at {position}"
        );
    }
}

#[test]
fn a_full_disk_refuses_appends_clearly_keeps_reads_and_resumes_when_space_returns() {
    const TMPFS_MIB: u64 = 64;
    const LEFT_FREE: u64 = 6 << 20;
    const BATCH: u64 = 40;
    const PADDING: usize = 1_800;
    let Some(tmpfs) = Tmpfs::mount(TMPFS_MIB) else {
        return;
    };
    let data = tmpfs.path().join("data");
    let mut server = serve(&data, &["--demo"]);
    let demo_head = server.head();

    // Leave a few MiB free: the appends fill them.
    let filler = tmpfs.path().join("filler");
    let free_before = tmpfs.free();
    let filled = fill(&filler, free_before.saturating_sub(LEFT_FREE));

    let mut acknowledged: Vec<(String, u64)> = Vec::new();
    let mut unknown: Vec<Vec<Value>> = Vec::new();
    let mut errors: Vec<Refused> = Vec::new();
    let mut acknowledged_before_full = None;
    let mut failures_in_a_row = 0;
    let mut n = 0;
    let started = Instant::now();
    // Until three appends in a row fail. One may succeed between failures: a checkpoint that
    // deletes write-ahead log segments frees some space.
    while failures_in_a_row < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "appends never failed on a full disk ({} acknowledged)",
            acknowledged.len()
        );
        let batch: Vec<Value> = (n..n + BATCH).map(|i| event(i, PADDING)).collect();
        n += BATCH;
        match record(&server, &batch) {
            Ok(done) => {
                acknowledged.extend(done);
                failures_in_a_row = 0;
            }
            Err(error) => {
                acknowledged_before_full.get_or_insert(acknowledged.len());
                errors.push(error);
                unknown.push(batch);
                failures_in_a_row += 1;
            }
        }
    }
    let acknowledged_before_full = acknowledged_before_full.unwrap_or_default();
    for Refused {
        code,
        reason,
        message,
    } in &errors
    {
        assert_eq!(
            (code.as_str(), reason.as_str()),
            ("UNAVAILABLE", "STORAGE_FULL"),
            "{message}"
        );
        assert!(
            message.contains("storage is full") && !message.contains("reference"),
            "the error says the disk is full, unmasked: {message}"
        );
    }
    let server_log = server.log();
    assert!(
        server_log.contains("no space left on the log's disk"),
        "an operator can tell from the log: {server_log}"
    );
    assert!(!server_log.contains("panicked"), "{server_log}");

    // Reads keep working, and nothing unacknowledged is visible.
    let last_acknowledged = acknowledged.last().map_or(demo_head, |(_, p)| *p);
    assert_eq!(server.head(), last_acknowledged, "{}", server.log());
    let latest = server.query(
        r#"{ events(last: 3) { edges { node { id position } } } positions(timeline: "us-china-trade", issues: ["tariffs"]) { party { code } stance } }"#,
    );
    let edges = latest["events"]["edges"].as_array().unwrap();
    assert_eq!(
        edges.last().unwrap()["node"]["position"].as_u64(),
        Some(last_acknowledged),
        "{}",
        server.log()
    );
    assert!(!latest["positions"].as_array().unwrap().is_empty());
    // Every record reads back, not only the recent ones in sled's cache.
    check_export(
        &backup(&server),
        last_acknowledged,
        &acknowledged,
        "while the disk is full",
    );
    // The projections still follow: they reach the last acknowledged position.
    server.query(&format!(
        r#"{{ standoffs(timeline: "us-china-trade", atLeast: {last_acknowledged}) {{ status }} }}"#
    ));

    // Space returns: the appends whose outcome was unknown are retried with the same ids, then
    // new ones go on.
    std::fs::remove_file(&filler).unwrap();
    for batch in &unknown {
        let done = record(&server, batch)
            .unwrap_or_else(|e| panic!("a retry after space returned failed: {e:?}"));
        acknowledged.extend(done);
    }
    for _ in 0..3 {
        let batch: Vec<Value> = (n..n + BATCH).map(|i| event(i, PADDING)).collect();
        n += BATCH;
        let done = record(&server, &batch)
            .unwrap_or_else(|e| panic!("an append after space returned failed: {e:?}"));
        acknowledged.extend(done);
    }
    let head_after = server.head();
    let check = |export: &[u8], when: &str| check_export(export, head_after, &acknowledged, when);
    check(&backup(&server), "after space returned");
    let server_log = server.log();
    let reopened = server_log.contains("reopening the log's database");
    // The projections met the same full disk: they kept following, whether or not they needed
    // their reserve on the way.
    assert!(
        !server_log.contains("the projections stopped following"),
        "{server_log}"
    );
    let projections_released = server_log.contains("the projections' disk is full");
    let projections_reserve_back = server_log.contains("their reserve is back");

    // After a restart on the same directory, everything acknowledged is still there.
    server.stop();
    let server = serve(&data, &[]);
    assert_eq!(server.head(), head_after);
    check(&backup(&server), "after a restart");
    assert_eq!(
        projections_reserve(&data),
        Some(PROJECTIONS_RESERVE_BYTES),
        "the projections' reserve, with room for it"
    );
    drop(server);
    let (verified_events, _) = verified(&data);
    assert_eq!(verified_events, head_after);

    eprintln!(
        "disk full: tmpfs {TMPFS_MIB} MiB, filler {:.1} MiB of {:.1} MiB free, batches of {BATCH} \
         events of about {} bytes; {acknowledged_before_full} events acknowledged before the \
         first failure ({:.1} s); errors: {:?}; database reopened: {reopened}; projections' \
         reserve released: {projections_released}, made again: {projections_reserve_back}; \
         after freeing space {} batches retried with the same ids and 3 new ones; {} \
         acknowledged events checked after the restart (head {head_after}, chain verified)",
        filled as f64 / 1048576.0,
        free_before as f64 / 1048576.0,
        PADDING * 2 + 300,
        started.elapsed().as_secs_f64(),
        errors
            .iter()
            .map(|e| format!("{} ({}): {}", e.code, e.reason, e.message))
            .collect::<Vec<_>>(),
        unknown.len(),
        acknowledged.len(),
    );
}

/// The questions whose answers come from the projections, for comparing two servers.
const PROJECTED: [&str; 4] = [
    r#"{ positions(timeline: "us-china-trade") { party { code } issue { slug } stance firstStated lastReaffirmed reaffirmed event { id position } } }"#,
    r#"{ standoffs(timeline: "us-china-trade") { issue { slug } status sides { party { code } stance } } }"#,
    r#"{ relations(a: "USA", b: "CHN", bucket: DAY) { total { events verbalConflict goldsteinSum } buckets { start events } } }"#,
    r#"{ events(order: VALID_TIME, last: 60) { edges { node { id position } } } }"#,
];

fn projected(server: &Server) -> Vec<Value> {
    PROJECTED.iter().map(|q| server.query(q)).collect()
}

/// The projections' reserve file (4 MiB), as the server keeps it in their directory.
const PROJECTIONS_RESERVE_BYTES: u64 = 4 << 20;

/// The size of the projections' reserve file, if there is one.
fn projections_reserve(data: &Path) -> Option<u64> {
    std::fs::metadata(data.join("projections").join("reserve"))
        .ok()
        .map(|m| m.len())
}

#[test]
fn a_projections_checkpoint_waits_for_room_and_loses_nothing() {
    const BATCH: u64 = 20;
    let Some(tmpfs) = Tmpfs::mount(64) else {
        return;
    };
    let data = tmpfs.path().join("data");
    let mut server = serve(&data, &["--demo"]);
    let demo = projected(&server);
    // The projections keep a reserve for a full disk, as the log does.
    assert_eq!(
        projections_reserve(&data),
        Some(PROJECTIONS_RESERVE_BYTES),
        "the projections' reserve at start"
    );

    // Less room than a checkpoint of the projections asks for, and room enough for the log.
    let filler = tmpfs.path().join("filler");
    fill(&filler, tmpfs.free().saturating_sub(3 << 20));
    let mut head = 0;
    for n in (0..3 * BATCH).step_by(BATCH as usize) {
        let batch: Vec<Value> = (n..n + BATCH).map(|i| event(i, 200)).collect();
        let done = record(&server, &batch)
            .unwrap_or_else(|e| panic!("an append with {} bytes free failed: {e:?}", tmpfs.free()));
        head = done.last().map_or(head, |(_, p)| *p);
    }
    let refused = server.wait_for_log("no room for the projections' checkpoint");
    assert!(!refused.contains("panicked"), "{refused}");
    // The first refusal releases the reserve, which the projections keep for what they must
    // write while the disk is full; their checkpoints wait for room to make it again besides.
    let released = server.wait_for_log("the projections' disk is full: released their reserve");
    assert_eq!(projections_reserve(&data), None, "{released}");
    let free = tmpfs.free();

    // The changes the checkpoint could not take are answered all the same.
    server.query(&format!(
        r#"{{ standoffs(timeline: "us-china-trade", atLeast: {head}) {{ status }} }}"#
    ));
    let while_full = projected(&server);
    assert_ne!(while_full, demo, "the recorded events change the answers");

    // Space returns: the reserve is made again, and the next checkpoint takes everything the
    // refused ones held.
    std::fs::remove_file(&filler).unwrap();
    let saved = server.wait_for_log("the projections' checkpoint is saved again");
    assert!(
        saved.contains("the projections' disk has room again: their reserve is back"),
        "{saved}"
    );
    assert_eq!(projections_reserve(&data), Some(PROJECTIONS_RESERVE_BYTES));
    assert_eq!(projected(&server), while_full);
    server.stop();
    let log = server.log();
    assert!(
        !log.contains("did not stop in time") && !log.contains("last checkpoint failed"),
        "{log}"
    );

    // A restart starts from that checkpoint, with nothing to catch up, and answers alike.
    let mut server = serve(&data, &[]);
    let ready = server.wait_for_log("projections caught up; ready");
    assert!(
        ready.contains("projections caught up; ready events=0"),
        "{ready}"
    );
    assert_eq!(server.head(), head);
    assert_eq!(projected(&server), while_full, "after a restart");
    server.stop();

    // And so do projections rebuilt from the log alone.
    let replayed = chancery_ok(&data, &["replay"]);
    assert!(
        replayed.contains(&format!("replayed {head} events")),
        "{replayed}"
    );
    let server = serve(&data, &[]);
    assert_eq!(projected(&server), while_full, "after a rebuild");
    eprintln!(
        "projections' checkpoint on a full disk: refused with about 3 MiB free while {} events \
         were recorded, their 4 MiB reserve released at the first refusal ({:.1} MiB free \
         after it) and made again once space returned, then saved; answers to {} questions \
         alike while full, after a restart from the checkpoint (nothing to catch up) and after \
         a rebuild",
        3 * BATCH,
        free as f64 / 1048576.0,
        PROJECTED.len()
    );
}

/// Runs `chancery verify` and `chancery serve` on a damaged store: both must refuse it with a
/// message containing every one of `expected`, and neither may panic.
fn refused_at_open(data: &Path, expected: &[&str]) -> String {
    let out = chancery(data, &["verify"]);
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        !out.status.success() && out.status.code() != Some(101),
        "verify accepted a damaged store: {said}"
    );
    assert!(!said.contains("panicked"), "{said}");
    for part in expected {
        assert!(
            said.contains(part),
            "verify's message names {part:?}: {said}"
        );
    }
    let serve = Process::spawn(
        "chancery serve on a damaged store",
        &serve_command(data, "127.0.0.1:0", &[] as &[&str]),
    )
    .unwrap();
    let code = serve
        .wait_exit(READY_PATIENCE)
        .unwrap_or_else(|e| panic!("serve kept running on a damaged store: {e}"));
    let served = serve.log();
    assert!(
        !matches!(code, Some(0 | 101)),
        "serve: exit status {code:?} {served}"
    );
    assert!(!served.contains("listening on"), "{served}");
    assert!(!served.contains("panicked"), "{served}");
    for part in expected {
        assert!(
            served.contains(part),
            "serve's message names {part:?}: {served}"
        );
    }
    said.trim().to_owned()
}

#[test]
fn damaged_data_files_are_reported_at_open_with_what_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    chancery_ok(&good, &["import", demo_file().to_str().unwrap()]);
    let store = |name: &str| -> PathBuf {
        let copy = dir.path().join(name);
        disk::copy_dir(&good, &copy).unwrap();
        copy
    };
    let segment_name = "00000000000000000001.seg";
    let segment = |data: &Path| data.join("log/records").join(segment_name);
    let original = std::fs::read(segment(&good)).unwrap();
    let frames: Vec<&[u8]> = disk::segment_frames(&original)
        .into_iter()
        .map(|frame| &original[frame])
        .collect();
    assert_eq!(frames.len(), 28, "one segment holds the demo");
    let flip = |frame: &[u8]| {
        let mut damaged = frame.to_vec();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 0x01;
        damaged
    };

    // Past the last checkpoint (what a crash leaves for the next open to read): a damaged frame
    // followed by an intact one is corruption, not a torn write.
    let middle = store("segment-middle");
    let mut content = original.clone();
    content.extend(flip(frames[3]));
    content.extend_from_slice(frames[4]);
    std::fs::write(segment(&middle), &content).unwrap();
    let said = refused_at_open(
        &middle,
        &[
            &format!("{segment_name}, byte {}", original.len()),
            "damaged record",
        ],
    );
    eprintln!("a damaged frame past the checkpoint: {said}");

    // A damaged last frame of a segment that a later segment follows: the writer starts a
    // segment only once the one before is cut to its whole groups and synced, so that frame was
    // written whole. It is corruption, reported with its place, and nothing is cut off.
    let followed = store("segment-followed");
    let longer = store("longer");
    let mut server = serve(&longer, &[]);
    for n in 0..3 {
        record(&server, &[event(n, 20)]).unwrap_or_else(|e| panic!("{e:?}"));
    }
    server.stop();
    let longer_bytes = std::fs::read(segment(&longer)).unwrap();
    assert!(longer_bytes.starts_with(&original), "the same demo records");
    let more: Vec<&[u8]> = disk::segment_frames(&longer_bytes)[28..]
        .iter()
        .map(|frame| &longer_bytes[frame.clone()])
        .collect();
    assert_eq!(more.len(), 3, "positions 29 to 31, one group each");
    let mut content = original.clone();
    content.extend_from_slice(more[0]);
    content.extend(flip(more[1]));
    std::fs::write(segment(&followed), &content).unwrap();
    let next_segment = followed.join("log/records/00000000000000000031");
    std::fs::write(next_segment.with_extension("seg"), more[2]).unwrap();
    std::fs::write(next_segment.with_extension("idx"), b"").unwrap();
    let said = refused_at_open(
        &followed,
        &[
            &format!("{segment_name}, byte {}", original.len() + more[0].len()),
            "damaged record",
            "a later segment after it",
        ],
    );
    assert_eq!(
        std::fs::read(segment(&followed)).unwrap(),
        content,
        "nothing was cut off"
    );
    eprintln!("a damaged last frame with a later segment after it: {said}");

    // A torn last frame is a crash in the middle of a write, not corruption.
    let torn = store("segment-torn");
    let mut content = original.clone();
    content.extend_from_slice(&frames[5][..frames[5].len() / 2]);
    std::fs::write(segment(&torn), &content).unwrap();
    assert_eq!(verified(&torn).0, 28, "a torn last frame is dropped");

    // The index's sled file cut short: the index is derived from the records, so it is built
    // again from the segments, and the store reads as before.
    let truncated = store("db-truncated");
    std::fs::OpenOptions::new()
        .write(true)
        .open(truncated.join("log/db"))
        .unwrap()
        .set_len(5_000)
        .unwrap();
    assert_eq!(
        verified(&truncated),
        verified(&good),
        "the index is rebuilt"
    );
    assert_eq!(
        chancery_ok(&truncated, &["export"]),
        chancery_ok(&good, &["export"])
    );

    // A flipped byte in the last event's record: its frame's checksum fails when the head is read
    // at open.
    let flipped = store("segment-flipped");
    let mut bytes = original.clone();
    let summary = b"may fly to Washington about a month later";
    let copies: Vec<usize> = (0..bytes.len() - summary.len())
        .filter(|&i| bytes[i..].starts_with(summary))
        .collect();
    assert_eq!(copies.len(), 1, "the last record is stored once");
    bytes[copies[0] + 4] ^= 0x01;
    std::fs::write(segment(&flipped), &bytes).unwrap();
    let said = refused_at_open(&flipped, &[segment_name, "damaged record"]);
    eprintln!("a flipped byte in the last record: {said}");

    // A flipped byte in an earlier record, behind the checkpoint: the store opens (reading every
    // record at every start would not scale), and `verify`, which reads them all, finds it.
    let early = store("segment-early");
    let mut bytes = original.clone();
    let at = frames[..10].iter().map(|f| f.len()).sum::<usize>() + 20;
    bytes[at] ^= 0x01;
    std::fs::write(segment(&early), &bytes).unwrap();
    let out = chancery(&early, &["verify"]);
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        !out.status.success(),
        "verify accepted a damaged record: {said}"
    );
    assert!(
        said.contains(segment_name) && said.contains("damaged record"),
        "verify names the file and the damage: {said}"
    );

    // The intact copy still verifies: the damage, not the copying, is what was found.
    assert_eq!(verified(&good).0, 28);
}

#[test]
fn an_online_backup_restores_to_a_store_that_verifies_and_answers_alike() {
    const BATCH: u64 = 100;
    const PADDING: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("original");
    let server = Arc::new(serve(&original, &["--demo"]));

    // A writer appends through the server all along, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let (progress_tx, progress) = mpsc::channel::<u64>();
    let writer = {
        let server = Arc::clone(&server);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut n = 0;
            let mut acknowledged = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let batch: Vec<Value> = (n..n + BATCH).map(|i| event(i, PADDING)).collect();
                n += BATCH;
                let done = record(&server, &batch)
                    .unwrap_or_else(|e| panic!("an append failed during the backup: {e:?}"));
                let _ = progress_tx.send(done.last().unwrap().1);
                acknowledged.extend(done);
            }
            acknowledged
        })
    };
    // Back up once the writer is well under way, and while it goes on.
    let wait_for = |position: u64| {
        let deadline = Instant::now() + READY_PATIENCE;
        loop {
            let reached = progress
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the writer makes progress");
            if reached >= position {
                return reached;
            }
        }
    };
    wait_for(28 + 20 * BATCH);
    let head_before = server.head();
    let started = Instant::now();
    let mut head_after = 0;
    let backup = backup_pausing(&server, || head_after = wait_for(head_before + 3 * BATCH));
    let seconds = started.elapsed().as_secs_f64();
    let (header, records) = records_of(&backup);
    let backed_up = header["events"].as_u64().unwrap();
    assert!(
        backed_up >= head_before && backed_up < head_after,
        "the backup holds the log as it was when it began: {head_before} <= {backed_up} < {head_after}"
    );
    assert_eq!(
        records.len() as u64,
        backed_up,
        "every record up to the header's count"
    );
    // The writer goes on past the backup, so the original moves on.
    wait_for(head_after + 5 * BATCH);
    stop.store(true, Ordering::SeqCst);
    let acknowledged = writer.join().unwrap();
    let final_head = server.head();
    assert!(final_head > backed_up);

    let file = dir.path().join("backup.ndjson");
    std::fs::write(&file, &backup).unwrap();
    let verified_file = chancery_ok(dir.path(), &["verify", "--file", file.to_str().unwrap()]);
    assert!(verified_file.contains("chain intact"), "{verified_file}");
    let restored = dir.path().join("restored");
    let out = chancery_ok(&restored, &["import", file.to_str().unwrap()]);
    assert!(
        out.contains(&format!("restored {backed_up} records")),
        "{out}"
    );
    let (events, hash) = verified(&restored);
    assert_eq!(events, backed_up);
    assert_eq!(Some(hash.as_str()), header["headHash"].as_str());

    // The restore answers as the original did when it knew the backed-up prefix.
    let copy = serve(&restored, &[]);
    assert_eq!(copy.head(), backed_up);
    let questions = |known_at: String| {
        [
            format!(
                r#"{{ positions(timeline: "us-china-trade"{known_at}) {{ party {{ code }} issue {{ slug }} stance firstStated lastReaffirmed reaffirmed event {{ id position }} }} }}"#
            ),
            format!(
                r#"{{ standoffs(timeline: "us-china-trade"{known_at}) {{ issue {{ slug }} status sides {{ party {{ code }} stance }} }} }}"#
            ),
        ]
    };
    let as_of = format!(", asOf: {{ knownAt: {backed_up} }}");
    let mut compared = 0;
    for (then, now) in questions(as_of).iter().zip(questions(String::new())) {
        let original_then = server.query(then);
        assert_eq!(original_then, copy.query(&now), "{then}");
        if now.contains("positions(") {
            assert_ne!(
                server.query(&now),
                original_then,
                "the original moved on since the backup, so the comparison can tell"
            );
        }
        compared += 1;
    }
    // Every event acknowledged up to the backup's head is in the restore.
    let restored_ids: BTreeMap<u64, String> = records
        .iter()
        .map(|(position, (id, _))| (*position, id.clone()))
        .collect();
    let in_backup = acknowledged
        .iter()
        .filter(|(_, position)| *position <= backed_up)
        .inspect(|(id, position)| assert_eq!(restored_ids.get(position), Some(id)))
        .count();
    eprintln!(
        "online backup: {} bytes, {backed_up} events (head {head_before} when it began, \
         {head_after} when it ended: {} events appended during the {seconds:.2} s backup); \
         original at {final_head} when the writer stopped; restore verified (head hash {hash}); \
         {compared} queries compared; {in_backup} acknowledged events found in the restore",
        backup.len(),
        head_after - head_before,
    );
}
