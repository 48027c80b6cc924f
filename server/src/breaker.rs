//! Circuit breakers for the dependencies an instance can do without for a
//! while: the shared cache, the real-time bus, each read replica.
//!
//! Closed: calls go through; a run of failures (or one [`Breaker::trip`])
//! opens it. Open: calls are refused at once — the caller falls back (the
//! cache to PostgreSQL, a replica's reads to the primary, the bus to the
//! database reconciliation) — until the cool-down has passed. Then one trial
//! call goes through (half-open): its success closes the breaker, its
//! failure opens it again. A trial that never reports back (its caller was
//! cancelled) does not wedge the breaker: after another cool-down the next
//! caller gets a trial of its own. So a dead or slow dependency costs each
//! request nothing after the first few failures, and comes back by itself.
//!
//! Every breaker reports its state as `circuit_breaker_state{dependency}`
//! (0 closed, 1 half-open, 2 open) and its openings as
//! `circuit_breaker_opened_total{dependency}`; `/readyz` lists them all.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    HalfOpen,
    Open,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::HalfOpen => "half_open",
            BreakerState::Open => "open",
        }
    }

    fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// A trial is out; another may go after `retry_at` if it never reports.
    HalfOpen {
        retry_at: Instant,
    },
}

impl State {
    fn public(self) -> BreakerState {
        match self {
            State::Closed { .. } => BreakerState::Closed,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
            State::Open { .. } => BreakerState::Open,
        }
    }
}

#[derive(Debug)]
pub struct Breaker {
    /// The `dependency` label: `cache`, `bus`, `replica-0`, …
    dependency: &'static str,
    state: Mutex<State>,
    /// Consecutive failures that open the breaker.
    threshold: u32,
    /// How long it stays open before a trial.
    cool_down: Duration,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` failures in a row.
    pub fn new(dependency: &'static str, threshold: u32, cool_down: Duration) -> Self {
        Self::starting(
            dependency,
            threshold,
            cool_down,
            State::Closed { failures: 0 },
        )
    }

    /// An open breaker, for a dependency that must prove itself first (a
    /// replica is out of rotation until it has been seen caught up).
    pub fn new_open(dependency: &'static str, cool_down: Duration) -> Self {
        Self::starting(
            dependency,
            1,
            cool_down,
            State::Open {
                until: Instant::now() + cool_down,
            },
        )
    }

    fn starting(
        dependency: &'static str,
        threshold: u32,
        cool_down: Duration,
        state: State,
    ) -> Self {
        metrics::gauge!("circuit_breaker_state", "dependency" => dependency)
            .set(state.public().gauge());
        Breaker {
            dependency,
            state: Mutex::new(state),
            threshold: threshold.max(1),
            cool_down,
        }
    }

    pub fn dependency(&self) -> &'static str {
        self.dependency
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a plain value: a panic elsewhere cannot leave it torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves to `next`, reporting a change of state.
    fn set(&self, state: &mut State, next: State, why: &str) {
        let (was, now) = (state.public(), next.public());
        *state = next;
        if was == now {
            return;
        }
        metrics::gauge!("circuit_breaker_state", "dependency" => self.dependency).set(now.gauge());
        match now {
            BreakerState::Open => {
                metrics::counter!("circuit_breaker_opened_total", "dependency" => self.dependency)
                    .increment(1);
                tracing::warn!(dependency = self.dependency, why, "circuit breaker open");
            }
            BreakerState::Closed => {
                tracing::info!(dependency = self.dependency, "circuit breaker closed")
            }
            BreakerState::HalfOpen => {
                tracing::debug!(dependency = self.dependency, "circuit breaker half-open")
            }
        }
    }

    /// Whether a call may go ahead now. After the cool-down exactly one
    /// caller gets `true` (the trial) until it reports back.
    pub fn allow(&self) -> bool {
        let mut state = self.lock();
        let now = Instant::now();
        match *state {
            State::Closed { .. } => true,
            State::Open { until } | State::HalfOpen { retry_at: until } if now >= until => {
                let trial = State::HalfOpen {
                    retry_at: now + self.cool_down,
                };
                self.set(&mut state, trial, "");
                true
            }
            State::Open { .. } | State::HalfOpen { .. } => false,
        }
    }

    pub fn succeeded(&self) {
        let mut state = self.lock();
        self.set(&mut state, State::Closed { failures: 0 }, "");
    }

    /// Records a failure; returns whether this opened the breaker.
    pub fn failed(&self) -> bool {
        let mut state = self.lock();
        match *state {
            State::Closed { failures } if failures + 1 < self.threshold => {
                *state = State::Closed {
                    failures: failures + 1,
                };
                false
            }
            State::Closed { .. } | State::HalfOpen { .. } => {
                let open = State::Open {
                    until: Instant::now() + self.cool_down,
                };
                self.set(&mut state, open, "failures in a row");
                true
            }
            State::Open { .. } => false,
        }
    }

    /// Opens the breaker at once, whatever its run of failures.
    pub fn trip(&self, why: &str) {
        let mut state = self.lock();
        let open = State::Open {
            until: Instant::now() + self.cool_down,
        };
        self.set(&mut state, open, why);
    }

    pub fn state(&self) -> BreakerState {
        self.lock().public()
    }

    /// Whether calls go through without a trial.
    pub fn is_closed(&self) -> bool {
        self.state() == BreakerState::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_a_run_of_failures_and_a_success_resets_the_run() {
        let breaker = Breaker::new("test", 3, Duration::from_secs(60));
        assert!(!breaker.failed());
        assert!(!breaker.failed());
        breaker.succeeded();
        assert!(!breaker.failed());
        assert!(!breaker.failed());
        assert!(breaker.allow());
        assert!(breaker.failed(), "the third failure in a row opens it");
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(!breaker.allow());
    }

    #[test]
    fn one_trial_after_the_cool_down_decides() {
        let breaker = Breaker::new("test", 1, Duration::from_millis(20));
        breaker.failed();
        assert!(!breaker.allow());
        std::thread::sleep(Duration::from_millis(30));
        assert!(breaker.allow(), "the trial goes through");
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(!breaker.allow(), "only one trial at a time");
        assert!(breaker.failed(), "a failed trial opens it again");
        assert!(!breaker.allow());
        std::thread::sleep(Duration::from_millis(30));
        assert!(breaker.allow());
        breaker.succeeded();
        assert!(breaker.is_closed());
        assert!(breaker.allow() && breaker.allow());
    }

    #[test]
    fn a_trial_that_never_reports_back_does_not_wedge_it() {
        let breaker = Breaker::new("test", 1, Duration::from_millis(20));
        breaker.failed();
        std::thread::sleep(Duration::from_millis(30));
        assert!(breaker.allow(), "a trial, whose caller is then cancelled");
        assert!(!breaker.allow(), "while it may still report");
        std::thread::sleep(Duration::from_millis(30));
        assert!(breaker.allow(), "another trial once it is overdue");
    }

    #[test]
    fn a_trip_opens_at_once_and_a_new_open_breaker_waits_for_its_trial() {
        let breaker = Breaker::new("test", 5, Duration::from_secs(60));
        breaker.trip("promoted");
        assert_eq!(breaker.state(), BreakerState::Open);
        let fresh = Breaker::new_open("test", Duration::from_secs(60));
        assert!(!fresh.allow());
        fresh.succeeded();
        assert!(fresh.is_closed());
    }
}
