//! `puffle-load` (make load): N concurrent clients for S seconds on ONE
//! workspace of a private local stack, then an audit of credits, run counts,
//! run states and idempotency keys. See docs/load.md.
//!
//! Bounded and local: the stack listens on 127.0.0.1 only, the clients stop
//! at the deadline, the drain wait has a timeout, and the stack is stopped
//! when the program ends. The exit code is 1 when the audit fails, 2 when the
//! load could not run; speed never fails it.

mod audit;
mod client;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use client::{ClientLog, Endpoint, Kind, ListInfo, Shared, World};
use puffle_app::App;
use puffle_tests::isolated::Isolated;
use puffle_tests::Ctx;
use serde_json::{json, Value};

#[derive(Parser, Debug)]
#[command(name = "puffle-load", about = "Concurrent clients on one workspace of a private local stack, then an audit")]
struct Args {
    /// Concurrent clients.
    #[arg(long, env = "LOAD_CLIENTS", default_value_t = 50)]
    clients: usize,
    /// How long the clients run.
    #[arg(long, env = "LOAD_SECONDS", default_value_t = 60)]
    seconds: u64,
    /// Share of the credits the creates ask for that the workspace gets
    /// (the balance runs out partway, so 402s happen).
    #[arg(long, env = "LOAD_CREDIT_FRACTION", default_value_t = 0.7)]
    credit_fraction: f64,
    /// Leads in the pool (explicit scopes draw from it; Lists are slices of it).
    #[arg(long, env = "LOAD_LEADS", default_value_t = 1500)]
    leads: usize,
    /// Longest wait for the queue (and DLQ) to drain after the clients stop.
    /// A hang guard: a run still moving after it fails the audit.
    #[arg(long, env = "LOAD_DRAIN_TIMEOUT", default_value_t = 900)]
    drain_timeout: u64,
    /// A single client runs this long first: the baseline the concurrent
    /// create latency is compared with (0: no baseline).
    #[arg(long, env = "LOAD_SINGLE_SECONDS", default_value_t = 10)]
    single_seconds: u64,
    /// Where the figures go (create p95 single/concurrent, drain, audit).
    #[arg(long, env = "LOAD_RESULTS", default_value = "load/results.json")]
    results: std::path::PathBuf,
    /// Seed of the clients' choices (default: from the clock; printed).
    #[arg(long, env = "LOAD_SEED")]
    seed: Option<u64>,
}

