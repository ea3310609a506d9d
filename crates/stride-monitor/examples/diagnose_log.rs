//! `cargo run --release -p stride-monitor --example diagnose_log -- run.csv`: what
//! `stride diagnose run.csv` prints, without the command line (and without candle, so it
//! builds in seconds). Prints the time spent reading and judging to stderr.

use std::io::BufReader;
use std::time::Instant;

use stride_monitor::{diagnose_loss_log, read_log, LogOptions, ReadOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: diagnose_log LOG")?;
    let t = Instant::now();
    let file = BufReader::with_capacity(1 << 16, std::fs::File::open(&path)?);
    let log = read_log(file, &path, &ReadOptions::default())?;
    let read = t.elapsed();
    let d = diagnose_loss_log(&log, &LogOptions::default())?;
    print!("{}", d.render());
    eprintln!("read {:.2?}, judged {:.2?}", read, t.elapsed() - read);
    Ok(())
}
