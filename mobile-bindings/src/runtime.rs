//! The tokio runtime the bindings own.
//!
//! uniffi drives exported `async fn`s by polling them from the foreign side (Kotlin
//! coroutines, Swift tasks), which are not tokio and cannot host reqwest's I/O. So every
//! async export hands its work to this one static multi-threaded runtime and awaits the
//! result; the awaited `JoinHandle` is executor-agnostic. Sync exports never spawn.

use std::future::Future;
use std::sync::LazyLock;

use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinHandle;

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    Builder::new_multi_thread()
        // A phone needs few threads: network I/O plus one worker that may sit blocked in a
        // biometric prompt (see key.rs, block_in_place).
        .worker_threads(2)
        .thread_name("shomei-rt")
        .enable_all()
        .build()
        .expect("the Shomei tokio runtime must start; without it no request can be made")
});

/// Runs `fut` on the bindings' runtime and waits for it from whatever executor polls us.
///
/// If the foreign caller cancels (drops the future), the task is aborted too, so a
/// cancelled coroutine does not leave a request running. A panic inside the task comes
/// back as `Err(reason)` instead of unwinding across the FFI.
pub(crate) async fn run<F, T>(fut: F) -> Result<T, String>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handle = AbortOnDrop(Some(RUNTIME.spawn(fut)));
    handle.await
}

struct AbortOnDrop<T>(Option<JoinHandle<T>>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, String>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let handle = self.0.as_mut().expect("polled after completion");
        match std::pin::Pin::new(handle).poll(cx) {
            std::task::Poll::Pending => std::task::Poll::Pending,
            std::task::Poll::Ready(result) => {
                self.0 = None;
                std::task::Poll::Ready(result.map_err(|e| {
                    if e.is_panic() {
                        "internal task panicked".to_owned()
                    } else {
                        "internal task was cancelled".to_owned()
                    }
                }))
            }
        }
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_future_runs_on_the_owned_runtime_from_a_foreign_executor() {
        // futures::executor stands in for a Kotlin/Swift poller: not tokio, yet reqwest-style
        // work (a tokio timer) completes because it runs on RUNTIME.
        let out = futures_lite_block_on(run(async {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            tokio::runtime::Handle::current().metrics().num_workers()
        }));
        assert_eq!(out, Ok(2));
    }

    #[test]
    fn a_panicking_task_is_an_error_not_an_unwind() {
        let out = futures_lite_block_on(run(async { panic!("boom") as u8 }));
        assert_eq!(out, Err("internal task panicked".to_owned()));
    }

    /// Minimal executor without tokio, like the foreign side.
    fn futures_lite_block_on<F: Future>(fut: F) -> F::Output {
        use std::sync::Arc;
        use std::task::{Context, Poll, Wake, Waker};
        struct Unpark(std::thread::Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut fut = std::pin::pin!(fut);
        loop {
            match fut.as_mut().poll(&mut cx) {
                Poll::Ready(v) => return v,
                Poll::Pending => std::thread::park(),
            }
        }
    }
}
