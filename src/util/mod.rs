//! Small shared helpers: atomic file writes, terminal detection.
pub mod atomic;
pub use atomic::{write_atomic, write_json_atomic};

/// Whether stdout is an interactive terminal (progress bars) or a pipe/file (log lines).
pub fn stdout_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
}
