//! The `tracing` subscriber of Stride's binaries and examples.

use std::io::Write;

use stride_train::{hide_bars, multi_progress, use_colour};
use tracing_subscriber::EnvFilter;

/// Writes to stderr with the progress bars suspended, so a log line never tears a bar.
struct BarSafeStderr;

impl Write for BarSafeStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        multi_progress().suspend(|| std::io::stderr().write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Installs a compact stderr subscriber (level from `RUST_LOG`, default `info`).
/// For binaries only: libraries emit events and never install a subscriber.
/// Calling it twice is harmless.
pub fn init() {
    init_with(false);
}

/// [`init`], or with `quiet` (`--quiet`): warnings and errors only (unless `RUST_LOG` says
/// otherwise) and no progress bars. What a command prints on stdout is unchanged.
///
/// Colours follow [`stride_train::use_colour`]: only when stderr is a terminal, never with
/// `NO_COLOR` set or `TERM=dumb`.
pub fn init_with(quiet: bool) {
    if quiet {
        hide_bars();
    }
    let default_level = if quiet { "warn" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(use_colour())
        .with_writer(|| BarSafeStderr)
        .try_init();
}
