//! What to do after a failed provider request, shared by the import runner and the sync
//! workers: wait and send it again, or give up.
//!
//! The policy only decides. Counting the failures, slowing the pacer after a throttle and
//! pausing for a person stay with the caller, which knows its own bookkeeping.
//!
//! Why not `backon`: it drives a retry loop around one future, keeping the attempt count in
//! the loop. A record's attempts here outlive the loop (they are stored with its results and
//! continue after a crash or in another worker), so the wait is a function of the count.

use super::ErrorClass;
use std::time::Duration;

/// What to do about one failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it again after this long.
    Wait(Duration),
    /// Stop sending it: the last answer stands as its result.
    GiveUp,
    /// The provider refused the credentials: nothing goes through until a person fixes them.
    NeedsPerson,
}

/// How often a request is sent again and how long to wait in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// A request that failed retryably this many times is given up.
    pub max_attempts: usize,
    /// A request throttled more than this many times is given up.
    pub max_throttles: usize,
    /// The n-th retryable failure waits between `base_delay·2ⁿ` and twice that.
    pub base_delay: Duration,
    /// No wait after a retryable failure is longer.
    pub max_delay: Duration,
    /// The wait after a throttle; a caller with a pacer also slows its rate.
    pub after_throttle: Duration,
}

impl Policy {
    /// The import runner's numbers: 8 attempts, 40 throttles, exponential from 200 ms with
    /// jitter up to 20 s, 1 s after a throttle.
    pub const STANDARD: Policy = Policy {
        max_attempts: 8,
        max_throttles: 40,
        base_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(20),
        after_throttle: Duration::from_secs(1),
    };

    /// Sync's numbers: a live event is never given up for a transient failure or a throttle
    /// (the side may be down for a while; its conversation waits in order), exponential from
    /// 200 ms up to a minute between tries.
    pub const SYNC: Policy = Policy {
        max_attempts: usize::MAX,
        max_throttles: usize::MAX,
        base_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(60),
        after_throttle: Duration::from_secs(1),
    };

    /// Decide after a failure of class `class`. `attempts` counts the request's retryable
    /// failures and `throttles` its throttles, this failure included.
    pub fn decide(&self, class: ErrorClass, attempts: usize, throttles: usize) -> Decision {
        self.decide_with(class, attempts, throttles, rand::random())
    }

    /// [`Policy::decide`] with the jitter's random number given (tests).
    fn decide_with(
        &self,
        class: ErrorClass,
        attempts: usize,
        throttles: usize,
        random: u64,
    ) -> Decision {
        match class {
            ErrorClass::RateLimited if throttles > self.max_throttles => Decision::GiveUp,
            ErrorClass::RateLimited => Decision::Wait(self.after_throttle),
            ErrorClass::Retryable if attempts >= self.max_attempts => Decision::GiveUp,
            ErrorClass::Retryable => Decision::Wait(self.backoff(attempts, random)),
            ErrorClass::Auth => Decision::NeedsPerson,
            ErrorClass::Permanent | ErrorClass::Ok => Decision::GiveUp,
        }
    }

    /// `base_delay·2ⁿ` plus a random part below that again, at most `max_delay`: the jitter
    /// keeps requests that failed together from coming back together.
    fn backoff(&self, attempt: usize, random: u64) -> Duration {
        // The shift is capped so it cannot overflow; max_delay is reached long before.
        let base = self.base_delay.saturating_mul(1u32 << attempt.min(20));
        let nanos = u64::try_from(base.as_nanos()).unwrap_or(u64::MAX).max(1);
        base.saturating_add(Duration::from_nanos(random % nanos))
            .min(self.max_delay)
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::STANDARD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy::STANDARD;

    fn wait(d: Decision) -> Duration {
        match d {
            Decision::Wait(d) => d,
            other => panic!("expected a wait, got {other:?}"),
        }
    }

    #[test]
    fn retryable_waits_grow_with_jitter_within_bounds() {
        let randoms = [0, 1, 399_999_999, 400_000_000, u64::MAX / 3, u64::MAX];
        for attempt in 1..P.max_attempts {
            let base = Duration::from_millis(200 << attempt);
            for r in randoms {
                let d = wait(P.decide_with(ErrorClass::Retryable, attempt, 0, r));
                assert!(d <= Duration::from_secs(20), "attempt {attempt}: {d:?}");
                assert!(d >= base.min(P.max_delay), "attempt {attempt}: {d:?}");
                assert!(d < base * 2, "attempt {attempt}: {d:?}");
            }
            for _ in 0..100 {
                let d = wait(P.decide(ErrorClass::Retryable, attempt, 0));
                assert!(d >= base.min(P.max_delay) && d < base * 2 && d <= P.max_delay);
            }
        }
        assert_eq!(
            wait(P.decide_with(ErrorClass::Retryable, 1, 0, 0)),
            Duration::from_millis(400)
        );
        assert_eq!(
            wait(P.decide_with(ErrorClass::Retryable, 1, 0, u64::MAX)),
            Duration::from_millis(400) + Duration::from_nanos(u64::MAX % 400_000_000)
        );
        // From the seventh attempt the base alone is past the cap.
        assert_eq!(
            wait(P.decide_with(ErrorClass::Retryable, 7, 0, 0)),
            Duration::from_secs(20)
        );
    }

    #[test]
    fn gives_up_after_the_counts() {
        for attempt in 1..8 {
            assert!(matches!(
                P.decide(ErrorClass::Retryable, attempt, 0),
                Decision::Wait(_)
            ));
        }
        assert_eq!(P.decide(ErrorClass::Retryable, 8, 0), Decision::GiveUp);
        assert_eq!(P.decide(ErrorClass::Retryable, 9, 0), Decision::GiveUp);
        for throttle in 1..=40 {
            assert_eq!(
                P.decide(ErrorClass::RateLimited, 0, throttle),
                Decision::Wait(Duration::from_secs(1))
            );
        }
        assert_eq!(P.decide(ErrorClass::RateLimited, 0, 41), Decision::GiveUp);
        // Each count bounds its own class only.
        assert!(matches!(
            P.decide(ErrorClass::Retryable, 1, 100),
            Decision::Wait(_)
        ));
        assert!(matches!(
            P.decide(ErrorClass::RateLimited, 100, 1),
            Decision::Wait(_)
        ));
        assert_eq!(P.decide(ErrorClass::Permanent, 0, 0), Decision::GiveUp);
        assert_eq!(P.decide(ErrorClass::Ok, 0, 0), Decision::GiveUp);
    }

    #[test]
    fn refused_credentials_need_a_person_whatever_the_counts() {
        for (a, t) in [(0, 0), (1, 1), (8, 41), (usize::MAX, usize::MAX)] {
            assert_eq!(P.decide(ErrorClass::Auth, a, t), Decision::NeedsPerson);
        }
    }

    #[test]
    fn extreme_numbers_neither_panic_nor_overflow() {
        let zero = Policy {
            base_delay: Duration::ZERO,
            ..P
        };
        assert_eq!(
            wait(zero.decide_with(ErrorClass::Retryable, 1, 0, u64::MAX)),
            Duration::ZERO
        );
        let huge = Policy {
            max_attempts: usize::MAX,
            base_delay: Duration::MAX,
            max_delay: Duration::MAX,
            ..P
        };
        assert_eq!(
            wait(huge.decide_with(ErrorClass::Retryable, 1_000, 0, u64::MAX)),
            Duration::MAX
        );
    }
}
