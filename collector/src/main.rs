//! kotelcol: parse flags, init logs, build the service, run until SIGTERM/SIGINT.

use anyhow::Context;
use clap::Parser;
use kotelcol::cli::{self, Cli, Command, LoadError};
use kotelcol::service::{DEFAULT_SHUTDOWN_DEADLINE, Service};

// Telemetry is many short-lived allocations across threads: mimalloc spends far less CPU on them
// than glibc's malloc (which took ~22% of the OTLP pass-through's CPU in a profile).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The memory limiter's pressure hook (see `kotelcol::memory_pressure`), called at each reading
/// of resident memory past the soft limit (at most every 25 ms) and once when it is back under.
/// Under pressure mimalloc returns freed pages after 10 ms instead of its usual delay (1 s, or
/// `MIMALLOC_PURGE_DELAY`) and collects what it keeps now; afterwards the usual delay returns,
/// which the OTLP pass-through needs (purging at once cost it ~40% of its spans per CPU-second).
/// Measured in BENCHMARKS.md.
#[allow(unsafe_code)]
#[allow(clippy::useless_conversion)] // c_long is i64 here, i32 on other targets
fn allocator_pressure(short: bool) {
    use std::sync::atomic::{AtomicI64, Ordering};
    // mimalloc's `mi_option_purge_delay` (v3's option enum; the -sys crate has no constant).
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    const UNDER_PRESSURE_MS: std::ffi::c_long = 10;
    static USUAL: AtomicI64 = AtomicI64::new(i64::MIN);
    // SAFETY: mi_option_get/mi_option_set read and store one option value, and mi_collect
    // walks mimalloc's own structures; none of them touches memory the program owns.
    unsafe {
        if short {
            let usual = libmimalloc_sys::mi_option_get(PURGE_DELAY);
            if usual != UNDER_PRESSURE_MS {
                USUAL.store(i64::from(usual), Ordering::Relaxed);
                libmimalloc_sys::mi_option_set(PURGE_DELAY, UNDER_PRESSURE_MS);
            }
            libmimalloc_sys::mi_collect(true);
        } else {
            let usual = USUAL.load(Ordering::Relaxed);
            if usual != i64::MIN {
                libmimalloc_sys::mi_option_set(PURGE_DELAY, usual as std::ffi::c_long);
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    kotelcol::memory_pressure::set_hook(allocator_pressure);
    let cli = Cli::parse();
    let uris = match cli.config_uris() {
        Ok(u) => u,
        Err(e) => {
            eprintln!("kotelcol: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let gates = cli.ignored_feature_gates();
    if !gates.is_empty() {
        // Before logging is set up (it comes from the config): straight to stderr.
        eprintln!(
            "kotelcol: ignoring feature gates {gates:?}: they are the upstream collector's; kotel has none"
        );
    }
    match cli.command {
        Some(Command::Components) => {
            print!("{}", cli::components());
            std::process::ExitCode::SUCCESS
        }
        Some(Command::PrintConfig { mode, format }) => {
            match cli::print_config(&uris, mode == "redacted", format == "json") {
                Ok(text) => {
                    print!("{text}");
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Some(Command::Validate) => match cli::load(&uris) {
            Ok(config) => {
                for note in config.deprecations() {
                    eprintln!("deprecated: {note}");
                }
                println!("config is valid");
                std::process::ExitCode::SUCCESS
            }
            Err(LoadError::Invalid(errors)) => {
                for e in &errors.0 {
                    eprintln!("{e}");
                }
                eprintln!("{} problem(s) found", errors.0.len());
                std::process::ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::ExitCode::FAILURE
            }
        },
        None => match run(&uris) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                // Each cause once: most of ours name their cause in their own message.
                eprintln!("kotelcol: {}", kotel_pipeline::error_chain(e.as_ref()));
                std::process::ExitCode::FAILURE
            }
        },
    }
}

fn run(uris: &[String]) -> anyhow::Result<()> {
    let config = cli::load(uris)?;
    kotelcol::logging::init(&config.service.telemetry.logs);
    for note in config.deprecations() {
        tracing::warn!(deprecated = %note, "the config uses a deprecated name, read as its replacement");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let service = Service::build(&config).await?;
        for ((receiver, protocol), addr) in service.addresses() {
            tracing::info!(%receiver, %protocol, %addr, "listening");
        }
        service
            .run(shutdown_signal(), DEFAULT_SHUTDOWN_DEADLINE)
            .await?;
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
