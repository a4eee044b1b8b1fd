//! The receiver in-process against real files laid out like /var/log/pods.

mod common;

use std::fs;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::*;

/// The upstream Helm chart's logsCollection preset, pointed at `root`, reading from the start.
fn preset(root: &std::path::Path, extra: &str) -> String {
    format!(
        "include: [{}/*/*/*.log]\nexclude: [{}/kotel_kotel-agent*_*/otc/*.log]\nstart_at: beginning\n\
         retry_on_failure: {{enabled: true, initial_interval: 50ms, max_interval: 200ms}}\n\
         include_file_path: true\ninclude_file_name: false\npoll_interval: 50ms\n\
         operators:\n  - {{type: container, id: container-parser, max_log_size: 102400}}\n{extra}",
        root.display(),
        root.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cri_and_docker_formats_with_partials_and_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pods");
    let containerd = pod_dir(
        &root,
        "shop",
        "web-1",
        "0a1b2c3d-0000-1111-2222-333344445555",
        "nginx",
    );
    let crio = pod_dir(
        &root,
        "shop",
        "db-0",
        "aaaaaaaa-0000-1111-2222-333344445555",
        "pg",
    );
    let dock = pod_dir(
        &root,
        "kube-system",
        "dns-x",
        "bbbbbbbb-0000-1111-2222-333344445555",
        "coredns",
    );
    let skipped = pod_dir(
        &root,
        "kotel",
        "kotel-agent-abc",
        "cccccccc-0000-1111-2222-333344445555",
        "otc",
    );
    let mut c = String::new();
    c += &cri(T0 + 1, "stdout", "F", "GET / 200");
    c += &cri(T0 + 2, "stderr", "P", "a long ");
    c += &cri(T0 + 3, "stderr", "P", "error ");
    c += &cri(T0 + 4, "stdout", "F", "GET /x 404");
    c += &cri(T0 + 5, "stderr", "F", "message");
    append(&containerd.join("0.log"), &c);
    append(
        &crio.join("2.log"),
        "2024-04-13T07:59:37.505201169-05:00 stdout F crio line\n",
    );
    append(
        &dock.join("0.log"),
        &(docker(T0 + 9, "stdout", "docker \"quoted\"") + &docker(T0 + 10, "stderr", "oops")),
    );
    append(
        &skipped.join("0.log"),
        &cri(T0, "stdout", "F", "collector's own log, excluded"),
    );
    append(
        &containerd.join("0.log.20240101-000000"),
        &cri(T0, "stdout", "F", "rotated, not matched"),
    );

    let run = start(
        &config(&preset(&root, "")),
        None,
        Arc::new(Collect::default()),
    );
    run.wait_len(6).await;
    let sink = run.stop().await;
    let recs = sink.records();
    let mut bodies = sink.bodies();
    bodies.sort();
    assert_eq!(
        bodies,
        vec![
            "GET / 200",
            "GET /x 404",
            "a long error message",
            "crio line",
            "docker \"quoted\"\n",
            "oops\n"
        ],
        "Docker's newline kept, as upstream"
    );
    let by = |b: &str| recs.iter().find(|r| r.body == b).unwrap().clone();
    let r = by("a long error message");
    assert_eq!(r.time, T0 + 2);
    assert_eq!(r.attrs["log.iostream"], "stderr");
    assert_eq!(r.attrs["logtag"], "P");
    assert_eq!(
        r.attrs["log.file.path"],
        containerd.join("0.log").display().to_string()
    );
    assert!(!r.attrs.contains_key("log.file.name"));
    assert_eq!(r.resource["k8s.namespace.name"], "shop");
    assert_eq!(r.resource["k8s.pod.name"], "web-1");
    assert_eq!(
        r.resource["k8s.pod.uid"],
        "0a1b2c3d-0000-1111-2222-333344445555"
    );
    assert_eq!(r.resource["k8s.container.name"], "nginx");
    assert_eq!(r.resource["k8s.container.restart_count"], "0");
    let r = by("crio line");
    assert_eq!(r.time, 1_713_013_177_505_201_169);
    assert_eq!(r.resource["k8s.container.restart_count"], "2");
    let r = by("oops\n");
    assert_eq!(r.time, T0 + 10);
    assert_eq!(r.attrs["log.iostream"], "stderr");
    assert!(!r.attrs.contains_key("logtag"));
    assert_eq!(r.resource["k8s.pod.name"], "dns-x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_lines_and_invalid_utf8_never_stop_the_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pods");
    let d = pod_dir(&root, "ns", "p", "0123", "c");
    let mut data = Vec::new();
    data.extend_from_slice(cri(T0, "stdout", "F", "first").as_bytes());
    data.extend_from_slice(b"garbage without structure\n");
    data.extend_from_slice(b"2024-01-01T00:00:00Z stdout F caf\xe9 \xff\n");
    data.extend_from_slice(b"{\"log\": broken json\n");
    data.extend_from_slice(b"\n\n");
    data.extend_from_slice(cri(T0, "stdout", "F", "last").as_bytes());
    fs::write(d.join("0.log"), &data).unwrap();
    let run = start(
        &config(&preset(&root, "")),
        None,
        Arc::new(Collect::default()),
    );
    run.wait_len(5).await;
    assert_eq!(run.metric("otelcol_filelog_parse_errors"), 2.0);
    assert_eq!(run.metric("otelcol_filelog_lines_read"), 7.0);
    let sink = run.stop().await;
    assert_eq!(
        sink.bodies(),
        vec![
            "first",
            "garbage without structure",
            "caf\u{fffd} \u{fffd}",
            "{\"log\": broken json",
            "last"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_rotation_loses_and_repeats_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pods");
    let d = pod_dir(&root, "ns", "chatty", "0a0a", "app");
    let log = d.join("0.log");
    let run = start(
        &config(&preset(&root, "")),
        None,
        Arc::new(Collect::default()),
    );
    let mut want = Vec::new();
    let mut n = 0u64;
    let mut write = |f: &std::path::Path, count: usize, want: &mut Vec<String>| {
        let mut s = String::new();
        for _ in 0..count {
            n += 1;
            let msg = format!("line {n:06}");
            s += &cri(T0 + n, "stdout", "F", &msg);
            want.push(msg);
        }
        append(f, &s);
    };
    for round in 0..5 {
        for _ in 0..10 {
            write(&log, 50, &mut want);
            tokio::time::sleep(std::time::Duration::from_millis(7)).await;
        }
        // kubelet: rename, the runtime still writes a little to the old file, reopen (create),
        // later gzip the rotated file.
        let rotated = d.join(format!("0.log.20240101-00000{round}"));
        fs::rename(&log, &rotated).unwrap();
        write(&rotated, 20, &mut want);
        write(&log, 30, &mut want);
        if round > 0 {
            let prev = d.join(format!("0.log.20240101-00000{}", round - 1));
            gzip(&prev);
        }
    }
    write(&log, 100, &mut want);
    run.wait_len(want.len()).await;
    let sink = run.stop().await;
    assert_exactly_once(&sink.bodies(), &want);
}

/// The runtime reopened its log between the chunks of one line (seen on a real node: the
/// partial chunk ended the rotated file, the final chunk began the new one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_split_by_rotation_arrives_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pods");
    let d = pod_dir(&root, "ns", "split", "0c0c", "app");
    let log = d.join("0.log");
    let run = start(
        &config(&preset(&root, "")),
        None,
        Arc::new(Collect::default()),
    );
    append(
        &log,
        &(cri(T0 + 1, "stdout", "F", "before") + &cri(T0 + 2, "stdout", "P", "split ")),
    );
    run.wait_len(1).await;
    let rotated = d.join("0.log.20240101-000000");
    fs::rename(&log, &rotated).unwrap();
    append(&rotated, &cri(T0 + 3, "stdout", "P", "across "));
    append(
        &log,
        &(cri(T0 + 4, "stderr", "F", "other stream")
            + &cri(T0 + 5, "stdout", "F", "the rotation")
            + &cri(T0 + 6, "stdout", "F", "after")),
    );
    run.wait_len(4).await;
    // Long enough for a forced flush of the old file's chunks, had they stayed there.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let sink = run.stop().await;
    let recs = sink.records();
    let bodies: Vec<_> = recs.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(
        bodies,
        [
            "before",
            "other stream",
            "split across the rotation",
            "after"
        ]
    );
    let whole = &recs[2];
    // Upstream's recombined record: the first chunk's time and tag.
    assert_eq!(whole.time, T0 + 2);
    assert_eq!(whole.attrs["logtag"], "P");
    assert_eq!(whole.attrs["log.file.path"], log.display().to_string());
}

/// A rotated-away file whose last line never got its final chunk: emitted as it is when the
/// handle is closed, not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_line_in_a_file_renamed_away_is_emitted() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pods");
    let d = pod_dir(&root, "ns", "gone", "0d0d", "app");
    let log = d.join("0.log");
    let cfg = config(&preset(&root, "force_flush_period: 0s\n"));
    let run = start(&cfg, None, Arc::new(Collect::default()));
    append(
        &log,
        &(cri(T0 + 1, "stdout", "F", "first") + &cri(T0 + 2, "stdout", "P", "never ")),
    );
    run.wait_len(1).await;
    fs::rename(&log, d.join("0.log.20240101-000000")).unwrap();
    run.wait_len(2).await;
    let sink = run.stop().await;
    let recs = sink.records();
    assert_eq!(sink.bodies(), ["first", "never "]);
    assert_eq!(recs[1].attrs["logtag"], "P");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_truncate_reads_the_new_content_from_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pods");
    let d = pod_dir(&root, "ns", "p", "0b0b", "app");
    let log = d.join("0.log");
    let run = start(
        &config(&preset(&root, "")),
        None,
        Arc::new(Collect::default()),
    );
    let mut want: Vec<String> = Vec::new();
    for round in 0..3 {
        let mut s = String::new();
        for i in 0..100 {
            let msg = format!("round {round} line {i}");
            s += &cri(T0 + round * 1000 + i, "stdout", "F", &msg);
            want.push(msg);
        }
        append(&log, &s);
        run.wait_len(want.len()).await;
        // copytruncate: copy out of the pattern, truncate in place.
        fs::copy(&log, d.join(format!("0.log.{round}"))).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(&log)
            .unwrap()
            .set_len(0)
            .unwrap();
    }
    run.wait_len(want.len()).await;
    let sink = run.stop().await;
    assert_exactly_once(&sink.bodies(), &want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renames_and_copies_within_the_pattern_are_not_read_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("logs");
    fs::create_dir_all(&dir).unwrap();
    let cfg = config(&format!(
        "include: ['{}/*.log']\nstart_at: beginning\npoll_interval: 50ms\n",
        dir.display()
    ));
    let run = start(&cfg, None, Arc::new(Collect::default()));
    let mut want = Vec::new();
    let mut s = String::new();
    for i in 0..50 {
        s += &format!("app line {i} with enough text to make a fingerprint unique\n");
        want.push(format!(
            "app line {i} with enough text to make a fingerprint unique"
        ));
    }
    append(&dir.join("a.log"), &s);
    run.wait_len(50).await;
    fs::rename(dir.join("a.log"), dir.join("b.log")).unwrap();
    append(&dir.join("b.log"), "after the rename\n");
    want.push("after the rename".into());
    run.wait_len(51).await;
    fs::copy(dir.join("b.log"), dir.join("copy.log")).unwrap();
    append(&dir.join("b.log"), "after the copy\n");
    want.push("after the copy".into());
    run.wait_len(52).await;
    let sink = run.stop().await;
    assert_exactly_once(&sink.bodies(), &want);
    assert!(
        sink.records()
            .iter()
            .all(|r| r.attrs.contains_key("log.file.name"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_file_is_drained_and_a_new_one_read_in_full() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pods");
    let d = pod_dir(&root, "ns", "p", "0c0c", "app");
    let log = d.join("0.log");
    let run = start(
        &config(&preset(&root, "")),
        None,
        Arc::new(Collect::default()),
    );
    append(&log, &cri(T0, "stdout", "F", "before"));
    run.wait_len(1).await;
    // Written and deleted between two polls: read through the handle still open.
    append(
        &log,
        &(cri(T0 + 1, "stdout", "F", "last words") + &cri(T0 + 2, "stdout", "F", "really last")),
    );
    fs::remove_file(&log).unwrap();
    run.wait_len(3).await;
    append(&log, &cri(T0 + 3, "stdout", "F", "a new container"));
    run.wait_len(4).await;
    let sink = run.stop().await;
    assert_eq!(
        sink.bodies(),
        vec!["before", "last words", "really last", "a new container"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_files_in_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pods");
    let pods = 2500;
    let mut want = Vec::new();
    for p in 0..pods {
        let d = pod_dir(
            &root,
            "load",
            &format!("pod-{p}"),
            &format!("{p:08x}"),
            "app",
        );
        let mut s = String::new();
        for i in 0..4 {
            let msg = format!("pod {p} line {i}");
            s += &cri(T0 + i, "stdout", "F", &msg);
            want.push(msg);
        }
        append(&d.join("0.log"), &s);
    }
    let cfg = config(&preset(&root, "max_concurrent_files: 1000\n"));
    let run = start(&cfg, None, Arc::new(Collect::default()));
    run.wait_len(want.len()).await;
    assert!(run.metric("otelcol_fileconsumer_open_files") <= 1000.0);
    for p in 0..pods {
        let d = root.join(format!("load_pod-{p}_{p:08x}/app"));
        let msg = format!("pod {p} line 4");
        append(&d.join("0.log"), &cri(T0 + 4, "stdout", "F", &msg));
        want.push(msg);
    }
    run.wait_len(want.len()).await;
    let sink = run.stop().await;
    assert_exactly_once(&sink.bodies(), &want);
    // Records are grouped by resource: one pod per ResourceLogs.
    let recs = sink.records();
    assert!(recs.iter().all(|r| {
        r.body
            .starts_with(&format!("pod {} ", &r.resource["k8s.pod.name"][4..]))
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_pause_reading_and_skip_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pods");
    let d = pod_dir(&root, "ns", "p", "0d0d", "app");
    let mut want = Vec::new();
    let mut s = String::new();
    for i in 0..20_000 {
        let msg = format!("line {i}");
        s += &cri(T0 + i, "stdout", "F", &msg);
        want.push(msg);
    }
    append(&d.join("0.log"), &s);
    let sink = Arc::new(Collect::default());
    sink.refuse.store(5, Ordering::SeqCst);
    let run = start(&config(&preset(&root, "")), None, sink.clone());
    run.wait_len(want.len()).await;
    assert_eq!(sink.refused.load(Ordering::SeqCst), 5);
    let sink = run.stop().await;
    assert_eq!(sink.bodies(), want, "in order, once each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_at_end_skips_old_lines_but_reads_files_found_later() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pods");
    let a = pod_dir(&root, "ns", "a", "0e0e", "app");
    append(&a.join("0.log"), &cri(T0, "stdout", "F", "old, skipped"));
    let cfg = config(&preset(&root, "").replace("start_at: beginning", "start_at: end"));
    let run = start(&cfg, None, Arc::new(Collect::default()));
    wait_until("first poll", DEADLINE, || {
        run.metric("otelcol_fileconsumer_open_files") >= 1.0
    })
    .await;
    append(&a.join("0.log"), &cri(T0 + 1, "stdout", "F", "new in a"));
    let b = pod_dir(&root, "ns", "b", "0f0f", "app");
    append(
        &b.join("0.log"),
        &(cri(T0 + 2, "stdout", "F", "b one") + &cri(T0 + 3, "stdout", "F", "b two")),
    );
    run.wait_len(3).await;
    let sink = run.stop().await;
    let mut got = sink.bodies();
    got.sort();
    assert_eq!(got, vec!["b one", "b two", "new in a"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_lines_split_and_trailing_partial_lines_flush() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("logs");
    fs::create_dir_all(&dir).unwrap();
    let cfg = config(&format!(
        "include: ['{}/*.log']\nstart_at: beginning\npoll_interval: 20ms\nmax_log_size: 1000\nforce_flush_period: 100ms\n",
        dir.display()
    ));
    let run = start(&cfg, None, Arc::new(Collect::default()));
    let long = "x".repeat(2500);
    append(&dir.join("a.log"), &format!("{long}\nno newline yet"));
    run.wait_len(4).await;
    append(&dir.join("a.log"), " - and the rest\n");
    run.wait_len(5).await;
    let sink = run.stop().await;
    let bodies = sink.bodies();
    assert_eq!(
        bodies[..3],
        ["x".repeat(1000), "x".repeat(1000), "x".repeat(500)]
    );
    assert_eq!(
        bodies[3..],
        ["no newline yet".to_string(), "- and the rest".into()]
    );
}

/// The writer went quiet after a partial chunk: after `force_flush_period` the chunks so far
/// are a record of their own (tagged `P`), not dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_cri_line_left_open_is_flushed_as_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pods");
    let d = pod_dir(&root, "ns", "quiet", "1b1b", "app");
    let log = d.join("0.log");
    let cfg = config(&preset(&root, "force_flush_period: 100ms\n"));
    let run = start(&cfg, None, Arc::new(Collect::default()));
    append(
        &log,
        &(cri(T0, "stdout", "F", "whole")
            + &cri(T0 + 1, "stdout", "P", "left ")
            + &cri(T0 + 2, "stdout", "P", "open")),
    );
    run.wait_len(2).await;
    append(&log, &cri(T0 + 3, "stdout", "F", "late end"));
    run.wait_len(3).await;
    let sink = run.stop().await;
    let recs = sink.records();
    assert_eq!(sink.bodies(), ["whole", "left open", "late end"]);
    assert_eq!(recs[1].attrs["logtag"], "P");
    assert_eq!(recs[1].time, T0 + 1, "the first chunk's time");
    assert_eq!(recs[2].attrs["logtag"], "F");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_cri_lines_wait_for_their_final_chunk_across_polls() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pods");
    let d = pod_dir(&root, "ns", "p", "1a1a", "app");
    let log = d.join("0.log");
    let cfg = config(&preset(&root, "force_flush_period: 1h\n"));
    let sink = Arc::new(Collect::default());
    // Refusals on the way make the reader go back to the open partial line more often.
    sink.refuse.store(2, Ordering::SeqCst);
    let run = start(&cfg, None, sink);
    append(
        &log,
        &(cri(T0, "stdout", "F", "whole")
            + &cri(T0 + 1, "stdout", "P", "split ")
            + &cri(
                T0 + 2,
                "stderr",
                "F",
                "other stream, sent while stdout is open",
            )),
    );
    run.wait_len(2).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    append(
        &log,
        &(cri(T0 + 3, "stdout", "P", "across ") + &cri(T0 + 4, "stderr", "F", "more stderr")),
    );
    run.wait_len(3).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    append(&log, &cri(T0 + 5, "stdout", "F", "polls"));
    run.wait_len(4).await;
    let sink = run.stop().await;
    assert_eq!(
        sink.bodies(),
        vec![
            "whole",
            "other stream, sent while stdout is open",
            "more stderr",
            "split across polls"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinked_files_report_their_resolved_path() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pods");
    let d = pod_dir(&root, "ns", "p", "2b2b", "app");
    append(&d.join("0.log"), &cri(T0, "stdout", "F", "via a link"));
    let links = tmp.path().join("containers");
    fs::create_dir_all(&links).unwrap();
    std::os::unix::fs::symlink(d.join("0.log"), links.join("p_ns_app-abc.log")).unwrap();
    let cfg = config(&format!(
        "include: ['{}/*.log']\nstart_at: beginning\npoll_interval: 50ms\ninclude_file_path_resolved: true\n\
         include_file_name_resolved: true\noperators: [{{type: container}}]\n",
        links.display()
    ));
    let run = start(&cfg, None, Arc::new(Collect::default()));
    run.wait_len(1).await;
    let sink = run.stop().await;
    let r = &sink.records()[0];
    assert_eq!(r.body, "via a link");
    assert_eq!(r.attrs["log.file.name"], "p_ns_app-abc.log");
    assert_eq!(r.attrs["log.file.name_resolved"], "0.log");
    assert_eq!(
        r.attrs["log.file.path_resolved"],
        fs::canonicalize(d.join("0.log"))
            .unwrap()
            .display()
            .to_string()
    );
}

/// The Helm chart's logsCollection preset, as the chart renders it into a whole collector
/// config (renamed `file_log`, storage on), parsed by kotel-config and run with checkpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_helm_logs_collection_preset_runs_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pods");
    let yaml = format!(
        r#"
exporters:
  debug: {{}}
extensions:
  file_storage:
    directory: {state}
receivers:
  file_log:
    include: [ {root}/*/*/*.log ]
    exclude: [ {root}/default_example-opentelemetry-collector*_*/opentelemetry-collector/*.log ]
    start_at: end
    retry_on_failure:
      enabled: true
    storage: file_storage
    include_file_path: true
    include_file_name: false
    operators:
      - type: container
        id: container-parser
        max_log_size: 102400
service:
  extensions: [file_storage]
  pipelines:
    logs:
      receivers: [file_log]
      exporters: [debug]
"#,
        root = root.display(),
        state = tmp.path().join("state").display()
    );
    let cfg = kotel_config::Config::from_yaml(&yaml).unwrap();
    let (id, rc) = cfg.active_receivers().next().unwrap();
    let kotel_config::ReceiverConfig::Filelog(fc) = rc else {
        panic!("a filelog receiver")
    };
    assert_eq!(id.ty, "file_log");
    let d = pod_dir(&root, "shop", "web-1", "0a1b", "nginx");
    append(
        &d.join("0.log"),
        &cri(T0, "stdout", "F", "before start: skipped (start_at end)"),
    );
    let state = tmp.path().join("state/receiver_file_log");
    let run = start(fc, Some(state.clone()), Arc::new(Collect::default()));
    wait_until("the first checkpoint", DEADLINE, || {
        state.join("filelog-checkpoints.json").exists()
    })
    .await;
    append(&d.join("0.log"), &cri(T0 + 1, "stdout", "F", "after start"));
    run.wait_len(1).await;
    let sink = run.stop().await;
    let r = &sink.records()[0];
    assert_eq!(sink.len(), 1);
    assert_eq!(r.body, "after start");
    assert_eq!(r.resource["k8s.pod.uid"], "0a1b");
}
