//! CPU plumbing shared by Stride's fast paths (the fused MLP, the fused optimizer
//! updates, the in-memory training set).
//!
//! - [`team`]: a fork-join team of spinning threads, for kernels of ~100 us that a
//!   parked rayon worker would wake up too late for;
//! - [`huge_page_vec`]: a buffer the kernel backs with 2 MiB pages where it can, so
//!   gathering random rows of a 188 MB training set does not miss the TLB on every row;
//! - [`par_chunks_mut`]: an element-wise loop split over the team, compiled for AVX2
//!   where the CPU has it (runtime dispatch) and for the baseline elsewhere.
#![deny(missing_docs)]

mod team;

pub use team::{set_threads, team, Team};

/// Keeps freed memory in the process instead of returning it to the kernel (glibc; a
/// no-op elsewhere), once per process.
///
/// A training step allocates and frees the same multi-megabyte buffers (activations,
/// gradients) every step. glibc serves them with fresh `mmap`s or trims them off the
/// heap, so every step pays a page fault per 4 KiB page (8 % of the CNN's step in a
/// profile); with these two settings the second step reuses the first step's pages.
/// Call it after allocating large long-lived buffers such as the training set: those are
/// better served by their own `mmap` (aligned for transparent huge pages; W's epoch was
/// 8 % slower with the training set on the heap).
pub fn retain_freed_memory() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes allocator thresholds; it is safe to call at any time.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        }
    });
}

