//! Work a platform runs beside its calls (outbox relays, index refreshes): asked to stop
//! when the server shuts down, and waited for before the database closes, so that a
//! hand-off being delivered then is finished and recorded instead of failing on a
//! closed pool.

use std::{future::Future, time::Duration};

use tokio_util::{sync::CancellationToken, task::TaskTracker};

#[derive(Debug, Clone, Default)]
pub struct Background {
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Background {
    /// Runs `task`, which is to end soon after `stopping` resolves (where it can stop
    /// without leaving work half done).
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(task);
    }

    /// Resolves once shutdown has begun.
    pub async fn stopping(&self) {
        self.stop.cancelled().await;
    }

    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Waits `duration`, or less when shutdown begins meanwhile.
    pub async fn pause(&self, duration: Duration) {
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            () = self.stopping() => {}
        }
    }

    /// Asks every task to stop and waits for them, at most `grace`; whether they all
    /// ended in time.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.stop.cancel();
        self.tasks.close();
        tokio::time::timeout(grace, self.tasks.wait()).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_waits_for_tasks_to_finish_what_they_are_doing() {
        let background = Background::default();
        let (finished, mut done) = tokio::sync::mpsc::channel(1);
        let task = background.clone();
        background.spawn(async move {
            task.stopping().await;
            // Work that must not be cut short.
            tokio::time::sleep(Duration::from_millis(50)).await;
            finished.send(()).await.unwrap();
        });
        assert!(background.shutdown(Duration::from_secs(5)).await);
        assert!(done.try_recv().is_ok(), "finished before shutdown returned");
        assert!(background.is_stopping());
    }

    #[tokio::test]
    async fn shutdown_gives_up_after_the_grace_period() {
        let background = Background::default();
        background.spawn(std::future::pending());
        assert!(!background.shutdown(Duration::from_millis(50)).await);
    }
}
