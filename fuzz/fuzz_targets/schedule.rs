//! The schedule grammar on arbitrary text, and the scheduler it builds at extreme counters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stride::optim::schedule::parse_schedule;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(mut s) = parse_schedule(spec, 0.1) {
        for t in [0, 1, 2, 7, 100, 12_345, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
            let _ = s.lr(t);
            let _ = s.momentum(t);
            s.observe_metric(t, 1.0 / (t as f64 + 1.0));
        }
    }
});
