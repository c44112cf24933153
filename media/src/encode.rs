//! H.264 encoding of the sample source with openh264, one closed GOP per segment.

use openh264::OpenH264API;
use openh264::Timestamp;
use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, QpRange,
    RateControlMode, UsageType,
};
use openh264::formats::YUVSource;

use crate::cmaf::{Sample, VideoTrack};
use crate::source::{Frame, PatternSource};
use crate::{MediaError, Result};

impl YUVSource for Frame {
    fn dimensions(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn strides(&self) -> (usize, usize, usize) {
        let cw = self.chroma_width();
        (self.width, cw, cw)
    }

    fn y(&self) -> &[u8] {
        &self.y
    }

    fn u(&self) -> &[u8] {
        &self.u
    }

    fn v(&self) -> &[u8] {
        &self.v
    }
}

/// What to encode.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeJob {
    pub width: u32,
    pub height: u32,
    pub bitrate_bps: u32,
    pub fps: u32,
    pub frames_per_segment: u32,
    pub segments: u32,
    /// Media timescale of the track (ticks per second); a multiple of `fps`.
    pub timescale: u32,
    /// Text burnt into the picture, e.g. `1280x720 2850k`.
    pub label: String,
}

/// Strips an Annex B start code (`00 00 01` or `00 00 00 01`) from a NAL unit.
fn strip_start_code(nal: &[u8]) -> &[u8] {
    match nal {
        [0, 0, 0, 1, rest @ ..] | [0, 0, 1, rest @ ..] => rest,
        _ => nal,
    }
}

const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;

/// An openh264 encoder in bit-rate mode that makes closed GOPs on request: frame skipping
/// and scene-change detection are off, so every frame comes out and IDRs fall only where
/// the caller forces them (a segment start). Samples come out in AVCC form (4-byte lengths,
/// parameter sets kept aside for the init segment).
pub struct H264Encoder {
    encoder: Encoder,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Encoder")
            .field(
                "has_parameter_sets",
                &(self.sps.is_some() && self.pps.is_some()),
            )
            .finish_non_exhaustive()
    }
}

/// openh264's own log lines go through `tracing` (target `openh264`, debug level) instead
/// of the terminal: its parameter check warns once per encoder at set-up ("bitrate can't
/// be controlled … without enabling skip frame": frame skipping is off on purpose, and the
/// measured bit rates show the rate is controlled). The `openh264` crate applies its trace
/// level only after that check and has no safe callback API, so the callback is installed
/// through the raw API: the workspace's one allowed use of `unsafe`.
#[allow(unsafe_code)]
mod c_log {
    use std::ffi::{CStr, c_char, c_int, c_void};

    use openh264::encoder::Encoder;
    use openh264_sys2::{ENCODER_OPTION_TRACE_CALLBACK, WelsTraceCallback};

    extern "C" fn forward(_context: *mut c_void, level: c_int, line: *const c_char) {
        if line.is_null() {
            return;
        }
        // SAFETY: openh264 hands the callback a NUL-terminated string it formatted into a
        // buffer that lives for the duration of the call (welsCodecTrace::CODEC_TRACE);
        // it is copied out before returning.
        let text = unsafe { CStr::from_ptr(line) }.to_string_lossy();
        tracing::debug!(target: "openh264", level, "{}", text.trim_end());
    }

    /// Installs [`forward`] as the encoder's trace callback. Returns whether openh264 took
    /// it; if not, its lines keep going to stderr, which costs nothing but noise.
    pub fn route_to_tracing(encoder: &mut Encoder) -> bool {
        let mut callback: WelsTraceCallback = Some(forward);
        // SAFETY: `raw_api` is the live encoder's vtable; ENCODER_OPTION_TRACE_CALLBACK is
        // accepted before InitializeExt (welsEncoderExt.cpp, SetOption) and its argument is
        // read as a `WelsTraceCallback` and copied during the call, so a pointer to this
        // local is valid for as long as it is used. `forward` never unwinds.
        let status = unsafe {
            encoder
                .raw_api()
                .set_option(ENCODER_OPTION_TRACE_CALLBACK, (&raw mut callback).cast())
        };
        status == 0
    }
}

