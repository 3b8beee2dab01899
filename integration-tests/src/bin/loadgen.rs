//! The gd-customs load generator: drives one named scenario over N connections at
//! concurrency C, after a warm-up, for a fixed duration, and reports RPC/s,
//! p50/p99/p99.9 latency (HDR histogram) and errors by gRPC code.
//!
//! With `--rate R` the load is open: request n is due at n/R seconds, and a request
//! picked up late because every worker was still waiting for an answer is timed from
//! when it was due, so a server that falls behind shows it in the percentiles (no
//! coordinated omission); one picked up in time is timed from sending.
//!
//! The last line is machine-readable for `integration-tests/scripts/bench.sh`:
//! `RESULT scenario=health rps=12345.6 p50_us=… p99_us=… p999_us=… ok=… errors=… offered=…`

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use customs_common::config::Settings;
use hdrhistogram::Histogram;
use integration_tests::scenarios::{Scenario, ScenarioKind};
use tokio::sync::Mutex;
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, Parser)]
#[command(about = "gd-customs gRPC load generator")]
struct Args {
    /// Server address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    target: String,
    #[arg(long, value_enum, default_value_t = ScenarioArg::Health)]
    scenario: ScenarioArg,
    /// HTTP/2 connections, shared round-robin by the workers.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds of warm-up, not measured.
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Hard cap on measured requests (the run also stops at the duration).
    #[arg(long, default_value_t = 50_000_000)]
    max_requests: u64,
    /// Offered load in requests per second (open loop, spread over the workers, who
    /// must outnumber the requests in flight); 0 sends the next request as soon as the
    /// previous one answers (closed loop).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ScenarioArg {
    /// grpc.health.v1.Health/Check: the bare-gRPC baseline.
    Health,
    /// GuaranteeService/ReserveDuties from all seven houses against one hot guarantee.
    ReserveHot,
    /// GuaranteeService/ReserveDuties spread over 100 guarantees.
    ReserveSpread,
    /// DeclarationService/SubmitDeclaration, a fresh 3-item declaration every call.
    Submit,
    /// DeclarationService/GetStatus by the hotline over 200 declarations.
    Status,
    /// GateService/CheckGate over LOADGEN_GATE_RELEASES (5,000) released declarations:
    /// each one's first check passes and records the exit, later ones hold.
    Gate,
}

impl From<ScenarioArg> for ScenarioKind {
    fn from(arg: ScenarioArg) -> Self {
        match arg {
            ScenarioArg::Health => ScenarioKind::Health,
            ScenarioArg::ReserveHot => ScenarioKind::ReserveHot,
            ScenarioArg::ReserveSpread => ScenarioKind::ReserveSpread,
            ScenarioArg::Submit => ScenarioKind::Submit,
            ScenarioArg::Status => ScenarioKind::Status,
            ScenarioArg::Gate => ScenarioKind::Gate,
        }
    }
}

/// How late a worker may pick up a request before the wait counts against the server
/// (less is the client's own scheduling on a busy machine).
const PICKUP_SLACK: Duration = Duration::from_millis(2);

#[derive(Default)]
struct Tally {
    ok: u64,
    errors: BTreeMap<String, u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = Settings::load().context("loading configuration (for the development token)")?;
    let mut channels = Vec::with_capacity(args.connections);
    for _ in 0..args.connections.max(1) {
        let channel = Endpoint::from_shared(args.target.clone())?
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("connecting to {}", args.target))?;
        channels.push(channel);
    }
    let scenario = Arc::new(
        Scenario::prepare(args.scenario.into(), channels[0].clone(), &settings.auth).await?,
    );
    eprintln!(
        "scenario {} · {} connection(s) · concurrency {}{} · warm-up {} s · {} s measured",
        scenario.name(),
        channels.len(),
        args.concurrency,
        if args.rate > 0.0 {
            format!(" · offered {} RPC/s", args.rate)
        } else {
            String::new()
        },
        args.warmup_secs,
        args.duration_secs
    );

    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let sequence = Arc::new(AtomicU64::new(0));
    let measured = Arc::new(AtomicU64::new(0));
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let tally = Arc::new(Mutex::new(Tally::default()));

    let origin = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..args.concurrency.max(1) {
        let channel: Channel = channels[worker % channels.len()].clone();
        let scenario = scenario.clone();
        let (measuring, stop, sequence, measured) = (
            measuring.clone(),
            stop.clone(),
            sequence.clone(),
            measured.clone(),
        );
        let (histogram, tally) = (histogram.clone(), tally.clone());
        let max_requests = args.max_requests;
        let rate = (args.rate > 0.0).then_some(args.rate);
        workers.push(tokio::spawn(async move {
            let mut local =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
            let mut local_tally = Tally::default();
            while !stop.load(Ordering::Relaxed) {
                let n = sequence.fetch_add(1, Ordering::Relaxed);
                let mut started = Instant::now();
                if let Some(rate) = rate {
                    let due = origin + Duration::from_secs_f64(n as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                    if started.saturating_duration_since(due) > PICKUP_SLACK {
                        // Picked up late: every worker was busy, so the wait counts.
                        started = due;
                    } else {
                        started = Instant::now();
                    }
                }
                let outcome = scenario.call(channel.clone(), n).await;
                let elapsed = started.elapsed();
                if !measuring.load(Ordering::Relaxed) {
                    continue;
                }
                if measured.fetch_add(1, Ordering::Relaxed) >= max_requests {
                    break;
                }
                match outcome {
                    Ok(()) => {
                        local_tally.ok += 1;
                        let _ = local.record(elapsed.as_micros().max(1) as u64);
                    }
                    Err(code) => *local_tally.errors.entry(format!("{code:?}")).or_default() += 1,
                }
            }
            histogram.lock().await.add(&local).expect("same bounds");
            let mut tally = tally.lock().await;
            tally.ok += local_tally.ok;
            for (code, count) in local_tally.errors {
                *tally.errors.entry(code).or_default() += count;
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(args.warmup_secs)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration_secs)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();

    let histogram = histogram.lock().await;
    let tally = tally.lock().await;
    let rps = tally.ok as f64 / elapsed;
    let errors: u64 = tally.errors.values().sum();
    println!("scenario      {}", scenario.name());
    println!("ok            {} in {elapsed:.1} s", tally.ok);
    if args.rate > 0.0 {
        println!("rpc/s         {rps:.1} (offered {:.1})", args.rate);
    } else {
        println!("rpc/s         {rps:.1}");
    }
    println!(
        "latency µs    p50 {}  p99 {}  p99.9 {}  max {}",
        histogram.value_at_quantile(0.5),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        histogram.max()
    );
    println!("errors        {errors} {:?}", tally.errors);
    println!(
        "RESULT scenario={} rps={rps:.1} p50_us={} p99_us={} p999_us={} ok={} errors={errors} offered={}",
        scenario.name(),
        histogram.value_at_quantile(0.5),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        tally.ok,
        args.rate
    );
    Ok(())
}
