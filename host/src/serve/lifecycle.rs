//! Readiness and the drain: on SIGTERM or Ctrl-C the server stops admitting jobs (503), lets the
//! jobs it accepted finish, then stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use tokio::sync::Notify;

#[derive(Default)]
pub struct Lifecycle {
    draining: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
}

/// One accepted job; dropping it (the job answered, or its client went away) releases it.
pub struct InFlight(Arc<Lifecycle>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Lifecycle {
    /// Accepts a job unless draining. The count goes up before the check, so a drain that
    /// starts at the same moment either sees this job or this job sees the drain.
    pub fn admit(self: &Arc<Self>) -> Option<InFlight> {
        self.in_flight.fetch_add(1, SeqCst);
        let guard = InFlight(self.clone());
        (!self.draining.load(SeqCst)).then_some(guard)
    }

    pub fn start_drain(&self) {
        self.draining.store(true, SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(SeqCst)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(SeqCst)
    }

    /// Resolves once no accepted job is left.
    pub async fn drained(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.in_flight() == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C: draining"),
        _ = terminate => tracing::info!("SIGTERM: draining"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn drain_waits_for_accepted_jobs_and_refuses_new_ones() {
        let life = Arc::new(Lifecycle::default());
        let a = life.admit().expect("admitted before the drain");
        let b = life.admit().expect("admitted before the drain");
        life.start_drain();
        assert!(life.admit().is_none(), "admitted during the drain");
        assert_eq!(life.in_flight(), 2, "a refused job must not stay counted");
        let waiter = tokio::spawn({
            let life = life.clone();
            async move { life.drained().await }
        });
        drop(a);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "drained with a job still in flight");
        drop(b);
        tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("drain finished").unwrap();
    }
}
