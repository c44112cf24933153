//! Rivulet's origin: serves a library folder of packaged assets (written by `media`) over
//! HTTP with exact RFC 9110 semantics, live channels looped on a clock, content steering
//! over edges, and the browser watch page.
//!
//! The HTTP rules themselves (entity tags, preconditions, ranges, the 304 fields, dates)
//! are `http_rules`'s, shared with the edge and the player.
//!
//! Layers, each using only those above it:
//! - [`error`]: the one error type every route answers with;
//! - [`entity`]: one representation (bytes or file) turned into the response a request asks
//!   for; every route, file-backed or generated, answers through it;
//! - [`store`]: content hashes and small bodies cached per file version;
//! - [`paths`], [`library`]: what a URL may name, and the library folder;
//! - [`versions`]: every build of an asset under URLs of its own, so a rebuild never
//!   changes what an `immutable` URL means;
//! - [`metrics`]: Prometheus counters and the per-request log line;
//! - [`live`]: live channels, their documents pure functions of `now`;
//! - [`steering`]: content steering, players sent to edges by a probed, load-aware order;
//! - [`ingest`]: the library watch: dropped video files become assets (one ladder job at
//!   a time), new builds get their snapshots and purge the edges;
//! - [`state`]: what the routes share, including the clock;
//! - [`routes`]: the HTTP handlers and [`router`], requests checked (`Host`, the normal
//!   form of the target) before routing;
//! - [`server`]: the server loop within its connection limits, [`serve`].

pub mod entity;
pub mod error;
pub mod ingest;
pub mod library;
pub mod live;
pub mod metrics;
pub mod paths;
pub mod routes;
pub mod server;
pub mod state;
pub mod steering;
pub mod store;
pub mod versions;
pub mod web_libs;

pub use error::OriginError;
pub use library::asset_urls;
pub use routes::router;
pub use server::{serve, serve_with};
pub use state::{AppState, OriginConfig};
