//! The kit's helpers against real sockets, processes, files and (when one is at hand) a
//! nats-server.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use chancery_testkit::http::{Client, Reply, dechunk};
use chancery_testkit::server::Process;
use chancery_testkit::{Error, disk, nats, ports, wait};

/// Answers one connection on a free port with `answer`, and hands back what it was sent.
fn answer_once(answer: &'static [u8]) -> (String, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let served = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buffer).unwrap();
            request.extend_from_slice(&buffer[..n]);
        }
        stream.write_all(answer).unwrap();
        request
    });
    (address, served)
}

#[test]
fn a_chunked_answer_is_read_whole_with_its_headers() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
    let reply = Reply::parse(raw).unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json().unwrap(), serde_json::json!({ "a": 1 }));
    assert_eq!(dechunk(b"4\r\nab"), None, "a chunk cut short");
    assert_eq!(dechunk(b"zz\r\n"), None, "a size that is not hex");
    assert!(matches!(Reply::parse(b"garbage"), Err(Error::NotHttp(_))));
}

#[test]
fn a_graphql_request_carries_its_token_and_body() {
    let (address, served) =
        answer_once(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"data\":{}}");
    let client = Client::new(&format!("http://{address}/graphiql"));
    assert_eq!(client.address(), address);
    let reply = client
        .graphql(Some("t0ken"), "{ head }", &serde_json::json!({}))
        .unwrap();
    assert_eq!(reply.text(), "{\"data\":{}}");
    let request = String::from_utf8(served.join().unwrap()).unwrap();
    assert!(
        request.starts_with("POST /graphql HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains("Authorization: Bearer t0ken\r\n"),
        "{request}"
    );
    assert!(request.contains("Connection: close\r\n"), "{request}");
}

#[test]
fn nothing_listening_is_an_error_and_no_status() {
    let port = ports::free_port().unwrap();
    let address = format!("127.0.0.1:{port}");
    assert!(!ports::accepts(&address));
    let client = Client::new(&address).with_timeout(Duration::from_secs(5));
    assert!(client.get("/").is_err());
    assert_eq!(client.status("/"), None);
}

#[test]
fn free_ports_are_distinct() {
    let mut free = ports::free_ports(6).unwrap();
    free.sort_unstable();
    free.dedup();
    assert_eq!(free.len(), 6);
}

fn shell(script: &str) -> Command {
    let mut command = Command::new("sh");
    command.arg("-c").arg(script);
    command
}

#[test]
fn a_process_is_waited_on_its_output_and_killed() {
    let mut process = Process::spawn(
        "talker",
        shell("echo starting; echo 'listening on http://127.0.0.1:9 (more)' >&2; exec sleep 600")
            .env("KIT_TEST", "1"),
    )
    .unwrap();
    let address = process
        .wait_address("listening on ", Duration::from_secs(30))
        .unwrap();
    assert_eq!(address, "http://127.0.0.1:9");
    assert_eq!(
        process.log(),
        "starting\nlistening on http://127.0.0.1:9 (more)"
    );
    let missing = process.wait_line("silence", Duration::from_millis(100), |l| l == "never");
    assert!(matches!(missing, Err(Error::NotSeen { .. })), "{missing:?}");
    process.kill9().unwrap();
    assert!(process.exited());
    assert_eq!(process.wait_exit(Duration::ZERO).unwrap(), Some(137));
}

#[test]
fn a_process_that_exits_says_with_what_code() {
    let process = Process::spawn("quitter", &shell("echo bye; exit 3")).unwrap();
    assert_eq!(process.wait_exit(Duration::from_secs(30)).unwrap(), Some(3));
    let gone = process.wait_line("a greeting", Duration::from_secs(30), |l| l == "hello");
    let Err(Error::NotSeen { why, output, .. }) = gone else {
        panic!("{gone:?}")
    };
    assert_eq!((why.as_str(), output.as_str()), ("exit status 3", "bye"));
}

#[test]
fn sigterm_stops_a_process_and_dropping_one_kills_it() {
    let mut polite = Process::spawn("polite", &shell("exec sleep 600")).unwrap();
    polite.terminate(Duration::from_secs(30)).unwrap();
    assert!(polite.exited());

    let stubborn = Process::spawn("stubborn", &shell("exec sleep 600")).unwrap();
    let pid = stubborn.pid().to_string();
    drop(stubborn);
    let alive = || {
        Command::new("kill")
            .args(["-0", &pid])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    wait::until("the dropped process to go", Duration::from_secs(30), || {
        !alive()
    })
    .unwrap();
}

#[test]
fn a_process_that_removes_its_directory_does_so_once_its_owner_is_gone() {
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::write(dir.join("store"), b"x").unwrap();
    let process = Process::spawn_removing("keeper", &shell("exec sleep 600"), &dir).unwrap();
    assert!(dir.is_dir());
    drop(process);
    wait::until("the directory to go", Duration::from_secs(30), || {
        !dir.exists()
    })
    .unwrap();
}

#[test]
fn waiting_for_what_never_comes_times_out() {
    let outcome = wait::until("nothing", Duration::from_millis(120), || false);
    assert!(
        matches!(outcome, Err(Error::TimedOut { .. })),
        "{outcome:?}"
    );
}

#[test]
fn a_directory_is_copied_whole_and_a_segment_splits_into_its_frames() {
    let from = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(from.path().join("a/b")).unwrap();
    std::fs::write(from.path().join("a/b/c"), b"deep").unwrap();
    std::fs::write(from.path().join("top"), b"top").unwrap();
    let to = tempfile::tempdir().unwrap();
    disk::copy_dir(from.path(), &to.path().join("copy")).unwrap();
    assert_eq!(
        std::fs::read(to.path().join("copy/a/b/c")).unwrap(),
        b"deep"
    );
    assert_eq!(std::fs::read(to.path().join("copy/top")).unwrap(), b"top");

    let frame = |payload: &[u8]| {
        let mut bytes = u32::try_from(payload.len()).unwrap().to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 5]);
        bytes.extend_from_slice(payload);
        bytes
    };
    let mut segment = [frame(b"one"), frame(b"three")].concat();
    segment.extend_from_slice(&frame(b"torn")[..6]);
    assert_eq!(disk::segment_frames(&segment), vec![0..12, 12..26]);
}

