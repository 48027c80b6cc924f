//! A circuit breaker for the shared cache.
//!
//! Closed: calls go through; a run of failures opens it. Open: calls are
//! refused at once (the cache is bypassed, PostgreSQL answers) until the
//! cool-down has passed. Then one trial call goes through (half-open): its
//! success closes the breaker, its failure opens it again. So a dead or
//! slow Redis costs each request nothing after the first few failures, and
//! the cache comes back by itself.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

#[derive(Debug)]
pub struct Breaker {
    state: Mutex<State>,
    /// Consecutive failures that open the breaker.
    threshold: u32,
    /// How long it stays open before a trial.
    cool_down: Duration,
}

impl Breaker {
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        Breaker {
            state: Mutex::new(State::Closed { failures: 0 }),
            threshold: threshold.max(1),
            cool_down,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value: a panic elsewhere cannot leave it torn.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a call may go ahead now. After the cool-down exactly one
    /// caller gets `true` (the trial) until it reports back.
    pub fn allow(&self) -> bool {
        let mut state = self.state();
        match *state {
            State::Closed { .. } => true,
            State::Open { until } if Instant::now() >= until => {
                *state = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => false,
        }
    }

    pub fn succeeded(&self) {
        *self.state() = State::Closed { failures: 0 };
    }

    /// Records a failure; returns whether this opened the breaker.
    pub fn failed(&self) -> bool {
        let mut state = self.state();
        let open = State::Open {
            until: Instant::now() + self.cool_down,
        };
        match *state {
            State::Closed { failures } if failures + 1 < self.threshold => {
                *state = State::Closed {
                    failures: failures + 1,
                };
                false
            }
            State::Closed { .. } | State::HalfOpen => {
                *state = open;
                true
            }
            State::Open { .. } => false,
        }
    }

    /// Whether calls are being refused (open, or waiting on a trial).
    pub fn is_open(&self) -> bool {
        !matches!(*self.state(), State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_a_run_of_failures_and_a_success_resets_the_run() {
        let breaker = Breaker::new(3, Duration::from_secs(60));
        assert!(!breaker.failed());
        assert!(!breaker.failed());
        breaker.succeeded();
        assert!(!breaker.failed());
        assert!(!breaker.failed());
        assert!(breaker.allow());
        assert!(breaker.failed(), "the third failure in a row opens it");
        assert!(breaker.is_open());
        assert!(!breaker.allow());
    }

    #[test]
    fn one_trial_after_the_cool_down_decides() {
        let breaker = Breaker::new(1, Duration::from_millis(20));
        breaker.failed();
        assert!(!breaker.allow());
        std::thread::sleep(Duration::from_millis(30));
        assert!(breaker.allow(), "the trial goes through");
        assert!(!breaker.allow(), "only one trial at a time");
        assert!(breaker.failed(), "a failed trial opens it again");
        assert!(!breaker.allow());
        std::thread::sleep(Duration::from_millis(30));
        assert!(breaker.allow());
        breaker.succeeded();
        assert!(!breaker.is_open());
        assert!(breaker.allow() && breaker.allow());
    }
}
