//! How fast the `flows` body runs, outside libFuzzer: a fixed-seed stream of
//! random inputs (the lengths libFuzzer mostly tries) through
//! one [`chaperone_fuzz::Flows`] (one clinic, reset between runs, as the
//! fuzz target keeps it) on the clean clinic, or with the faults named
//! by `CHAPERONE_FUZZ_FAULTS`. Prints inputs per second; run under `perf
//! record` for the profile.
//!
//! `cargo run --release --manifest-path fuzz/Cargo.toml --example flows_bench -- [INPUTS] [SEED]`

use chaperone::model::{Flow, Limits};
use chaperone_fuzz::{FlowOutcome, clinic_flows, faults_from_env};

fn main() {
    let mut args = std::env::args().skip(1);
    let inputs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let mut seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let faults = faults_from_env();
    let mut flows = clinic_flows(&faults);
    let mut next = move || {
        // splitmix64: fixed seed, the same stream every run.
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let (mut steps, mut failed) = (0usize, 0usize);
    let started = std::time::Instant::now();
    for _ in 0..inputs {
        let len = 3 * (1 + (next() % 40) as usize);
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let flow = Flow::from_bytes(&bytes);
        steps += flow.steps(Limits::default()).len();
        if let FlowOutcome::Failed(_) = flows.run(&flow) {
            failed += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{inputs} inputs ({steps} steps, {failed} failed) in {seconds:.2} s: {:.0} inputs/s, {:.0} steps/s",
        inputs as f64 / seconds,
        steps as f64 / seconds
    );
}
