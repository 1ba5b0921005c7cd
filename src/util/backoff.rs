//! Pauses between failed reads of a descriptor kai-init cannot do without (the signalfd,
//! the NOTIFY_SOCKET): 10 ms doubling up to 1 s, so a persistent error cannot turn PID 1
//! into a busy loop, and a passing one costs little. The loop goes on after the pause:
//! giving up would end signal forwarding or readiness for good.

use std::time::Duration;

/// The failures in a row of one read; `reset` on its next success.
#[derive(Debug, Default)]
pub struct Backoff {
    pub failures: u32,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    /// Counts one failure; returns how long to pause and whether to log it (the 1st, 2nd,
    /// 4th, 8th... failure in a row, so a persistent error stays visible but quiet).
    pub fn fail(&mut self) -> (Duration, bool) {
        let pause = Self::FIRST
            .saturating_mul(1 << self.failures.min(16))
            .min(Self::MAX);
        self.failures = self.failures.saturating_add(1);
        (pause, self.failures.is_power_of_two())
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_errors_back_off_to_one_second_and_log_sparsely() {
        let mut b = Backoff::default();
        let got: Vec<(Duration, bool)> = (0..12).map(|_| b.fail()).collect();
        let ms: Vec<u128> = got.iter().map(|(d, _)| d.as_millis()).collect();
        assert_eq!(
            ms,
            [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 1000, 1000]
        );
        let logged: Vec<usize> = (0..12).filter(|i| got[*i].1).map(|i| i + 1).collect();
        assert_eq!(logged, [1, 2, 4, 8]);
        for _ in 0..100 {
            b.fail();
        }
        assert_eq!(b.fail().0, Backoff::MAX);
        b.reset();
        assert_eq!(b.fail(), (Backoff::FIRST, true));
    }
}
