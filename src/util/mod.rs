//! Small shared helpers: atomic file writes, a stable hash, allocator tuning, terminal
//! detection, counted device-to-host reads and host-to-device uploads.
pub mod atomic;
pub mod hash;
pub mod lock;
pub mod memory;
pub mod readback;
pub mod upload;
pub use atomic::{write_atomic, write_json_atomic};
pub use hash::fnv1a;

/// Whether stdout is an interactive terminal (progress bars) or a pipe/file (log lines).
pub fn stdout_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
}
