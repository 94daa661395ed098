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
