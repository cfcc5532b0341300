//! The side-by-side table and the targets of issue 4 (and issue 10's: the booking flow's CPU
//! per webhook against the counter's, `info`, in the same round; issue 11's: the store
//! modes against cookie mode, `info`, in the same invocation; and issue 12's: the server CPU a
//! call-out adds per webhook, `calls` − `calls-local`).

use std::time::Duration;

use crate::drive::Tally;
use crate::shop::Counts;

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
    /// The call-out runs' stand-in shop (user + system).
    pub stand_in: Option<Duration>,
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
    /// The requests the stand-in shop answered during the measurement, when the run has one.
    stand_in_requests: Option<u64>,
    /// The connections it accepted during the measurement (new ones: kept-alive ones are not
    /// counted again).
    stand_in_connections: Option<u64>,
    /// The stand-in shop's CPU per webhook (user + system), when the run has one.
    stand_in_cpu_per_webhook_us: Option<f64>,
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
        stand_in: Option<Counts>,
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
            stand_in_requests: stand_in.map(|counts| counts.requests),
            stand_in_connections: stand_in.map(|counts| counts.connections),
            stand_in_cpu_per_webhook_us: cpu.stand_in.map(per_webhook_us),
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
        self.store != "cookie"
            && !matches!(
                self.name.as_str(),
                "baseline" | "booking" | "calls" | "calls-local"
            )
    }

    /// The stand-in requests a correct run makes during the measurement: one per webhook in
    /// `calls` (every measured text is an order number), none in `calls-local`.
    fn stand_in_requests_expected(&self) -> Option<u64> {
        match self.name.as_str() {
            "calls" => Some(self.requests),
            "calls-local" => Some(0),
            _ => None,
        }
    }
}

fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index]
}

/// Issue 4's targets for sms-sessions runs, issue 10's for the booking flow, issue 11's for
/// the store modes, and issue 12's for call-outs.
pub struct Targets {
    pub cpu_ratio_at_info: f64,
    /// `booking`'s CPU per webhook ÷ `info`'s (the counter flow, same log level).
    pub cpu_ratio_booking_to_counter: f64,
    /// `memory`'s server CPU per webhook ÷ `info`'s in cookie mode.
    pub cpu_ratio_memory_to_cookie: f64,
    /// `calls`' server CPU per webhook − `calls-local`'s, in µs: what a call-out to a
    /// loopback service adds.
    pub callout_cpu_us: f64,
    /// The SQLite mode's webhooks/s with the server on one core.
    pub sqlite_per_second: f64,
    /// Every run's, the Redis mode's among them (at `--in-flight`, 64 by default).
    pub p99: Duration,
    pub peak_rss_kib: u64,
    /// The `calls` run's (see [`judge`]).
    pub peak_rss_kib_with_calls: u64,
    pub first_webhook: Duration,
}

impl Default for Targets {
    fn default() -> Self {
        Self {
            cpu_ratio_at_info: 1.5,
            cpu_ratio_booking_to_counter: 1.25,
            cpu_ratio_memory_to_cookie: 1.15,
            callout_cpu_us: 150.0,
            sqlite_per_second: 10_000.0,
            p99: Duration::from_millis(10),
            peak_rss_kib: 16 * 1024,
            peak_rss_kib_with_calls: 24 * 1024,
            first_webhook: Duration::from_millis(50),
        }
    }
}

/// A CPU comparison as [`ratios`] names it: a ratio (`a ÷ b`) or, for the call-outs, a
/// difference in µs per webhook (`a − b`).
fn is_difference(name: &str) -> bool {
    name.contains(" − ")
}

/// The run a comparison is about: the one before ` ÷ ` or ` − `.
fn compared_run(name: &str) -> &str {
    name.split(" ÷ ")
        .next()
        .and_then(|name| name.split(" − ").next())
        .unwrap_or(name)
}

/// A comparison's value as shown: `1.23` (×) or `45.6 µs`.
fn shown_comparison(name: &str, value: f64) -> String {
    if is_difference(name) {
        format!("{value:.1} µs")
    } else {
        format!("{value:.2}")
    }
}

impl Targets {
    /// The limit on a CPU comparison named as [`ratios`] names it, if it has one, and what it
    /// is against, as a line says it (`≤ 1.25× counter`, `≤ 150 µs over calls-local`).
    fn cpu_limit(&self, ratio: &str) -> Option<(f64, &'static str)> {
        match ratio {
            "info ÷ baseline" => Some((self.cpu_ratio_at_info, "baseline")),
            "booking ÷ info" => Some((self.cpu_ratio_booking_to_counter, "counter")),
            "memory ÷ info" => Some((self.cpu_ratio_memory_to_cookie, "cookie mode (info)")),
            "calls − calls-local" => Some((self.callout_cpu_us, "calls-local")),
            _ => None,
        }
    }

