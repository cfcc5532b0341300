//! The side-by-side table and the targets of issue 4 (and issue 10's: the booking flow's CPU
//! per webhook against the counter's, `info`, in the same round; and issue 11's: the store
//! modes against cookie mode, `info`, in the same invocation).

use std::time::Duration;

use crate::drive::Tally;

/// Which run a measurement is of.
pub struct Run<'a> {
    pub name: &'a str,
    /// Where the server kept conversations: cookie, memory, sqlite or redis.
    pub store: &'static str,
    /// Whether the server was pinned to one core (core 0).
    pub pinned: bool,
    pub in_flight: usize,
}

/// The server's CPU time during the measurement, the run's own Redis's, and the other
/// processes'.
pub struct Cpu {
    pub user: Duration,
    pub system: Duration,
    /// The run's own `redis-server` (user + system), when it has one.
    pub store: Option<Duration>,
    /// Cores' worth of CPU that other processes used.
    pub others_cores: f64,
}

/// The server's memory.
pub struct Memory {
    /// VmRSS in KiB after the first webhook, then at the start, middle and end of measurement.
    pub rss_kib: [u64; 4],
    /// VmHWM in KiB.
    pub peak_rss_kib: u64,
}

/// What one run measured.
pub struct Measured {
    name: String,
    store: &'static str,
    pinned: bool,
    in_flight: usize,
    requests: u64,
    per_second: f64,
    /// p50, p90, p99, max in µs.
    latency_us: [u32; 4],
    /// Over warm-up and measurement: every text is checked.
    checked: u64,
    errors: u64,
    wrong_replies: u64,
    first_problem: Option<String>,
    cpu_per_webhook_us: f64,
    /// The part of it spent in the kernel.
    system_per_webhook_us: f64,
    /// The run's own Redis's CPU per webhook (user + system), when it has one.
    store_cpu_per_webhook_us: Option<f64>,
    /// Cores' worth of CPU that other processes used during the measurement.
    others_cores: f64,
    memory: Memory,
    first_webhook: Duration,
    log_lines: u64,
}

impl Measured {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        run: Run<'_>,
        mut tally: Tally,
        warmup: Tally,
        cpu: Cpu,
        memory: Memory,
        first_webhook: Duration,
        log_lines: u64,
    ) -> Self {
        let requests = tally.requests();
        tally.latencies_us.sort_unstable();
        let at = |q: f64| percentile(&tally.latencies_us, q);
        let per_webhook_us = |cpu: Duration| cpu.as_secs_f64() * 1e6 / requests.max(1) as f64;
        Self {
            name: run.name.to_owned(),
            store: run.store,
            pinned: run.pinned,
            in_flight: run.in_flight,
            requests,
            per_second: requests as f64 / tally.elapsed.as_secs_f64().max(1e-9),
            latency_us: [at(0.50), at(0.90), at(0.99), at(1.0)],
            checked: requests + warmup.requests(),
            errors: tally.errors + warmup.errors,
            wrong_replies: tally.wrong_replies + warmup.wrong_replies,
            first_problem: warmup.first_problem.or(tally.first_problem),
            cpu_per_webhook_us: per_webhook_us(cpu.user + cpu.system),
            system_per_webhook_us: per_webhook_us(cpu.system),
            store_cpu_per_webhook_us: cpu.store.map(per_webhook_us),
            others_cores: cpu.others_cores,
            memory,
            first_webhook,
            log_lines,
        }
    }
}

impl Measured {
    /// The column heading: the run, and its store when `--store` gave it one.
    fn heading(&self) -> String {
        match self.store {
            "cookie" => self.name.clone(),
            store if store == self.name => self.name.clone(),
            store => format!("{}+{store}", self.name),
        }
    }

    /// The server's CPU per webhook and its own Redis's, if it has one.
    fn cpu_with_store_us(&self) -> f64 {
        self.cpu_per_webhook_us + self.store_cpu_per_webhook_us.unwrap_or(0.0)
    }

    /// A run of the counter flow with its conversations on the server (issue 11's targets).
    fn is_store_counter(&self) -> bool {
        self.store != "cookie" && !matches!(self.name.as_str(), "baseline" | "booking")
    }
}

fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index]
}

/// Issue 4's targets for sms-sessions runs, issue 10's for the booking flow, and issue 11's
/// for the store modes.
pub struct Targets {
    pub cpu_ratio_at_info: f64,
    /// `booking`'s CPU per webhook ÷ `info`'s (the counter flow, same log level).
    pub cpu_ratio_booking_to_counter: f64,
    /// `memory`'s server CPU per webhook ÷ `info`'s in cookie mode.
    pub cpu_ratio_memory_to_cookie: f64,
    /// The SQLite mode's webhooks/s with the server on one core.
    pub sqlite_per_second: f64,
    /// Every run's, the Redis mode's among them (at `--in-flight`, 64 by default).
    pub p99: Duration,
    pub peak_rss_kib: u64,
    pub first_webhook: Duration,
}

