//! `puffle-bench suite`: every figure of `make bench`, in one process, against
//! a stack scripts/bench.sh started on free ports:
//!
//! - `--api`: `puffle-local` serving the API *and* running the worker (one
//!   process, so its /_local/metrics counts the create and the worker);
//! - `--sink`: `puffle-local --no-worker` whose work queue (`--sink-queue`)
//!   nobody consumes: creates timed there never start worker load, and bulk
//!   imports go there too.
//!
//! Order: explicit-scope creates, the worker run (+ ceiling and request
//! counts), the reads at 10,000 items, the Lambda cold starts, then the List
//! creates (their 100,000-Lead List is built last so the earlier phases run on
//! a smaller table). Prints one table and writes the JSON report.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use serde_json::{json, Value};

use crate::api::{person, tag, Api};
use crate::create_latency::{self, CreateRow};
use crate::lambdas::{self, LambdaOpts, LambdaRow};
use crate::reads::{self, Reads};
use crate::report;
use crate::throughput::{self, Throughput};

#[derive(Args, Debug, Clone)]
pub struct SuiteArgs {
    /// API + worker server (one puffle-local process).
    #[arg(long, env = "BENCH_API_URL")]
    pub api: String,
    /// API-only server whose work queue nobody consumes.
    #[arg(long, env = "BENCH_SINK_URL")]
    pub sink: String,
    /// The sink server's queue name (the Lambda cold starts dispatch there too).
    #[arg(long, env = "BENCH_SINK_QUEUE", default_value = "puffle-bench-sink")]
    pub sink_queue: String,
    /// Smaller sizes for a quick check (defaults are the full sizes).
    #[arg(long, env = "BENCH_QUICK", value_parser = clap::builder::BoolishValueParser::new(), default_value = "false")]
    pub quick: bool,
    /// Phases to skip, comma-separated: create,lists,worker,provider,reads,lambda.
    #[arg(long, env = "BENCH_SKIP", default_value = "")]
    pub skip: String,
    #[arg(long, env = "BENCH_EXPLICIT_SIZES", value_delimiter = ',')]
    pub explicit_sizes: Option<Vec<u64>>,
    #[arg(long, env = "BENCH_LIST_SIZES", value_delimiter = ',')]
    pub list_sizes: Option<Vec<u64>>,
    /// Timed creates per explicit-scope row (after warm-up).
    #[arg(long, env = "BENCH_EXPLICIT_SAMPLES")]
    pub explicit_samples: Option<usize>,
    /// Timed creates per List-scope row (after warm-up).
    #[arg(long, env = "BENCH_LIST_SAMPLES")]
    pub list_samples: Option<usize>,
    #[arg(long, env = "BENCH_WARMUP", default_value_t = 3)]
    pub warmup: usize,
    /// The provider stub's port (scripts/bench.sh lets the worker reach it).
    #[arg(long, env = "BENCH_PROVIDER_STUB_PORT")]
    pub provider_stub_port: Option<u16>,
    #[arg(long, env = "BENCH_PROVIDER_LEADS")]
    pub provider_leads: Option<usize>,
    #[arg(long, env = "BENCH_PROVIDER_RATE", default_value_t = 500)]
    pub provider_rate: u32,
    #[arg(long, env = "BENCH_PROVIDER_CONCURRENCY", default_value_t = 16)]
    pub provider_concurrency: u32,
    /// `ratePerSecond` of the second HTTP run, below the worker's pace so the
    /// limiter binds (that run has 20 s of calls at this rate; 5 s quick).
    #[arg(long, env = "BENCH_PROVIDER_LIMITED_RATE", default_value_t = 100)]
    pub provider_limited_rate: u32,
    #[arg(long, env = "BENCH_WORKER_LEADS")]
    pub worker_leads: Option<usize>,
    /// Chunks in flight for the BatchWriteItem ceiling: 20 = the local
    /// worker's 4 pollers × batches of 5 messages.
    #[arg(long, env = "BENCH_CEILING_CONCURRENCY", default_value_t = 20)]
    pub ceiling_concurrency: usize,
    #[arg(long, env = "BENCH_READ_ITEMS")]
    pub read_items: Option<usize>,
    #[arg(long, env = "BENCH_READ_SAMPLES")]
    pub read_samples: Option<usize>,
    #[arg(long, env = "BENCH_DEEP_PAGE")]
    pub deep_page: Option<usize>,
    #[arg(long, env = "BENCH_COLD_SAMPLES")]
    pub cold_samples: Option<usize>,
    /// Import / list-add requests in flight.
    #[arg(long, env = "BENCH_IMPORT_CONCURRENCY", default_value_t = 4)]
    pub import_concurrency: usize,
    /// The project root (events/, target/lambda/, cargo-lambda's workspace).
    #[arg(long, env = "PUFFLE_ROOT", default_value = ".")]
    pub root: PathBuf,
    /// Host release binaries of the functions.
    #[arg(long, env = "BENCH_LAMBDA_BIN_DIR")]
    pub lambda_bin_dir: Option<PathBuf>,
    #[arg(long, env = "BENCH_CARGO_LAMBDA")]
    pub cargo_lambda: Option<PathBuf>,
    #[arg(long, env = "BENCH_OUT", default_value = "bench/results.json")]
    pub out: PathBuf,
    /// Free text describing how the stack was run (written to the report).
    #[arg(long, env = "BENCH_STACK_NOTE", default_value = "")]
    pub stack_note: String,
}

