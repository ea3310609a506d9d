//! A fork-join team of spinning helper threads for the fused path's ~100 us kernels.
//!
//! rayon parks idle workers; waking one costs tens of microseconds on a VM, so a
//! `join` over a 200 us product often ends with the caller running both halves
//! itself (measured on W: 2 threads bought 0.46 -> 0.55 s/epoch instead of ~2x on
//! the products). A team's helpers spin between the closely spaced parallel
//! regions of a training step and park only after a millisecond without work.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A job: called once with each part index `0..parts`.
type Job = dyn Fn(usize) + Sync;

/// How long an idle helper spins before it parks.
const SPIN: Duration = Duration::from_millis(1);

struct Shared {
    /// The current job, lifetime erased; valid while `pending > 0`.
    job: Mutex<Option<&'static Job>>,
    generation: AtomicU64,
    pending: AtomicUsize,
    panicked: AtomicBool,
    sleeping: Mutex<usize>,
    wake: Condvar,
}

/// The calling thread plus `helpers` threads.
pub struct Team {
    shared: Arc<Shared>,
    helpers: usize,
    /// One fork-join at a time; a second caller runs its job alone.
    busy: Mutex<()>,
}

impl Team {
    fn new(helpers: usize) -> Self {
        let shared = Arc::new(Shared {
            job: Mutex::new(None),
            generation: AtomicU64::new(0),
            pending: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            sleeping: Mutex::new(0),
            wake: Condvar::new(),
        });
        let mut started = 0;
        for index in 1..=helpers {
            let shared = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("stride-team-{index}"))
                .spawn(move || helper(&shared, index));
            if spawned.is_err() {
                break;
            }
            started += 1;
        }
        Self {
            shared,
            helpers: started,
            busy: Mutex::new(()),
        }
    }

    /// Threads a job can be split over (the caller included).
    pub fn size(&self) -> usize {
        self.helpers + 1
    }

    /// Runs `job(0..self.size())`, part 0 on the calling thread, and returns when all are done.
    pub fn run<'a>(&self, job: &'a (dyn Fn(usize) + Sync + 'a)) {
        let parts = self.size();
        let Ok(_busy) = self.busy.try_lock() else {
            (0..parts).for_each(job);
            return;
        };
        if parts == 1 {
            job(0);
            return;
        }
        let shared = &*self.shared;
        // SAFETY: the reference is cleared below, after every helper has finished with it,
        // so it never outlives `job`.
        let erased: &'static Job = unsafe { std::mem::transmute::<&'a (dyn Fn(usize) + Sync + 'a), &'static Job>(job) };
        *shared.job.lock().unwrap_or_else(|p| p.into_inner()) = Some(erased);
        shared.pending.store(self.helpers, Ordering::Release);
        shared.generation.fetch_add(1, Ordering::AcqRel);
        if *shared.sleeping.lock().unwrap_or_else(|p| p.into_inner()) > 0 {
            shared.wake.notify_all();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| job(0)));
        let mut spins = 0u32;
        while shared.pending.load(Ordering::Acquire) > 0 {
            spins += 1;
            if spins < 1 << 16 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        *shared.job.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if let Err(payload) = mine {
            std::panic::resume_unwind(payload);
        }
        if shared.panicked.swap(false, Ordering::AcqRel) {
            panic!("a stride-team helper panicked in a fused kernel");
        }
    }
}

fn helper(shared: &Shared, index: usize) {
    let mut seen = 0u64;
    loop {
        let idle = Instant::now();
        let mut spins = 0u32;
        let generation = loop {
            let g = shared.generation.load(Ordering::Acquire);
            if g != seen {
                break g;
            }
            spins = spins.wrapping_add(1);
            if spins % 256 == 0 && idle.elapsed() > SPIN {
                let mut sleeping = shared.sleeping.lock().unwrap_or_else(|p| p.into_inner());
                *sleeping += 1;
                while shared.generation.load(Ordering::Acquire) == seen {
                    sleeping = shared.wake.wait(sleeping).unwrap_or_else(|p| p.into_inner());
                }
                *sleeping -= 1;
            } else {
                std::hint::spin_loop();
            }
        };
        seen = generation;
        let job = *shared.job.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(job) = job {
            if catch_unwind(AssertUnwindSafe(|| job(index))).is_err() {
                shared.panicked.store(true, Ordering::Release);
            }
        }
        shared.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The process-wide team: `RAYON_NUM_THREADS` threads if set (as candle and rayon read
/// it), else one per available core.
pub fn team() -> &'static Team {
    static TEAM: OnceLock<Team> = OnceLock::new();
    TEAM.get_or_init(|| {
        let threads = std::env::var("RAYON_NUM_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        Team::new(threads - 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_runs_once_per_call() {
        let team = Team::new(3);
        let counts: Vec<AtomicUsize> = (0..team.size()).map(|_| AtomicUsize::new(0)).collect();
        for _ in 0..1000 {
            team.run(&|part| {
                counts[part].fetch_add(1, Ordering::Relaxed);
            });
        }
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1000));
        // After a pause long enough for the helpers to park, they still wake up.
        std::thread::sleep(Duration::from_millis(5));
        team.run(&|part| {
            counts[part].fetch_add(1, Ordering::Relaxed);
        });
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1001));
    }
}
