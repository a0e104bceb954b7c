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
    pub fn spawn<E: std::fmt::Display>(
        name: &str,
        work: impl FnOnce(&Control) -> Result<T, E> + Send + 'static,
    ) -> Self
    where
        E: Send + 'static,
    {
        let control = Arc::new(Control::new());
        let (tx, rx) = channel();
        let ctl = Arc::clone(&control);
        let spawned = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
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
        self.rx
            .recv()
            .unwrap_or_else(|_| Err("the worker stopped without an answer".into()))
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
