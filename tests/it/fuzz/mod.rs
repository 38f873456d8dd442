//! Fuzzing on stable Rust, in process and without a socket: seeds from real
//! clients (`corpus`), mutated structurally and at random (`mutate`), fed
//! through the code that meets outside bytes. Three targets:
//! - `kafka`: frame (`net::FrameReader` under a budget) → request header →
//!   body decode → `kafka::dispatch` on a real one-node broker;
//! - `batches`: record-batch validation (`partition::batch`) and bounded
//!   inflation and decoding (`partition::inflate`);
//! - `raft`: the Raft listener's frames → `RpcRequest` → every body type.
//!
//! An input fails the run if it panics, or if one allocation it makes on the
//! harness's thread is larger than its target's bound (`alloc::track`):
//! `BOUND_RATIO` times the input, or `FLOOR` for what any request may cost
//! whatever its size (responses are sized by broker state, not by the input;
//! bincode's and serde's own caps are 1 MiB). A process abort fails it too.
//! Failing inputs are written to `$CARGO_TARGET_DIR/fuzz-failures/`.
//!
//! `FUZZ_INPUTS` sets the count per target (default 100,000, what `make
//! test` runs; `make fuzz` runs 10,000,000), `FUZZ_SEED` the seed.

mod alloc;
pub mod corpus;
mod mutate;
mod rng;
mod targets;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// Inputs per target, from `FUZZ_INPUTS`.
pub fn input_count() -> u64 {
    std::env::var("FUZZ_INPUTS").ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(100_000)
}

pub fn run_seed() -> u64 {
    std::env::var("FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed)
}

/// What a target found.
#[derive(Default)]
pub struct Findings {
    pub inputs: u64,
    /// Inputs that got as far as the deepest stage (dispatch, record check, body decode).
    pub deep: u64,
    /// The largest single allocation of any input and that input's size.
    pub largest: (usize, usize),
    pub failures: Vec<(u64, String, Vec<u8>)>,
}

impl Findings {
    /// Records one input's outcome against the bound `ratio`× / `floor`.
    pub fn record(
        &mut self,
        index: u64,
        input: &[u8],
        outcome: Result<bool, String>,
        largest: usize,
        bound: usize,
    ) {
        self.inputs += 1;
        if largest > self.largest.0 {
            self.largest = (largest, input.len());
        }
        match outcome {
            Ok(deep) => self.deep += u64::from(deep),
            Err(panic) => self.failures.push((index, format!("panicked: {panic}"), input.to_vec())),
        }
        if largest > bound {
            self.failures.push((
                index,
                format!("allocated {largest} bytes at once for a {}-byte input (bound {bound})", input.len()),
                input.to_vec(),
            ));
        }
    }

    /// Prints the figures and fails with the first failures, saved to files.
    pub fn report(self, target: &str, started: Instant) {
        let secs = started.elapsed().as_secs_f64();
        println!(
            "fuzz {target}: {} inputs in {secs:.1} s ({:.0}/s), {} reached the deepest stage, \
             largest allocation {} bytes (for a {}-byte input), {} failures",
            self.inputs,
            self.inputs as f64 / secs,
            self.deep,
            self.largest.0,
            self.largest.1,
            self.failures.len()
        );
        if self.failures.is_empty() {
            return;
        }
        let dir = PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
            .join("fuzz-failures");
        let _ = std::fs::create_dir_all(&dir);
        let mut lines = Vec::new();
        for (index, what, input) in self.failures.iter().take(10) {
            let path = dir.join(format!("{target}-{index}.bin"));
            let _ = std::fs::write(&path, input);
            lines.push(format!("input {index} ({}): {what}", path.display()));
        }
        panic!("fuzz {target}: {} failures:\n{}", self.failures.len(), lines.join("\n"));
    }
}

pub fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// Runs `f` counting its largest allocation and catching its panic.
pub fn guarded<R>(f: impl FnOnce() -> R) -> (Result<R, String>, usize) {
    let (r, largest) = alloc::track(|| std::panic::catch_unwind(AssertUnwindSafe(f)));
    (r.map_err(panic_text), largest)
}

/// A future whose every poll is tracked and guarded like `guarded`: what it
/// allocates while polled on the harness's threads is its own, wherever the
/// executor runs it.
pub struct Tracked<F> {
    inner: Pin<Box<F>>,
    largest: usize,
}

impl<F: Future> Tracked<F> {
    pub fn new(f: F) -> Self {
        Self { inner: Box::pin(f), largest: 0 }
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = (Result<F::Output, String>, usize);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let (polled, largest) = guarded(|| this.inner.as_mut().poll(cx));
        this.largest = this.largest.max(largest);
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready((Ok(v), this.largest)),
            Err(panic) => Poll::Ready((Err(panic), this.largest)),
        }
    }
}
