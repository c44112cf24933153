//! Rivulet's shared HTTP rules, used by the origin, the edge and the player: one home for
//! each rule, every rule a pure function over plain types with a table test citing its RFC
//! section. Only `http`/`httpdate`-level dependencies: no media, no async runtime (the
//! stop-signal handler sits behind the `signal` feature).
//!
//! - [`clock`]: the time servers and decisions take (`now` is an argument; tests set it);
//! - [`cli`]: the grammars every command line shares (durations, sizes, names, `NAME=URL`);
//! - [`report`]: an error and its causes on one line;
//! - `signal` (feature `signal`): Ctrl-C or SIGTERM as one future.

pub mod cli;
pub mod clock;
pub mod report;
#[cfg(feature = "signal")]
pub mod signal;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
