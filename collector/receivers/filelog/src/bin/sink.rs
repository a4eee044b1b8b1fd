//! Test and bench helper: runs one filelog receiver into a file sink (one record body per line,
//! written before the batch is acknowledged), so tests can SIGKILL a real process mid-stream.
//!
//! Usage: kotel-filelog-sink <config.yaml> <out-file> [storage-dir]

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Mutex;

use anyhow::Context;
use kotel_config::receivers::filelog::FilelogConfig;
use kotel_filelog::FilelogReceiver;
use kotel_pipeline::proto::common::v1::any_value::Value;
use kotel_pipeline::{ConsumeError, Consumer, Envelope, Payload, Refusal, Shutdown};

struct FileSink(Mutex<std::fs::File>);

#[async_trait::async_trait]
impl Consumer for FileSink {
    async fn offer(&self, data: Envelope) -> Result<(), Refusal> {
        let Payload::Logs(req) = &data.payload else {
            return Err(Refusal::new(
                ConsumeError::Permanent("not logs".into()),
                data,
            ));
        };
        let mut out = Vec::new();
        for r in req
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .flat_map(|sl| &sl.log_records)
        {
            if let Some(Value::StringValue(s)) = r.body.as_ref().and_then(|b| b.value.as_ref()) {
                out.extend_from_slice(s.as_bytes());
            }
            out.push(b'\n');
        }
        let written = self.0.lock().expect("sink lock").write_all(&out);
        written.map_err(|e| Refusal::new(ConsumeError::refused(e.to_string()), data))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, config, out, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: kotel-filelog-sink <config.yaml> <out-file> [storage-dir]");
    };
    let yaml = std::fs::read_to_string(config).with_context(|| format!("reading {config}"))?;
    let cfg: FilelogConfig = serde_yaml_ng::from_str(&yaml).context("parsing the config")?;
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .with_context(|| format!("opening {out}"))?;
    let mut registry = prometheus_client::registry::Registry::default();
    let id = "filelog".parse().expect("valid id");
    let receiver = FilelogReceiver::build(
        &id,
        &cfg,
        rest.first().map(Into::into),
        std::sync::Arc::new(FileSink(Mutex::new(out))),
        &mut registry,
    )?;
    let shutdown = Shutdown::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    receiver.run(shutdown).await?;
    Ok(())
}
