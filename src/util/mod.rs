//! Small shared helpers: atomic file writes, allocator tuning, terminal detection.
pub mod atomic;
pub mod memory;
pub use atomic::{write_atomic, write_json_atomic};

/// Whether stdout is an interactive terminal (progress bars) or a pipe/file (log lines).
pub fn stdout_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
}
