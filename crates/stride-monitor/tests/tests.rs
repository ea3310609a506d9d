//! Integration tests of stride-monitor (one binary; modules per topic).
// The spec's data contain values such as 2.3026 (= ln 10, chance level for 10 classes) and
// 1.4427 that clippy mistakes for approximations of std constants.
#![allow(clippy::approx_constant)]

mod corpus;
mod data;
mod epoch;
mod live_cases;
mod public_logs;
mod real_fixes;
mod real_runs;
mod step;
mod units;
mod whole_run;