/// What every phase needs.
pub struct Ctx {
    /// The bench's own app on the private stack (setup, direct reads, bare writes).
    pub app: puffle_app::App,
    pub ws: String,
    pub token: String,
    pub api: Api,
    pub sink: Api,
    pub concurrency: usize,
    /// A person Lead for the Lambda events.
    pub lead_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub generated_at: String,
    pub duration_seconds: f64,
    pub quick: bool,
    pub machine: Value,
    pub stack: String,
    pub create_latency: Vec<CreateRow>,
    pub worker: Option<Throughput>,
    pub provider: Option<crate::provider::ProviderRun>,
    /// The same, with `ratePerSecond` below the worker's pace: the limit binds.
    pub provider_limited: Option<crate::provider::ProviderRun>,
    pub reads: Option<Reads>,
    pub lambdas: Vec<LambdaRow>,
    pub lambda_note: String,
    pub setup_seconds: Value,
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpuModel": model,
        "memoryGiB": crate::stats::round2(mem_kib as f64 / 1024.0 / 1024.0),
        "arch": std::env::consts::ARCH,
        "loadAverageAtStart": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    })
}

pub async fn run(args: SuiteArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let q = args.quick;
    let pick = |v: Option<usize>, full: usize, quick: usize| v.unwrap_or(if q { quick } else { full });
    let explicit_sizes = args.explicit_sizes.clone().unwrap_or_else(|| vec![1, 100, 1000]);
    let list_sizes =
        args.list_sizes.clone().unwrap_or_else(|| if q { vec![1000, 2000, 5000] } else { vec![1000, 10_000, 100_000] });
    let explicit_samples = pick(args.explicit_samples, 100, 20);
    let list_samples = pick(args.list_samples, 100, 20);
    let worker_leads = pick(args.worker_leads, 10_000, 2_000);
    let read_items = pick(args.read_items, 10_000, 2_000);
    let read_samples = pick(args.read_samples, 100, 20);
    let deep_page = pick(args.deep_page, 50, 10);
    let cold_samples = pick(args.cold_samples, 5, 1);
    let skip: Vec<String> = args.skip.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    let skipped = |p: &str| skip.iter().any(|s| s == p);
    let machine = machine();

    let app = puffle_app::App::from_env().await;
    app.health().await.context("the bench stack does not answer (AWS_ENDPOINT_URL_DYNAMODB / _SQS)")?;
    // Enough credits for every create of the suite (each charges its Lead count).
    let ws =
        app.create_workspace("bench", 1_000_000_000_000).await.map_err(|e| anyhow::anyhow!("create workspace: {e}"))?;
    let api = Api::new(&args.api, &ws.token);
    let sink = api.with_base(&args.sink);
    let mut setup = serde_json::Map::new();

    let t = Instant::now();
    let max_explicit = explicit_sizes.iter().copied().max().unwrap_or(1) as usize;
    let tg = tag();
    let explicit_ids =
        sink.import((0..max_explicit).map(|i| person(&tg, i, None)).collect(), args.import_concurrency).await?;
    setup.insert("explicitLeadsImportSeconds".into(), json!(crate::stats::round2(t.elapsed().as_secs_f64())));
    let ctx = Ctx {
        app,
        ws: ws.workspace_id.clone(),
        token: ws.token.clone(),
        api,
        sink,
        concurrency: args.import_concurrency,
        lead_id: explicit_ids[0].clone(),
    };

    let mut create_rows = vec![];
    if !skipped("create") {
        for &n in &explicit_sizes {
            eprintln!("bench: create latency — explicit_leads × {n}");
            let scope = json!({"type": "explicit_leads", "leadIds": explicit_ids[..n as usize]});
            create_rows
                .push(create_latency::measure(&ctx, "explicit_leads", n, scope, explicit_samples, args.warmup).await?);
        }
    }

    let worker = if skipped("worker") {
        None
    } else {
        Some(throughput::run(&ctx, worker_leads, args.ceiling_concurrency).await?)
    };
    let (provider, provider_limited) = match (skipped("provider"), args.provider_stub_port) {
        (false, Some(port)) => {
            let stub = crate::provider::Stub::start(port).await?;
            let leads = pick(args.provider_leads, 10_000, 2_000);
            let free = crate::provider::run(&ctx, &stub, leads, args.provider_rate, args.provider_concurrency).await?;
            // The same enrichment held to a rate the worker would exceed: the limiter binds.
            let rate = args.provider_limited_rate;
            let limited_leads = pick(None, (rate as usize) * 20, (rate as usize) * 5);
            let limited = crate::provider::run(&ctx, &stub, limited_leads, rate, args.provider_concurrency).await?;
            (Some(free), Some(limited))
        }
        _ => (None, None),
    };
    let reads =
        if skipped("reads") { None } else { Some(reads::run(&ctx, read_items, read_samples, deep_page).await?) };

    let bin_dir = args.lambda_bin_dir.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/puffle-target-hostrel/release")
    });
    let lambdas = if skipped("lambda") {
        vec![]
    } else {
        let opts = LambdaOpts {
            zip_dir: args.root.join("target/lambda"),
            bin_dir: bin_dir.clone(),
            cargo_lambda: args.cargo_lambda.clone().unwrap_or_else(|| args.root.join(".venv/bin/cargo-lambda")),
            root: args.root.clone(),
            sink_queue: args.sink_queue.clone(),
            samples: cold_samples,
        };
        lambdas::run(&ctx, &opts).await?
    };

    if !skipped("lists") && !list_sizes.is_empty() {
        // One pool of Leads; the Lists are nested prefixes of it.
        let max = list_sizes.iter().copied().max().unwrap_or(0) as usize;
        eprintln!("bench: create latency — importing {max} leads for the List scopes");
        let t = Instant::now();
        let tg = tag();
        let pool = ctx.sink.import((0..max).map(|i| person(&tg, i, None)).collect(), args.import_concurrency).await?;
        setup.insert("listPoolImportSeconds".into(), json!(crate::stats::round2(t.elapsed().as_secs_f64())));
        for &n in &list_sizes {
            eprintln!("bench: create latency — building a List of {n}");
            let t = Instant::now();
            let list = ctx.sink.new_list(&format!("bench {n}")).await?;
            let count = ctx.sink.add_to_list(&list, &pool[..n as usize], args.import_concurrency).await?;
            anyhow::ensure!(count == n, "list of {n} holds {count}");
            setup.insert(format!("list{n}BuildSeconds"), json!(crate::stats::round2(t.elapsed().as_secs_f64())));
            eprintln!("bench: create latency — list × {n}");
            create_rows.push(
                create_latency::measure(
                    &ctx,
                    "list",
                    n,
                    json!({"type": "list", "listId": list}),
                    list_samples,
                    args.warmup,
                )
                .await?,
            );
        }
    }

    let report = Report {
        generated_at: puffle_domain::time::now(),
        duration_seconds: crate::stats::round2(started.elapsed().as_secs_f64()),
        quick: q,
        machine,
        stack: args.stack_note.clone(),
        create_latency: create_rows,
        worker,
        provider,
        provider_limited,
        reads,
        lambdas,
        lambda_note: format!(
            "zip = target/lambda/<fn>/bootstrap.zip (arm64, make build); cold start and peak RSS measured on host ({}) release-profile binaries in {}, under cargo lambda watch --only-lambda-apis",
            std::env::consts::ARCH,
            bin_dir.display()
        ),
        setup_seconds: Value::Object(setup),
    };
    print!("{}", report::table(&report));
    if let Some(dir) = args.out.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("write {}", args.out.display()))?;
    eprintln!("bench: wrote {}", args.out.display());
    Ok(())
}
