//! Stopping a run cleanly from outside the loop: a signal handler or another thread.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};

/// A request to stop at the next step boundary; clones share it.
///
/// The trainer checks it after every step: the step is finished, a checkpoint written when
/// checkpoints are on, and [`crate::History::stopped`] says
/// [`crate::StopReason::Interrupted`]. Observers' `on_train_end` runs as usual, so the
/// metrics log is flushed.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicI32>);

impl Interrupt {
    /// A request nobody has made yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the run to stop; `signal` is reported (0 when not a signal). The first request wins.
    pub fn request(&self, signal: i32) {
        let _ = self
            .0
            .compare_exchange(NO_SIGNAL, signal.max(0) + 1, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The signal of the request, if one was made.
    pub fn requested(&self) -> Option<i32> {
        match self.0.load(Ordering::SeqCst) {
            NO_SIGNAL => None,
            n => Some(n - 1),
        }
    }

    /// The process-wide request that SIGINT and SIGTERM make, with their handlers installed
    /// (once): the first signal asks the run to stop; a second one exits at once with
    /// status 128 + signal, as an unhandled signal would.
    #[cfg(unix)]
    pub fn on_signals() -> std::io::Result<Self> {
        static INSTALLED: OnceLock<std::io::Result<()>> = OnceLock::new();
        let installed = INSTALLED.get_or_init(|| {
            SIGNALS.get_or_init(Interrupt::new);
            for sig in [libc::SIGINT, libc::SIGTERM] {
                // SAFETY: the handler only touches an atomic and calls `_exit`, both
                // async-signal-safe; the flag is initialised before the handler is installed.
                let previous = unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
                if previous == libc::SIG_ERR {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
        match installed {
            Ok(()) => Ok(SIGNALS.get_or_init(Interrupt::new).clone()),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        }
    }

    /// Without Unix signals, a request only code can make (Ctrl-C keeps its default).
    #[cfg(not(unix))]
    pub fn on_signals() -> std::io::Result<Self> {
        Ok(SIGNALS.get_or_init(Interrupt::new).clone())
    }
}

/// Stored as signal + 1, so signal 0 (a request from code) is distinct from none.
const NO_SIGNAL: i32 = 0;

/// The request the signal handlers make.
static SIGNALS: OnceLock<Interrupt> = OnceLock::new();

#[cfg(unix)]
extern "C" fn on_signal(sig: libc::c_int) {
    let Some(flag) = SIGNALS.get() else {
        return;
    };
    if flag.0.swap(sig + 1, Ordering::SeqCst) != NO_SIGNAL {
        // SAFETY: `_exit` is async-signal-safe; a second signal means "now".
        unsafe { libc::_exit(128 + sig) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_request_wins_and_clones_share_it() {
        let a = Interrupt::new();
        let b = a.clone();
        assert_eq!(a.requested(), None);
        b.request(15);
        a.request(2);
        assert_eq!(a.requested(), Some(15));
        let c = Interrupt::new();
        c.request(0);
        assert_eq!(c.requested(), Some(0));
    }
}
