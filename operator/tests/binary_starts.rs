//! The operator binary this workspace builds starts, reaches for the API server over TLS and
//! fails with a connection error, never a panic. `cargo test --workspace` (`make test`) unifies
//! features with kotelcol as `make build` does, so this runs the binary users get: built that way
//! it once panicked because rustls had two crypto providers and none was chosen.

use std::process::Command;

#[test]
fn run_against_an_unreachable_tls_api_server_exits_with_an_error_not_a_panic() {
    // A TLS listener that accepts and hangs up, so the client builds its TLS config and dials.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n"
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kotel-operator"))
        .args(["run", "--leader-election=false", "--http-addr=127.0.0.1:0"])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("LOG_FORMAT", "text")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stderr.contains("panicked") && !stdout.contains("panicked"),
        "the operator panicked:\n{stderr}{stdout}"
    );
    assert!(!out.status.success(), "it cannot have connected");
    assert_eq!(
        out.status.code(),
        Some(1),
        "an error exit, not a signal:\n{stderr}"
    );
}