    /// `≤ LIMIT× BASE` or `≤ LIMIT µs over BASE`.
    fn limit_text(ratio: &str, limit: f64, base: &str) -> String {
        if is_difference(ratio) {
            format!("≤ {limit} µs over {base}")
        } else {
            format!("≤ {limit}× {base}")
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
        (
            "stand-in requests",
            Box::new(|m| m.stand_in_requests.map_or("-".into(), |n| n.to_string())),
        ),
        (
            "stand-in new connections",
            Box::new(|m| m.stand_in_connections.map_or("-".into(), |n| n.to_string())),
        ),
        (
            "stand-in CPU µs/webhook",
            Box::new(move |m| us(m.stand_in_cpu_per_webhook_us)),
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
    let missed_callout = print_callout_target(results, targets, judge_cpu);
    Verdict {
        targets_missed: verdict.targets_missed || missed || missed_callout,
        ..verdict
    }
}

/// The CPU ratios of one round, named `run ÷ base`: each run's CPU per webhook over the
/// baseline's, `booking`'s over `info`'s (the counter flow), and the store runs' (`memory`,
/// `sqlite`, `redis`, and `redis (+Redis)` with its Redis's CPU) over `info`'s in cookie
/// mode, when both are there; and one difference, `calls − calls-local`: the µs of server CPU
/// per webhook that a call-out adds.
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
    if let (Some(calls), Some(local)) = (find("calls"), find("calls-local")) {
        let added = calls.cpu_per_webhook_us - local.cpu_per_webhook_us;
        ratios.push(("calls − calls-local".into(), added));
    }
    ratios
}

/// The ratios (and the call-outs' difference) of every round and, per ratio, their median;
/// judges the CPU targets on the medians (`info ÷ baseline`, `booking ÷ info`, `memory ÷
/// info`, `calls − calls-local`). Returns whether one was missed.
pub fn print_rounds(rounds: &[Vec<(String, f64)>], targets: &Targets) -> bool {
    let Some(first) = rounds.first() else {
        return false;
    };
    let mut missed = false;
    println!("\nCPU per webhook ratios (and µs differences) by round, and the median");
    for (name, _) in first {
        let mut values: Vec<f64> = rounds
            .iter()
            .filter_map(|round| round.iter().find(|(n, _)| n == name).map(|(_, r)| *r))
            .collect();
        let shown: Vec<String> = values.iter().map(|r| shown_comparison(name, *r)).collect();
        values.sort_by(f64::total_cmp);
        let median = match values.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => values[n / 2],
            n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        };
        let verdict = match targets.cpu_limit(name) {
            None => String::new(),
            Some((limit, base)) if median <= limit => {
                format!("  ✔ {}: met", Targets::limit_text(name, limit, base))
            }
            Some((limit, base)) => {
                missed = true;
                format!("  ✘ {}: missed", Targets::limit_text(name, limit, base))
            }
        };
        println!(
            "{name:<22} {}  → median {}{verdict}",
            shown.join("  "),
            shown_comparison(name, median)
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

/// Issue 12's target with its figures: the server CPU per webhook of `calls` and of
/// `calls-local` in this round, the difference (met/missed only with `judge_cpu`: with several
/// rounds [`print_rounds`] judges its median), and the stand-in's count of requests against the
/// webhooks. Returns whether the target was missed.
fn print_callout_target(results: &[Measured], targets: &Targets, judge_cpu: bool) -> bool {
    let find = |name: &str| results.iter().find(|m| m.name == name);
    let (calls, local) = (find("calls"), find("calls-local"));
    if calls.is_none() && local.is_none() {
        return false;
    }
    println!(
        "\ncall-outs (issue 12): the order flow with one call-out per webhook to a loopback \
         stand-in (calls), against the same flow with a set node instead (calls-local):"
    );
    for m in [local, calls].into_iter().flatten() {
        let count = |n: Option<u64>| n.map_or("-".into(), |n| n.to_string());
        let requests = count(m.stand_in_requests);
        let connections = count(m.stand_in_connections);
        println!(
            "  {:<12} server CPU {:.2} µs/webhook ({:.2} in the kernel) · {:.0} webhooks/s · \
             {requests} stand-in requests for {} measured webhooks, on {connections} new \
             connections",
            m.name, m.cpu_per_webhook_us, m.system_per_webhook_us, m.per_second, m.requests
        );
    }
    let (Some(calls), Some(local)) = (calls, local) else {
        println!("  (the difference needs both runs in the round)");
        return false;
    };
    let added = calls.cpu_per_webhook_us - local.cpu_per_webhook_us;
    let limit = targets.callout_cpu_us;
    let met = added <= limit;
    let judged = match (judge_cpu, met) {
        (false, _) => "judged on the median of the rounds, below",
        (true, true) => "met",
        (true, false) => "missed",
    };
    println!(
        "  calls − calls-local = {added:.1} µs of server CPU per webhook — target ≤ {limit} µs: \
         {judged}"
    );
    judge_cpu && !met
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
            if m.name == "calls" {
                // The call-out client adds the compiled-in Mozilla roots of rustls and a pool
                // of kept-alive connections (one per webhook in flight).
                (
                    "peak RSS < 24 MiB",
                    m.memory.peak_rss_kib < targets.peak_rss_kib_with_calls,
                )
            } else {
                (
                    "peak RSS < 16 MiB",
                    m.memory.peak_rss_kib < targets.peak_rss_kib,
                )
            },
            (
                "start to first webhook < 50 ms",
                m.first_webhook < targets.first_webhook,
            ),
        ];
        if let Some(expected) = m.stand_in_requests_expected() {
            // Every call-out the flow makes reaches the stand-in, and nothing else does.
            let met = m.stand_in_requests == Some(expected);
            verdict.correctness_failed |= !met;
            let what = if expected == 0 {
                "no call-outs"
            } else {
                "one call-out per webhook"
            };
            checks.push((what, met));
        }
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
            let about_m = compared_run(name) == m.name;
            if let (true, Some((limit, base))) = (about_m, targets.cpu_limit(name)) {
                let met = *r <= limit;
                checks.push(("cpu", met));
                let mark = if met { "✔" } else { "✘" };
                let limit = Targets::limit_text(name, limit, base);
                line.push(format!("{mark} CPU/webhook {limit}"));
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
