//! Real-time playback sessions over HTTP: a headless player that fetches a presentation's
//! init and media segments in order, keeps a playback clock, and lets an ABR algorithm
//! from [`crate::abr`] (the very implementations the simulator runs) pick each segment.
//!
//! A session is one async fn, [`run`], over a shared [`reqwest::Client`] (its connection
//! pool gives keep-alive), a [`crate::link::LinkModel`] that paces its reads, an
//! [`Observer`] for live figures and a cancellation token, so one tokio runtime can run
//! thousands of them. Its counts have one owner, its [`tally::Tally`].
//!
//! How it plays:
//!
//! - **VOD and live**: a VOD plays from its first segment to its end; a live presentation
//!   (HLS without `EXT-X-ENDLIST`, dynamic MPD) starts three segments behind the newest
//!   and reloads its manifest every target duration (`minimumUpdatePeriod`) for the next
//!   segment, until the deadline or the stream ends. Renditions are aligned by segment
//!   number; separate audio (the first audio rendition) is fetched by time alongside.
//! - **Clock** ([`clock::Playback`]): playback starts once `startup_s` of media is
//!   buffered, the playhead drains the buffer one second per second, an empty buffer before
//!   the end is a rebuffering event, and playback resumes at `resume_s`.
//! - **Buffer cap**: while playing, the next request waits until the buffer has room for
//!   the segment under `max_buffer_s`.
//! - **Decisions**: segment 0 at rendition 1 (as the simulator), then
//!   [`crate::abr::Abr::choose`] after each segment has fully arrived, fed as `abr`'s
//!   module docs say.
//! - **Media checks** ([`body`], `media::validate`): every init and media segment is
//!   checked as it streams in (fMP4 boxes, tracks and `tfdt` continuity; TS packets,
//!   tables and PES timestamps); bytes that are not media fail the attempt as an error of
//!   kind `media`, retried and failed over like a 4xx.
//! - **Abandonment** ([`abandon`]): a download that will stall playback is dropped for a
//!   lower rendition that would arrive sooner, as hls.js does.
//! - **Retries**: a failed request (status, connection, broken body, idle timeout) is
//!   retried with capped, jittered exponential backoff, one rendition lower when the error
//!   is permanent (a 4xx); after `retries` failures of one segment the session ends with
//!   the error in its report. Every wait is bounded by the idle timeout or the deadline.
//! - **Pathways** ([`pathway`], [`steering`]): a presentation offered over several
//!   pathways is fetched over the one its steering server puts first (asked before the
//!   first segment, then every TTL, beside the downloads); a request that fails on a
//!   pathway moves at once to the next, without using a retry, and the failed pathway
//!   goes last for `pathway_penalty`. A silent host is found out by the connect
//!   timeout, and on open connections by TCP keepalive and `TCP_USER_TIMEOUT`
//!   ([`http_client_with`]).

pub mod abandon;
pub mod body;
pub mod clock;
pub mod cmcd;
pub mod config;
pub mod counters;
pub mod fetch;
pub mod manifest;
pub mod observer;
pub mod outcome;
pub mod pathway;
mod play;
mod segment;
pub mod steering;
pub mod summary;
pub mod tally;

pub use config::{CONNECT_TIMEOUT, SessionConfig, http_client, http_client_with};
pub use counters::{Counters, ErrorKind, PathwayCounters};
pub use observer::{NoObserver, Observer};
pub use outcome::{End, SessionError, SessionReport};
pub use play::run;
