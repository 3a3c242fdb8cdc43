//! Every host-to-device upload of the generation path goes through here, and is counted, like
//! the reads in `readback.rs`: on a GPU each upload is a transfer the step waits on, so a decode
//! step that uploads its maps every time pays for them on every token. Tests bound the uploads
//! of a decode step, and `gptlab bench` reports them beside the reads.

use std::cell::Cell;

use dfdx::prelude::*;

thread_local! {
    // Per thread, so that tests running side by side count their own uploads only.
    static UPLOADS: Cell<u64> = const { Cell::new(0) };
}

/// Uploads made on this thread so far. Take the difference of two calls to count the uploads
/// of the code between them.
pub fn count() -> u64 {
    UPLOADS.with(|u| u.get())
}

/// `data` as a tensor of `shape` on `dev`: one upload.
pub fn tensor<S: Shape, E, D: TensorFromVec<E>>(
    dev: &D,
    data: Vec<E>,
    shape: S,
) -> Tensor<S, E, D> {
    UPLOADS.with(|u| u.set(u.get() + 1));
    dev.tensor_from_vec(data, shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_upload_is_counted_on_its_own_thread() {
        let dev = Cpu::default();
        let before = count();
        let t = tensor(&dev, vec![1.0f32, 2.0], (2,));
        assert_eq!(t.as_vec(), vec![1.0, 2.0]);
        assert_eq!(count() - before, 1);
        let other = std::thread::spawn(count).join().unwrap();
        assert_eq!(other, 0, "another thread's count is its own");
    }
}