/// A vector of `len` values from `fill`, whose memory is advised for transparent huge
/// pages before it is first touched (Linux; elsewhere a plain vector). The values are the
/// same either way; only the page size differs.
pub fn huge_page_vec<T>(len: usize, fill: impl Iterator<Item = T>) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(len);
    advise_huge_pages(v.as_mut_ptr().cast(), len * std::mem::size_of::<T>());
    v.extend(fill.take(len));
    v
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(ptr: *mut u8, bytes: usize) {
    const HUGE: usize = 1 << 21;
    let start = (ptr as usize).div_ceil(HUGE) * HUGE;
    let end = (ptr as usize + bytes) / HUGE * HUGE;
    if end > start {
        // SAFETY: the range lies inside an allocation this process owns; MADV_HUGEPAGE only
        // changes how the kernel backs it, never its contents. A refusal (THP off) is harmless.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_ptr: *mut u8, _bytes: usize) {}

/// Sum of squares, for gradient norms: eight independent f32 lanes per 256-element chunk
/// (so the compiler can vectorise without reordering a single sum), chunk totals added in f64.
pub fn sum_of_squares(values: &[f32]) -> f64 {
    values
        .chunks(256)
        .map(|chunk| {
            let mut lanes = [0f32; 8];
            let mut exact = chunk.chunks_exact(8);
            for block in &mut exact {
                for (lane, x) in lanes.iter_mut().zip(block) {
                    *lane += x * x;
                }
            }
            let tail: f32 = exact.remainder().iter().map(|x| x * x).sum();
            f64::from(lanes.iter().sum::<f32>() + tail)
        })
        .sum()
}

/// Calls `f(offset, chunk)` over consecutive chunks of `dst`, one per team thread when
/// `dst.len() >= min_parallel` (else one chunk on the caller), through a copy compiled for
/// AVX2 and FMA where the CPU has them. That copy vectorises `f` only if the compiler
/// inlines it: true of the one-line optimizer kernels, not of Adam's loop, which therefore
/// dispatches itself (`stride-optim/src/adam.rs`).
pub fn par_chunks_mut<T: Send, F: Fn(usize, &mut [T]) + Sync>(dst: &mut [T], min_parallel: usize, f: F) {
    let len = dst.len();
    let team = team();
    let parts = if len >= min_parallel { team.size() } else { 1 };
    if parts == 1 {
        dispatch(&f, 0, dst);
        return;
    }
    let base = DisjointMut::new(dst);
    team.run(&|part| {
        // Bounds in multiples of 16 elements keep each thread on its own cache lines.
        let bound = |p: usize| if p >= parts { len } else { (len * p / parts) / 16 * 16 };
        let (start, end) = (bound(part), bound(part + 1));
        if start < end {
            // SAFETY: the parts' ranges are disjoint and inside `dst`, which outlives `run`.
            let chunk = unsafe { base.range(start, end) };
            dispatch(&f, start, chunk);
        }
    });
}

/// Like [`par_chunks_mut`] over three destinations and one source of the same length,
/// chunked alike: `f(a, b, c, d)` for each range (a fused optimizer update writes the
/// weights and two state buffers from the gradient in one pass).
///
/// Returns false, doing nothing, when the lengths differ.
pub fn par_chunks3_mut<F>(a: &mut [f32], b: &mut [f32], c: &mut [f32], d: &[f32], min_parallel: usize, f: F) -> bool
where
    F: Fn(&mut [f32], &mut [f32], &mut [f32], &[f32]) + Sync,
{
    let len = a.len();
    if b.len() != len || c.len() != len || d.len() != len {
        return false;
    }
    let (pb, pc) = (DisjointMut::new(b), DisjointMut::new(c));
    // One chunked pass over `a` carries the other three along at the same offsets.
    par_chunks_mut(a, min_parallel, |offset, chunk| {
        let n = chunk.len();
        // SAFETY: the chunk ranges are disjoint and inside slices of length `len`, borrowed
        // mutably for the whole call; `a`'s own chunk is the one `par_chunks_mut` handed out.
        let (b, c) = unsafe { (pb.range(offset, offset + n), pc.range(offset, offset + n)) };
        f(chunk, b, c, &d[offset..offset + n]);
    });
    true
}

/// A mutable slice whose disjoint ranges are handed to different threads of a team job.
pub struct DisjointMut<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: the slice is borrowed mutably for 'a; callers of `range` promise that no two
// live ranges overlap, which makes sharing the wrapper between threads sound.
unsafe impl<T: Send> Send for DisjointMut<'_, T> {}
unsafe impl<T: Send> Sync for DisjointMut<'_, T> {}

impl<'a, T> DisjointMut<'a, T> {
    /// Wraps `slice` for the length of its borrow.
    pub fn new(slice: &'a mut [T]) -> Self {
        Self {
            ptr: slice.as_mut_ptr(),
            len: slice.len(),
            _borrow: std::marker::PhantomData,
        }
    }

    /// Elements `start..end`, mutably; panics outside the slice.
    ///
    /// # Safety
    /// No other live reference may overlap the range.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn range(&self, start: usize, end: usize) -> &mut [T] {
        assert!(start <= end && end <= self.len, "range {start}..{end} of {}", self.len);
        std::slice::from_raw_parts_mut(self.ptr.add(start), end - start)
    }

    /// The whole slice, read-only.
    ///
    /// # Safety
    /// No thread may be writing to it.
    pub unsafe fn all(&self) -> &[T] {
        std::slice::from_raw_parts(self.ptr, self.len)
    }
}

/// Runs `f` through a copy compiled with AVX2 and FMA when the CPU has them.
#[inline]
fn dispatch<T, F: Fn(usize, &mut [T])>(f: &F, offset: usize, chunk: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the features were just detected on this CPU.
            unsafe { with_avx2(f, offset, chunk) };
            return;
        }
    }
    f(offset, chunk)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2<T, F: Fn(usize, &mut [T])>(f: &F, offset: usize, chunk: &mut [T]) {
    // `f` is inlined here and vectorised for AVX2. Rust never contracts a * b + c into an
    // FMA on its own, so results are bit-identical to the baseline copy.
    f(offset, chunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_page_vec_holds_the_values() {
        let v = huge_page_vec(5_000_000, (0..).map(|i| i as f32));
        assert_eq!(v.len(), 5_000_000);
        assert_eq!(v[4_999_999], 4_999_999.0);
        let short = huge_page_vec(10, 0..3u8);
        assert_eq!(short, vec![0, 1, 2]);
    }

    #[test]
    fn three_way_chunks_stay_aligned() {
        for len in [0usize, 5, 100_003] {
            let (mut a, mut b, mut c) = (vec![0.0f32; len], vec![1.0f32; len], vec![2.0f32; len]);
            let d: Vec<f32> = (0..len).map(|i| i as f32).collect();
            assert!(par_chunks3_mut(&mut a, &mut b, &mut c, &d, 64, |a, b, c, d| {
                a.copy_from_slice(d);
                b.iter_mut().zip(d).for_each(|(b, d)| *b += d);
                c.iter_mut().zip(d).for_each(|(c, d)| *c *= d);
            }));
            for i in 0..len {
                let x = i as f32;
                assert_eq!((a[i], b[i], c[i]), (x, 1.0 + x, 2.0 * x));
            }
        }
        assert!(!par_chunks3_mut(
            &mut [0.0],
            &mut [],
            &mut [0.0],
            &[0.0],
            1,
            |_, _, _, _| {}
        ));
    }

    #[test]
    fn chunks_cover_every_element_once() {
        use std::sync::atomic::{AtomicU32, Ordering};
        for len in [0usize, 1, 15, 17, 1000, 100_003] {
            let mut v: Vec<usize> = vec![0; len];
            let calls = AtomicU32::new(0);
            par_chunks_mut(&mut v, 64, |offset, chunk| {
                calls.fetch_add(1, Ordering::Relaxed);
                for (i, x) in chunk.iter_mut().enumerate() {
                    *x += offset + i + 1;
                }
            });
            assert!(v.iter().enumerate().all(|(i, &x)| x == i + 1), "len {len}");
            let expected = if len >= 64 { team().size() as u32 } else { 1 };
            assert!(calls.load(Ordering::Relaxed) <= expected);
        }
    }
}
