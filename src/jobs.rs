//! Work that takes longer than a frame runs here, off the UI thread.
//!
//! A [`Job`] is one computation on its own thread (which may fan out on rayon's pool),
//! with a shared [`Control`] for progress and cancel. The UI polls it once a frame and never
//! blocks; a panic inside the job becomes an error message instead of taking the app down.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError, channel};

use crate::analysis::Control;

pub struct Job<T> {
    control: Arc<Control>,
    rx: Receiver<Result<T, String>>,
}

pub enum Poll<T> {
    Running,
    Done(Result<T, String>),
}

impl<T: Send + 'static> Job<T> {
    /// Starts `work` on a new thread. Its error type only needs to display.
    pub fn spawn<E>(name: &str, work: impl FnOnce(&Control) -> Result<T, E> + Send + 'static) -> Self
    where
        E: std::fmt::Display + Send + 'static,
    {
        let control = Arc::new(Control::new());
        let (tx, rx) = channel();
        let ctl = Arc::clone(&control);
        let spawned = std::thread::Builder::new().name(name.to_string()).spawn(move || {
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| work(&ctl)));
            let message = match outcome {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(e.to_string()),
                Err(panic) => Err(format!("internal error (please report): {}", panic_text(&panic))),
            };
            let _ = tx.send(message);
        });
        if let Err(e) = spawned {
            let (tx, rx2) = channel();
            let _ = tx.send(Err(format!("could not start a worker thread: {e}")));
            return Self { control, rx: rx2 };
        }
        Self { control, rx }
    }

    pub fn poll(&self) -> Poll<T> {
        match self.rx.try_recv() {
            Ok(r) => Poll::Done(r),
            Err(TryRecvError::Empty) => Poll::Running,
            Err(TryRecvError::Disconnected) => Poll::Done(Err("the worker stopped without an answer".into())),
        }
    }

    /// Blocks until done: for the CLI and tests, never for the UI.
    pub fn wait(self) -> Result<T, String> {
        self.rx.recv().unwrap_or_else(|_| Err("the worker stopped without an answer".into()))
    }

    pub fn progress(&self) -> f32 {
        self.control.fraction()
    }

    pub fn cancel(&self) {
        self.control.cancel();
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".into()
    }
}

/// Results by key, computing at most one at a time: what an inspector needs when the user
/// clicks from tensor to tensor faster than the workers finish. Asking for a new key cancels
/// the running job; finished results are kept, so going back is instant.
pub struct KeyedJobs<K, V> {
    cache: std::collections::HashMap<K, Result<V, String>>,
    running: Option<(K, Job<V>)>,
}

impl<K, V> Default for KeyedJobs<K, V> {
    fn default() -> Self {
        Self { cache: std::collections::HashMap::new(), running: None }
    }
}

impl<K: Clone + Eq + std::hash::Hash, V: Send + 'static> KeyedJobs<K, V> {
    pub fn get(&self, key: &K) -> Option<&Result<V, String>> {
        self.cache.get(key)
    }

    /// Starts `start()` for `key` unless it is done or already running. Returns true while
    /// work for some key is in flight (the caller should keep repainting).
    pub fn ensure(&mut self, key: &K, start: impl FnOnce() -> Job<V>) -> bool {
        self.poll();
        let running_this = self.running.as_ref().is_some_and(|(k, _)| k == key);
        if !self.cache.contains_key(key) && !running_this {
            if let Some((_, old)) = self.running.take() {
                old.cancel();
            }
            self.running = Some((key.clone(), start()));
        }
        self.running.is_some()
    }

    /// Moves a finished job's result into the cache.
    pub fn poll(&mut self) -> bool {
        if let Some((key, job)) = &self.running
            && let Poll::Done(result) = job.poll()
        {
            let key = key.clone();
            self.running = None;
            self.cache.insert(key, result);
        }
        self.running.is_some()
    }

    pub fn progress(&self, key: &K) -> Option<f32> {
        self.running.as_ref().filter(|(k, _)| k == key).map(|(_, j)| j.progress())
    }

    pub fn cancel(&mut self) {
        if let Some((key, job)) = self.running.take() {
            job.cancel();
            self.cache.insert(key, Err("cancelled".into()));
        }
    }

    pub fn forget(&mut self, key: &K) {
        self.cache.remove(key);
    }

    pub fn clear(&mut self) {
        if let Some((_, job)) = self.running.take() {
            job.cancel();
        }
        self.cache.clear();
    }

    /// Blocks until the running job is done (tests and benchmarks only).
    pub fn wait(&mut self) {
        if let Some((key, job)) = self.running.take() {
            let result = job.wait();
            self.cache.insert(key, result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_errors() {
        let job: Job<()> = Job::spawn("t", |_| -> Result<(), String> { panic!("boom") });
        let err = job.wait().unwrap_err();
        assert!(err.contains("boom"), "{err}");
    }
}