impl H264Encoder {
    pub fn new(bitrate_bps: u32, fps: f64) -> Result<Self> {
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(bitrate_bps))
            .max_frame_rate(FrameRate::from_hz(fps as f32))
            .usage_type(UsageType::CameraVideoRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            .skip_frames(false)
            // Scene-change detection inserts I frames mid-GOP (the sample's scrolling bands
            // trigger it); our GOPs are fixed: one IDR per segment.
            .scene_change_detect(false)
            // A minimum QP of 0 makes openh264 silently cap the maximum at 42
            // (encoder_ext.cpp), which low rungs of detailed pictures need to exceed to meet
            // their bit rate.
            .qp(QpRange::new(1, 51))
            // IDRs are forced at segment starts; no periodic ones in between.
            .intra_frame_period(IntraFramePeriod::from_num_frames(0));
        let mut encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| MediaError::Encoder(e.to_string()))?;
        c_log::route_to_tracing(&mut encoder);
        Ok(Self {
            encoder,
            sps: None,
            pps: None,
        })
    }

    /// Encodes one frame presented at `millis`; `idr` forces an IDR (a segment start).
    /// Returns the access unit in AVCC form and whether it is an IDR.
    pub fn encode(
        &mut self,
        frame: &impl YUVSource,
        millis: u64,
        idr: bool,
    ) -> Result<(Vec<u8>, bool)> {
        if idr {
            // The intra period alone can drift after a reset: an IDR is forced.
            self.encoder.force_intra_frame();
        }
        let bitstream = self
            .encoder
            .encode_at(frame, Timestamp::from_millis(millis))
            .map_err(|e| MediaError::Encoder(e.to_string()))?;
        let frame_type = bitstream.frame_type();
        if idr && frame_type != FrameType::IDR {
            return Err(MediaError::Encoder(format!(
                "a segment start came out {frame_type:?}, not IDR"
            )));
        }
        let mut data = Vec::new();
        for l in 0..bitstream.num_layers() {
            let Some(layer) = bitstream.layer(l) else {
                continue;
            };
            for n in 0..layer.nal_count() {
                let Some(nal) = layer.nal_unit(n).map(strip_start_code) else {
                    continue;
                };
                match nal.first().map(|b| b & 0x1f) {
                    Some(NAL_SPS) => self.sps = Some(nal.to_vec()),
                    Some(NAL_PPS) => self.pps = Some(nal.to_vec()),
                    Some(NAL_AUD) | None => {}
                    Some(_) => {
                        let len = u32::try_from(nal.len())
                            .map_err(|_| MediaError::Encoder("NAL unit over 4 GiB".into()))?;
                        data.extend_from_slice(&len.to_be_bytes());
                        data.extend_from_slice(nal);
                    }
                }
            }
        }
        if data.is_empty() {
            return Err(MediaError::Encoder(format!(
                "a frame produced no picture (frame type {frame_type:?})"
            )));
        }
        Ok((data, frame_type == FrameType::IDR))
    }

    /// The track description for the init segment, once a frame has been encoded.
    pub fn track(&self, width: u32, height: u32, timescale: u32) -> Result<VideoTrack> {
        match (&self.sps, &self.pps) {
            (Some(sps), Some(pps)) => Ok(VideoTrack {
                timescale,
                width,
                height,
                sps: sps.clone(),
                pps: pps.clone(),
            }),
            _ => Err(MediaError::Encoder("the encoder emitted no SPS/PPS".into())),
        }
    }
}

/// Encodes `job` frame by frame. `on_segment(number, samples)` receives each finished
/// segment (numbered from 1); `on_frame` is called after every frame (for progress).
/// Returns the track description for the init segment.
pub fn encode_rendition(
    job: &EncodeJob,
    mut on_segment: impl FnMut(u32, &[Sample]) -> Result<()>,
    mut on_frame: impl FnMut(),
) -> Result<VideoTrack> {
    if job.fps == 0 || !job.timescale.is_multiple_of(job.fps) {
        return Err(MediaError::Invalid(format!(
            "timescale {} is not a multiple of {} fps",
            job.timescale, job.fps
        )));
    }
    let frame_ticks = job.timescale / job.fps;
    let mut encoder = H264Encoder::new(job.bitrate_bps, f64::from(job.fps))?;
    let (w, h) = (job.width as usize, job.height as usize);
    let source = PatternSource::new(w, h, job.fps, &job.label);
    let mut frame = Frame::new(w, h);
    let mut segment: Vec<Sample> = Vec::with_capacity(job.frames_per_segment as usize);
    let total = u64::from(job.frames_per_segment) * u64::from(job.segments);
    for index in 0..total {
        let segment_start = index % u64::from(job.frames_per_segment) == 0;
        source.render(index, &mut frame);
        let millis = index * 1000 / u64::from(job.fps);
        let (data, sync) = encoder.encode(&frame, millis, segment_start)?;
        segment.push(Sample {
            data,
            duration: frame_ticks,
            sync,
            composition_offset: 0,
        });
        on_frame();
        if segment.len() == job.frames_per_segment as usize {
            let number = u32::try_from(index / u64::from(job.frames_per_segment) + 1)
                .map_err(|_| MediaError::Invalid("too many segments".into()))?;
            on_segment(number, &segment)?;
            segment.clear();
        }
    }
    encoder.track(job.width, job.height, job.timescale)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_segment_starts_with_an_idr() {
        let job = EncodeJob {
            width: 160,
            height: 96,
            bitrate_bps: 200_000,
            fps: 10,
            frames_per_segment: 5,
            segments: 3,
            timescale: 90_000,
            label: "160x96 200k".into(),
        };
        let mut seen = Vec::new();
        let track = encode_rendition(
            &job,
            |n, samples| {
                assert!(samples[0].sync);
                assert!(samples[1..].iter().all(|s| !s.sync));
                seen.push((n, samples.len()));
                Ok(())
            },
            || {},
        )
        .unwrap();
        assert_eq!(seen, [(1, 5), (2, 5), (3, 5)]);
        assert_eq!(track.sps[0] & 0x1f, 7);
        assert_eq!(track.pps[0] & 0x1f, 8);
    }
}
