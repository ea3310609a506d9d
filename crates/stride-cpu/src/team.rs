//! A fork-join team of spinning helper threads for the fused path's ~100 us kernels.
//!
//! Parts are claimed, not assigned: the caller and every awake helper take the next
//! unclaimed part until none is left, so a helper that the OS has descheduled (the cores
//! are shared with another process) costs nothing: the caller does its part. Spinning
//! yields the core regularly, so an oversubscribed machine runs the other process instead.
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
    /// The current job, lifetime erased; valid while `done < parts`.
    job: Mutex<Option<&'static Job>>,
    generation: AtomicU64,
    /// The generation (high 40 bits) and the next unclaimed part (low 24 bits): a claim
    /// succeeds only within the generation it was made for.
    claim: AtomicU64,
    /// Parts of the current job finished.
    done: AtomicUsize,
    /// Parts of the current job.
    parts: AtomicUsize,
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
            claim: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            parts: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            sleeping: Mutex::new(0),
            wake: Condvar::new(),
        });
        let mut started = 0;
        for index in 1..=helpers {
            let shared = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("stride-team-{index}"))
                .spawn(move || helper(&shared));
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
        let generation = shared.generation.load(Ordering::Acquire) + 1;
        shared.parts.store(parts, Ordering::Release);
        shared.done.store(0, Ordering::Release);
        shared.claim.store(generation << PART_BITS, Ordering::Release);
        shared.generation.store(generation, Ordering::Release);
        if *shared.sleeping.lock().unwrap_or_else(|p| p.into_inner()) > 0 {
            shared.wake.notify_all();
        }
        let mut mine = Ok(());
        while let Some(part) = claim(shared, generation, parts) {
            let r = catch_unwind(AssertUnwindSafe(|| job(part)));
            if r.is_err() && mine.is_ok() {
                mine = r;
            }
            shared.done.fetch_add(1, Ordering::AcqRel);
        }
        let mut spins = 0u32;
        while shared.done.load(Ordering::Acquire) < parts {
            spins = spins.wrapping_add(1);
            if spins % 64 == 0 {
                // A helper holding a part may be waiting for this core.
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
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

/// Bits of [`Shared::claim`] that hold the part index.
const PART_BITS: u32 = 24;

/// The next unclaimed part of generation `generation`'s job, if any is left.
fn claim(shared: &Shared, generation: u64, parts: usize) -> Option<usize> {
    let mut current = shared.claim.load(Ordering::Acquire);
    loop {
        let part = (current & ((1 << PART_BITS) - 1)) as usize;
        if current >> PART_BITS != generation || part >= parts {
            return None;
        }
        match shared
            .claim
            .compare_exchange_weak(current, current + 1, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => return Some(part),
            Err(now) => current = now,
        }
    }
}

fn helper(shared: &Shared) {
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
            } else if spins % 64 == 0 {
                // Give the core away if anything else wants it (a no-op on an idle machine).
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        };
        seen = generation;
        let parts = shared.parts.load(Ordering::Acquire);
        while let Some(part) = claim(shared, generation, parts) {
            // The claim succeeded, so the caller is still waiting for this part and the job
            // it set for this generation is in place.
            let job = *shared.job.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(job) = job {
                if catch_unwind(AssertUnwindSafe(|| job(part))).is_err() {
                    shared.panicked.store(true, Ordering::Release);
                }
            }
            shared.done.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Threads asked for with [`set_threads`] (0: not set).
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets the team's size (the caller included) before its first use; false if it already
/// runs (its size is then fixed for the process).
pub fn set_threads(threads: usize) -> bool {
    THREADS.store(threads.max(1), Ordering::Release);
    TEAM.get().is_none_or(|t| t.size() == threads.max(1))
}

static TEAM: OnceLock<Team> = OnceLock::new();

/// The process-wide team: [`set_threads`] threads if set, else `RAYON_NUM_THREADS` (as
/// candle and rayon read it), else one per core the process may use.
pub fn team() -> &'static Team {
    TEAM.get_or_init(|| {
        let set = THREADS.load(Ordering::Acquire);
        let threads = (set > 0)
            .then_some(set)
            .or_else(|| {
                std::env::var("RAYON_NUM_THREADS")
                    .ok()
                    .and_then(|v| v.parse::<usize>().ok())
            })
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

    #[test]
    fn parts_are_done_once_even_with_more_helpers_than_cores_and_a_busy_core() {
        // Oversubscribed on purpose: 8 helpers and a spinning neighbour on a small machine.
        let stop = Arc::new(AtomicBool::new(false));
        let neighbour = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        };
        let team = Team::new(8);
        let counts: Vec<AtomicUsize> = (0..team.size()).map(|_| AtomicUsize::new(0)).collect();
        for _ in 0..2000 {
            team.run(&|part| {
                counts[part].fetch_add(1, Ordering::Relaxed);
            });
        }
        stop.store(true, Ordering::Relaxed);
        let _ = neighbour.join();
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 2000));
    }
}
