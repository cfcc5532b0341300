//! The load itself: `in_flight` workers take idle phones from a shared pool, each sending one
//! text and putting the phone back, until the request budget or the deadline runs out.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::phone::{Outcome, Phone, Signer};
use crate::script::Script;

/// The phones not currently texting. With at least as many phones as workers, a worker never
/// finds it empty.
pub type Pool = Arc<Mutex<VecDeque<Phone>>>;

/// What one stretch of load produced.
#[derive(Default)]
pub struct Tally {
    pub latencies_us: Vec<u32>,
    pub errors: u64,
    pub wrong_replies: u64,
    pub first_problem: Option<String>,
    pub elapsed: Duration,
}

impl Tally {
    pub fn requests(&self) -> u64 {
        self.latencies_us.len() as u64
    }

    pub fn add(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        self.wrong_replies += other.wrong_replies;
        self.first_problem = self.first_problem.take().or(other.first_problem);
        self.elapsed += other.elapsed;
    }

    fn record(&mut self, outcome: Outcome, latency: Duration) {
        self.latencies_us
            .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
        let problem = match outcome {
            Outcome::Checked => return,
            Outcome::Wrong { expected, got } => {
                self.wrong_replies += 1;
                format!("expected {expected}, got {got:?}")
            }
            Outcome::Failed(error) => {
                self.errors += 1;
                error
            }
        };
        self.first_problem.get_or_insert(problem);
    }
}

/// Sends `requests` texts with `in_flight` at a time (fewer if `deadline` passes first).
pub async fn drive(
    pool: &Pool,
    signer: &Arc<Signer>,
    script: Script,
    requests: u64,
    in_flight: usize,
    deadline: Instant,
) -> Tally {
    let started = Instant::now();
    let budget = Arc::new(AtomicU64::new(requests));
    let workers: Vec<_> = (0..in_flight)
        .map(|_| {
            let (pool, signer, budget) = (pool.clone(), signer.clone(), budget.clone());
            tokio::spawn(async move { work(pool, signer, script, budget, deadline).await })
        })
        .collect();
    let mut tally = Tally::default();
    for worker in workers {
        tally.add(worker.await.expect("worker does not panic"));
    }
    tally.elapsed = started.elapsed();
    tally
}

async fn work(
    pool: Pool,
    signer: Arc<Signer>,
    script: Script,
    budget: Arc<AtomicU64>,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let take_one =
        || budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    while Instant::now() < deadline && take_one().is_ok() {
        let mut phone = pool
            .lock()
            .expect("pool lock")
            .pop_front()
            .expect("at least as many phones as workers");
        let sent_at = Instant::now();
        let outcome = phone.text(&signer, script).await;
        tally.record(outcome, sent_at.elapsed());
        pool.lock().expect("pool lock").push_back(phone);
    }
    tally
}