#[test]
fn a_nats_cluster_starts_and_a_killed_node_comes_back_on_its_store() {
    let Some(binary) = nats::require("the kit's nats helpers went unchecked") else {
        return;
    };
    let mut cluster = nats::Nats::start(&binary, 3).unwrap();
    assert_eq!(cluster.node_count(), 3);
    let urls = cluster.urls();
    assert_eq!(
        cluster.store(),
        format!(
            "nats://{}",
            urls.iter()
                .map(|u| u.trim_start_matches("nats://"))
                .collect::<Vec<_>>()
                .join(",")
        )
    );
    for url in &urls {
        assert!(ports::accepts(url.trim_start_matches("nats://")), "{url}");
    }
    cluster.kill9(1).unwrap();
    assert!(!ports::accepts(urls[1].trim_start_matches("nats://")));
    cluster.restart(1).unwrap();
    assert!(ports::accepts(urls[1].trim_start_matches("nats://")));
    assert_eq!(cluster.name(1), "n2");
}

#[cfg(feature = "fuzz")]
mod fuzz {
    use chancery_testkit::fuzz::{self, Damage, JsonChange};
    use proptest::prelude::*;
    use proptest::sample::Index;
    use proptest::strategy::ValueTree;
    use serde_json::{Value, json};

    /// An `Index` that picks `i` among `n` (proptest makes them only at random).
    fn index(i: usize, n: usize) -> Index {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        loop {
            let candidate = any::<Index>().new_tree(&mut runner).unwrap().current();
            if candidate.index(n) == i {
                return candidate;
            }
        }
    }

    #[test]
    fn a_uuid_v7_has_the_version_and_variant_bits() {
        let id = fuzz::uuid_v7(u64::MAX, u64::MAX);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "7");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_eq!(fuzz::uuid_v7(0, 0), "00000000-0000-7000-8000-000000000000");
    }

    #[test]
    fn a_change_lands_at_the_place_picked() {
        // Places in order: the root, "a", "a"[0], "b".
        let original = json!({ "a": [1], "b": "x" });
        let mut value = original.clone();
        fuzz::change_json(&mut value, index(2, 4), &JsonChange::Replace(json!(null)));
        assert_eq!(value, json!({ "a": [null], "b": "x" }));
        let mut value = original.clone();
        fuzz::change_json(&mut value, index(3, 4), &JsonChange::Remove);
        assert_eq!(value, json!({ "a": [1] }));
        let mut value = original.clone();
        fuzz::change_json(
            &mut value,
            index(0, 4),
            &JsonChange::AddUnknown("c".into(), json!(2)),
        );
        assert_eq!(value, json!({ "a": [1], "b": "x", "c": 2 }));
        let mut value = original.clone();
        fuzz::change_json(&mut value, index(0, 4), &JsonChange::Remove);
        assert_eq!(value, original, "the root cannot go");
    }

    #[test]
    fn damage_changes_the_bytes_it_says() {
        let mut bytes = b"abc".to_vec();
        Damage::FlipBit {
            at: index(0, 3),
            bit: 0,
        }
        .apply(&mut bytes);
        assert_eq!(bytes, b"`bc");
        Damage::Truncate { at: index(1, 3) }.apply(&mut bytes);
        assert_eq!(bytes, b"`");
        let mut empty = Vec::new();
        Damage::Insert {
            at: index(0, 1),
            byte: 1,
        }
        .apply(&mut empty);
        assert!(empty.is_empty());
    }

    proptest! {
        #![proptest_config(fuzz::config("CHANCERY_FUZZ_CASES", 200, 50))]

        #[test]
        fn json_values_and_numbers_serialize(
            value in fuzz::json_value(vec![fuzz::number(&[1e16, f64::MAX])]),
            n in fuzz::number(&[]),
        ) {
            prop_assert!(serde_json::to_string(&value).is_ok());
            prop_assert!(matches!(n, Value::Number(_) | Value::Null));
        }
    }
}
