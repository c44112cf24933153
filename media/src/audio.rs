//! The sample's audio: a quiet 440 Hz tone with a 1 kHz beep at the start of every second
//! (so audio/video sync can be checked by ear against the burnt-in time code), encoded as
//! AAC-LC with libfdk-aac.

use fdk_aac::enc::{AudioObjectType, BitRate, ChannelMode, Encoder, EncoderParams, Transport};

use std::path::Path;

use crate::asset::{
    AUDIO_RENDITION, INIT_SEGMENT, rendition, rendition_dir, write_file, write_segment,
};
use crate::cmaf::{AudioTrack, Sample, audio_init_segment};
use crate::{Codec, Codecs, MediaError, MediaType, Rendition, Result};

/// Samples per channel in one AAC-LC frame.
pub const FRAME_SAMPLES: u32 = 1024;

/// What to encode.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioJob {
    pub sample_rate: u32,
    pub bitrate: u32,
    /// Seconds per segment: segments follow the video's boundaries as closely as whole AAC
    /// frames allow.
    pub segment: f64,
    pub segments: u32,
}

impl AudioJob {
    /// First AAC frame of segment `k` (0-based): the first frame starting at or after the
    /// video boundary `k × segment`, so audio and video segments cover the same time to
    /// within one frame (21 ms at 48 kHz). The end of the last segment rounds down instead,
    /// so the audio never outlasts the video: a looped (live) asset then never overlaps
    /// itself, it leaves at most a one-frame gap.
    pub fn first_frame(&self, k: u32) -> u64 {
        let frames =
            f64::from(k) * self.segment * f64::from(self.sample_rate) / f64::from(FRAME_SAMPLES);
        if k >= self.segments {
            (frames + 1e-9).floor() as u64
        } else {
            (frames - 1e-9).ceil() as u64
        }
    }
}

/// The PCM sample value (both channels) at sample index `n`.
fn pcm(n: u64, rate: u32) -> i16 {
    let t = n as f64 / f64::from(rate);
    let tone = 0.08 * (std::f64::consts::TAU * 440.0 * t).sin();
    let beep = if t.fract() < 0.1 {
        0.25 * (std::f64::consts::TAU * 1000.0 * t).sin()
    } else {
        0.0
    };
    ((tone + beep) * f64::from(i16::MAX)) as i16
}

fn aac_error(e: impl std::fmt::Debug) -> MediaError {
    MediaError::Encoder(format!("AAC encoder: {e:?}"))
}

/// The sample's tone as a PCM source for [`encode_audio`]: fills interleaved stereo frames.
pub fn tone(sample_rate: u32) -> impl FnMut(&mut [i16]) -> Result<()> {
    let mut index = 0u64;
    move |buf| {
        for pair in buf.chunks_exact_mut(2) {
            pair.fill(pcm(index, sample_rate));
            index += 1;
        }
        Ok(())
    }
}

