//! The side-by-side table and the targets of issue 4.

use std::time::Duration;

use crate::drive::Tally;

/// The server's CPU time during the measurement, and the other processes'.
pub struct Cpu {
    pub user: Duration,
    pub system: Duration,
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
    requests: u64,
    per_second: f64,
    /// p50, p90, p99, max in µs.
    latency_us: [u32; 4],
    /// Over warm-up and measurement: every text is checked.
    checked: u64,
    errors: u64,
    wrong_counts: u64,
    first_problem: Option<String>,
    cpu_per_webhook_us: f64,
    /// The part of it spent in the kernel.
    system_per_webhook_us: f64,
    /// Cores' worth of CPU that other processes used during the measurement.
    others_cores: f64,
    memory: Memory,
    first_webhook: Duration,
    log_lines: u64,
}

impl Measured {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
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
        Self {
            name: name.to_owned(),
            requests,
            per_second: requests as f64 / tally.elapsed.as_secs_f64().max(1e-9),
            latency_us: [at(0.50), at(0.90), at(0.99), at(1.0)],
            checked: requests + warmup.requests(),
            errors: tally.errors + warmup.errors,
            wrong_counts: tally.wrong_counts + warmup.wrong_counts,
            first_problem: warmup.first_problem.or(tally.first_problem),
            cpu_per_webhook_us: (cpu.user + cpu.system).as_secs_f64() * 1e6
                / requests.max(1) as f64,
            system_per_webhook_us: cpu.system.as_secs_f64() * 1e6 / requests.max(1) as f64,
            others_cores: cpu.others_cores,
            memory,
            first_webhook,
            log_lines,
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

/// Issue 4's targets for sms-sessions runs.
pub struct Targets {
    pub cpu_ratio_at_info: f64,
    pub p99: Duration,
    pub peak_rss_kib: u64,
    pub first_webhook: Duration,
}

impl Default for Targets {
    fn default() -> Self {
        Self {
            cpu_ratio_at_info: 1.5,
            p99: Duration::from_millis(10),
            peak_rss_kib: 16 * 1024,
            first_webhook: Duration::from_millis(50),
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
    let baseline = results.iter().find(|m| m.name == "baseline");
    let ratio = |m: &Measured| baseline.map(|b| m.cpu_per_webhook_us / b.cpu_per_webhook_us);
    let ms = |us: u32| format!("{:.2}", f64::from(us) / 1000.0);
    let mib = |kib: u64| format!("{:.1}", kib as f64 / 1024.0);
    type Row<'a> = (&'a str, Box<dyn Fn(&Measured) -> String + 'a>);
    let rows: Vec<Row> = vec![
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
        ("wrong counts", Box::new(|m| m.wrong_counts.to_string())),
        (
            "server CPU µs/webhook",
            Box::new(|m| format!("{:.2}", m.cpu_per_webhook_us)),
        ),
        (
            "  of which kernel µs",
            Box::new(|m| format!("{:.2}", m.system_per_webhook_us)),
        ),
        (
            "× baseline CPU",
            Box::new(move |m| ratio(m).map_or("-".into(), |r| format!("{r:.2}"))),
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
        print!("{:>17}", m.name);
    }
    println!();
    for (label, cell) in &rows {
        print!("{label:<24}");
        for m in results {
            print!("{:>17}", cell(m));
        }
        println!();
    }
    judge(results, targets, judge_cpu.then_some(ratio))
}

/// Each run's CPU per webhook as a multiple of the baseline's in the same round.
pub fn ratios(results: &[Measured]) -> Vec<(String, f64)> {
    let Some(baseline) = results.iter().find(|m| m.name == "baseline") else {
        return Vec::new();
    };
    results
        .iter()
        .filter(|m| m.name != "baseline")
        .map(|m| {
            (
                m.name.clone(),
                m.cpu_per_webhook_us / baseline.cpu_per_webhook_us,
            )
        })
        .collect()
}

/// The ratios of every round and, per run, their median; judges the CPU target on the
/// median of `info`. Returns whether it was missed.
pub fn print_rounds(rounds: &[Vec<(String, f64)>], targets: &Targets) -> bool {
    let Some(first) = rounds.first() else {
        return false;
    };
    let mut missed = false;
    println!("\n× baseline CPU by round, and the median");
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
        let verdict = if name != "info" {
            String::new()
        } else if median <= targets.cpu_ratio_at_info {
            format!("  ✔ ≤ {}×", targets.cpu_ratio_at_info)
        } else {
            missed = true;
            format!("  ✘ > {}×", targets.cpu_ratio_at_info)
        };
        println!(
            "{name:<8} {}  → median {median:.2}{verdict}",
            shown.join("  ")
        );
    }
    missed
}

fn judge(
    results: &[Measured],
    targets: &Targets,
    ratio: Option<impl Fn(&Measured) -> Option<f64>>,
) -> Verdict {
    let mut verdict = Verdict {
        correctness_failed: false,
        targets_missed: false,
    };
    println!();
    for m in results.iter().filter(|m| m.name != "baseline") {
        let correct = m.errors == 0 && m.wrong_counts == 0;
        verdict.correctness_failed |= !correct;
        let mut checks = vec![
            ("zero errors, zero wrong counts", correct),
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
        // The CPU target needs the baseline in the same round (with several rounds it is
        // judged on their median instead).
        if let (true, Some(r)) = (m.name == "info", ratio.as_ref().and_then(|ratio| ratio(m))) {
            checks.push((
                "CPU/webhook ≤ 1.5× baseline",
                r <= targets.cpu_ratio_at_info,
            ));
        }
        let line: Vec<String> = checks
            .iter()
            .map(|(what, met)| format!("{} {what}", if *met { "✔" } else { "✘" }))
            .collect();
        println!("{}: {}", m.name, line.join(" · "));
        verdict.targets_missed |= checks.iter().any(|(_, met)| !met);
        if let Some(problem) = &m.first_problem {
            println!("{}: first problem: {problem}", m.name);
        }
    }
    verdict
}
