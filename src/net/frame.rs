//! Length-prefixed frames (a 4-byte big-endian length, then the body), read
//! from a socket into a buffer the reader owns. Everything a partly read frame
//! has taught us lives in `FrameReader`, and its only awaits are `read_buf`
//! and a budget reservation, both cancellation-safe: so `next` may be raced in
//! `tokio::select!` against anything, and a branch that wins while a frame is
//! half read loses no byte of it.
//!
//! The length is checked against the listener's maximum before anything is
//! reserved, and the body's bytes are reserved in the listener's `Budget`
//! before any buffer is grown for them; the buffer then grows only as bytes
//! arrive, so a length prefix alone costs nothing but its reservation.
//! A frame whose first byte has arrived must arrive whole within the frame
//! timeout, its wait for the budget included.

use std::time::Duration;

use tokio::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::net::budget::{Budget, Reservation};

/// What the buffer starts with and shrinks back to between frames.
const IDLE_CAPACITY: usize = 4 * 1024;
/// A buffer larger than this is not kept after the frame that grew it.
const KEEP_CAPACITY: usize = 64 * 1024;
const LENGTH: usize = 4;
/// The least a body's buffer grows by at once.
const GROW_STEP: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("negative frame length {0}")]
    NegativeLength(i32),
    #[error("connection closed {read} bytes into a frame")]
    Truncated { read: usize },
    #[error("a frame was begun and not finished within {0:?}")]
    Timeout(Duration),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// One frame's body and the budget it holds until it is dropped.
#[derive(Debug)]
pub struct Frame {
    pub body: Bytes,
    pub reservation: Reservation,
}

enum State {
    /// Waiting for (the rest of) a length prefix.
    Length,
    /// The length is known and within the limit; its bytes are not reserved yet.
    Reserving(usize),
    /// Reserved; reading the body.
    Body { size: usize, reservation: Reservation },
}

pub struct FrameReader<R> {
    io: R,
    buf: BytesMut,
    max: usize,
    timeout: Duration,
    state: State,
    /// When the frame being read began to arrive.
    started: Option<Instant>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Frames of at most `max` bytes, each to arrive within `timeout` of its
    /// first byte.
    pub fn new(io: R, max: usize, timeout: Duration) -> Self {
        let buf = BytesMut::with_capacity(IDLE_CAPACITY);
        Self { io, buf, max, timeout, state: State::Length, started: None }
    }

    /// Whether a frame has begun to arrive and is not finished.
    pub fn in_frame(&self) -> bool {
        self.started.is_some() || !matches!(self.state, State::Length)
    }

    /// Restarts the frame clock: the caller stopped reading for a while (its
    /// pipeline was full), which is not the client's fault either.
    pub fn restart_clock(&mut self) {
        if self.started.is_some() {
            self.started = Some(Instant::now());
        }
    }

