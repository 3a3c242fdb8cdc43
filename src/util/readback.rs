//! Every device-to-host read in gptlab goes through here, and is counted. On a GPU each read
//! waits for the device to finish its queued work, so a training step that reads per parameter,
//! or a decode step that reads per layer, leaves the GPU idle. Tests bound how many reads a
//! training or decode step makes, and `gptlab bench` reports the counts, so those waits are
//! visible on a CPU too.
//!
//! The CPU fast path's memcpy of its own buffers (`model/kernels/host.rs`) is no such read: it
//! runs only on the CPU and is not counted.

use std::cell::Cell;

use dfdx::prelude::*;

thread_local! {
    // Per thread, so that tests running side by side count their own reads only.
    static READS: Cell<u64> = const { Cell::new(0) };
}

/// Device-to-host reads made on this thread so far. Take the difference of two calls to count
/// the reads of the code between them.
pub fn count() -> u64 {
    READS.with(|r| r.get())
}

fn note() {
    READS.with(|r| r.set(r.get() + 1));
}

/// A tensor's values, in logical order, on the host: one read.
pub fn to_vec<S: Shape, E, D: Storage<E>, T>(t: &Tensor<S, E, D, T>) -> Vec<E> {
    note();
    t.as_vec()
}

/// The value of a tensor of one element (a loss, a norm): one read.
pub fn scalar<S: Shape, E: Copy, D: Storage<E>, T>(t: &Tensor<S, E, D, T>) -> E {
    debug_assert_eq!(t.shape().num_elements(), 1, "readback::scalar of a larger tensor");
    note();
    t.as_vec()[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_read_is_counted_on_its_own_thread() {
        let dev = Cpu::default();
        let t = dev.tensor([1.0f32, 2.0, 3.0]);
        let before = count();
        assert_eq!(to_vec(&t), vec![1.0, 2.0, 3.0]);
        assert_eq!(scalar(&t.clone().sum::<Rank0, _>()), 6.0);
        assert_eq!(count() - before, 2);
        let other = std::thread::spawn(|| count()).join().unwrap();
        assert_eq!(other, 0, "another thread's count is its own");
    }
}