impl Default for Targets {
    fn default() -> Self {
        Self {
            cpu_ratio_at_info: 1.5,
            cpu_ratio_booking_to_counter: 1.25,
            cpu_ratio_memory_to_cookie: 1.15,
            sqlite_per_second: 10_000.0,
            p99: Duration::from_millis(10),
            peak_rss_kib: 16 * 1024,
            first_webhook: Duration::from_millis(50),
        }
    }
}

impl Targets {
    /// The limit on a CPU ratio named as [`ratios`] names it, if it has one.
    fn cpu_limit(&self, ratio: &str) -> Option<(f64, &'static str)> {
        match ratio {
            "info ÷ baseline" => Some((self.cpu_ratio_at_info, "baseline")),
            "booking ÷ info" => Some((self.cpu_ratio_booking_to_counter, "counter")),
            "memory ÷ info" => Some((self.cpu_ratio_memory_to_cookie, "cookie mode (info)")),
            _ => None,
        }
    }
}

/// Whether the runs were correct, and whether they met the targets.
pub struct Verdict {
    pub correctness_failed: bool,
    pub targets_missed: bool,
}

/// Prints the table, then each target with ✔/✘ (the CPU target only with `judge_cpu`; with
/// several rounds it is judged on their median, by [`print_rounds`]).
pub fn print(results: &[Measured], targets: &Targets, judge_cpu: bool) -> Verdict {
    let ratio_to = |name: &str| {
        let base = results.iter().find(|m| m.name == name);
        move |m: &Measured| base.map(|b| m.cpu_per_webhook_us / b.cpu_per_webhook_us)
    };
    let (ratio, to_counter) = (ratio_to("baseline"), ratio_to("info"));
    let shown = |r: Option<f64>| r.map_or("-".into(), |r| format!("{r:.2}"));
    let ms = |us: u32| format!("{:.2}", f64::from(us) / 1000.0);
    let mib = |kib: u64| format!("{:.1}", kib as f64 / 1024.0);
    let us = |us: Option<f64>| us.map_or("-".into(), |us| format!("{us:.2}"));
    type Row<'a> = (&'a str, Box<dyn Fn(&Measured) -> String + 'a>);
    let rows: Vec<Row> = vec![
        ("store", Box::new(|m| m.store.to_owned())),
        ("measured webhooks", Box::new(|m| m.requests.to_string())),
        ("webhooks/s", Box::new(|m| format!("{:.0}", m.per_second))),
        ("p50 ms", Box::new(move |m| ms(m.latency_us[0]))),
        ("p90 ms", Box::new(move |m| ms(m.latency_us[1]))),
        ("p99 ms", Box::new(move |m| ms(m.latency_us[2]))),
        ("max ms", Box::new(move |m| ms(m.latency_us[3]))),
        (
            "checked (incl. warm-up)",
            Box::new(|m| m.checked.to_string()),
        ),
        ("errors", Box::new(|m| m.errors.to_string())),
        ("wrong replies", Box::new(|m| m.wrong_replies.to_string())),
        (
            "server CPU µs/webhook",
            Box::new(|m| format!("{:.2}", m.cpu_per_webhook_us)),
        ),
        (
            "  of which kernel µs",
            Box::new(|m| format!("{:.2}", m.system_per_webhook_us)),
        ),
        (
            "Redis CPU µs/webhook",
            Box::new(move |m| us(m.store_cpu_per_webhook_us)),
        ),
        (
            "server+Redis µs/webhook",
            Box::new(move |m| us(m.store_cpu_per_webhook_us.map(|_| m.cpu_with_store_us()))),
        ),
        ("× baseline CPU", Box::new(move |m| shown(ratio(m)))),
        (
            "× counter (info) CPU",
            Box::new(move |m| shown(to_counter(m).filter(|_| m.name != "baseline"))),
        ),
        (
            "RSS MiB 1st webhook",
            Box::new(move |m| mib(m.memory.rss_kib[0])),
        ),
        (
            "RSS MiB start/mid/end",
            Box::new(move |m| {
                format!(
                    "{}/{}/{}",
                    mib(m.memory.rss_kib[1]),
                    mib(m.memory.rss_kib[2]),
                    mib(m.memory.rss_kib[3])
                )
            }),
        ),
        (
            "peak RSS MiB (VmHWM)",
            Box::new(move |m| mib(m.memory.peak_rss_kib)),
        ),
        (
            "spawn→1st webhook ms",
            Box::new(|m| format!("{:.1}", m.first_webhook.as_secs_f64() * 1e3)),
        ),
        ("server log lines", Box::new(|m| m.log_lines.to_string())),
        (
            "other processes' CPU %",
            Box::new(|m| format!("{:.0}", m.others_cores * 100.0)),
        ),
    ];
    print!("\n{:<24}", "");
    for m in results {
        print!("{:>17}", m.heading());
    }
    println!();
    for (label, cell) in &rows {
        print!("{label:<24}");
        for m in results {
            print!("{:>17}", cell(m));
        }
        println!();
    }
    let verdict = judge(results, targets, judge_cpu.then(|| ratios(results)));
    let missed = print_store_targets(results, targets, judge_cpu);
    Verdict {
        targets_missed: verdict.targets_missed || missed,
        ..verdict
    }
}