    /// The next frame; `Ok(None)` when the peer closed cleanly between frames.
    pub async fn next(&mut self, budget: &Budget) -> Result<Option<Frame>, FrameError> {
        loop {
            match &self.state {
                State::Length => {
                    if self.buf.len() >= LENGTH {
                        let len = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                        let size = usize::try_from(len).map_err(|_| FrameError::NegativeLength(len))?;
                        if size > self.max {
                            return Err(FrameError::TooLarge { size, max: self.max });
                        }
                        self.buf.advance(LENGTH);
                        self.state = State::Reserving(size);
                        continue;
                    }
                    if self.buf.capacity() - self.buf.len() < LENGTH {
                        self.buf.reserve(IDLE_CAPACITY);
                    }
                }
                &State::Reserving(size) => {
                    // The wait for the budget counts against the frame's
                    // deadline: a connection that announces a frame it never
                    // sends holds at most a place in the queue, for a while.
                    let deadline = self.started.unwrap_or_else(Instant::now) + self.timeout;
                    let reserved = tokio::time::timeout_at(deadline, budget.reserve(size + LENGTH)).await;
                    let reservation = match reserved {
                        Ok(Some(r)) => r,
                        // Only a limit above the budget gets here; config
                        // validation keeps the budget at least the limit.
                        Ok(None) => return Err(FrameError::TooLarge { size, max: budget.largest_frame() }),
                        Err(_) => return Err(FrameError::Timeout(self.timeout)),
                    };
                    self.state = State::Body { size, reservation };
                    continue;
                }
                &State::Body { size, .. } => {
                    self.grow_towards(size);
                    if self.buf.len() >= size {
                        // No await from here on: the state moves out and back
                        // in one step.
                        if let State::Body { reservation, .. } =
                            std::mem::replace(&mut self.state, State::Length)
                        {
                            return Ok(Some(self.take(size, reservation)));
                        }
                    }
                }
            }
            // Only the bytes still missing have room: a read never buffers
            // more than what was reserved, plus a few bytes of what follows.
            let read = match self.started {
                Some(started) => {
                    let deadline = started + self.timeout;
                    match tokio::time::timeout_at(deadline, self.io.read_buf(&mut self.buf)).await {
                        Ok(read) => read?,
                        Err(_) => return Err(FrameError::Timeout(self.timeout)),
                    }
                }
                None => self.io.read_buf(&mut self.buf).await?,
            };
            if read == 0 {
                return match (&self.state, self.buf.is_empty()) {
                    (State::Length, true) => Ok(None),
                    _ => Err(FrameError::Truncated { read: self.buf.len() }),
                };
            }
            if self.started.is_none() {
                self.started = Some(Instant::now());
            }
        }
    }

    /// Room for more of a `size`-byte body: four times what has arrived (so
    /// a large frame is copied at most a third of a time per byte: a 1 MiB
    /// produce request grows 64 KiB → 256 KiB → 1 MiB), never past what is
    /// missing. The budget holds the whole frame from the start, but memory
    /// is only taken as the bytes come: a frame announced and not sent costs
    /// its reservation, not an allocation, and one sent in part at most four
    /// times what was sent.
    fn grow_towards(&mut self, size: usize) {
        let missing = size.saturating_sub(self.buf.len());
        let spare = self.buf.capacity() - self.buf.len();
        if missing > 0 && spare < missing.min(GROW_STEP) {
            self.buf.reserve(missing.min((self.buf.len() * 3).max(GROW_STEP)));
        }
    }

