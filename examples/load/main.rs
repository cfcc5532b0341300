//! Load test: sms-sessions against a bare axum baseline, side by side, in one invocation.
//!
//! ```text
//! cargo build --release --bins --examples && target/release/examples/load
//! ```
//!
//! For each run it starts the server itself (pinned to core 0 with `taskset` when it exists;
//! this tool moves to core 1), measures the time from spawn to the first answered webhook,
//! connects P simulated phones — each with its own keep-alive HTTP/1.1 connection and
//! Twilio-like cookie jar — and keeps C texts in flight. Every text is signed as Twilio signs
//! it, and every reply is checked: its count against the texts that phone has sent (the
//! counter), or against the conversation the phone is walking (`booking`). After a
//! warm-up it measures requests/s, latency percentiles, errors, wrong counts, the server's CPU
//! time per webhook (utime + stime from `/proc/PID/stat`, and the kernel's part) and its memory
//! (`VmRSS` at the start, middle and end, and `VmHWM`). Loopback only; bounded by `--requests`
//! and `--max-seconds`. Before each run it waits for the machine to be quiet, and it reports
//! how much CPU other processes took during the run: CPU figures from a busy machine are noise.
//!
//! Runs: `baseline` (examples/baseline.rs: constant TwiML, no checks), `info` (sms-sessions at
//! the default log level), `off` (`RUST_LOG=off`), `json` (info, JSON lines), `booking`
//! (`SMS_SESSIONS_FLOW=flows` on config/flows at the default log level: every phone books a
//! cleaning over and over, six texts a booking). The soak is
//! `load --runs info --requests 1000000 --rounds 1`. By default the runs are repeated in three
//! interleaved rounds and the CPU targets (`info` against the baseline, `booking` against
//! `info`) are judged on the median ratio (`--rounds`).
//!
//! Store runs (issue 11): `memory`, `sqlite` and `redis` are `info` with `SMS_SESSIONS_STORE`
//! set: the server keeps each conversation under its (To, From) pair and sends no cookie, so
//! the phones' jars stay empty and every count is the server's. `sqlite` gets a fresh
//! temporary directory per run (`sqlite:DIR/state.db`, removed after); `redis` starts a
//! `redis-server` of its own on a free loopback port (never 6379; no persistence), pinned to
//! core 1 with the load, and stopped after the run: the binary in `SMS_SESSIONS_REDIS_SERVER`,
//! else the one on `PATH` (without one, that run fails and the others go on). Its CPU time per
//! webhook is measured as the server's is and shown next to it. They are judged against `info`
//! in cookie mode in the same invocation:
//!
//! ```text
//! load --runs info,memory,sqlite,redis
//! ```
//!
//! `memory`'s server CPU per webhook ≤ 1.15× `info`'s (the median over rounds); `sqlite` ≥
//! 10,000 webhooks/s with the server on one core; `redis` p99 < 10 ms at 64 in flight, no
//! wrong count, its webhooks/s and its server + Redis CPU per webhook next to `info`'s.
//! `--store MODE` puts every other sms-sessions run (`info`, `off`, `json`, `booking`) on that
//! store: `load --runs info,booking --store sqlite`. The soak per store mode, for flat RSS
//! (start/middle/end):
//!
//! ```text
//! load --runs memory --requests 300000 --rounds 1
//! load --runs sqlite --requests 300000 --rounds 1
//! load --runs redis --requests 300000 --rounds 1
//! ```
//!
//! Call-out runs (issue 12): `calls` and `calls-local` serve one flow the tool writes to a
//! temporary directory (script.rs, `order_flow`), with `--config` pointing the `shop` endpoint
//! at a stand-in service the tool starts in a process of its own on the load's core (shop.rs).
//! Every phone texts "order", then order numbers over and over; in `calls` each number makes
//! one signed `GET /orders/NUMBER` to the stand-in and the reply tells what it answered, in
//! `calls-local` a `set` node sets the same variables to the same values instead, so the only
//! difference is the call. Every reply is checked, the stand-in's requests are counted (one
//! per measured webhook in `calls`, none in `calls-local`), and the target is `calls` −
//! `calls-local` ≤ 150 µs of server CPU per webhook, judged on the median over rounds:
//!
//! ```text
//! load --runs info,calls-local,calls
//! ```

