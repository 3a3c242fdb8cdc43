//! The switch that makes the CPU run the code CUDA runs: the composed dfdx ops instead of the
//! fused CPU kernels, and the device KV cache instead of the host one. Without it those paths
//! would only ever run on a GPU, and a bug there would show up nowhere else.
//!
//! `GPTLAB_KERNELS=portable` turns it on for the whole process (read once); tests use
//! [`with_portable`], which holds for the calling thread only, so tests running side by side
//! do not race on the environment.

use std::cell::Cell;
use std::sync::OnceLock;

/// The environment variable, and the value that selects the portable path.
pub const ENV: &str = "GPTLAB_KERNELS";

thread_local! {
    static OVERRIDE: Cell<Option<bool>> = const { Cell::new(None) };
}

fn from_env() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| match std::env::var(ENV).as_deref() {
        Ok("portable") => true,
        Ok("fused") | Ok("") | Err(_) => false,
        Ok(other) => {
            eprintln!("warning: {ENV}={other:?} is not \"portable\" or \"fused\"; using fused");
            false
        }
    })
}

/// Whether the CPU runs the composed ops and the device cache (this thread).
pub fn portable() -> bool {
    OVERRIDE.with(|o| o.get()).unwrap_or_else(from_env)
}

/// Runs `f` with the portable path on or off on this thread, whatever the environment says.
pub fn with_portable<R>(on: bool, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<bool>);
    impl Drop for Restore {
        fn drop(&mut self) {
            OVERRIDE.with(|o| o.set(self.0));
        }
    }
    let _restore = Restore(OVERRIDE.with(|o| o.replace(Some(on))));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_override_holds_inside_and_is_restored_after() {
        let outside = portable();
        with_portable(!outside, || {
            assert_eq!(portable(), !outside);
            with_portable(outside, || assert_eq!(portable(), outside));
            assert_eq!(portable(), !outside);
        });
        assert_eq!(portable(), outside);
    }
}
