//! Replays every committed fuzz input (the corpus, and each crash found and fixed) through its
//! target on stable Rust: a crash found once fails `make test` until it is fixed.

use std::path::Path;

#[test]
fn every_committed_input_runs_through_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut total = 0;
    for (name, target) in kotel_fuzz::TARGETS {
        let mut ran = 0;
        for dir in ["corpus", "artifacts"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("readable directory").path();
                let data = std::fs::read(&path).expect("readable input");
                let result = std::panic::catch_unwind(|| target(&data));
                assert!(result.is_ok(), "{name}: {} panics", path.display());
                ran += 1;
            }
        }
        assert!(
            ran > 0,
            "{name}: no committed corpus under fuzz/corpus/{name}"
        );
        total += ran;
    }
    println!("replayed {total} inputs");
}

/// The seeds reach the parsers' success paths (a corpus of inputs refused at the first check
/// would leave the fuzzer nowhere to start from).
#[test]
fn seeds_are_valid_inputs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    // Hand-written seeds have names; what the fuzzer adds is named by its hash.
    let seeds = |target: &str| {
        let mut files: Vec<_> = std::fs::read_dir(root.join(target))
            .expect("corpus directory")
            .map(|e| e.expect("entry").path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                !(name.len() == 40 && name.chars().all(|c| c.is_ascii_hexdigit()))
            })
            .collect();
        files.sort();
        files
    };
    let signals = kotel_config::Signal::ALL;
    for name in [
        "traces-proto",
        "metrics-proto",
        "logs-proto",
        "traces-gzip",
        "logs-deflate",
        "traces-json",
        "metrics-json-snake",
        "logs-json",
        "logs-json-gzip",
    ] {
        let data = std::fs::read(root.join("otlp_http").join(name)).expect("seed");
        let head = data[0];
        let encoding = ["", "gzip", "zstd", "deflate"][usize::from((head / 3) % 4)];
        let payload = kotelcol::receivers::otlp::http::decode_request(
            signals[usize::from(head % 3)],
            encoding,
            head >= 128,
            bytes::Bytes::copy_from_slice(&data[1..]),
            1 << 20,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(payload.item_count(), 1, "{name}");
    }
    for path in seeds("collector_config") {
        let text = std::fs::read_to_string(&path).expect("seed");
        let config = kotel_config::Config::from_yaml(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if path.ends_with("old-upstream") {
            assert!(
                config.deprecations().len() > 5,
                "{:?}",
                config.deprecations()
            );
        }
    }
}