const LIST_SIZES: &[usize] = &[50, 80, 120, 200, 300, 500];
const FIRST: &[&str] =
    &["Ada", "Grace", "Alan", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Radia", "Edsger", "Frances", "John"];
const LAST: &[&str] = &[
    "Lovelace", "Hopper", "Turing", "Torvalds", "Liskov", "Thompson", "Hamilton", "Ritchie", "Perlman", "Dijkstra",
    "Allen", "McCarthy",
];
const TITLES: &[&str] = &[
    "CEO",
    "Chief Technology Officer",
    "VP Sales",
    "Vice President of Engineering",
    "Director of Marketing",
    "Engineering Manager",
    "Senior Software Engineer",
    "Software Engineer",
    "Sales Intern",
    "Account Executive",
    "Head of People",
    "Founder",
];
const DOMAINS: &[&str] = &["acme.com", "globex.io", "initech.com", "gmail.com", "outlook.com", "umbrella.co"];

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("puffle-load: could not run: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The i-th Lead of the pool: varied names, titles, e-mail domains and
/// phones (about 1 in 5 invalid, 1 in 10 missing).
fn lead(i: usize, tag: &str) -> (Value, &'static str) {
    let (f, l) = (FIRST[i % FIRST.len()], LAST[(i / FIRST.len()) % LAST.len()]);
    let name = match i % 10 {
        0 => format!("Dr. {f} {l}"),
        1 => format!("{l}, {f}"),
        2 => f.to_string(),
        3 => format!("{f} {l} Jr."),
        _ => format!("{f} {l}"),
    };
    let title = TITLES[(i * 7) % TITLES.len()];
    let email = format!("{}.{}.{i}.{tag}@{}", f.to_lowercase(), l.to_lowercase(), DOMAINS[i % DOMAINS.len()]);
    let phone = match i % 10 {
        0..=4 => Some(format!("(415) 555-{:04}", i % 10_000)),
        5 => Some(format!("+44 20 7946 {:04}", i % 10_000)),
        6 => Some("12".to_string()),
        7 => Some("555-CALL-NOW".to_string()),
        _ => None,
    };
    let mut contacts = vec![json!({"type": "email", "value": email})];
    if let Some(p) = phone {
        contacts.push(json!({"type": "phone", "value": p}));
    }
    (json!({"type": "person", "name": {"full": name}, "title": title, "contacts": contacts}), title)
}

async fn seed_data(ctx: &Ctx, n: usize) -> anyhow::Result<World> {
    let tag = puffle_tests::unique().to_lowercase();
    let (leads, titles): (Vec<Value>, Vec<&str>) = (0..n).map(|i| lead(i, &tag)).unzip();
    let pool = ctx.leads(leads).await;
    if pool.len() != n {
        bail!("upserting {n} leads returned {} ids", pool.len());
    }
    let mut lists = vec![];
    for (j, &size) in LIST_SIZES.iter().enumerate() {
        let size = size.min(n);
        // Overlapping slices, so Lists share Leads.
        let from = (j * n / LIST_SIZES.len()).min(n - size);
        let ids = &pool[from..from + size];
        let id = ctx.list(ids).await;
        let got = ctx.get(&format!("/api/lists/{id}")).await;
        let count = got.body["list"]["leadCount"].as_u64().unwrap_or(0);
        if count != size as u64 {
            bail!("list {id}: leadCount {count} after adding {size} leads ({got:?})");
        }
        let engineers =
            titles[from..from + size].iter().filter(|t| t.to_lowercase().contains("engineer")).count() as u64;
        lists.push(ListInfo { id, size: size as u64, engineers });
    }
    Ok(World { pool, lists })
}

/// Credits, so that the balance runs out partway. Until a fifth of the load
/// has passed, grants follow the credits the creates ask for (plus a buffer
/// for requests in flight): nothing is refused while the rate is measured.
/// Then grants are raised to `fraction` of the projected total — what was
/// asked so far plus the answered-demand rate (measured after a warm-up
/// twentieth) times the time left — until half of the load has passed.
/// After that no more credits come, and the balance runs out (402s).
async fn top_ups(
    app: App,
    ws: String,
    sh: Arc<Shared>,
    fraction: f64,
    seconds: u64,
    buffer: u64,
    mut granted: u64,
) -> (u64, usize) {
    let total = seconds as f64;
    let (warm, measure, stop) = ((total * 0.05).max(0.5), (total * 0.2).max(1.0), total * 0.5);
    let mut base: Option<(f64, u64)> = None;
    let mut n = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t = sh.start.elapsed().as_secs_f64();
        if t >= stop {
            return (granted, n);
        }
        let done = sh.demand_done.load(Ordering::Relaxed);
        if base.is_none() && t >= warm {
            base = Some((t, done));
        }
        let target = match base {
            Some((t0, d0)) if t >= measure => {
                let rate = (done - d0) as f64 / (t - t0);
                ((done as f64 + rate * (total - t)) * fraction) as u64
            }
            _ => sh.demand.load(Ordering::Relaxed) + buffer,
        };
        if target > granted + buffer / 10 {
            let add = target - granted;
            match app.grant_credits(&ws, add, "load top-up").await {
                Ok(_) => {
                    granted += add;
                    n += 1;
                }
                Err(e) => eprintln!("puffle-load: top-up of {add} failed (retried next tick): {e}"),
            }
        }
    }
}

async fn drain(app: &App, timeout: Duration) -> Result<Duration, String> {
    let dlq = app.aws.dead_letter_queue();
    let start = Instant::now();
    let mut empty_in_a_row = 0;
    let mut last_note = Instant::now();
    loop {
        let (w, d) = tokio::join!(app.aws.queue.depth(), dlq.depth());
        let show = |q: &Result<(u64, u64), puffle_aws::StoreError>| match q {
            Ok((visible, in_flight)) => format!("{visible} visible + {in_flight} in flight"),
            Err(e) => format!("depth unknown ({e})"),
        };
        match (&w, &d) {
            (Ok((0, 0)), Ok((0, 0))) => empty_in_a_row += 1,
            _ => empty_in_a_row = 0,
        }
        if empty_in_a_row >= 3 {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return Err(format!(
                "not empty {} s after the clients stopped (work queue {}, DLQ {})",
                timeout.as_secs(),
                show(&w),
                show(&d)
            ));
        }
        if last_note.elapsed() >= Duration::from_secs(10) {
            eprintln!(
                "puffle-load: draining… {:>4.0} s  work queue {}  DLQ {}",
                start.elapsed().as_secs_f64(),
                show(&w),
                show(&d)
            );
            last_note = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Leads of the workspace's runs that reached a terminal item status.
async fn settled_leads(app: &App, ws: &str) -> anyhow::Result<u64> {
    let runs = app.store().all_runs(ws).await?;
    Ok(runs.iter().map(|r| r.run.scope.counts).map(|c| c.completed + c.skipped + c.failed).sum())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// ERROR/WARN lines of a stack process's JSON log, with the distinct messages.
fn log_errors(text: &str) -> (usize, usize, BTreeMap<String, usize>) {
    let (mut errors, mut warns, mut msgs) = (0, 0, BTreeMap::new());
    for line in text.lines() {
        let level = if line.contains("\"level\":\"ERROR\"") {
            errors += 1;
            "ERROR"
        } else if line.contains("\"level\":\"WARN\"") {
            warns += 1;
            "WARN"
        } else {
            continue;
        };
        let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
        let f = &v["fields"];
        let mut m = f["error"].as_str().or(f["message"].as_str()).unwrap_or(line).to_string();
        if m.chars().count() > 160 {
            m = format!("{}…", m.chars().take(160).collect::<String>());
        }
        *msgs.entry(format!("{level} {m}")).or_insert(0) += 1;
    }
    (errors, warns, msgs)
}

/// The private stack's log directory (the harness names it; its API log's
/// first line names the port).
fn log_dir(api_port: u16) -> Option<std::path::PathBuf> {
    let needle = format!("\"address\":\"127.0.0.1:{api_port}\"");
    std::fs::read_dir(std::env::temp_dir()).ok()?.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
        p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("puffle-isolated-"))
            && std::fs::File::open(p.join("api.log")).is_ok_and(|f| {
                let mut first = String::new();
                std::io::BufRead::read_line(&mut std::io::BufReader::new(f), &mut first).is_ok()
                    && first.contains(&needle)
            })
    })
}

async fn run(args: Args) -> anyhow::Result<bool> {
    if args.clients == 0 || args.seconds == 0 {
        bail!("--clients and --seconds must be at least 1");
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    eprintln!("puffle-load: starting a private stack (DynamoDB Local, fauxqs, API, worker on 127.0.0.1)…");
    // Every client shares one token: no per-token limit (it is tested in
    // tests/admission.rs; here it would turn the load into 429s).
    // The reaper as deployed (the test stack's 5 s staleness would re-send
    // every chunk still waiting in the backlog, flooding the queue it drains).
    let iso = Isolated::start(&[
        ("PUFFLE_RATE_LIMITS", "off"),
        ("PUFFLE_REAPER_STALE_SECONDS", "300"),
        ("PUFFLE_REAPER_INTERVAL_SECONDS", "60"),
    ])
    .await;
    let app = iso.app().await;

    // About two creates per client: covers the requests in flight between top-ups.
    let initial = args.clients as u64 * 300;
    let ws = app.create_workspace("load", initial).await.context("create the workspace")?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(args.clients + 8)
        .build()?;
    let ctx =
        Ctx { workspace_id: ws.workspace_id.clone(), token: ws.token.clone(), http: http.clone(), base: iso.api_url() };
    let t_seed = Instant::now();
    let world = Arc::new(seed_data(&ctx, args.leads).await?);
    println!(
        "puffle-load: {} clients × {} s on workspace {} (private stack, API {}), seed {seed}",
        args.clients,
        args.seconds,
        ws.workspace_id,
        iso.api_url()
    );
    println!(
        "data: {} Leads (~20% invalid phones, 10% none), Lists of {} Leads, seeded in {:.1} s",
        world.pool.len(),
        world.lists.iter().map(|l| l.size.to_string()).collect::<Vec<_>>().join("/"),
        t_seed.elapsed().as_secs_f64()
    );

    // The baseline: one client alone, on the same data and workspace.
    let single_log = if args.single_seconds > 0 {
        eprintln!("puffle-load: one client for {} s (the baseline)…", args.single_seconds);
        let sh1 = Arc::new(Shared::new(
            iso.api_url(),
            ws.token.clone(),
            http.clone(),
            seed ^ 0x5151,
            args.single_seconds,
            "single-",
        ));
        Some(client::client(0, sh1, world.clone()).await)
    } else {
        None
    };

    // The load.
    let sh = Arc::new(Shared::new(iso.api_url(), ws.token.clone(), http, seed, args.seconds, ""));
    let credits = tokio::spawn(top_ups(
        app.clone(),
        ws.workspace_id.clone(),
        sh.clone(),
        args.credit_fraction,
        args.seconds,
        initial,
        initial,
    ));
    let progress = {
        let sh = sh.clone();
        tokio::spawn(async move {
            while Instant::now() < sh.deadline {
                tokio::time::sleep(Duration::from_secs(10).min(sh.deadline.saturating_duration_since(Instant::now())))
                    .await;
                eprintln!(
                    "puffle-load: {:>4.0} s  {} requests  {} runs created",
                    sh.start.elapsed().as_secs_f64(),
                    sh.requests.load(Ordering::Relaxed),
                    sh.runs_created.load(Ordering::Relaxed)
                );
            }
        })
    };
    let handles: Vec<_> =
        (0..args.clients).map(|i| tokio::spawn(client::client(i, sh.clone(), world.clone()))).collect();
    // Each client stops at the deadline; a request in flight then has at most
    // its 60 s timeout (two for an items page and its next page).
    let guard = Duration::from_secs(args.seconds + 150);
    let logs: Vec<ClientLog> = match tokio::time::timeout(guard, futures::future::join_all(handles)).await {
        Ok(results) => results.into_iter().collect::<Result<_, _>>().context("a client panicked")?,
        Err(_) => bail!("clients still running {} s after start", guard.as_secs()),
    };
    let load_time = sh.start.elapsed();
    let (granted, top_up_count) = credits.await?;
    progress.abort();

    let settled_at_stop = settled_leads(&app, &ws.workspace_id).await?;
    // Reservations while runs are still open: the worker (and its stream
    // poller and reaper) paused, so no settlement lands between the reads of
    // the runs, the ledger and the balance; 1 s lets writes already sent finish.
    eprintln!("puffle-load: clients stopped; pausing the worker for the open-runs audit…");
    let open_check = if iso.pause("worker") {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let check = audit::open_runs(&app, &ws.workspace_id, granted).await;
        if !iso.resume("worker") {
            bail!("could not resume the paused worker");
        }
        check?
    } else {
        bail!("could not pause the worker for the open-runs audit");
    };
    eprintln!("puffle-load: clients stopped; waiting for the queue to drain (at most {} s)…", args.drain_timeout);
    let drained = drain(&app, Duration::from_secs(args.drain_timeout)).await;
    let settled_after_drain = settled_leads(&app, &ws.workspace_id).await?;
    let mut concurrent: Vec<Duration> =
        logs.iter().flat_map(|l| &l.samples).filter(|s| s.endpoint == Endpoint::Create).map(|s| s.took).collect();
    concurrent.sort();
    // The baseline's creates are audited with the rest.
    let mut logs = logs;
    let single_creates: Vec<Duration> = single_log
        .as_ref()
        .map(|l| l.samples.iter().filter(|s| s.endpoint == Endpoint::Create).map(|s| s.took).collect())
        .unwrap_or_default();
    logs.extend(single_log);

    // Report.
    let samples: Vec<&client::Sample> = logs.iter().flat_map(|l| &l.samples).collect();
    let creates: Vec<client::CreateRec> = logs.iter().flat_map(|l| l.creates.iter().cloned()).collect();
    let violations: Vec<String> = logs.iter().flat_map(|l| l.violations.iter().cloned()).collect();
    let unexpected: Vec<String> = logs.iter().flat_map(|l| l.unexpected.iter().cloned()).collect();
    let secs = load_time.as_secs_f64();
    println!();
    println!("load: {} requests in {secs:.1} s = {:.1} requests/s", samples.len(), samples.len() as f64 / secs);
    println!("  {:<8} {:>9} {:>8} {:>9} {:>9} {:>9}", "endpoint", "requests", "req/s", "p50 ms", "p95 ms", "max ms");
    for ep in Endpoint::ALL {
        let mut d: Vec<Duration> = samples.iter().filter(|s| s.endpoint == ep).map(|s| s.took).collect();
        d.sort();
        println!(
            "  {:<8} {:>9} {:>8.1} {:>9.1} {:>9.1} {:>9.1}",
            ep.name(),
            d.len(),
            d.len() as f64 / secs,
            percentile(&d, 0.50),
            percentile(&d, 0.95),
            percentile(&d, 1.0)
        );
    }
    println!("answers by endpoint, HTTP status and body code (! = not allowed by the contract here):");
    let mut table: BTreeMap<(Endpoint, u16, String), (usize, bool)> = BTreeMap::new();
    for s in &samples {
        let e = table.entry((s.endpoint, s.status, s.code.clone())).or_default();
        e.0 += 1;
        e.1 |= s.unexpected;
    }
    for ((ep, st, code), (n, bad)) in &table {
        let st = if *st == 0 { "---".to_string() } else { st.to_string() };
        println!(
            "  {} {:<8} {st} {:<44} {n:>7}",
            if *bad { "!" } else { " " },
            ep.name(),
            if code.is_empty() { "-" } else { code }
        );
    }
    println!("creates by kind:");
    for k in Kind::ALL {
        let of: Vec<&client::CreateRec> = creates.iter().filter(|r| r.kind == k).collect();
        let count = |st: u16| of.iter().filter(|r| r.status == st).count();
        println!(
            "  {:<24} {:>6}  202 {:>5}  200 {:>5}  402 {:>5}  422 {:>5}  other {:>4}",
            k.name(),
            of.len(),
            count(202),
            count(200),
            count(402),
            count(422),
            of.iter().filter(|r| !matches!(r.status, 200 | 202 | 402 | 422)).count()
        );
    }
    let tenth = args.seconds as f64 / 10.0;
    let timeline: Vec<String> = (0..10)
        .map(|b| {
            let of = |st: u16| {
                creates
                    .iter()
                    .filter(|r| r.status == st && ((r.started.as_secs_f64() / tenth) as usize).min(9) == b)
                    .count()
            };
            format!("{}/{}", of(202), of(402))
        })
        .collect();
    println!("new runs / 402s by start time, per tenth of the {} s: {}", args.seconds, timeline.join("  "));
    let first_402 = sh.first_402_ms.load(Ordering::Relaxed);
    println!(
        "credits: granted {granted} (initial {initial} + {top_up_count} top-ups, aimed at {:.0}% of the projected demand); balance first short at {}",
        args.credit_fraction * 100.0,
        if first_402 == u64::MAX {
            "— (never: no 402)".to_string()
        } else {
            format!("{:.1} s ({:.0}% into the load)", first_402 as f64 / 1000.0, first_402 as f64 / 10.0 / args.seconds as f64)
        }
    );

    let (mut checks, sum) = audit::audit(
        &app,
        &audit::Inputs {
            workspace_id: &ws.workspace_id,
            creates: &creates,
            violations: &violations,
            unexpected: &unexpected,
            granted,
            drained: &drained,
        },
    )
    .await?;
    checks.insert(0, open_check);
    match &drained {
        Ok(t) => println!(
            "drain: queue and DLQ empty (3 checks, 1 s apart) {:.1} s after the clients stopped",
            t.as_secs_f64()
        ),
        Err(e) => println!("drain: {e}"),
    }
    println!(
        "runs: {} ({}) over {} Leads: items completed {}, skipped {}, failed {}",
        sum.runs,
        sum.by_status.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "),
        sum.leads,
        sum.completed,
        sum.skipped,
        sum.failed
    );
    println!(
        "ledger: grants {} − charges {} − held {} = balance {} (reserved {}, released {}); {} idempotency keys ({} with a run, up to {} requests on one key)",
        sum.grants,
        sum.charges,
        sum.reserves as i128 - sum.charges as i128 - sum.releases as i128,
        sum.balance,
        sum.reserves,
        sum.releases,
        sum.keys,
        sum.keys_with_run,
        sum.max_requests_per_key
    );
    // Create latency alone and under load, and the drain.
    let mut single = single_creates;
    single.sort();
    let single_n = single.len();
    let (p95_single, p95_concurrent) = (percentile(&single, 0.95), percentile(&concurrent, 0.95));
    let ratio = if p95_single > 0.0 { p95_concurrent / p95_single } else { 0.0 };
    let drain_s = drained.as_ref().map(|d| d.as_secs_f64()).ok();
    let drained_leads = settled_after_drain.saturating_sub(settled_at_stop);
    let drain_rate = drain_s.filter(|s| *s > 0.0).map(|s| drained_leads as f64 / s);
    println!(
        "create p95: one client {p95_single:.1} ms ({single_n} creates), {} clients {p95_concurrent:.1} ms ({} creates): ratio {ratio:.1}×",
        args.clients,
        concurrent.len()
    );
    println!(
        "drain: {} Leads settled after the clients stopped, in {} = {} Leads/s by the worker",
        drained_leads,
        drain_s.map_or("—".to_string(), |s| format!("{s:.1} s")),
        drain_rate.map_or("—".to_string(), |r| format!("{r:.0}"))
    );
    let transport = samples.iter().filter(|s| s.status == 0).count();
    if transport > 0 {
        println!("note: {transport} requests got no answer within 60 s (reported, not an audit failure)");
    }
    if let Some(dir) = log_dir(iso.api_port) {
        println!("stack logs (JSON, one line per request / message): {}", dir.display());
    }
    for (name, text) in [("api", iso.log("api")), ("worker", iso.log("worker"))] {
        let (errors, warns, msgs) = log_errors(&text);
        if errors + warns > 0 {
            println!("{name} log: {errors} ERROR, {warns} WARN lines");
            let mut msgs: Vec<(String, usize)> = msgs.into_iter().collect();
            msgs.sort_by_key(|(m, n)| (!m.starts_with("ERROR"), std::cmp::Reverse(*n)));
            for (m, n) in msgs.iter().take(6) {
                println!("  {n:>6} × {m}");
            }
        }
    }

    println!();
    println!("audit:");
    for c in &checks {
        println!("  {} {} — {}", if c.ok { "PASS" } else { "FAIL" }, c.name, c.summary);
        for d in c.details.iter().take(20) {
            println!("         {d}");
        }
        if c.details.len() > 20 {
            println!("         … and {} more", c.details.len() - 20);
        }
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    let results = json!({
        "clients": args.clients,
        "seconds": args.seconds,
        "seed": seed,
        "create": {
            "p95Ms": {"single": round1(p95_single), "concurrent": round1(p95_concurrent)},
            "p95Ratio": round1(ratio),
            "count": {"single": single_n, "concurrent": concurrent.len()},
        },
        "drain": {"seconds": drain_s.map(round1), "leads": drained_leads, "leadsPerSecond": drain_rate.map(round1)},
        "runs": sum.runs,
        "leads": sum.leads,
        "audit": {"passed": failed == 0, "checks": checks.len(), "failed": failed},
    });
    if let Some(dir) = args.results.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).ok();
    }
    std::fs::write(&args.results, serde_json::to_string_pretty(&results)? + "\n")
        .with_context(|| format!("write {}", args.results.display()))?;
    println!("figures: {}", args.results.display());
    if failed == 0 {
        println!("audit: PASS ({} checks)", checks.len());
    } else {
        println!("audit: FAIL ({failed} of {} checks)", checks.len());
    }
    drop(iso);
    Ok(failed == 0)
}
