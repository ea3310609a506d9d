//! The `tracing` subscriber of Stride's binaries and examples.

use std::io::Write;

use stride_train::multi_progress;
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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(|| BarSafeStderr)
        .try_init();
}
