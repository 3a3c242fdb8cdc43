//! Recycled host buffers for the CPU ops. Every training step copies the same activations and
//! weights out of dfdx and allocates the same outputs; a buffer of the right length from the
//! last step skips the allocator's zeroing and the page faults of fresh memory (together a
//! tenth of a small model's step). The ops hand their copies and spent gradients back here.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// Buffers shorter than this are cheap to allocate and not worth a lock.
const MIN_LEN: usize = 4096;
/// At most this many floats (128 MiB) wait in the pool. A small model's whole step fits; a
/// large one's does not, and there every buffer the pool keeps is memory the next allocation
/// cannot reuse: at gpt2's size a 1 GiB pool added 0.3 GB (LoRA) to 0.6 GB (full) to the
/// peak of a step and saved no measurable time.
const MAX_FLOATS: usize = 1 << 25;

#[derive(Default)]
struct Shelf {
    buffers: Vec<Vec<f32>>,
    /// Whether `scratch` took from this shelf since the pool last overflowed.
    used: bool,
}

#[derive(Default)]
struct Pool {
    by_len: HashMap<usize, Shelf>,
    floats: usize,
}

static POOL: LazyLock<Mutex<Pool>> = LazyLock::new(Mutex::default);

/// A buffer of `len` floats whose contents are unspecified: the caller overwrites all of it.
pub fn scratch(len: usize) -> Vec<f32> {
    if len >= MIN_LEN {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shelf) = pool.by_len.get_mut(&len) {
            shelf.used = true;
            if let Some(v) = shelf.buffers.pop() {
                pool.floats -= len;
                return v;
            }
        }
    }
    vec![0.0; len]
}

/// Gives a buffer back for a later `scratch` of the same length.
pub fn recycle(v: Vec<f32>) {
    let len = v.len();
    if len < MIN_LEN {
        return;
    }
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if pool.floats + len > MAX_FLOATS {
        // Drop the lengths nobody asked for since the last overflow (batches of an earlier
        // shape); a steady training step keeps all of its own.
        pool.by_len
            .retain(|_, shelf| std::mem::take(&mut shelf.used));
        pool.floats = pool
            .by_len
            .iter()
            .map(|(len, s)| len * s.buffers.len())
            .sum();
        if pool.floats + len > MAX_FLOATS {
            return;
        }
    }
    pool.floats += len;
    pool.by_len.entry(len).or_default().buffers.push(v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recycled_buffer_is_handed_out_again_for_the_same_length() {
        let len = MIN_LEN + 12_345; // a length no other test uses
        let mut v = scratch(len);
        assert_eq!(v.len(), len);
        v[0] = 7.0;
        let ptr = v.as_ptr();
        recycle(v);
        let again = scratch(len);
        assert_eq!((again.as_ptr(), again[0], again.len()), (ptr, 7.0, len));
        assert_eq!(scratch(len).len(), len, "an empty pool still allocates");
    }
}
