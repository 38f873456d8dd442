//! A partition leader's fence: while leadership is handed to another
//! replica, new appends wait here, so the replica's log can equal the
//! leader's when it campaigns. A replica with a shorter log loses the vote
//! and, its term now the highest, deposes the leader anyway: the group is
//! leaderless until the next election, a write outage of a second or more.
//! The fence has a deadline, so a transfer that stalls holds appends no
//! longer than that.

use std::time::Instant;

use tokio::sync::watch;

#[derive(Debug)]
pub struct Fence(watch::Sender<Option<Instant>>);

impl Default for Fence {
    fn default() -> Self {
        Self(watch::channel(None).0)
    }
}

impl Fence {
    /// Holds appends until `lower` or `until`, whichever comes first.
    pub fn raise(&self, until: Instant) {
        self.0.send_replace(Some(until));
    }

    pub fn lower(&self) {
        self.0.send_replace(None);
    }

    /// Returns once the fence is down or past its deadline. Cancellation-safe.
    pub async fn passed(&self) {
        let mut rx = self.0.subscribe();
        loop {
            let until = match *rx.borrow_and_update() {
                Some(until) if until > Instant::now() => until,
                _ => return,
            };
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep_until(until.into()) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn appends_pass_a_lowered_fence_and_one_past_its_deadline() {
        let fence = std::sync::Arc::new(Fence::default());
        tokio::time::timeout(Duration::from_secs(5), fence.passed())
            .await
            .expect("a down fence holds nothing");

        fence.raise(Instant::now() + Duration::from_secs(60));
        let waiting = tokio::spawn({
            let fence = fence.clone();
            async move { fence.passed().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a raised fence holds appends");
        fence.lower();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("lowering releases them")
            .expect("join");

        let started = Instant::now();
        fence.raise(started + Duration::from_millis(100));
        tokio::time::timeout(Duration::from_secs(5), fence.passed())
            .await
            .expect("the deadline releases them");
        assert!(started.elapsed() >= Duration::from_millis(100));
    }
}
