//! HLS (RFC 8216): the presentation model written as a multivariant playlist and media
//! playlists, and any standard multivariant + media playlists parsed back into the model.

use m3u8_rs::{
    AlternativeMedia, AlternativeMediaType, Map, MasterPlaylist, MediaPlaylist, MediaPlaylistType,
    MediaSegment, Resolution, VariantStream,
};

use crate::model::resolve_uri;
use crate::{
    Codecs, MediaError, MediaType, Presentation, PresentationKind, Rendition, Result, Segment,
};

/// The group id of the audio renditions in our multivariant playlists.
const AUDIO_GROUP: &str = "audio";

fn to_text(write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> Result<String> {
    let mut out = Vec::new();
    write(&mut out).map_err(|e| MediaError::Hls(e.to_string()))?;
    String::from_utf8(out).map_err(|e| MediaError::Hls(e.to_string()))
}

/// The multivariant playlist (RFC 8216 §4.3.4): one `EXT-X-STREAM-INF` per video rendition
/// with its real peak `BANDWIDTH` (plus the peak of the audio it plays with), and audio
/// as an `EXT-X-MEDIA` group.
pub fn write_multivariant(presentation: &Presentation) -> Result<String> {
    let audio: Vec<&Rendition> = presentation.audio().collect();
    let audio_peak = audio.iter().map(|a| a.bandwidth_peak).max().unwrap_or(0);
    let audio_avg = audio.iter().map(|a| a.bandwidth_avg).max().unwrap_or(0);
    let audio_codecs = audio.first().map(|a| a.codecs.clone()).unwrap_or_default();
    let alternatives = audio
        .iter()
        .enumerate()
        .map(|(i, a)| AlternativeMedia {
            media_type: AlternativeMediaType::Audio,
            uri: a.playlist_uri.clone(),
            group_id: AUDIO_GROUP.into(),
            language: None,
            assoc_language: None,
            name: a.id.clone(),
            default: i == 0,
            autoselect: true,
            forced: false,
            instream_id: None,
            characteristics: None,
            channels: None,
            other_attributes: None,
        })
        .collect();
    let variants = presentation
        .video()
        .map(|v| -> Result<VariantStream> {
            Ok(VariantStream {
                uri: v
                    .playlist_uri
                    .clone()
                    .ok_or_else(|| MediaError::Hls(format!("{} has no playlist URI", v.id)))?,
                bandwidth: v.bandwidth_peak + audio_peak,
                average_bandwidth: Some(v.bandwidth_avg + audio_avg),
                codecs: Some(v.codecs.joined(&audio_codecs).to_string()),
                resolution: v.width.zip(v.height).map(|(w, h)| Resolution {
                    width: u64::from(w),
                    height: u64::from(h),
                }),
                frame_rate: v.frame_rate,
                audio: (!audio.is_empty()).then(|| AUDIO_GROUP.to_string()),
                ..Default::default()
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let playlist = MasterPlaylist {
        version: Some(7),
        variants,
        independent_segments: true,
        alternatives,
        ..Default::default()
    };
    to_text(|w| playlist.write_to(w))
}

/// A media playlist (RFC 8216 §4.3.3) of a VOD rendition: version 7, `EXT-X-MAP`,
/// `EXT-X-TARGETDURATION`, `EXT-X-PLAYLIST-TYPE:VOD`, `EXT-X-ENDLIST`.
pub fn write_vod_media_playlist(rendition: &Rendition) -> Result<String> {
    write_media_playlist(rendition, &rendition.segments, true, None)
}

/// A media playlist over `segments` (a window of the rendition's, for live). `ended` marks
/// a VOD playlist (type VOD and `EXT-X-ENDLIST`); a live window has neither. With
/// `timeline_epoch` (seconds since the Unix epoch at timeline time 0) the first segment
/// carries `EXT-X-PROGRAM-DATE-TIME` (§4.3.2.6), which players use to hold a live latency.
pub fn write_media_playlist(
    rendition: &Rendition,
    segments: &[Segment],
    ended: bool,
    timeline_epoch: Option<f64>,
) -> Result<String> {
    let first = segments.first().map_or(0, |s| s.number);
    let media_segments = segments
        .iter()
        .enumerate()
        .map(|(i, s)| MediaSegment {
            uri: s.uri.clone(),
            duration: s.duration as f32,
            // One EXT-X-MAP applies to every segment after it (§4.3.2.5).
            map: (i == 0).then(|| Map {
                uri: rendition.init_uri.clone().unwrap_or_default(),
                ..Default::default()
            }),
            program_date_time: timeline_epoch
                .filter(|_| i == 0)
                .and_then(|epoch| {
                    chrono::DateTime::from_timestamp_millis(
                        ((epoch + s.start) * 1000.0).round() as i64
                    )
                })
                .map(|t| t.fixed_offset()),
            ..Default::default()
        })
        .collect();
    let playlist = MediaPlaylist {
        version: Some(7),
        // §4.3.3.1: every EXTINF duration rounded to the nearest integer must not exceed it.
        target_duration: segments
            .iter()
            .map(|s| s.duration.round() as u64)
            .max()
            .unwrap_or(1)
            .max(1),
        media_sequence: first,
        segments: media_segments,
        end_list: ended,
        playlist_type: ended.then_some(MediaPlaylistType::Vod),
        independent_segments: true,
        ..Default::default()
    };
    to_text(|w| playlist.write_to(w))
}

/// Whether a playlist text is a multivariant playlist (as opposed to a media playlist).
pub fn is_multivariant(text: &str) -> bool {
    m3u8_rs::is_master_playlist(text.as_bytes())
}

fn parse_error(e: impl std::fmt::Display) -> MediaError {
    let text = e.to_string();
    MediaError::Hls(text.chars().take(200).collect())
}

/// Parses a multivariant playlist fetched from `base` into renditions without segments
/// (their `playlist_uri` is absolute; fetch each and call [`parse_media_playlist`]).
/// I-frame-only variants are skipped. Video renditions come sorted by bandwidth.
pub fn parse_multivariant(text: &str, base: &str) -> Result<Vec<Rendition>> {
    let playlist = m3u8_rs::parse_master_playlist_res(text.as_bytes()).map_err(parse_error)?;
    let mut renditions = Vec::new();
    for (i, v) in playlist
        .variants
        .iter()
        .filter(|v| !v.is_i_frame)
        .enumerate()
    {
        let codecs: Codecs = v.codecs.as_deref().unwrap_or("").parse()?;
        renditions.push(Rendition {
            id: format!("v{i}"),
            media_type: MediaType::Video,
            bandwidth_peak: v.bandwidth,
            bandwidth_avg: v.average_bandwidth.unwrap_or(v.bandwidth),
            width: v.resolution.map(|r| r.width as u32),
            height: v.resolution.map(|r| r.height as u32),
            frame_rate: v.frame_rate,
            codecs,
            sample_rate: None,
            init_uri: None,
            playlist_uri: Some(resolve_uri(base, &v.uri)?),
            segments: Vec::new(),
        });
    }
    // Audio that is not muxed into the variants comes as EXT-X-MEDIA with a URI.
    for (i, alt) in playlist.alternatives.iter().enumerate() {
        if alt.media_type != AlternativeMediaType::Audio {
            continue;
        }
        let Some(uri) = &alt.uri else { continue };
        renditions.push(Rendition {
            id: if alt.name.is_empty() {
                format!("a{i}")
            } else {
                alt.name.clone()
            },
            media_type: MediaType::Audio,
            bandwidth_peak: 0,
            bandwidth_avg: 0,
            width: None,
            height: None,
            frame_rate: None,
            codecs: Codecs::default(),
            sample_rate: None,
            init_uri: None,
            playlist_uri: Some(resolve_uri(base, uri)?),
            segments: Vec::new(),
        });
    }
    if renditions.is_empty() {
        return Err(MediaError::Hls(
            "multivariant playlist has no variants".into(),
        ));
    }
    let mut presentation = Presentation {
        kind: PresentationKind::Vod,
        renditions,
    };
    presentation.sort();
    Ok(presentation.renditions)
}

/// A media playlist read back.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylistInfo {
    pub segments: Vec<Segment>,
    pub init_uri: Option<String>,
    /// `EXT-X-ENDLIST` seen: the playlist will not grow.
    pub ended: bool,
    pub target_duration: f64,
    /// `EXT-X-PROGRAM-DATE-TIME` of the first segment, seconds since the epoch.
    pub first_program_date_time: Option<f64>,
}

/// Parses a media playlist fetched from `base`; segment and init URIs become absolute and
/// segment start times count from the first segment of this playlist.
pub fn parse_media_playlist(text: &str, base: &str) -> Result<MediaPlaylistInfo> {
    let playlist = m3u8_rs::parse_media_playlist_res(text.as_bytes()).map_err(parse_error)?;
    let mut init_uri = None;
    let mut segments = Vec::with_capacity(playlist.segments.len());
    let mut start = 0.0;
    let mut first_program_date_time = None;
    for (i, s) in playlist.segments.iter().enumerate() {
        if let Some(map) = &s.map {
            if map.byte_range.is_some() {
                return Err(MediaError::Hls(
                    "byte-range EXT-X-MAP is not supported".into(),
                ));
            }
            init_uri.get_or_insert(resolve_uri(base, &map.uri)?);
        }
        if s.byte_range.is_some() {
            return Err(MediaError::Hls(
                "byte-range segments are not supported".into(),
            ));
        }
        if i == 0 {
            first_program_date_time = s
                .program_date_time
                .map(|t| t.timestamp_millis() as f64 / 1000.0);
        }
        let duration = f64::from(s.duration);
        if !(duration.is_finite() && duration > 0.0) {
            return Err(MediaError::Hls(format!(
                "segment {} has duration {duration}",
                s.uri
            )));
        }
        segments.push(Segment {
            number: playlist.media_sequence + i as u64,
            start,
            duration,
            size: None,
            uri: resolve_uri(base, &s.uri)?,
        });
        start += duration;
    }
    Ok(MediaPlaylistInfo {
        segments,
        init_uri,
        ended: playlist.end_list || playlist.playlist_type == Some(MediaPlaylistType::Vod),
        target_duration: playlist.target_duration as f64,
        first_program_date_time,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::tests::sample_presentation;

    #[test]
    fn multivariant_has_the_required_attributes() {
        let p = sample_presentation();
        let text = write_multivariant(&p).unwrap();
        assert!(text.starts_with("#EXTM3U"));
        assert!(text.contains("#EXT-X-INDEPENDENT-SEGMENTS"));
        for needle in [
            "BANDWIDTH=",
            "AVERAGE-BANDWIDTH=",
            "RESOLUTION=640x360",
            "FRAME-RATE=30",
            "CODECS=\"avc1.42c01e\"",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
    }

    #[test]
    fn our_playlists_round_trip_through_the_model() {
        let p = sample_presentation();
        let base = "http://example.test/vod/sample/master.m3u8";
        let master = write_multivariant(&p).unwrap();
        let parsed = parse_multivariant(&master, base).unwrap();
        assert_eq!(parsed.len(), p.renditions.len());
        for (ours, theirs) in p.renditions.iter().zip(&parsed) {
            assert_eq!(ours.bandwidth_peak, theirs.bandwidth_peak);
            assert_eq!(ours.bandwidth_avg, theirs.bandwidth_avg);
            assert_eq!(ours.codecs, theirs.codecs);
            assert_eq!((ours.width, ours.height), (theirs.width, theirs.height));
            let playlist_uri = theirs.playlist_uri.as_deref().unwrap();
            assert_eq!(
                playlist_uri,
                format!("http://example.test/vod/sample/{}/index.m3u8", ours.id)
            );
            let media = write_vod_media_playlist(ours).unwrap();
            assert!(media.contains("#EXT-X-VERSION:7"));
            assert!(media.contains("#EXT-X-PLAYLIST-TYPE:VOD"));
            assert!(media.contains("#EXT-X-ENDLIST"));
            assert!(media.contains("#EXT-X-TARGETDURATION:2"));
            assert!(media.contains("#EXT-X-MAP:URI=\"init.mp4\""));
            let info = parse_media_playlist(&media, playlist_uri).unwrap();
            assert!(info.ended);
            assert_eq!(
                info.init_uri.as_deref(),
                Some(format!("http://example.test/vod/sample/{}/init.mp4", ours.id).as_str())
            );
            assert_eq!(info.segments.len(), ours.segments.len());
            for (a, b) in ours.segments.iter().zip(&info.segments) {
                assert_eq!(a.number, b.number);
                assert!((a.duration - b.duration).abs() < 1e-6);
                assert!((a.start - b.start).abs() < 1e-6);
                assert!(b.uri.ends_with(&a.uri));
            }
        }
    }

    #[test]
    fn parses_a_foreign_playlist() {
        // Apple-style multivariant with muxed audio codecs, an I-frame variant and audio group.
        let master = "#EXTM3U\n#EXT-X-VERSION:6\n\
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"English\",DEFAULT=YES,URI=\"a/prog.m3u8\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=2177116,RESOLUTION=960x540,CODECS=\"avc1.640020,mp4a.40.2\",AUDIO=\"aac\"\n\
v5/prog_index.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=541052,RESOLUTION=480x270,CODECS=\"avc1.640015,mp4a.40.2\",AUDIO=\"aac\"\n\
https://cdn.test/v1/prog_index.m3u8\n\
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=186522,URI=\"v5/iframe.m3u8\"\n";
        let r = parse_multivariant(master, "https://origin.test/bipbop/master.m3u8").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].bandwidth_peak, 541_052);
        assert_eq!(
            r[0].playlist_uri.as_deref(),
            Some("https://cdn.test/v1/prog_index.m3u8")
        );
        assert_eq!(
            r[1].playlist_uri.as_deref(),
            Some("https://origin.test/bipbop/v5/prog_index.m3u8")
        );
        assert_eq!(r[2].media_type, MediaType::Audio);
        let media = "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-VERSION:7\n#EXT-X-MEDIA-SEQUENCE:10\n\
#EXT-X-MAP:URI=\"../init.mp4\"\n#EXTINF:6.006,\nfileSequence10.mp4\n#EXTINF:5.5,\nfileSequence11.mp4\n";
        let info =
            parse_media_playlist(media, "https://origin.test/bipbop/v5/prog_index.m3u8").unwrap();
        assert!(!info.ended, "no ENDLIST: live");
        assert_eq!(info.segments[1].number, 11);
        assert!((info.segments[1].start - 6.006).abs() < 1e-4);
        assert_eq!(
            info.init_uri.as_deref(),
            Some("https://origin.test/bipbop/init.mp4")
        );
    }

    #[test]
    fn malformed_playlists_are_errors() {
        for bad in [
            "",
            "not a playlist",
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=x\n",
        ] {
            assert!(
                parse_multivariant(bad, "http://h/m.m3u8").is_err(),
                "{bad:?}"
            );
        }
        assert!(parse_media_playlist("#EXTM3U\n#EXTINF:-1,\na.m4s\n", "http://h/m.m3u8").is_err());
    }
}
