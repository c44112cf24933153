//! Rivulet's headless player: the adaptive-bitrate algorithms ([`abr`]), the
//! deterministic trace-driven simulator ([`sim`]), real-time playback sessions over HTTP
//! ([`session`], `player play`) with link emulation ([`link`]) and content steering and
//! failover between pathways ([`session::steering`], [`session::pathway`]), the load
//! tester ([`load`], `player load` / `player merge`), and their plots ([`plot`]) and live
//! progress ([`progress`]).
//!
//! The algorithms implement one trait, [`abr::Abr`], over one input, [`abr::AbrInput`],
//! holding only what a real player knows; the simulator and real-time sessions drive the
//! very same implementations. The simulator follows Pensieve's `fixed_env.py` rules
//! exactly (`tests/data/abr/README.md`): with `bba` and `robust-mpc` it reproduces the
//! reference chunk logs bit for bit.
//!
//! # Rivulet, the default algorithm
//!
//! [`abr::Rivulet`] is a model-predictive controller that plans six segments ahead and
//! scores plans with QoE_lin itself, like robust MPC, but with a better model of the
//! future and of what the future is owed:
//!
//! 1. **Throughput scenarios, not a point estimate.** Each of the last eight transfer
//!    throughputs is a scenario and a plan scores its mean QoE over all of them. Because a
//!    stall's cost grows steeply as throughput falls, a jittery link makes ambitious plans
//!    expensive by itself, while a steady link lets the plan run close to capacity. No
//!    safety factor, no error discount.
//! 2. **Latency apart from throughput.** Throughput is measured over the body transfer,
//!    and a planned download takes TTFB + size / throughput.
//! 3. **Real segment sizes** for each planned step (not the reference's one-ahead lookup).
//! 4. **A buffer reserve at the horizon.** Each second the plan ends below 20 s of buffer
//!    (at most half the player's maximum) costs like a second of stall, so a short
//!    horizon cannot drain the buffer it will need against fades deeper than anything in
//!    its window. When the horizon reaches the end of the video no reserve is kept.
//! 5. **At most one switch per plan** (hold `a` for `m` segments, then `c`): 36·h plans
//!    instead of 6^h, and no zig-zag plans, so switches stay few.
//!
//! On the shared traces (chunk 0 skipped) it scores 0.991 QoE per chunk on `hsdpa_test`
//! (robust MPC 0.831, Pensieve 0.950), 0.440 on `fcc` (0.343, 0.349) and 0.856 on
//! `hsdpa_train` (0.618, 0.798), with less stall time than robust MPC on every set and
//! fewer switches.

pub mod abr;
pub mod link;
pub mod load;
pub mod plot;
pub mod progress;
pub mod session;
pub mod sim;
