//! Small things every other folder uses, and that use nothing of kai-init's own: text
//! escaping, JSON strings, durations and clocks, back-off, one blocking call on a thread of
//! its own, locks, logging and the start-up error type.

pub mod backoff;
pub mod blocking;
pub mod clock;
pub mod duration;
pub mod error;
pub mod json;
pub mod lock;
pub mod log;
pub mod text;
