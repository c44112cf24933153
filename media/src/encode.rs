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
    let config = EncoderConfig::new()
        .bitrate(BitRate::from_bps(job.bitrate_bps))
        .max_frame_rate(FrameRate::from_hz(job.fps as f32))
        .usage_type(UsageType::CameraVideoRealTime)
        .rate_control_mode(RateControlMode::Bitrate)
        .skip_frames(false)
        // Scene-change detection fires on the scrolling bands and inserts I frames mid-GOP;
        // our GOPs are fixed: one IDR per segment.
        .scene_change_detect(false)
        // A minimum QP of 0 makes openh264 silently cap the maximum at 42 (encoder_ext.cpp),
        // which the low rungs of a detailed picture need to exceed to meet their bit rate.
        .qp(QpRange::new(1, 51))
        .intra_frame_period(IntraFramePeriod::from_num_frames(job.frames_per_segment));
    let mut encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
        .map_err(|e| MediaError::Encoder(e.to_string()))?;
    let (w, h) = (job.width as usize, job.height as usize);
    let source = PatternSource::new(w, h, job.fps, &job.label);
    let mut frame = Frame::new(w, h);
    let mut sps = None;
    let mut pps = None;
    let mut segment: Vec<Sample> = Vec::with_capacity(job.frames_per_segment as usize);
    let total = u64::from(job.frames_per_segment) * u64::from(job.segments);
    for index in 0..total {
        let segment_start = index % u64::from(job.frames_per_segment) == 0;
        if segment_start {
            // An IDR at every segment start makes each segment a closed GOP a player can
            // switch into; the intra period alone can drift after a reset.
            encoder.force_intra_frame();
        }
        source.render(index, &mut frame);
        let millis = index * 1000 / u64::from(job.fps);
        let bitstream = encoder
            .encode_at(&frame, Timestamp::from_millis(millis))
            .map_err(|e| MediaError::Encoder(e.to_string()))?;
        let frame_type = bitstream.frame_type();
        if segment_start && frame_type != FrameType::IDR {
            return Err(MediaError::Encoder(format!(
                "frame {index} starts a segment but is {frame_type:?}, not IDR"
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
                    Some(NAL_SPS) => sps = Some(nal.to_vec()),
                    Some(NAL_PPS) => pps = Some(nal.to_vec()),
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
                "frame {index} produced no picture (frame type {frame_type:?})"
            )));
        }
        segment.push(Sample {
            data,
            duration: frame_ticks,
            sync: frame_type == FrameType::IDR,
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
    match (sps, pps) {
        (Some(sps), Some(pps)) => Ok(VideoTrack {
            timescale: job.timescale,
            width: job.width,
            height: job.height,
            sps,
            pps,
        }),
        _ => Err(MediaError::Encoder("the encoder emitted no SPS/PPS".into())),
    }
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
