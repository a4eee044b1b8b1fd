//! The collector's own logs: `service.telemetry.logs.level` and `.encoding` (console or json),
//! on stderr. `RUST_LOG`, when set, overrides the level.

use kotel_config::service::TelemetryLogs;
use tracing_subscriber::EnvFilter;

pub fn init(cfg: &TelemetryLogs) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let level = match cfg.level.to_ascii_lowercase().as_str() {
            "debug" => "debug",
            "warn" => "warn",
            "error" | "dpanic" | "panic" | "fatal" => "error",
            _ => "info",
        };
        // Dependencies speak at warn: their info lines are about connections, not telemetry.
        EnvFilter::new(format!("warn,kotelcol={level},kotel={level}"))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if cfg.encoding == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
