//! Rivulet's shared HTTP rules, used by the origin, the edge and the player: one home for
//! each rule, every rule a pure function over plain types with a table test citing its RFC
//! section. Only `http`/`httpdate`-level dependencies: no media, no async runtime (the
//! stop-signal handler sits behind the `signal` feature).
//!
//! - [`etag`]: entity tags and the tag lists of `If-Match` / `If-None-Match`;
//! - [`date`]: HTTP-dates, parsed and formatted in one place;
//! - [`precondition`]: the conditional fields of a request evaluated in the one order of
//!   RFC 9110 §13.2.2, giving 200, 206, 304, 412 or 416;
//! - [`path`]: the one normal form of a request target (RFC 3986 §6.2.2);
//! - [`host`]: the `Host` of a request, validated (RFC 9112 §3.2);
//! - [`forwarded`]: `Forwarded` elements (RFC 7239);
//! - [`framing`]: whether a request announces a body (RFC 9112 §6.3);
//! - [`range`]: `Range`, `If-Range` and `Content-Range` (one range or the whole);
//! - [`not_modified`]: the header of a 304;
//! - [`cache_control`]: `Cache-Control` directives;
//! - [`cache_status`]: the RFC 9211 `Cache-Status` field, written and read;
//! - [`edge_status`]: the `/.edge/status` document, one type for writer and reader;
//! - [`clock`]: the time servers and decisions take (`now` is an argument; tests set it);
//! - [`cli`]: the grammars every command line shares (durations, sizes, names, `NAME=URL`);
//! - [`report`]: an error and its causes on one line;
//! - `signal` (feature `signal`): Ctrl-C or SIGTERM as one future;
//! - `server` (feature `server`): the HTTP/1.1 server loop with its connection limits
//!   (timeouts, a cap, accept back-off).

pub mod cache_control;
pub mod cache_status;
pub mod cli;
pub mod clock;
pub mod date;
pub mod edge_status;
pub mod etag;
pub mod forwarded;
pub mod framing;
pub mod host;
mod list;
pub mod not_modified;
pub mod path;
pub mod precondition;
pub mod range;
pub mod report;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "signal")]
pub mod signal;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
