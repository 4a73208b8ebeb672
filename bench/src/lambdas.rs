//! Lambda binaries: the zipped size of each `make build` artefact
//! (target/lambda/<fn>/bootstrap.zip, arm64), and a local cold start and
//! peak RSS of the same function built for the host with the same release
//! profile, under cargo-lambda's Lambda runtime API emulator.
//!
//! Cold start = from spawning the function's process to the full answer of
//! its first invocation (posted to the emulator right after the spawn; the
//! emulator holds it until the process asks for work), so it covers exec +
//! init + the first handler run, including its DynamoDB/SQS requests against
//! the private stack. A second invocation doing the same work is timed as
//! "warm"; peak RSS is the process's VmHWM after it. Each sample starts a
//! fresh emulator and a fresh process, and gets fresh pending runs, so
//! create/worker/dlq/cancel do the same work in every sample.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::{json, Value};

use crate::api::{run_body, truncate};
use crate::procs::Guard;
use crate::stats::{median, round2};
use crate::suite::Ctx;

pub const FUNCTIONS: &[&str] = &[
    "health",
    "catalog",
    "credits",
    "leads",
    "lists",
    "create",
    "status",
    "items",
    "cancel",
    "mcp",
    "webhook-api",
    "worker",
    "dlq",
    "webhooks",
    "events",
    "reaper",
];

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaRow {
    pub function: String,
    /// target/lambda/<fn>/bootstrap.zip (arm64, `make build`), if present.
    pub zip_bytes: Option<u64>,
    /// The host (x86_64) release binary that was measured.
    pub host_binary_bytes: Option<u64>,
    /// That binary deflated at zip's default level: what its Lambda zip
    /// would hold (less ~100 bytes of zip headers). The size to hold against
    /// the 2.5 MB target where no arm64 zip can be built.
    pub host_zip_bytes: Option<u64>,
    pub cold_start_ms: Option<ColdStart>,
    /// Median `init_ms` the function logged: from `main` to ready for its
    /// first event (SDK clients built, logging set up).
    pub init_ms: Option<f64>,
    /// Median of the second invocation (same work, warm process): cold − warm
    /// is roughly what starting the process and initialising costs.
    pub warm_invoke_ms: Option<f64>,
    /// Highest VmHWM over the samples, read after the second invocation.
    pub peak_rss_kib: Option<u64>,
    /// What the first invocation answered (statusCode, or the SQS batch response).
    pub response: Option<String>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColdStart {
    pub samples: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

pub struct LambdaOpts {
    pub zip_dir: PathBuf,
    pub bin_dir: PathBuf,
    pub cargo_lambda: PathBuf,
    pub root: PathBuf,
    pub sink_queue: String,
    pub samples: usize,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_port(port: u16, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// The shipped events name the local event fixtures
/// (puffle_app::fixtures); the bench's private stack has its own ids.
fn substitute(text: &str, vars: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (k, v) in vars {
        out = out.replace(k, v);
    }
    out
}

/// `init_ms` of the function's "initialised" log line (main → ready for the
/// first event), from its log file.
fn init_ms(log: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "initialised")
        .and_then(|v| v["init_ms"].as_f64())
}

struct Sample {
    cold_ms: f64,
    init_ms: Option<f64>,
    warm_ms: f64,
    rss_kib: Option<u64>,
    response: String,
}

/// One invocation through the emulator: elapsed time to the full answer.
async fn invoke(http: &reqwest::Client, url: &str, body: String) -> anyhow::Result<(f64, String)> {
    let t = Instant::now();
    let resp = http.post(url).header("content-type", "application/json").body(body).send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    if !status.is_success() {
        bail!("emulator answered {status}: {}", truncate(&text, 300));
    }
    Ok((ms, text))
}

/// A pending run nobody plans (created through the sink server).
async fn pending_run(ctx: &Ctx) -> anyhow::Result<String> {
    ctx.sink
        .create_run(&run_body("email_domain", json!({"type": "explicit_leads", "leadIds": [ctx.lead_id]}), json!({})))
        .await
}

async fn one_sample(
    ctx: &Ctx,
    opts: &LambdaOpts,
    function: &str,
    binary: &Path,
    event: &str,
    log_dir: &Path,
) -> anyhow::Result<Sample> {
    // Two fresh runs: the cold and the warm invocation do the same work.
    let mut bodies = vec![];
    for _ in 0..2 {
        let run_id = pending_run(ctx).await?;
        use puffle_app::fixtures as f;
        bodies.push(substitute(
            event,
            &[(f::TOKEN, &ctx.token), (f::WORKSPACE_ID, &ctx.ws), (f::LEAD_ID, &ctx.lead_id), (f::RUN_ID, &run_id)],
        ));
    }

    let port = free_port()?;
    let watch_log = std::fs::File::create(log_dir.join(format!("{function}-watch.log")))?;
    let mut watch = Command::new(&opts.cargo_lambda);
    watch
        .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", &port.to_string()])
        .current_dir(&opts.root)
        .stdin(Stdio::null())
        .stdout(Stdio::from(watch_log.try_clone()?))
        .stderr(Stdio::from(watch_log));
    let mut watch = Guard::spawn(watch).context("start cargo lambda watch")?;
    if !wait_port(port, Duration::from_secs(30)).await {
        bail!("cargo lambda watch did not open port {port} (log in {})", log_dir.display());
    }

    let fn_log_path = log_dir.join(format!("{function}.log"));
    let fn_log = std::fs::File::create(&fn_log_path)?;
    let mut cmd = Command::new(binary);
    cmd.env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("PUFFLE_QUEUE_NAME", &opts.sink_queue)
        .stdin(Stdio::null())
        .stdout(Stdio::from(fn_log.try_clone()?))
        .stderr(Stdio::from(fn_log));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let url = format!("http://127.0.0.1:{port}/2015-03-31/functions/_/invocations");

    // The invocation waits in the emulator until the new process asks for it.
    let t = Instant::now();
    let mut f = Guard::spawn(cmd).with_context(|| format!("start {}", binary.display()))?;
    let first = invoke(&http, &url, bodies.remove(0)).await;
    let cold_ms = t.elapsed().as_secs_f64() * 1000.0;
    let second = match first {
        Ok(_) => Some(invoke(&http, &url, bodies.remove(0)).await),
        Err(_) => None,
    };
    let rss_kib = vm_hwm_kib(f.pid());
    let alive = f.alive();
    f.stop();
    watch.stop();

    let (_, text) = first.with_context(|| format!("first invocation of {function}"))?;
    let (warm_ms, _) =
        second.expect("second invocation ran").with_context(|| format!("second invocation of {function}"))?;
    if !alive {
        bail!("{function} exited during the sample (log in {})", log_dir.display());
    }
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let response = match v.get("statusCode") {
        Some(c) => format!("HTTP {c}"),
        None => truncate(&text, 80),
    };
    Ok(Sample { cold_ms, init_ms: init_ms(&fn_log_path), warm_ms, rss_kib, response })
}

/// Bytes of `path` deflated at level 6 (zip's default), or None when unreadable.
pub fn deflated_size(path: &std::path::Path) -> Option<u64> {
    use std::io::Write;
    let data = std::fs::read(path).ok()?;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
    enc.write_all(&data).ok()?;
    enc.finish().ok().map(|v| v.len() as u64)
}

pub async fn run(ctx: &Ctx, opts: &LambdaOpts) -> anyhow::Result<Vec<LambdaRow>> {
    let log_dir = std::env::temp_dir().join(format!("puffle-bench-lambda-{}", crate::api::tag()));
    std::fs::create_dir_all(&log_dir)?;
    let can_run = opts.cargo_lambda.is_file();
    // The logs matter only when a sample failed: a missing arm64 zip (every
    // row here, where none can be built) is a note, not a reason to keep them.
    let mut sample_failed = false;
    let mut rows = vec![];
    for &function in FUNCTIONS {
        let zip = opts.zip_dir.join(function).join("bootstrap.zip");
        let binary = opts.bin_dir.join(function);
        let mut row = LambdaRow {
            function: function.to_string(),
            zip_bytes: std::fs::metadata(&zip).ok().map(|m| m.len()),
            host_binary_bytes: std::fs::metadata(&binary).ok().map(|m| m.len()),
            host_zip_bytes: deflated_size(&binary),
            cold_start_ms: None,
            init_ms: None,
            warm_invoke_ms: None,
            peak_rss_kib: None,
            response: None,
            note: None,
        };
        let mut notes = vec![];
        if row.zip_bytes.is_none() {
            notes.push(format!("no {} (make build)", zip.display()));
        }
        let event = std::fs::read_to_string(opts.root.join("events").join(format!("{function}.json")));
        match (&event, row.host_binary_bytes.is_some(), can_run) {
            (Err(_), _, _) => notes.push(format!("no events/{function}.json")),
            (_, false, _) => notes.push(format!("no host release binary {}", binary.display())),
            (_, _, false) => notes.push(format!("no {} (make venv)", opts.cargo_lambda.display())),
            (Ok(event), true, true) => {
                eprintln!("bench: lambda {function} — {} cold start(s)", opts.samples);
                let mut ms = vec![];
                let mut inits = vec![];
                let mut warm = vec![];
                let mut rss = vec![];
                for _ in 0..opts.samples.max(1) {
                    match one_sample(ctx, opts, function, &binary, event, &log_dir).await {
                        Ok(s) => {
                            ms.push(s.cold_ms);
                            inits.extend(s.init_ms);
                            warm.push(s.warm_ms);
                            rss.extend(s.rss_kib);
                            row.response.get_or_insert(s.response);
                        }
                        Err(e) => {
                            sample_failed = true;
                            notes.push(format!("sample failed: {e:#}"));
                            break;
                        }
                    }
                }
                if !ms.is_empty() {
                    row.cold_start_ms = Some(ColdStart {
                        samples: ms.len(),
                        median: round2(median(ms.clone())),
                        min: round2(ms.iter().copied().fold(f64::INFINITY, f64::min)),
                        max: round2(ms.iter().copied().fold(0.0, f64::max)),
                    });
                    row.warm_invoke_ms = Some(round2(median(warm)));
                    row.init_ms = (!inits.is_empty()).then(|| round2(median(inits)));
                    row.peak_rss_kib = rss.into_iter().max();
                }
            }
        }
        if !notes.is_empty() {
            row.note = Some(notes.join("; "));
        }
        rows.push(row);
    }
    if sample_failed {
        eprintln!("bench: lambda logs kept in {}", log_dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&log_dir);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    /// Deflated sizes are real: a compressible file shrinks, an incompressible
    /// one does not, a missing one has none.
    #[test]
    fn deflated_size_measures_what_a_zip_would_hold() {
        let dir = tempfile::tempdir().unwrap();
        let zeros = dir.path().join("zeros");
        std::fs::write(&zeros, vec![0u8; 1 << 20]).unwrap();
        let z = super::deflated_size(&zeros).unwrap();
        assert!(z < 20_000, "1 MiB of zeros deflated to {z} bytes");
        let noise = dir.path().join("noise");
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let bytes: Vec<u8> = (0..1 << 16)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(&noise, &bytes).unwrap();
        assert!(super::deflated_size(&noise).unwrap() >= (1 << 16) - 64);
        assert_eq!(super::deflated_size(&dir.path().join("missing")), None);
    }

    /// Every function binary is benchmarked: the list follows functions/src/bin.
    #[test]
    fn every_function_binary_is_listed() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions/src/bin");
        let mut bins: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        bins.sort();
        let mut listed: Vec<String> = super::FUNCTIONS.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(listed, bins);
    }
}