    fn take(&mut self, size: usize, reservation: Reservation) -> Frame {
        let body = self.buf.split_to(size).freeze();
        // What is left shares the frame's allocation; a large one is not kept
        // alive by an idle connection.
        if self.buf.capacity() > KEEP_CAPACITY {
            let rest = std::mem::take(&mut self.buf);
            self.buf = BytesMut::with_capacity(IDLE_CAPACITY.max(rest.len()));
            self.buf.extend_from_slice(&rest);
        }
        self.started = (!self.buf.is_empty()).then(Instant::now);
        Frame { body, reservation }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    const T: Duration = Duration::from_secs(30);

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[tokio::test]
    async fn frames_are_read_whole_and_limits_enforced() {
        let budget = Budget::new(1 << 20);
        let input = [frame(&[1, 2, 3]), frame(&[])].concat();
        let mut r = FrameReader::new(&input[..], 10, T);
        assert_eq!(r.next(&budget).await.unwrap().unwrap().body.as_ref(), &[1, 2, 3]);
        assert!(r.next(&budget).await.unwrap().unwrap().body.is_empty());
        assert!(r.next(&budget).await.unwrap().is_none());

        let huge: &[u8] = &[0x7f, 0xff, 0xff, 0xff];
        let err = FrameReader::new(huge, 1024, T).next(&budget).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { size: 2147483647, max: 1024 }));
        let negative: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        let err = FrameReader::new(negative, 1024, T).next(&budget).await.unwrap_err();
        assert!(matches!(err, FrameError::NegativeLength(-1)));
        let truncated: &[u8] = &[0, 0, 0, 9, 1, 2];
        let err = FrameReader::new(truncated, 1024, T).next(&budget).await.unwrap_err();
        assert!(matches!(err, FrameError::Truncated { read: 2 }));
        let half_length: &[u8] = &[0, 0];
        let err = FrameReader::new(half_length, 1024, T).next(&budget).await.unwrap_err();
        assert!(matches!(err, FrameError::Truncated { read: 2 }));
    }

    /// The bug this reader exists for: a `next` cancelled while a frame is
    /// half read must lose nothing of it.
    #[tokio::test]
    async fn cancelled_reads_lose_no_bytes() {
        let budget = Budget::new(1 << 20);
        let (mut tx, rx) = tokio::io::duplex(64);
        let frames: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; usize::from(i) * 7]).collect();
        let wire: Vec<u8> = frames.iter().flat_map(|f| frame(f)).collect();
        let writer = tokio::spawn(async move {
            for b in wire {
                tx.write_all(&[b]).await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        let mut r = FrameReader::new(rx, 1 << 20, T);
        let mut got = Vec::new();
        let mut cancelled = 0;
        while got.len() < frames.len() {
            tokio::select! {
                f = r.next(&budget) => got.push(f.unwrap().unwrap().body.to_vec()),
                _ = tokio::task::yield_now() => cancelled += 1,
            }
        }
        writer.await.unwrap();
        assert_eq!(got, frames);
        assert!(cancelled > 100, "the race was exercised ({cancelled} cancellations)");
    }

    #[tokio::test]
    async fn a_frame_without_budget_waits_and_buffers_nothing() {
        let budget = Budget::new(1 << 20);
        // Both lanes spent: the large one (896 KiB) and the small one (128 KiB).
        let spend = || futures::future::join_all([896, 64, 64].map(|k| budget.reserve(k * 1024)));
        let held = spend().await;
        assert!(held.iter().all(Option::is_some), "the budget is spent");
        let input = frame(&[7; 100]);
        let mut r = FrameReader::new(&input[..], 1 << 20, T);
        let waited = tokio::time::timeout(Duration::from_millis(20), r.next(&budget)).await;
        assert!(waited.is_err(), "no budget, no frame");
        assert!(matches!(r.state, State::Reserving(100)), "waiting for the budget");
        assert!(r.buf.capacity() <= IDLE_CAPACITY, "nothing is buffered for a frame without budget");
        drop(held);
        let f = r.next(&budget).await.unwrap().unwrap();
        assert_eq!(f.body.len(), 100);
        assert_eq!(budget.in_use(), 1024);
        drop(f);
        assert_eq!(budget.in_use(), 0);
        // A frame that cannot get the budget within its deadline is refused.
        let _all = spend().await;
        let mut late = FrameReader::new(&input[..], 1 << 20, Duration::from_millis(50));
        assert!(matches!(late.next(&budget).await, Err(FrameError::Timeout(_))));
    }

    #[tokio::test]
    async fn a_frame_begun_must_finish_within_the_timeout() {
        let budget = Budget::new(1 << 20);
        let (mut tx, rx) = tokio::io::duplex(1024);
        let timeout = Duration::from_millis(200);
        let mut r = FrameReader::new(rx, 1 << 20, timeout);
        // Between frames there is no deadline.
        let idle = tokio::time::timeout(Duration::from_millis(400), r.next(&budget)).await;
        assert!(idle.is_err());
        tx.write_all(&[0, 0, 0, 10, 1, 2]).await.unwrap();
        let started = Instant::now();
        let err = r.next(&budget).await.unwrap_err();
        assert!(matches!(err, FrameError::Timeout(_)), "{err}");
        assert!(started.elapsed() >= timeout && started.elapsed() < Duration::from_secs(5));
    }
}
