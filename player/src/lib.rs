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
//! [`abr::Rivulet`] is a model-predictive controller that scores plans with QoE_lin
//! itself, like robust MPC, but plans over a distribution of throughputs learned from
//! the link's own prediction errors and from training traces instead of one discounted
//! estimate (the details and the parameters: `abr/rivulet.rs`). Every number it uses is
//! searched by `player tune` on training traces only (`hsdpa_train`), and the shipped
//! defaults are that search's output, the committed file `player/abr/rivulet.json`.
//! `player simulate --cv K` and `--abr optimal` (the offline optimum, [`sim::optimal`])
//! give figures on traces the tuning never saw, as a share of what a player that knew
//! the future could reach (README, "ABR algorithms").

pub mod abr;
pub mod link;
pub mod load;
pub mod plot;
pub mod progress;
pub mod session;
pub mod sim;