/// The CPU ratios of one round, named `run ÷ base`: each run's CPU per webhook over the
/// baseline's, `booking`'s over `info`'s (the counter flow), and the store runs' (`memory`,
/// `sqlite`, `redis`, and `redis (+Redis)` with its Redis's CPU) over `info`'s in cookie
/// mode, when both are there.
pub fn ratios(results: &[Measured]) -> Vec<(String, f64)> {
    let find = |name: &str| results.iter().find(|m| m.name == name);
    let over = |m: &Measured, base: &Measured| {
        let name = format!("{} ÷ {}", m.name, base.name);
        (name, m.cpu_per_webhook_us / base.cpu_per_webhook_us)
    };
    let mut ratios: Vec<(String, f64)> = find("baseline")
        .map(|baseline| {
            let runs = results.iter().filter(|m| m.name != "baseline");
            runs.map(|m| over(m, baseline)).collect()
        })
        .unwrap_or_default();
    if let (Some(booking), Some(info)) = (find("booking"), find("info")) {
        ratios.push(over(booking, info));
    }
    if let Some(info) = find("info").filter(|info| info.store == "cookie") {
        for m in ["memory", "sqlite", "redis"].into_iter().filter_map(find) {
            ratios.push(over(m, info));
            if m.store_cpu_per_webhook_us.is_some() {
                let name = format!("{} (+Redis) ÷ info", m.name);
                ratios.push((name, m.cpu_with_store_us() / info.cpu_per_webhook_us));
            }
        }
    }
    ratios
}

/// The ratios of every round and, per ratio, their median; judges the CPU targets on the
/// medians (`info ÷ baseline`, `booking ÷ info`). Returns whether one was missed.
pub fn print_rounds(rounds: &[Vec<(String, f64)>], targets: &Targets) -> bool {
    let Some(first) = rounds.first() else {
        return false;
    };
    let mut missed = false;
    println!("\nCPU per webhook ratios by round, and the median");
    for (name, _) in first {
        let mut values: Vec<f64> = rounds
            .iter()
            .filter_map(|round| round.iter().find(|(n, _)| n == name).map(|(_, r)| *r))
            .collect();
        let shown: Vec<String> = values.iter().map(|r| format!("{r:.2}")).collect();
        values.sort_by(f64::total_cmp);
        let median = match values.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => values[n / 2],
            n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        };
        let verdict = match targets.cpu_limit(name) {
            None => String::new(),
            Some((limit, _)) if median <= limit => format!("  ✔ ≤ {limit}×: met"),
            Some((limit, _)) => {
                missed = true;
                format!("  ✘ > {limit}×: missed")
            }
        };
        println!(
            "{name:<22} {}  → median {median:.2}{verdict}",
            shown.join("  ")
        );
    }
    missed
}

