//! The one way kai-init takes a lock. The release build aborts on panic, so a lock can
//! never be poisoned there; in tests a poisoned lock still holds valid data (every
//! critical section leaves its data consistent), so the guard is taken either way rather
//! than turning one failure into a second panic.

use std::sync::{Mutex, MutexGuard};

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