mod backing;
mod drive;
mod machine;
mod phone;
mod report;
mod script;
mod server;
mod shop;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use sms_sessions::twilio::signature::AuthToken;

use backing::{Backing, Mode};
use drive::{Pool, drive};
use phone::{Phone, Signer, Template};
use report::{Cpu, Measured, Memory, Run, Targets};
use script::Script;
use server::{Running, Target};
use shop::Shop;

const TOKEN: &str = "12345";
const SECRET: &str = "load-test-session-secret-0123456789abcdef";
const PUBLIC_URL: &str = "https://example.com/twilio";
/// The repository's shipped flows, which the `booking` run serves.
const FLOWS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/flows");
const PAYLOADS: [(&str, &str); 3] = [
    ("sms", include_str!("../../tests/data/payloads/sms.form")),
    ("mms", include_str!("../../tests/data/payloads/mms.form")),
    (
        "whatsapp",
        include_str!("../../tests/data/payloads/whatsapp.form"),
    ),
];

#[derive(Debug, Parser)]
#[command(about = "Load-test sms-sessions against a bare axum baseline")]
struct Args {
    /// Simulated phones, each with its own connection and cookie jar.
    #[arg(long, default_value_t = 256)]
    phones: u64,
    /// Texts in flight at once (at most --phones).
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// Measured texts per run.
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    /// Texts before measuring (connections, allocator and caches settle).
    #[arg(long, default_value_t = 10_000)]
    warmup: u64,
    /// Each run stops after this many seconds of load, whatever is left.
    #[arg(long, default_value_t = 300)]
    max_seconds: u64,
    /// Comma-separated: baseline, info, off, json, booking, memory, sqlite, redis, calls,
    /// calls-local.
    #[arg(
        long,
        default_value = "baseline,info,off,booking",
        value_delimiter = ','
    )]
    runs: Vec<String>,
    /// sms, mms, whatsapp, or mix (phones take the three in turn).
    #[arg(long, default_value = "mix")]
    payload: String,
    /// The sms-sessions binary (default: next to this example's directory).
    #[arg(long)]
    server: Option<PathBuf>,
    /// The baseline binary (default: next to this example).
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// The store of every sms-sessions run but `memory`, `sqlite` and `redis` (which name
    /// theirs): cookie (the server's default), memory, sqlite or redis, as those runs set it.
    #[arg(long, value_enum, default_value_t = Mode::Cookie)]
    store: Mode,
    /// The flows directory of the `booking` run (default: this repository's config/flows).
    #[arg(long, default_value = FLOWS_DIR)]
    flows_dir: PathBuf,
    /// Do not pin with taskset even if it exists.
    #[arg(long)]
    no_pin: bool,
    /// Before each run, wait up to this many seconds for the machine to be under 10% busy
    /// (other processes skew CPU figures); 0 does not wait.
    #[arg(long, default_value_t = 120)]
    wait_quiet: u64,
    /// Exit 1 when a performance target is missed (correctness failures always exit 1).
    #[arg(long)]
    check: bool,
    /// Repeat the runs this many times, interleaved (baseline, info, off, baseline, …). The
    /// CPU target is then judged on the median of the rounds' ratios: on a noisy machine it
    /// is steadier than any one round (the other targets must hold in every round).
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Be the call-out runs' stand-in service instead (the tool starts it itself: shop.rs).
    #[arg(long, hide = true)]
    stand_in: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.stand_in {
        return shop::serve();
    }
    if args.in_flight == 0 || args.phones < args.in_flight as u64 {
        eprintln!("load: need 1 <= --in-flight <= --phones");
        return ExitCode::from(2);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = !args.no_pin && server::can_pin() && server::pin_self("1");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    print_setup(&args, cores, pin);
    let (mut failed, mut missed) = (false, false);
    let mut ratios = Vec::new();
    for round in 1..=args.rounds.max(1) {
        let mut results = Vec::new();
        for name in &args.runs {
            let Some(target) = target(&args, name) else {
                eprintln!(
                    "load: unknown run {name:?} \
                     (baseline, info, off, json, booking, memory, sqlite, redis, calls, \
                     calls-local)"
                );
                return ExitCode::from(2);
            };
            eprintln!("load: {name} (round {round}) ...");
            // A run that cannot start (no redis-server, a store the server cannot open)
            // fails alone: the others are still measured, and the exit status is 1.
            match runtime.block_on(run(&args, name, &target, pin)) {
                Ok(measured) => results.push(measured),
                Err(error) => {
                    eprintln!("load: {name}: {error}");
                    failed = true;
                }
            }
        }
        if results.is_empty() {
            continue;
        }
        if args.rounds > 1 {
            println!("\nround {round}");
        }
        let verdict = report::print(&results, &Targets::default(), args.rounds <= 1);
        failed |= verdict.correctness_failed;
        missed |= verdict.targets_missed;
        ratios.push(report::ratios(&results));
    }
    if args.rounds > 1 {
        missed |= report::print_rounds(&ratios, &Targets::default());
    }
    if failed || (args.check && missed) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_setup(args: &Args, cores: usize, pin: bool) {
    let redis = args
        .runs
        .iter()
        .any(|name| store(args, name) == Mode::Redis);
    let calls = args.runs.iter().any(|name| name.starts_with("calls"));
    let placement = match (pin, redis, calls) {
        (true, false, false) => "server pinned to core 0, load on core 1",
        (true, true, false) => {
            "server pinned to core 0, load on core 1, and each run's own redis-server on core 1 \
             too (it shares that core with the load)"
        }
        (true, false, true) => {
            "server pinned to core 0, load on core 1, and the call-out runs' stand-in service \
             on core 1 too (it shares that core with the load)"
        }
        (true, true, true) => {
            "server pinned to core 0, load on core 1, and each run's own redis-server and the \
             call-out runs' stand-in service on core 1 too (they share it with the load)"
        }
        (false, ..) => "not pinned",
    };
    println!(
        "phones {} · in flight {} · {} measured texts per run after {} warm-up · payload {} · \
         {cores} cores, {placement}",
        args.phones, args.in_flight, args.requests, args.warmup, args.payload
    );
}

/// The store a run uses: the one it is named after, else `--store` (the baseline has none).
fn store(args: &Args, name: &str) -> Mode {
    match name {
        "baseline" => Mode::Cookie,
        "memory" => Mode::Memory,
        "sqlite" => Mode::Sqlite,
        "redis" => Mode::Redis,
        _ => args.store,
    }
}

/// The command line and environment of one run (but its store: see [`store`]).
fn target(args: &Args, name: &str) -> Option<Target> {
    let here = std::env::current_exe().ok()?;
    let examples = here.parent()?.to_path_buf();
    if name == "baseline" {
        let program = args.baseline.clone().unwrap_or(examples.join("baseline"));
        return Some(Target {
            program,
            args: vec!["{addr}".into()],
            env: Vec::new(),
        });
    }
    let (level, format) = match name {
        "info" | "booking" | "memory" | "sqlite" | "redis" | "calls" | "calls-local" => {
            ("info", "text")
        }
        "off" => ("off", "text"),
        "json" => ("info", "json"),
        _ => return None,
    };
    let program = args.server.clone().or_else(|| {
        let dir = examples.parent()?;
        Some(dir.join("sms-sessions"))
    })?;
    let env = [
        ("RUST_LOG", level),
        ("SMS_SESSIONS_LOG_FORMAT", format),
        ("SMS_SESSIONS_LISTEN", "{addr}"),
        ("SMS_SESSIONS_PUBLIC_URL", PUBLIC_URL),
        ("TWILIO_AUTH_TOKEN", TOKEN),
        ("SMS_SESSIONS_SECRET", SECRET),
    ];
    let mut env: Vec<(String, String)> = env.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec();
    if name == "booking" {
        let dir = std::path::absolute(&args.flows_dir).ok()?;
        env.push(("SMS_SESSIONS_FLOW".into(), "flows".into()));
        env.push(("SMS_SESSIONS_FLOWS_DIR".into(), dir.display().to_string()));
    }
    Some(Target {
        program,
        args: vec!["serve".into()],
        env,
    })
}

/// How a run's replies are checked.
fn script(name: &str) -> Script {
    match name {
        "baseline" => Script::Unchecked,
        "booking" => Script::Conversation(&script::BOOKING),
        "calls" | "calls-local" => Script::Conversation(&script::ORDER),
        _ => Script::Counter,
    }
}

/// One run: start, first webhook, warm-up, measure in two halves, stop.
async fn run(args: &Args, name: &str, target: &Target, pin: bool) -> Result<Measured, String> {
    if args.wait_quiet > 0 {
        let busy = machine::wait_until_quiet(0.10, Duration::from_secs(args.wait_quiet));
        eprintln!(
            "load: {name}: machine {:.0}% busy before the run",
            busy * 100.0
        );
    }
    // Declared before the server, so dropped after it on every path.
    let backing = Backing::start(store(args, name), pin.then_some("1"))?;
    let mut shop = match name {
        "calls" => Some(Shop::start(script::ORDER_CALL, pin.then_some("1"))?),
        "calls-local" => Some(Shop::start(script::ORDER_SET, pin.then_some("1"))?),
        _ => None,
    };
    let mut target = target.clone();
    if let Some(url) = &backing.url {
        target.env.push(("SMS_SESSIONS_STORE".into(), url.clone()));
    }
    if let Some(shop) = &shop {
        let config = shop.config.display().to_string();
        target.args.splice(0..0, ["--config".to_owned(), config]);
        target.env.extend(shop.env());
    }
    let target = &target;
    let mut server = Running::start(target, pin.then_some("0"))
        .map_err(|e| format!("cannot start {}: {e}", target.program.display()))?;
    let signer = Arc::new(Signer {
        token: AuthToken::new(TOKEN).expect("non-empty"),
        signed_url: format!("{PUBLIC_URL}/sms"),
        addr: server.addr,
    });
    let first_webhook = first_webhook(&mut server, &signer, &args.payload).await?;
    let rss_idle = server.memory_kib("VmRSS");
    let pool = phones(args)?;
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    let load = |requests| {
        drive(
            &pool,
            &signer,
            script(name),
            requests,
            args.in_flight,
            deadline,
        )
    };
    let warmup = load(args.warmup).await;
    let counts_before = shop.as_mut().map(Shop::counts).transpose()?;
    let ticks_before = Ticks::read(&server, &backing, shop.as_ref())?;
    let rss_start = server.memory_kib("VmRSS");
    let mut tally = load(args.requests / 2).await;
    let rss_middle = server.memory_kib("VmRSS");
    tally.add(load(args.requests - args.requests / 2).await);
    let ticks = Ticks::read(&server, &backing, shop.as_ref())?.since(ticks_before);
    let counts_after = shop.as_mut().map(Shop::counts).transpose()?;
    let rss = [rss_idle, rss_start, rss_middle, server.memory_kib("VmRSS")];
    let peak_rss = server.memory_kib("VmHWM");
    drop(pool);
    let log_lines = server.stop();
    let per_second = server::ticks_per_second() as f64;
    let seconds = |ticks: u64| Duration::from_secs_f64(ticks as f64 / per_second);
    let cpu = Cpu {
        user: seconds(ticks.server_user),
        system: seconds(ticks.server_system),
        store: ticks.store.map(seconds),
        stand_in: ticks.shop.map(seconds),
        others_cores: seconds(ticks.others()).as_secs_f64() / tally.elapsed.as_secs_f64(),
    };
    let memory = Memory {
        rss_kib: rss,
        peak_rss_kib: peak_rss,
    };
    let run = Run {
        name,
        store: backing.mode.name(),
        pinned: pin,
        in_flight: args.in_flight,
    };
    let stand_in = counts_after
        .zip(counts_before)
        .map(|(after, before)| after.since(before));
    Ok(Measured::new(
        run,
        tally,
        warmup,
        cpu,
        memory,
        first_webhook,
        log_lines,
        stand_in,
    ))
}

/// CPU ticks of the server (user, system), of the run's own Redis and stand-in shop if it has
/// them, of this process, and of the whole machine.
#[derive(Clone, Copy)]
struct Ticks {
    server: (u64, u64),
    store: Option<(u64, u64)>,
    shop: Option<(u64, u64)>,
    own: u64,
    machine: machine::CpuTicks,
}

impl Ticks {
    fn read(server: &Running, backing: &Backing, shop: Option<&Shop>) -> Result<Self, String> {
        Ok(Self {
            server: server.cpu_ticks().map_err(|e| e.to_string())?,
            store: backing.cpu_ticks()?,
            shop: shop.map(Shop::cpu_ticks).transpose()?,
            own: machine::own_ticks(),
            machine: machine::CpuTicks::now(),
        })
    }

    fn since(self, earlier: Self) -> Spent {
        let spent = |now: Option<(u64, u64)>, then: Option<(u64, u64)>| match (now, then) {
            (Some(now), Some(then)) => Some(now.0 + now.1 - then.0 - then.1),
            _ => None,
        };
        Spent {
            server_user: self.server.0 - earlier.server.0,
            server_system: self.server.1 - earlier.server.1,
            store: spent(self.store, earlier.store),
            shop: spent(self.shop, earlier.shop),
            own: self.own.saturating_sub(earlier.own),
            machine: self.machine.busy_since(earlier.machine),
        }
    }
}

struct Spent {
    server_user: u64,
    server_system: u64,
    /// The run's own Redis (user + system).
    store: Option<u64>,
    /// The run's stand-in shop (user + system).
    shop: Option<u64>,
    own: u64,
    machine: u64,
}

impl Spent {
    /// Ticks spent by every other process.
    fn others(&self) -> u64 {
        let ours = self.server_user
            + self.server_system
            + self.store.unwrap_or(0)
            + self.shop.unwrap_or(0)
            + self.own;
        self.machine.saturating_sub(ours)
    }
}

/// Spawn to the first 200 from `/sms`: retries the connection until the port is open (or the
/// server exits: one that cannot open its store does, and says why on stderr).
async fn first_webhook(
    server: &mut Running,
    signer: &Signer,
    payload: &str,
) -> Result<Duration, String> {
    let mut probe = Phone::new(9_999_999, template(payload, 0)?);
    let give_up = server.spawned_at + Duration::from_secs(10);
    loop {
        if phone::connect(server.addr).await.is_ok() {
            break;
        }
        if let Some(status) = server.exited() {
            return Err(format!(
                "the server exited before its first webhook ({status})"
            ));
        }
        if Instant::now() > give_up {
            return Err("the server did not open its port within 10 s".into());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    match probe.text(signer, Script::Unchecked).await {
        phone::Outcome::Failed(error) => Err(format!("first webhook failed: {error}")),
        _ => Ok(server.spawned_at.elapsed()),
    }
}

/// The phones of a run (each connects on its first text).
fn phones(args: &Args) -> Result<Pool, String> {
    let templates = (0..3)
        .map(|id| template(&args.payload, id))
        .collect::<Result<Vec<_>, _>>()?;
    let phones: VecDeque<Phone> = (0..args.phones)
        .map(|id| Phone::new(id, templates[(id % 3) as usize].clone()))
        .collect();
    Ok(Arc::new(Mutex::new(phones)))
}

/// The payload for phone `id`: the named one, or for `mix` sms, mms and whatsapp in turn.
fn template(payload: &str, id: u64) -> Result<Arc<Template>, String> {
    let name = if payload == "mix" {
        PAYLOADS[(id % 3) as usize].0
    } else {
        payload
    };
    let form = PAYLOADS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, form)| *form)
        .ok_or_else(|| format!("unknown payload {payload:?} (sms, mms, whatsapp, mix)"))?;
    Ok(Arc::new(Template::parse(form)))
}
