//! The allocator setting the training step needs to reuse its big buffers.

/// Keeps freed memory in the process for the next allocation of the same size.
///
/// glibc serves blocks of 32 MiB and more (the logits and their gradient: batch × context ×
/// vocab floats, e.g. 16 × 128 × 4096 × 4 bytes) with a fresh `mmap` and returns them with
/// `munmap` on every free, so each training step page-faults them in again and flushes the
/// other core's TLB: a sixth of a 2-core step went to the kernel. With the thresholds raised,
/// a freed block goes back to the heap and the next step takes it as it is.
pub fn reuse_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning parameters; it is called before any
    // thread starts allocating concurrently.
    unsafe {
        const ONE_GIB: libc::c_int = 1 << 30;
        libc::mallopt(libc::M_MMAP_THRESHOLD, ONE_GIB);
        libc::mallopt(libc::M_TRIM_THRESHOLD, ONE_GIB);
    }
}