/// Encodes `job` from `source` (which fills a buffer of interleaved 16-bit stereo PCM at
/// the job's rate, silence past its end); `on_segment(number, base_time, samples)` receives
/// each segment (numbered from 1) with its decode time in samples.
pub fn encode_audio(
    job: &AudioJob,
    mut source: impl FnMut(&mut [i16]) -> Result<()>,
    mut on_segment: impl FnMut(u32, u64, &[Sample]) -> Result<()>,
) -> Result<AudioTrack> {
    let encoder = Encoder::new(EncoderParams {
        bit_rate: BitRate::Cbr(job.bitrate),
        sample_rate: job.sample_rate,
        transport: Transport::Raw,
        channels: ChannelMode::Stereo,
        audio_object_type: AudioObjectType::Mpeg4LowComplexity,
    })
    .map_err(aac_error)?;
    let info = encoder.info().map_err(aac_error)?;
    let asc = info.confBuf[..(info.confSize as usize).min(info.confBuf.len())].to_vec();
    let mut input = vec![0i16; 2 * FRAME_SAMPLES as usize];
    let mut output = vec![0u8; 8192];
    let mut next_frame = || -> Result<Vec<u8>> {
        // The encoder may hold the first frames back (look-ahead): feed until it emits.
        for _ in 0..16 {
            source(&mut input)?;
            let done = encoder.encode(&input, &mut output).map_err(aac_error)?;
            if done.output_size > 0 {
                return Ok(output[..done.output_size].to_vec());
            }
        }
        Err(MediaError::Encoder("AAC encoder produced no output".into()))
    };
    for k in 0..job.segments {
        let (first, end) = (job.first_frame(k), job.first_frame(k + 1));
        let samples = (first..end)
            .map(|_| {
                next_frame().map(|data| Sample {
                    data,
                    duration: FRAME_SAMPLES,
                    sync: true,
                    composition_offset: 0,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        on_segment(k + 1, first * u64::from(FRAME_SAMPLES), &samples)?;
    }
    Ok(AudioTrack {
        timescale: job.sample_rate,
        channels: 2,
        audio_specific_config: asc,
        bitrate: job.bitrate,
    })
}

/// Encodes `job` from `source` (see [`encode_audio`]) into the `audio/` rendition of the
/// asset folder `dir`; `on_segment` runs after each segment is written (progress).
pub fn write_audio_rendition(
    dir: &Path,
    job: &AudioJob,
    source: impl FnMut(&mut [i16]) -> Result<()>,
    mut on_segment: impl FnMut(),
) -> Result<Rendition> {
    let folder = rendition_dir(dir, AUDIO_RENDITION)?;
    let rate = f64::from(job.sample_rate);
    let mut segments = Vec::with_capacity(job.segments as usize);
    let track = encode_audio(job, source, |number, base_time, samples| {
        let ticks: u64 = samples.iter().map(|s| u64::from(s.duration)).sum();
        segments.push(write_segment(
            &folder,
            number,
            base_time,
            samples,
            base_time as f64 / rate,
            ticks as f64 / rate,
        )?);
        on_segment();
        Ok(())
    })?;
    write_file(&folder.join(INIT_SEGMENT), &audio_init_segment(&track)?)?;
    let codecs = Codecs::single(Codec::from_audio_specific_config(
        &track.audio_specific_config,
    )?);
    Ok(Rendition {
        sample_rate: Some(job.sample_rate),
        ..rendition(AUDIO_RENDITION, MediaType::Audio, codecs, segments)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn segment_boundaries_follow_the_video() {
        let job = AudioJob {
            sample_rate: 48_000,
            bitrate: 128_000,
            segment: 2.0,
            segments: 4,
        };
        let firsts: Vec<u64> = (0..=4).map(|k| job.first_frame(k)).collect();
        // 2 s = 93.75 frames of 1024 samples.
        assert_eq!(firsts, [0, 94, 188, 282, 375]);
        let odd = AudioJob { segments: 3, ..job };
        let firsts: Vec<u64> = (0..=3).map(|k| odd.first_frame(k)).collect();
        assert_eq!(
            firsts,
            [0, 94, 188, 281],
            "6 s = 281.25 frames: the end rounds down"
        );
    }

    #[test]
    fn encodes_whole_segments_of_aac_lc() {
        let job = AudioJob {
            sample_rate: 48_000,
            bitrate: 128_000,
            segment: 2.0,
            segments: 2,
        };
        let mut got = Vec::new();
        let track = encode_audio(&job, tone(48_000), |n, t, s| {
            got.push((n, t, s.len()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            got,
            [(1, 0, 94), (2, 94 * 1024, 93)],
            "4 s = 187.5 frames, rounded down"
        );
        assert_eq!(
            Codec::from_audio_specific_config(&track.audio_specific_config)
                .unwrap()
                .to_string(),
            "mp4a.40.2"
        );
    }
}
