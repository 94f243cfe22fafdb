//! The filter module state machine (rule ST1), as plain Rust.
//!
//! NDIS serialises the control callbacks of one module (attach, restart, pause, detach), so
//! transitions happen one at a time; the datapath only reads the state (and relies on the
//! [`Rundown`](crate::rundown::Rundown), not on the state, to decide whether traffic may
//! pass). The state is kept for the assertions every callback makes and for diagnostics.

use core::fmt;
use core::sync::atomic::{AtomicU8, Ordering};

/// The states of a filter module, as NDIS defines them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum FilterState {
    Detached = 0,
    Attaching = 1,
    Paused = 2,
    Restarting = 3,
    Running = 4,
    Pausing = 5,
}

impl FilterState {
    const ALL: [FilterState; 6] = [
        FilterState::Detached,
        FilterState::Attaching,
        FilterState::Paused,
        FilterState::Restarting,
        FilterState::Running,
        FilterState::Pausing,
    ];

    fn from_u8(v: u8) -> FilterState {
        // The cell only ever stores values written from `FilterState as u8`.
        Self::ALL[usize::from(v) % Self::ALL.len()]
    }

    /// Whether NDIS allows `self -> to` (rule ST1).
    pub const fn may_become(self, to: FilterState) -> bool {
        use FilterState::*;
        matches!(
            (self, to),
            (Detached, Attaching)
                | (Attaching, Paused)
                | (Attaching, Detached) // a failed attach
                | (Paused, Restarting)
                | (Restarting, Running)
                | (Restarting, Paused) // a failed restart
                | (Running, Pausing)
                | (Pausing, Paused)
                | (Paused, Detached)
        )
    }
}

/// A transition that the state machine refused: the module was not in `expected`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BadTransition {
    pub found: FilterState,
    pub expected: FilterState,
    pub to: FilterState,
}

impl fmt::Display for BadTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "state {:?} -> {:?} refused: module is {:?}",
            self.expected, self.to, self.found
        )
    }
}

/// An atomically readable [`FilterState`].
pub struct StateCell(AtomicU8);

impl StateCell {
    /// A cell holding `state`.
    pub const fn new(state: FilterState) -> Self {
        StateCell(AtomicU8::new(state as u8))
    }

    /// The current state.
    pub fn get(&self) -> FilterState {
        FilterState::from_u8(self.0.load(Ordering::Acquire))
    }

    /// Moves `from -> to` if the module is in `from` and the transition is legal.
    pub fn transition(&self, from: FilterState, to: FilterState) -> Result<(), BadTransition> {
        let refuse = |found| BadTransition {
            found,
            expected: from,
            to,
        };
        if !from.may_become(to) {
            return Err(refuse(self.get()));
        }
        self.0
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(|found| refuse(FilterState::from_u8(found)))
    }

    /// Whether the module is in one of `states`.
    pub fn is_one_of(&self, states: &[FilterState]) -> bool {
        states.contains(&self.get())
    }
}

#[cfg(test)]
mod tests {
    use super::FilterState::*;
    use super::*;

    #[test]
    fn the_documented_cycle_is_accepted() {
        let s = StateCell::new(Detached);
        for (from, to) in [
            (Detached, Attaching),
            (Attaching, Paused),
            (Paused, Restarting),
            (Restarting, Running),
            (Running, Pausing),
            (Pausing, Paused),
            (Paused, Detached),
        ] {
            s.transition(from, to).unwrap();
            assert_eq!(s.get(), to);
        }
    }

    #[test]
    fn skipping_a_state_is_refused_and_leaves_the_state_alone() {
        let s = StateCell::new(Paused);
        let err = s.transition(Paused, Running).unwrap_err();
        assert_eq!(err.found, Paused);
        assert_eq!(s.get(), Paused);
        assert!(!Running.may_become(Paused));
        assert!(!Running.may_become(Detached));
    }

    #[test]
    fn a_transition_from_the_wrong_state_names_the_real_one() {
        let s = StateCell::new(Running);
        let err = s.transition(Paused, Restarting).unwrap_err();
        assert_eq!(
            err,
            BadTransition {
                found: Running,
                expected: Paused,
                to: Restarting
            }
        );
    }

    #[test]
    fn every_pair_matches_the_table() {
        let legal = [
            (Detached, Attaching),
            (Attaching, Paused),
            (Attaching, Detached),
            (Paused, Restarting),
            (Restarting, Running),
            (Restarting, Paused),
            (Running, Pausing),
            (Pausing, Paused),
            (Paused, Detached),
        ];
        for a in FilterState::ALL {
            for b in FilterState::ALL {
                assert_eq!(a.may_become(b), legal.contains(&(a, b)), "{a:?} -> {b:?}");
            }
        }
    }
}
