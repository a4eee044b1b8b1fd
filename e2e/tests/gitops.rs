//! GitOps (issue 14) against a real API server: the Argo CD and Flux examples in
//! `manifests/examples/gitops` pass a server-side dry run against those tools' own CRDs, and a
//! collector's status reads the same through kstatus (`sigs.k8s.io/cli-utils`, what Flux and
//! `kubectl wait` use) and through the shipped Argo CD health check (`manifests/argocd/health.lua`
//! run by gopher-lua as Argo CD runs it) from creation to deletion.
//!
//! Both tools are `e2e/gitops-check`, and the CRDs come from the Argo CD and Flux Go modules;
//! `bash e2e/scripts/build-tools.sh gitops` makes both (seconds) and run-e2e.sh passes them as
//! `$E2E_GITOPS_CHECK` and `$E2E_GITOPS_CRDS`. Run alone:
//! `cargo test -p kotel-e2e --features e2e --test gitops -- --test-threads=1 --nocapture`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use kotel_e2e::kotel::{self, Operator, OperatorOptions, TestNs, apply, collector, otlp_config};
use kotel_e2e::{Timings, admin_client, kubectl, kubectl_raw, kubectl_stdin, repo_root};
use serde_json::{Value, json};

const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the operator may take to report a spec change it cannot roll out, or unmanaged.
const STATUS_TIMEOUT: Duration = Duration::from_secs(60);

/// `$E2E_GITOPS_CHECK`, else `gitops-check` on PATH.
fn gitops_check_bin() -> String {
    std::env::var("E2E_GITOPS_CHECK").unwrap_or_else(|_| "gitops-check".into())
}

/// `$E2E_GITOPS_CRDS`: the directory holding the Application, GitRepository and Kustomization
/// CRDs.
fn gitops_crds() -> Result<Vec<PathBuf>> {
    let dir = std::env::var_os("E2E_GITOPS_CRDS").map(PathBuf::from).context(
        "E2E_GITOPS_CRDS is not set: run `bash e2e/scripts/build-tools.sh gitops` and point it at \
         the gitops-crds-* directory it prints (run-e2e.sh does both)",
    )?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    ensure!(
        files.len() == 3,
        "{} should hold the three CRDs, has {files:?}",
        dir.display()
    );
    Ok(files)
}

/// What the two tools say about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Health {
    kstatus: String,
    kstatus_message: String,
    argo: String,
    argo_message: String,
}

impl Health {
    fn pair(&self) -> (&str, &str) {
        (&self.kstatus, &self.argo)
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "kstatus {} ({}) | argo {} ({})",
            self.kstatus, self.kstatus_message, self.argo, self.argo_message
        )
    }
}

/// Runs `gitops-check <args>` on the object's JSON; returns (status, message).
fn gitops_check(args: &[&str], obj: &str) -> Result<(String, String)> {
    let bin = gitops_check_bin();
    let out = kotel_e2e::run(Command::new(&bin).args(args), Some(obj)).with_context(|| {
        format!("running {bin} (build it: bash e2e/scripts/build-tools.sh gitops)")
    })?;
    ensure!(
        out.status.success(),
        "gitops-check {} failed ({}): {}",
        args.join(" "),
        out.status,
        out.stderr.trim()
    );
    let v: Value = serde_json::from_str(out.stdout.trim())
        .with_context(|| format!("gitops-check printed {:?}", out.stdout))?;
    Ok((
        v["status"].as_str().unwrap_or_default().to_owned(),
        v["message"].as_str().unwrap_or_default().to_owned(),
    ))
}

fn health_of(obj: &Value) -> Result<Health> {
    let text = serde_json::to_string(obj)?;
    let (kstatus, kstatus_message) = gitops_check(&["kstatus"], &text)?;
    let lua = repo_root().join("manifests/argocd/health.lua");
    let (argo, argo_message) =
        gitops_check(&["argo-health", lua.to_str().expect("utf-8 path")], &text)?;
    let h = Health {
        kstatus,
        kstatus_message,
        argo,
        argo_message,
    };
    agree(&h, obj)?;
    Ok(h)
}

/// The verdicts the two tools may give together. The one allowed difference: before the operator
/// has written any status, kstatus cannot tell the resource from a kind without a status contract
/// and calls it Current, while the health check waits for the operator.
fn agree(h: &Health, obj: &Value) -> Result<()> {
    let ok = match h.pair() {
        ("Current", "Healthy")
        | ("InProgress", "Progressing")
        | ("Failed", "Degraded")
        | ("Current", "Suspended")
        | ("Terminating", "Progressing") => true,
        ("Current", "Progressing") => obj["status"].is_null(),
        _ => false,
    };
    ensure!(
        ok,
        "kstatus and the Argo CD health check disagree: {h}\nstatus: {}",
        obj["status"]
    );
    Ok(())
}

