//! The loss-log parser of `stride diagnose`, and the diagnosis of whatever it accepts.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use stride::diagnose::{diagnose_log, parse_loss_log, render, StreamChoice};
use stride::monitor::MonitorConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(log) = parse_loss_log(Path::new("fuzz-input"), text, 0.1) {
        for stream in [StreamChoice::Auto, StreamChoice::Step, StreamChoice::Epoch] {
            let config = MonitorConfig {
                num_classes: Some(10),
                ..MonitorConfig::default()
            };
            if let Ok((_, diagnoses)) = diagnose_log(log.clone(), config, stream) {
                let _ = render(&diagnoses);
            }
        }
    }
});
