//! Work on independent items on a few threads (layer downloads, layer unpacking).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// Runs `work` on every item, on up to `threads` threads (never more than there are items).
/// The first error stops the others: no new item is started, and `work` gets the stop flag to
/// give up on the one it is in (a download between chunks). Returns that first error.
pub(crate) fn try_each<T: Send>(
    items: impl IntoIterator<Item = T, IntoIter: Send>,
    threads: usize,
    work: impl Fn(T, &AtomicBool) -> Result<()> + Sync,
) -> Result<()> {
    let items = items.into_iter();
    let threads = threads
        .min(items.size_hint().1.unwrap_or(usize::MAX))
        .max(1);
    let queue = Mutex::new(items);
    let stop = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some(item) = next else { return };
                    if let Err(e) = work(item, &stop) {
                        stop.store(true, Ordering::Relaxed);
                        first_error
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e);
                    }
                }
            });
        }
    });
    match first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
