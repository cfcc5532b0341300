//! The machine around the test: how busy the other processes keep it, from `/proc/stat`, so a
//! run can wait for a quiet moment and say how quiet it was.

use std::time::{Duration, Instant};

/// Busy and total ticks of all cores since boot.
#[derive(Debug, Clone, Copy)]
pub struct CpuTicks {
    busy: u64,
    total: u64,
}

impl CpuTicks {
    pub fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let fields: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        let total = fields.iter().take(8).sum();
        // idle and iowait are the 4th and 5th fields.
        let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
        Self {
            busy: total - idle.min(total),
            total,
        }
    }

    /// Busy ticks since `earlier`.
    pub fn busy_since(self, earlier: Self) -> u64 {
        self.busy.saturating_sub(earlier.busy)
    }

    fn busy_fraction_since(self, earlier: Self) -> f64 {
        let total = self.total.saturating_sub(earlier.total).max(1);
        self.busy_since(earlier) as f64 / total as f64
    }
}

/// Waits until the whole machine is under `threshold` busy over half a second, for at most
/// `patience`. Returns the last busy fraction seen.
pub fn wait_until_quiet(threshold: f64, patience: Duration) -> f64 {
    let give_up = Instant::now() + patience;
    loop {
        let before = CpuTicks::now();
        std::thread::sleep(Duration::from_millis(500));
        let busy = CpuTicks::now().busy_fraction_since(before);
        if busy < threshold || Instant::now() >= give_up {
            return busy;
        }
    }
}

/// This process's own user + system ticks (the load generator and its log reader).
pub fn own_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    fields.iter().sum()
}