/// The collector as JSON, or `None` once it is gone.
fn get(ns: &str, name: &str) -> Result<Option<Value>> {
    let out = kubectl_raw(&["-n", ns, "get", "otelcol", name, "-o", "json"], None)?;
    if !out.status.success() {
        if out.stderr.contains("NotFound") {
            return Ok(None);
        }
        bail!("kubectl get otelcol {ns}/{name}: {}", out.stderr.trim());
    }
    Ok(Some(serde_json::from_str(&out.stdout)?))
}

/// A merge patch of the collector; returns the object as the API server stored it, before the
/// operator has had a chance to act on it.
fn patch(ns: &str, name: &str, patch: Value) -> Result<Value> {
    let out = kubectl(&[
        "-n",
        ns,
        "patch",
        "otelcol",
        name,
        "--type=merge",
        "-p",
        &patch.to_string(),
        "-o",
        "json",
    ])?;
    Ok(serde_json::from_str(&out)?)
}

/// Polls the collector, printing each change of verdict, until both tools say `want`. A
/// disagreement between the tools fails at once.
async fn walk_until(
    step: &str,
    ns: &str,
    name: &str,
    want: (&str, &str),
    timeout: Duration,
) -> Result<(Health, Value)> {
    let start = Instant::now();
    let mut last: Option<Health> = None;
    loop {
        let obj = get(ns, name)?.with_context(|| format!("{step}: the collector is gone"))?;
        let h = health_of(&obj)
            .with_context(|| format!("{step}: generation {}", obj["metadata"]["generation"]))?;
        if last.as_ref() != Some(&h) {
            println!(
                "  {step} +{:.1}s gen {} observed {}: {h}",
                start.elapsed().as_secs_f64(),
                obj["metadata"]["generation"],
                obj["status"]["observedGeneration"]
            );
        }
        if h.pair() == want {
            return Ok((h, obj));
        }
        if start.elapsed() >= timeout {
            bail!(
                "{step}: after {timeout:?} still {h}, want kstatus {} and argo {}",
                want.0,
                want.1
            );
        }
        last = Some(h);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The finalizer the kstatus walk holds a deleted collector with.
const HOLD: &str = "e2e.kotel.dev/hold";

/// Adds or removes one finalizer, keeping the others (optimistic concurrency: the operator edits
/// the list too).
fn set_finalizer(ns: &str, name: &str, finalizer: &str, present: bool) -> Result<()> {
    for _ in 0..10 {
        let obj = get(ns, name)?.context("the collector is gone")?;
        let mut list: Vec<String> = obj["metadata"]["finalizers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        list.retain(|f| f != finalizer);
        if present {
            list.push(finalizer.to_owned());
        }
        let body = json!({"metadata": {
            "finalizers": list,
            "resourceVersion": obj["metadata"]["resourceVersion"],
        }});
        let out = kubectl_raw(
            &[
                "-n",
                ns,
                "patch",
                "otelcol",
                name,
                "--type=merge",
                "-p",
                &body.to_string(),
            ],
            None,
        )?;
        if out.status.success() {
            return Ok(());
        }
        ensure!(
            out.stderr.contains("Conflict") || out.stderr.contains("has been modified"),
            "setting the finalizer {finalizer}: {}",
            out.stderr.trim()
        );
    }
    bail!("setting the finalizer {finalizer}: 10 conflicts in a row")
}

/// Right after a spec change, before the operator acted: both tools must say "in progress".
fn assert_in_progress_after_change(step: &str, obj: &Value) -> Result<()> {
    let h = health_of(obj)?;
    println!("  {step} (as written): {h}");
    ensure!(
        h.pair() == ("InProgress", "Progressing"),
        "{step}: right after the change, want InProgress/Progressing, got {h}"
    );
    Ok(())
}

/// The kstatus walk: one collector through create, config change, bad config, unmanaged and
/// deletion, both tools read at every step.
#[tokio::test]
async fn kstatus_and_argo_health_follow_a_collector_through_its_life() -> Result<()> {
    let client = admin_client().await?;
    let install = kotel::install(&client).await?;
    let nodes = kotel::schedulable_nodes(&client).await?.len();
    ensure!(nodes > 0, "the cluster has no schedulable Ready node");
    let mut op = Operator::start(&install, OperatorOptions::default()).await?;
    let ns = TestNs::create(&client, "gitops").await?;
    let name = "walk";
    let mut timings = Timings::default();

    // 1. Create: eventually Current / Healthy (on kwok nodes the pods become ready).
    let start = Instant::now();
    apply(&collector(name, &ns.name, otlp_config("1s"), json!({})))?;
    let (h, obj) = walk_until(
        "create",
        &ns.name,
        name,
        ("Current", "Healthy"),
        READY_TIMEOUT,
    )
    .await?;
    timings.record("create -> Current/Healthy", start.elapsed());
    let want = format!("{nodes}/{nodes}");
    ensure!(
        obj["status"]["scale"]["statusReplicas"] == want.as_str(),
        "Healthy but status.scale is {} (want {want})",
        obj["status"]["scale"]
    );
    ensure!(
        h.argo_message.contains("rollout complete"),
        "Healthy with the message {:?}",
        h.argo_message
    );

    // 2. A config change: InProgress / Progressing, then Current / Healthy.
    let start = Instant::now();
    let written = patch(
        &ns.name,
        name,
        json!({"spec": {"config": {"processors": {"batch": {"timeout": "2s"}}}}}),
    )?;
    assert_in_progress_after_change("config change", &written)?;
    walk_until(
        "config change",
        &ns.name,
        name,
        ("Current", "Healthy"),
        READY_TIMEOUT,
    )
    .await?;
    timings.record("config change -> Current/Healthy", start.elapsed());

    // 3. A bad config (a pipeline naming an undefined receiver): Failed / Degraded, saying why.
    let start = Instant::now();
    let written = patch(
        &ns.name,
        name,
        json!({"spec": {"config": {"service": {"pipelines": {"traces": {"receivers": ["otlp", "nosuchreceiver"]}}}}}}),
    )?;
    assert_in_progress_after_change("bad config", &written)?;
    let (h, _) = walk_until(
        "bad config",
        &ns.name,
        name,
        ("Failed", "Degraded"),
        STATUS_TIMEOUT,
    )
    .await?;
    timings.record("bad config -> Failed/Degraded", start.elapsed());
    ensure!(
        h.argo_message.contains("nosuchreceiver") && h.kstatus_message.contains("nosuchreceiver"),
        "the messages should name the undefined receiver: {h}"
    );
    // Fixed again: back to Current / Healthy.
    let written = patch(
        &ns.name,
        name,
        json!({"spec": {"config": {"service": {"pipelines": {"traces": {"receivers": ["otlp"]}}}}}}),
    )?;
    assert_in_progress_after_change("config fixed", &written)?;
    walk_until(
        "config fixed",
        &ns.name,
        name,
        ("Current", "Healthy"),
        READY_TIMEOUT,
    )
    .await?;

    // 4. managementState: unmanaged: Current / Suspended (observedGeneration keeps up, so Flux
    // does not wait forever). Checked to the end either way, so deletion is still covered.
    let start = Instant::now();
    let written = patch(
        &ns.name,
        name,
        json!({"spec": {"managementState": "unmanaged"}}),
    )?;
    assert_in_progress_after_change("unmanaged", &written)?;
    let unmanaged = walk_until(
        "unmanaged",
        &ns.name,
        name,
        ("Current", "Suspended"),
        STATUS_TIMEOUT,
    )
    .await;
    if unmanaged.is_ok() {
        timings.record("unmanaged -> Current/Suspended", start.elapsed());
    }
    let written = patch(
        &ns.name,
        name,
        json!({"spec": {"managementState": "managed"}}),
    )?;
    assert_in_progress_after_change("managed again", &written)?;
    walk_until(
        "managed again",
        &ns.name,
        name,
        ("Current", "Healthy"),
        READY_TIMEOUT,
    )
    .await?;

    // 5. Deletion: Terminating / Progressing while a finalizer holds it, then gone. The
    // operator releases its own finalizer within milliseconds, so the test adds one of its own
    // to read the terminating object at leisure.
    set_finalizer(&ns.name, name, HOLD, true)?;
    let start = Instant::now();
    let held: Result<()> = async {
        kubectl(&["-n", &ns.name, "delete", "otelcol", name, "--wait=false"])?;
        let mut last = None;
        loop {
            let obj = get(&ns.name, name)?.context("gone despite the test's finalizer")?;
            let h = health_of(&obj)?;
            ensure!(
                h.pair() == ("Terminating", "Progressing"),
                "deleting: want Terminating/Progressing, got {h}"
            );
            if last.as_ref() != Some(&h) {
                println!("  deletion +{:.1}s: {h}", start.elapsed().as_secs_f64());
                last = Some(h);
            }
            // Wait for the operator's cleanup, so the terminating object is read as it leaves it.
            if obj["metadata"]["finalizers"] == json!([HOLD]) {
                break;
            }
            ensure!(
                start.elapsed() < STATUS_TIMEOUT,
                "the operator did not release its finalizer within {STATUS_TIMEOUT:?}: {}",
                obj["metadata"]["finalizers"]
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(())
    }
    .await;
    // Released whatever happened: a collector left with it would hold its namespace forever.
    let released = set_finalizer(&ns.name, name, HOLD, false);
    held?;
    released?;
    while get(&ns.name, name)?.is_some() {
        ensure!(
            start.elapsed() < STATUS_TIMEOUT,
            "the collector is still there {STATUS_TIMEOUT:?} after its deletion"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("  deletion +{:.1}s: gone", start.elapsed().as_secs_f64());

    op.check_running()?;
    ns.cleanup().await?;
    unmanaged.context("managementState: unmanaged")?;
    Ok(())
}

/// `*` in an Argo CD `directory.include` glob (one star is all the examples use).
fn glob_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        Some((pre, post)) => {
            name.len() >= pre.len() + post.len() && name.starts_with(pre) && name.ends_with(post)
        }
        None => pattern == name,
    }
}

/// Which files of a directory a GitOps tool deploys, by file name.
type FileFilter = Box<dyn Fn(&str) -> bool>;

/// The YAML files of `dir` (not recursive), sorted.
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// What a GitOps tool deploys from `path` of this repository: a kustomization rendered with
/// `kubectl kustomize`, or the YAML files `select` keeps.
fn render(path: &str, select: &dyn Fn(&str) -> bool) -> Result<(String, bool)> {
    let dir = repo_root().join(path.trim_start_matches("./"));
    ensure!(dir.is_dir(), "{path} is not a directory of this repository");
    if dir.join("kustomization.yaml").exists() {
        let out = kubectl(&["kustomize", dir.to_str().expect("utf-8 path")])
            .with_context(|| format!("kubectl kustomize {path}"))?;
        return Ok((out, true));
    }
    let mut out = String::new();
    for f in yaml_files(&dir)? {
        let file = f.file_name().unwrap_or_default().to_string_lossy();
        if select(&file) {
            out.push_str("---\n");
            out.push_str(&std::fs::read_to_string(&f)?);
        }
    }
    ensure!(!out.is_empty(), "{path}: nothing selected");
    Ok((out, false))
}

/// Server-side dry run of rendered objects; objects without a namespace go to `ns`.
fn dry_run(what: &str, yaml: &str, ns: Option<&str>) -> Result<String> {
    let mut args = vec![
        "apply",
        "--server-side",
        "--dry-run=server",
        "--force-conflicts",
        "--field-manager=kotel-e2e-dry-run",
    ];
    if let Some(ns) = ns {
        args.extend(["-n", ns]);
    }
    args.extend(["-f", "-"]);
    kubectl_stdin(&args, Some(yaml)).with_context(|| format!("{what}: server-side dry run"))
}

/// The examples in manifests/examples/gitops pass a server-side dry run against the Argo CD and
/// Flux CRDs, and what they point at renders and passes one too.
#[tokio::test]
async fn gitops_examples_pass_a_server_side_dry_run() -> Result<()> {
    let client = admin_client().await?;
    kotel::install(&client).await?;
    let start = Instant::now();
    for crd in gitops_crds()? {
        kubectl(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=kotel-e2e",
            "-f",
            crd.to_str().expect("utf-8 path"),
        ])?;
    }
    kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/applications.argoproj.io",
        "crd/gitrepositories.source.toolkit.fluxcd.io",
        "crd/kustomizations.kustomize.toolkit.fluxcd.io",
    ])?;
    // Discovery (kubectl's cache included) must know the new kinds before the dry run.
    for resource in [
        "applications.argoproj.io",
        "gitrepositories.source.toolkit.fluxcd.io",
        "kustomizations.kustomize.toolkit.fluxcd.io",
    ] {
        kotel_e2e::wait_for(
            &format!("{resource} in discovery"),
            Duration::from_secs(30),
            || async {
                Ok(kubectl_raw(&["get", resource, "-A"], None)?
                    .status
                    .success()
                    .then_some(()))
            },
        )
        .await?;
    }
    Timings::default().record("gitops CRDs applied and established", start.elapsed());

    let dir = repo_root().join("manifests/examples/gitops");
    let mut docs = Vec::new();
    for f in yaml_files(&dir)? {
        docs.extend(kotel::yaml_docs(&std::fs::read_to_string(&f)?)?);
    }
    // The namespaces the tools live in; made here (labelled, so a failed run's are cleaned up
    // by the next) unless the cluster has them.
    let mut made = Vec::new();
    for ns in ["argocd", "flux-system"] {
        if !kubectl_raw(&["get", "namespace", ns], None)?
            .status
            .success()
        {
            kubectl(&["create", "namespace", ns])?;
            kubectl(&["label", "namespace", ns, "kotel-e2e=true"])?;
            made.push(ns);
        }
    }
    let result = check_examples(&client, &dir, &docs).await;
    for ns in made {
        let _ = kubectl(&["delete", "namespace", ns, "--wait=true", "--timeout=60s"]);
    }
    result
}

async fn check_examples(client: &kube::Client, dir: &Path, docs: &[Value]) -> Result<()> {
    // 1. The examples themselves, as a user applies them.
    let out = kubectl(&[
        "apply",
        "--dry-run=server",
        "-f",
        dir.to_str().expect("utf-8 path"),
    ])
    .context("kubectl apply --dry-run=server -f manifests/examples/gitops/")?;
    println!("{out}");
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for kind in ["Application", "GitRepository", "Kustomization"] {
        ensure!(
            kinds.contains(&kind),
            "manifests/examples/gitops has no {kind}: {kinds:?}"
        );
    }
    ensure!(
        out.lines()
            .filter(|l| l.contains("(server dry run)"))
            .count()
            == docs.len(),
        "want one dry-run line per document ({}), got:\n{out}",
        docs.len()
    );

    // 2. What they point at. Flux keeps from the Git repository only what the GitRepository's
    // `ignore` lets through; the examples use its negated file patterns (`!/path/file.yaml`).
    let flux_keeps: Vec<String> = docs
        .iter()
        .filter(|d| d["kind"] == "GitRepository")
        .filter_map(|d| d["spec"]["ignore"].as_str())
        .flat_map(|ignore| {
            ignore
                .lines()
                .map(str::trim)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter_map(|l| l.strip_prefix("!/").map(str::to_owned))
        .filter(|l| !l.ends_with('/'))
        .collect();
    let ns = TestNs::create(client, "gitops-dry").await?;
    let result: Result<()> = async {
        for d in docs {
            let name = d["metadata"]["name"].as_str().unwrap_or_default();
            let (path, select): (&str, FileFilter) = match d["kind"].as_str() {
                Some("Application") => {
                    let include = d["spec"]["source"]["directory"]["include"]
                        .as_str()
                        .unwrap_or("*")
                        .to_owned();
                    (
                        d["spec"]["source"]["path"].as_str().unwrap_or_default(),
                        Box::new(move |f: &str| glob_match(&include, f)),
                    )
                }
                Some("Kustomization")
                    if d["apiVersion"]
                        .as_str()
                        .is_some_and(|a| a.starts_with("kustomize.toolkit.fluxcd.io/")) =>
                {
                    let path = d["spec"]["path"].as_str().unwrap_or_default();
                    let prefix =
                        format!("{}/", path.trim_start_matches("./").trim_end_matches('/'));
                    let keeps = flux_keeps.clone();
                    (
                        path,
                        Box::new(move |f: &str| keeps.iter().any(|k| *k == format!("{prefix}{f}"))),
                    )
                }
                _ => continue,
            };
            let (rendered, kustomized) =
                render(path, &*select).with_context(|| format!("{} {name}", d["kind"]))?;
            let objects = kotel::yaml_docs(&rendered)?;
            let summary: Vec<String> = objects
                .iter()
                .map(|o| {
                    format!(
                        "{}/{}",
                        o["kind"].as_str().unwrap_or("?"),
                        o["metadata"]["name"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            println!(
                "{} {name}: {path} ({}) -> {summary:?}",
                d["kind"],
                if kustomized {
                    "kubectl kustomize"
                } else {
                    "files"
                }
            );
            ensure!(
                !objects.is_empty(),
                "{} {name}: {path} renders nothing",
                d["kind"]
            );
            // A kustomization names its namespaces; the bare examples land in the test namespace
            // standing in for the destination (which a dry run cannot create first).
            dry_run(
                &format!("{} {name} ({path})", d["kind"]),
                &rendered,
                (!kustomized).then_some(ns.name.as_str()),
            )?;
        }
        Ok(())
    }
    .await;
    ns.cleanup().await?;
    result
}
