//! The accept loop. `axum::serve` has no limits of its own, and a server facing adversarial
//! clients needs three: a cap on open connections (idle sockets cost memory and descriptors),
//! a deadline for a request's headers (a client that sends half a request and waits would
//! otherwise hold its connection forever), and a deadline for its body (`BodyDeadline`, applied
//! to every request). Connections are HTTP/1.1, served by hyper with the axum router, and shut
//! down gracefully: on `stop` the loop stops accepting and each connection finishes the
//! request it is on.

use super::config::ServeConfig;
use hyper::body::{Body, Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};

/// Serves `app` on `listener` until `stop` is notified, then waits up to `grace` for open
/// connections to finish.
pub async fn serve(listener: TcpListener, app: axum::Router, config: ServeConfig, stop: Arc<Notify>, grace: Duration) {
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(Duration::from_millis(config.header_timeout_ms));
    let body_deadline = Duration::from_millis(config.body_timeout_ms);
    let app = app.layer(axum::middleware::map_request(move |req: axum::extract::Request| async move {
        req.map(|body| axum::body::Body::new(BodyDeadline::new(body, body_deadline)))
    }));
    let graceful = GracefulShutdown::new();
    let stopped = stop.notified();
    tokio::pin!(stopped);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut stopped => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stopped => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors or a connection reset before accept: wait, do not spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the drain; closing them");
    }
}

/// A request body that must arrive by a deadline, counted from the first time it is read.
pub struct BodyDeadline<B> {
    inner: B,
    limit: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B> BodyDeadline<B> {
    pub fn new(inner: B, limit: Duration) -> Self {
        BodyDeadline { inner, limit, deadline: None }
    }
}

/// The error a late body ends with; handlers recognise it to answer 408.
#[derive(Debug)]
pub struct BodyTimedOut(pub Duration);

impl fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the request body did not arrive within {} ms", self.0.as_millis())
    }
}

impl std::error::Error for BodyTimedOut {}

/// Whether `e` (or an error behind it) is a body deadline.
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyTimedOut>() {
            return true;
        }
        cur = err.source();
    }
    false
}

impl<B> Body for BodyDeadline<B>
where
    B: Body<Data = hyper::body::Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = hyper::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let limit = self.limit;
        let deadline = self.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut(limit)))));
        }
        Pin::new(&mut self.inner).poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use hyper::body::Bytes;

    /// A body whose bytes never come.
    struct Stalled;

    impl Body for Stalled {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_complete_body_passes_and_a_stalled_one_times_out() {
        let full = BodyDeadline::new(http_body_util::Full::new(Bytes::from_static(b"{}")), Duration::from_secs(1));
        assert_eq!(full.collect().await.unwrap().to_bytes(), "{}");
        let e = BodyDeadline::new(Stalled, Duration::from_secs(1)).collect().await.unwrap_err();
        assert!(is_body_timeout(&*e), "{e}");
        assert_eq!(e.to_string(), "the request body did not arrive within 1000 ms");
        assert!(!is_body_timeout(&std::io::Error::other("reset")));
    }
}