/// Issue 11's targets, each with its figures and met/missed, for the store runs of the counter
/// flow: against `info` in cookie mode of the same round (the memory CPU ratio only with
/// `judge_cpu`: with several rounds, [`print_rounds`] judges its median). Returns whether one
/// was missed.
fn print_store_targets(results: &[Measured], targets: &Targets, judge_cpu: bool) -> bool {
    let runs: Vec<&Measured> = results.iter().filter(|m| m.is_store_counter()).collect();
    if runs.is_empty() {
        return false;
    }
    let info = results
        .iter()
        .find(|m| m.name == "info" && m.store == "cookie");
    let mut missed = false;
    let mut verdict = |met: bool| {
        missed |= !met;
        if met { "met" } else { "missed" }
    };
    println!("\nstore modes (issue 11), against cookie mode (info) in this round:");
    let Some(info) = info else {
        println!("  (no info run in cookie mode here: the CPU ratios need one)");
        return false;
    };
    let correct = |m: &Measured| m.errors == 0 && m.wrong_replies == 0;
    for m in runs {
        let head = format!("  {:<14}", m.heading());
        let ratio = m.cpu_per_webhook_us / info.cpu_per_webhook_us;
        let cpu = format!(
            "server CPU {:.2} µs/webhook = {ratio:.2}× info's {:.2}",
            m.cpu_per_webhook_us, info.cpu_per_webhook_us
        );
        match m.store {
            "memory" => {
                let limit = targets.cpu_ratio_memory_to_cookie;
                let judged = if judge_cpu {
                    verdict(ratio <= limit).to_owned()
                } else {
                    "judged on the median of the rounds, below".into()
                };
                println!("{head}{cpu} — target ≤ {limit}×: {judged}");
            }
            "sqlite" => {
                let placement = if m.pinned {
                    "the server pinned to one core (core 0)"
                } else {
                    "the server NOT pinned (the target is for one core)"
                };
                let met = verdict(m.per_second >= targets.sqlite_per_second);
                println!(
                    "{head}{:.0} webhooks/s, {placement} — target ≥ {:.0}/s: {met} · {cpu}",
                    m.per_second, targets.sqlite_per_second
                );
            }
            _ => {
                let p99 = Duration::from_micros(m.latency_us[2].into());
                let met = verdict(p99 < targets.p99 && correct(m));
                println!(
                    "{head}p99 {:.2} ms at {} in flight, {} wrong counts, {} errors — target \
                     p99 < {} ms and no wrong count: {met}",
                    p99.as_secs_f64() * 1e3,
                    m.in_flight,
                    m.wrong_replies,
                    m.errors,
                    targets.p99.as_millis()
                );
                println!(
                    "{:16}{:.0} webhooks/s (info {:.0}) · {cpu}",
                    "", m.per_second, info.per_second
                );
                if let Some(store_us) = m.store_cpu_per_webhook_us {
                    let total = m.cpu_with_store_us();
                    println!(
                        "{:16}with Redis's own CPU {store_us:.2}: {total:.2} µs/webhook = \
                         {:.2}× info's",
                        "",
                        total / info.cpu_per_webhook_us
                    );
                }
            }
        }
    }
    missed
}

/// Each run's targets with ✔/✘; the CPU ratios in `ratios` (one round's, as [`ratios`]
/// names them) are judged for the run they are about.
fn judge(results: &[Measured], targets: &Targets, ratios: Option<Vec<(String, f64)>>) -> Verdict {
    let mut verdict = Verdict {
        correctness_failed: false,
        targets_missed: false,
    };
    println!();
    for m in results.iter().filter(|m| m.name != "baseline") {
        let correct = m.errors == 0 && m.wrong_replies == 0;
        verdict.correctness_failed |= !correct;
        let mut checks = vec![
            ("zero errors, zero wrong replies", correct),
            (
                "p99 < 10 ms",
                Duration::from_micros(m.latency_us[2].into()) < targets.p99,
            ),
            (
                "peak RSS < 16 MiB",
                m.memory.peak_rss_kib < targets.peak_rss_kib,
            ),
            (
                "start to first webhook < 50 ms",
                m.first_webhook < targets.first_webhook,
            ),
        ];
        if m.store == "sqlite" && m.is_store_counter() {
            let what = if m.pinned {
                "≥ 10000 webhooks/s, server on one core"
            } else {
                "≥ 10000 webhooks/s (server not pinned)"
            };
            checks.push((what, m.per_second >= targets.sqlite_per_second));
        }
        let mut line: Vec<String> = checks
            .iter()
            .map(|(what, met)| format!("{} {what}", if *met { "✔" } else { "✘" }))
            .collect();
        // The CPU targets need their base run in the same round (with several rounds they
        // are judged on the medians instead).
        for (name, r) in ratios.iter().flatten() {
            let about_m = name.split(" ÷ ").next() == Some(m.name.as_str());
            if let (true, Some((limit, base))) = (about_m, targets.cpu_limit(name)) {
                let met = *r <= limit;
                checks.push(("cpu", met));
                let mark = if met { "✔" } else { "✘" };
                line.push(format!("{mark} CPU/webhook ≤ {limit}× {base}"));
            }
        }
        println!("{}: {}", m.name, line.join(" · "));
        verdict.targets_missed |= checks.iter().any(|(_, met)| !met);
        if let Some(problem) = &m.first_problem {
            println!("{}: first problem: {problem}", m.name);
        }
    }
    verdict
}
