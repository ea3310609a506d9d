//! Seeded shuffling of example indices into mini-batches.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{DataError, Result};

/// Splits `0..len` into batches, reshuffled every epoch from `(seed, epoch)`.
///
/// Each epoch's order depends only on the seed and the epoch number, so a run
/// resumed at epoch `k` sees the same batches as an uninterrupted one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batcher {
    len: usize,
    batch_size: usize,
    seed: u64,
    shuffle: bool,
    drop_last: bool,
}

impl Batcher {
    /// A shuffling batcher that keeps the last partial batch.
    pub fn new(len: usize, batch_size: usize, seed: u64) -> Result<Self> {
        if batch_size == 0 {
            return Err(DataError::Invalid {
                what: "batch size",
                message: "0: expected at least 1".into(),
            });
        }
        Ok(Self {
            len,
            batch_size,
            seed,
            shuffle: true,
            drop_last: false,
        })
    }

    /// Whether to shuffle (default true); evaluation uses the natural order.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Whether to drop a last batch smaller than the batch size (default false).
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Batches per epoch.
    pub fn num_batches(&self) -> usize {
        if self.drop_last {
            self.len / self.batch_size
        } else {
            self.len.div_ceil(self.batch_size)
        }
    }

    /// The example order of `epoch` (a permutation of `0..len`).
    pub fn order(&self, epoch: u64) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.len as u32).collect();
        if self.shuffle {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            rng.set_stream(epoch);
            // Fisher-Yates on the raw stream: ChaCha8's output is fixed across
            // versions, unlike the sampling helpers built on top of it.
            for i in (1..order.len()).rev() {
                let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                order.swap(i, j);
            }
        }
        order
    }

    /// The batches of `epoch`, each a list of example indices.
    pub fn batches(&self, epoch: u64) -> Vec<Vec<u32>> {
        let order = self.order(epoch);
        order
            .chunks(self.batch_size)
            .filter(|c| !self.drop_last || c.len() == self.batch_size)
            .map(<[u32]>::to_vec)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_batches_and_every_index_once() {
        let b = Batcher::new(10, 4, 7).unwrap();
        assert_eq!(b.batches(3), b.batches(3));
        assert_ne!(b.order(0), b.order(1));
        let mut all: Vec<u32> = b.batches(0).concat();
        assert_eq!(b.batches(0).last().unwrap().len(), 2);
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(b.clone().drop_last(true).batches(0).len(), 2);
        assert_ne!(Batcher::new(10, 4, 8).unwrap().order(0), b.order(0));
        assert!(Batcher::new(10, 0, 0).is_err());
    }
}
