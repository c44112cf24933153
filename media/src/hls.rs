//! HLS (RFC 8216): the presentation model written as a multivariant playlist and media
//! playlists, and any standard multivariant + media playlists parsed back into the model.

use std::collections::HashMap;

use m3u8_rs::{
    AlternativeMedia, AlternativeMediaType, ExtTag, Map, MasterPlaylist, MediaPlaylist,
    MediaPlaylistType, MediaSegment, QuotedOrUnquoted, Resolution, VariantStream,
};

use crate::limits::{self, SegmentBudget};
use crate::model::resolve_uri;
use crate::steering::split_bases;
use crate::{
    ByteRange, Codecs, Container, Delivery, MediaError, MediaType, Pathway, Presentation,
    PresentationKind, Rendition, Result, Segment, SteeringServer,
};

/// The group id of the audio renditions in our multivariant playlists (suffixed with the
/// pathway when there are several).
const AUDIO_GROUP: &str = "audio";
/// The tag (after `#EXT-`) and attribute of content steering (rfc8216bis §4.4.6.6).
const CONTENT_STEERING_TAG: &str = "X-CONTENT-STEERING";
const PATHWAY_ID: &str = "PATHWAY-ID";

fn to_text(write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> Result<String> {
    let mut out = Vec::new();
    write(&mut out).map_err(|e| MediaError::Hls(e.to_string()))?;
    String::from_utf8(out).map_err(|e| MediaError::Hls(e.to_string()))
}

/// The multivariant playlist (RFC 8216 §4.3.4): one `EXT-X-STREAM-INF` per video rendition
/// with its real peak `BANDWIDTH` (plus the peak of the audio it plays with), and audio
/// as an `EXT-X-MEDIA` group. With pathways in the presentation's [`Delivery`], every
/// variant and audio rendition is listed once per pathway under that pathway's base URL,
/// each pathway with its own audio group (a group belongs to one pathway, as hls.js
/// expects), and `EXT-X-CONTENT-STEERING` names the steering server (rfc8216bis §4.4.6.6).
pub fn write_multivariant(presentation: &Presentation) -> Result<String> {
    let delivery = &presentation.delivery;
    // Without pathways: one unnamed pathway whose base leaves URIs as they are.
    let unnamed = [Pathway {
        id: String::new(),
        base: String::new(),
    }];
    let pathways: &[Pathway] = if delivery.pathways.is_empty() {
        &unnamed
    } else {
        &delivery.pathways
    };
    let audio: Vec<&Rendition> = presentation.audio().collect();
    let audio_peak = audio.iter().map(|a| a.bandwidth_peak).max().unwrap_or(0);
    let audio_avg = audio.iter().map(|a| a.bandwidth_avg).max().unwrap_or(0);
    let audio_codecs = audio.first().map(|a| a.codecs.clone()).unwrap_or_default();
    let mut alternatives = Vec::new();
    let mut variants = Vec::new();
    for pathway in pathways {
        let on_pathway = |uri: &str| -> Result<String> {
            if pathway.base.is_empty() {
                Ok(uri.to_string())
            } else {
                resolve_uri(&pathway.base, uri)
            }
        };
        let audio_group = if pathway.id.is_empty() {
            AUDIO_GROUP.to_string()
        } else {
            format!("{AUDIO_GROUP}-{}", pathway.id)
        };
        for (i, a) in audio.iter().enumerate() {
            alternatives.push(AlternativeMedia {
                media_type: AlternativeMediaType::Audio,
                uri: a.playlist_uri.as_deref().map(on_pathway).transpose()?,
                group_id: audio_group.clone(),
                name: a.id.clone(),
                default: i == 0,
                autoselect: true,
                ..Default::default()
            });
        }
        for v in presentation.video() {
            let uri = v
                .playlist_uri
                .as_deref()
                .ok_or_else(|| MediaError::Hls(format!("{} has no playlist URI", v.id)))?;
            variants.push(VariantStream {
                uri: on_pathway(uri)?,
                bandwidth: v.bandwidth_peak + audio_peak,
                average_bandwidth: Some(v.bandwidth_avg + audio_avg),
                codecs: Some(v.codecs.joined(&audio_codecs).to_string()),
                resolution: v.width.zip(v.height).map(|(w, h)| Resolution {
                    width: u64::from(w),
                    height: u64::from(h),
                }),
                frame_rate: v.frame_rate,
                audio: (!audio.is_empty()).then(|| audio_group.clone()),
                // One attribute only: m3u8-rs writes these from a HashMap, and a stable
                // text keeps the playlist's ETag stable.
                other_attributes: (!pathway.id.is_empty()).then(|| {
                    HashMap::from([(
                        PATHWAY_ID.to_string(),
                        QuotedOrUnquoted::Quoted(pathway.id.clone()),
                    )])
                }),
                ..Default::default()
            });
        }
    }
    let playlist = MasterPlaylist {
        version: Some(7),
        variants,
        independent_segments: true,
        alternatives,
        unknown_tags: delivery
            .steering
            .as_ref()
            .map(steering_tag)
            .into_iter()
            .collect(),
        ..Default::default()
    };
    to_text(|w| playlist.write_to(w))
}

/// `EXT-X-CONTENT-STEERING` (rfc8216bis §4.4.6.6).
fn steering_tag(server: &SteeringServer) -> ExtTag {
    let mut rest = format!("SERVER-URI=\"{}\"", server.uri);
    if let Some(id) = &server.default_pathway {
        rest.push_str(&format!(",{PATHWAY_ID}=\"{id}\""));
    }
    ExtTag {
        tag: CONTENT_STEERING_TAG.into(),
        rest: Some(rest),
    }
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
    MediaError::Hls(crate::one_line(e))
}

/// Parses a multivariant playlist fetched from `base` into a VOD presentation whose
/// renditions have no segments yet (their `playlist_uri` is absolute; fetch each and call
/// [`parse_media_playlist`]; the caller decides VOD or live from those). I-frame-only
/// variants are skipped. With several pathways, the renditions are those of the default
/// pathway (the steering tag's `PATHWAY-ID`, else the first listed) and the others become
/// [`Delivery`] pathways when they are copies of it under another base URL.
pub fn parse_multivariant(text: &str, base: &str) -> Result<Presentation> {
    limits::check_playlist_text(text)?;
    let playlist = m3u8_rs::parse_master_playlist_res(text.as_bytes()).map_err(parse_error)?;
    let steering = playlist
        .unknown_tags
        .iter()
        .find(|t| t.tag == CONTENT_STEERING_TAG)
        .map(|t| parse_steering_tag(t.rest.as_deref().unwrap_or("")))
        .transpose()?;
    let variants: Vec<&VariantStream> =
        playlist.variants.iter().filter(|v| !v.is_i_frame).collect();
    let mut pathway_ids: Vec<&str> = Vec::new();
    for v in &variants {
        let id = pathway_of(v);
        if !pathway_ids.contains(&id) {
            pathway_ids.push(id);
        }
    }
    let default_id = steering
        .as_ref()
        .and_then(|s| s.default_pathway.as_deref())
        .filter(|id| pathway_ids.contains(id))
        .or(pathway_ids.first().copied())
        .unwrap_or(DEFAULT_PATHWAY)
        .to_string();
    let on_pathway = |id: &str| -> Vec<&VariantStream> {
        variants
            .iter()
            .copied()
            .filter(|v| pathway_of(v) == id)
            .collect()
    };
    let chosen = on_pathway(&default_id);
    let audio_groups: Vec<&str> = chosen.iter().filter_map(|v| v.audio.as_deref()).collect();
    let mut renditions = Vec::new();
    for (i, v) in chosen.iter().enumerate() {
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
            init_range: None,
            container: Container::Fmp4,
            playlist_uri: Some(resolve_uri(base, &v.uri)?),
            segment_index: None,
            segments: Vec::new(),
        });
    }
    // Audio that is not muxed into the variants comes as EXT-X-MEDIA with a URI, in the
    // groups the chosen variants name (every group when they name none).
    for (i, alt) in playlist.alternatives.iter().enumerate() {
        if alt.media_type != AlternativeMediaType::Audio
            || !(audio_groups.is_empty() || audio_groups.contains(&alt.group_id.as_str()))
        {
            continue;
        }
        let Some(uri) = &alt.uri else { continue };
        let id = if alt.name.is_empty() {
            format!("a{i}")
        } else {
            alt.name.clone()
        };
        renditions.push(Rendition {
            media_type: MediaType::Audio,
            ..Rendition::of_media_playlist(&id, &resolve_uri(base, uri)?)
        });
    }
    if renditions.is_empty() {
        return Err(MediaError::Hls(
            "multivariant playlist has no variants".into(),
        ));
    }
    let mut delivery = Delivery {
        pathways: Vec::new(),
        steering,
    };
    if pathway_ids.len() > 1 || delivery.steering.is_some() {
        delivery.pathways = pathways(base, &default_id, &chosen, &pathway_ids, on_pathway)?;
    }
    let mut presentation = Presentation {
        kind: PresentationKind::Vod,
        renditions,
        delivery,
    };
    presentation.sort();
    Ok(presentation)
}

/// The `PATHWAY-ID` a variant belongs to; "." when it names none (rfc8216bis §4.4.6.2).
const DEFAULT_PATHWAY: &str = ".";

fn pathway_of(v: &VariantStream) -> &str {
    v.other_attributes
        .as_ref()
        .and_then(|a| a.get(PATHWAY_ID))
        .map_or(DEFAULT_PATHWAY, QuotedOrUnquoted::as_str)
}

/// The pathways of a multivariant playlist, the default first. Each other pathway must list
/// the default's variants in the same order under one other base URL; one that does not is
/// left out (the player could not move between them by swapping bases).
fn pathways<'a>(
    base: &str,
    default_id: &str,
    chosen: &[&VariantStream],
    ids: &[&str],
    on_pathway: impl Fn(&str) -> Vec<&'a VariantStream>,
) -> Result<Vec<Pathway>> {
    let resolve_all = |vs: &[&VariantStream]| -> Result<Vec<String>> {
        vs.iter().map(|v| resolve_uri(base, &v.uri)).collect()
    };
    let default_uris = resolve_all(chosen)?;
    let mut default_base: Option<String> = None;
    let mut others = Vec::new();
    for id in ids.iter().filter(|id| **id != default_id) {
        let uris = resolve_all(&on_pathway(id))?;
        if uris.len() != default_uris.len() {
            continue;
        }
        let bases = match &default_base {
            Some(b) => default_uris
                .first()
                .and_then(|d| d.strip_prefix(b.as_str()))
                .zip(uris.first())
                .and_then(|(rest, other)| other.strip_suffix(rest))
                .map(|other| (b.clone(), other.to_string())),
            None => default_uris
                .first()
                .zip(uris.first())
                .and_then(|(mine, theirs)| split_bases(mine, theirs)),
        };
        let Some((mine, theirs)) = bases else {
            continue;
        };
        let parallel = default_uris.iter().zip(&uris).all(|(d, o)| {
            d.strip_prefix(mine.as_str()) == o.strip_prefix(theirs.as_str())
                && d.starts_with(mine.as_str())
        });
        if parallel {
            default_base.get_or_insert(mine);
            others.push(Pathway {
                id: id.to_string(),
                base: theirs,
            });
        }
    }
    let default_base = match default_base {
        Some(b) => b,
        // A lone pathway: its base is the folder of the playlist.
        None => resolve_uri(base, "./")?,
    };
    let mut all = vec![Pathway {
        id: default_id.to_string(),
        base: default_base,
    }];
    all.extend(others);
    Ok(all)
}

/// Reads the attributes of `EXT-X-CONTENT-STEERING`; `SERVER-URI` is required.
fn parse_steering_tag(attributes: &str) -> Result<SteeringServer> {
    let attributes = parse_attribute_list(attributes)?;
    let get = |name: &str| {
        attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    Ok(SteeringServer {
        uri: get("SERVER-URI")
            .ok_or_else(|| MediaError::Hls("EXT-X-CONTENT-STEERING without SERVER-URI".into()))?,
        default_pathway: get(PATHWAY_ID),
        query_before_start: false,
    })
}

/// An attribute list (RFC 8216 §4.2): `NAME=value` pairs separated by commas, where a
/// quoted string may hold commas. Quotes are removed.
fn parse_attribute_list(text: &str) -> Result<Vec<(String, String)>> {
    Ok(split_attribute_list(text)?
        .into_iter()
        .map(|(name, raw)| (name.to_string(), unquoted(raw).to_string()))
        .collect())
}

/// A quoted-string attribute value without its quotes; any other value as it is.
fn unquoted(raw: &str) -> &str {
    raw.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(raw)
}

/// The `NAME=value` pairs of an attribute list, values as written (quotes kept).
fn split_attribute_list(text: &str) -> Result<Vec<(&str, &str)>> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| MediaError::Hls(format!("bad attribute list {text:?}")))?;
        let value_len = match after.strip_prefix('"') {
            Some(quoted) => {
                quoted
                    .find('"')
                    .ok_or_else(|| MediaError::Hls(format!("unclosed quote in {text:?}")))?
                    + 2
            }
            None => after.find(',').unwrap_or(after.len()),
        };
        let (value, after) = after.split_at(value_len);
        out.push((name.trim(), value));
        rest = after.trim_start();
        rest = match rest.strip_prefix(',') {
            Some(r) => r.trim_start(),
            None if rest.is_empty() => rest,
            None => return Err(MediaError::Hls(format!("bad attribute list {text:?}"))),
        };
    }
    Ok(out)
}

/// Tags of a multivariant playlist that describe one pathway's renditions: copied once per
/// pathway by [`steer_multivariant`].
const PATHWAY_TAGS: [&str; 4] = [
    "#EXT-X-MEDIA:",
    "#EXT-X-STREAM-INF:",
    "#EXT-X-I-FRAME-STREAM-INF:",
    "#EXT-X-IMAGE-STREAM-INF:",
];
/// Attributes naming a rendition group (§4.4.6.2), made one group per pathway.
const GROUP_ATTRIBUTES: [&str; 5] = ["GROUP-ID", "AUDIO", "VIDEO", "SUBTITLES", "CLOSED-CAPTIONS"];

/// A multivariant playlist someone else wrote (`text`, served as `manifest`: its path under
/// each pathway's base) edited for content steering, every other line as it was: each
/// `EXT-X-MEDIA`, variant and I-frame (or image) playlist is listed once per pathway of
/// `delivery`, its URI made absolute under the pathway's base, with `PATHWAY-ID` on the
/// variants and the groups renamed `{group}-{pathway}` (each pathway its own groups, as
/// with [`write_multivariant`]); `EXT-X-CONTENT-STEERING` names the steering server in
/// place of any the playlist had (rfc8216bis §4.4.6.6).
pub fn steer_multivariant(text: &str, manifest: &str, delivery: &Delivery) -> Result<String> {
    if !is_multivariant(text) {
        return Err(MediaError::Hls("not a multivariant playlist".into()));
    }
    let mut global: Vec<&str> = Vec::new();
    // Pathway lines: a tag, and for a variant the URI line that follows it.
    let mut entries: Vec<(&str, Option<&str>)> = Vec::new();
    let mut awaiting_uri = false;
    for line in text.lines().map(str::trim_end) {
        if awaiting_uri {
            if line.is_empty() || line.starts_with('#') && !line.starts_with("#EXT") {
                continue;
            }
            if let Some(last) = entries.last_mut() {
                last.1 = Some(line);
            }
            awaiting_uri = false;
            continue;
        }
        if PATHWAY_TAGS.iter().any(|t| line.starts_with(t)) {
            awaiting_uri = line.starts_with("#EXT-X-STREAM-INF:");
            entries.push((line, None));
        } else if !line.starts_with(&format!("#EXT-{CONTENT_STEERING_TAG}")) {
            global.push(line);
        }
    }
    // The steering tag goes after the header tags, before any rendition.
    let header = global
        .iter()
        .position(|l| !(l.starts_with("#EXTM3U") || l.starts_with("#EXT-X-VERSION")))
        .unwrap_or(global.len());
    let mut out: Vec<String> = global[..header].iter().map(|l| (*l).to_string()).collect();
    if let Some(server) = &delivery.steering {
        let tag = steering_tag(server);
        out.push(format!("#EXT-{}:{}", tag.tag, tag.rest.unwrap_or_default()));
    }
    out.extend(
        global[header..]
            .iter()
            .filter(|l| !l.is_empty())
            .map(|l| (*l).to_string()),
    );
    for pathway in &delivery.pathways {
        let url = resolve_uri(&pathway.base, manifest)?;
        for (tag_line, uri_line) in &entries {
            let (tag, attributes) = tag_line
                .split_once(':')
                .ok_or_else(|| MediaError::Hls(format!("bad tag {tag_line:?}")))?;
            let is_variant = tag != "#EXT-X-MEDIA";
            let mut edited = Vec::new();
            for (name, raw) in split_attribute_list(attributes)? {
                let value = match name {
                    PATHWAY_ID => continue,
                    "URI" => format!("\"{}\"", resolve_uri(&url, unquoted(raw))?),
                    n if GROUP_ATTRIBUTES.contains(&n) && raw.starts_with('"') => {
                        format!("\"{}-{}\"", unquoted(raw), pathway.id)
                    }
                    _ => raw.to_string(),
                };
                edited.push(format!("{name}={value}"));
            }
            if is_variant {
                edited.push(format!("{PATHWAY_ID}=\"{}\"", pathway.id));
            }
            out.push(format!("{tag}:{}", edited.join(",")));
            if let Some(uri) = uri_line {
                out.push(resolve_uri(&url, uri)?);
            }
        }
    }
    let mut text = out.join("\n");
    text.push('\n');
    Ok(text)
}

/// A media playlist read back.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylistInfo {
    pub segments: Vec<Segment>,
    pub init_uri: Option<String>,
    /// The init segment's part of `init_uri` (`EXT-X-MAP:BYTERANGE`).
    pub init_range: Option<ByteRange>,
    /// fMP4 when the playlist has `EXT-X-MAP`; otherwise MPEG-TS or packed audio, by the
    /// segments' names (RFC 8216 §3).
    pub container: Container,
    /// `EXT-X-ENDLIST` seen: the playlist will not grow.
    pub ended: bool,
    pub target_duration: f64,
    /// `EXT-X-PROGRAM-DATE-TIME` of the first segment, seconds since the epoch.
    pub first_program_date_time: Option<f64>,
}

impl MediaPlaylistInfo {
    /// Gives `rendition` the segments, init segment and container of its media playlist.
    pub fn fill(self, rendition: &mut Rendition) {
        rendition.segments = self.segments;
        rendition.init_uri = self.init_uri;
        rendition.init_range = self.init_range;
        rendition.container = self.container;
    }
}

/// An `EXT-X-BYTERANGE` (RFC 8216 §4.3.2.2) of the resource `uri`: without an offset it
/// begins where the previous segment's range of the same resource ended.
fn segment_range(
    range: &m3u8_rs::ByteRange,
    uri: &str,
    previous: Option<&(String, u64)>,
) -> Result<ByteRange> {
    let offset = match (range.offset, previous) {
        (Some(offset), _) => offset,
        (None, Some((previous_uri, end))) if previous_uri == uri => *end,
        (None, _) => {
            return Err(MediaError::Hls(format!(
                "EXT-X-BYTERANGE without an offset for {uri}, which no sub-range precedes"
            )));
        }
    };
    ByteRange::new(offset, range.length)
        .ok_or_else(|| MediaError::Hls(format!("empty or overflowing byte range for {uri}")))
}

/// Parses a media playlist fetched from `base`; segment and init URIs become absolute and
/// segment start times count from the first segment of this playlist. Byte-range segments
/// (`EXT-X-BYTERANGE`) carry their range and know their size. Its segments come out of a
/// [`SegmentBudget`] of their own.
pub fn parse_media_playlist(text: &str, base: &str) -> Result<MediaPlaylistInfo> {
    parse_media_playlist_in(text, base, &mut SegmentBudget::default())
}

/// [`parse_media_playlist`] within `budget`, which the media playlists of one presentation
/// share. The text is checked first ([`limits::check_playlist_text`]): its size, line
/// lengths, segment count and `EXTINF` durations; then the media sequence numbers, the
/// target duration, the byte ranges and the first program date-time (not before 1970).
pub fn parse_media_playlist_in(
    text: &str,
    base: &str,
    budget: &mut SegmentBudget,
) -> Result<MediaPlaylistInfo> {
    let counts = limits::check_playlist_text(text)?;
    budget.ensure_room(counts.segments)?;
    let playlist = m3u8_rs::parse_media_playlist_res(text.as_bytes()).map_err(parse_error)?;
    let target_duration = playlist.target_duration as f64;
    if target_duration > limits::MAX_SEGMENT_SECONDS {
        return Err(MediaError::Hls(format!(
            "EXT-X-TARGETDURATION {target_duration} s is over a day"
        )));
    }
    let (mut init_uri, mut init_range) = (None, None);
    let mut segments = Vec::with_capacity(playlist.segments.len());
    let mut start = 0.0;
    let mut first_program_date_time = None;
    // Where the last sub-range ended, and of which resource.
    let mut previous_range: Option<(String, u64)> = None;
    for (i, s) in playlist.segments.iter().enumerate() {
        if let Some(map) = &s.map
            && init_uri.is_none()
        {
            let uri = resolve_uri(base, &map.uri)?;
            init_range = map
                .byte_range
                .as_ref()
                .map(|r| {
                    // §4.3.2.5: the map's range has its offset; 0 when a writer left it out.
                    let whole = m3u8_rs::ByteRange {
                        length: r.length,
                        offset: Some(r.offset.unwrap_or(0)),
                    };
                    segment_range(&whole, &uri, None)
                })
                .transpose()?;
            init_uri = Some(uri);
        }
        if i == 0 {
            first_program_date_time = s
                .program_date_time
                .map(|t| t.timestamp_millis() as f64 / 1000.0);
            if first_program_date_time.is_some_and(|t| t < 0.0) {
                return Err(MediaError::Hls(
                    "EXT-X-PROGRAM-DATE-TIME before 1970".into(),
                ));
            }
        }
        // Checked by its text above; m3u8-rs read it into an f32.
        let duration = limits::segment_seconds(f64::from(s.duration))
            .map_err(|why| MediaError::Hls(format!("segment {}: {why}", s.uri)))?;
        let uri = resolve_uri(base, &s.uri)?;
        let range = s
            .byte_range
            .as_ref()
            .map(|r| segment_range(r, &uri, previous_range.as_ref()))
            .transpose()?;
        previous_range = range.map(|r| (uri.clone(), r.end()));
        let segment = Segment {
            number: limits::segment_number(playlist.media_sequence.checked_add(i as u64))?,
            start,
            duration,
            size: range.map(|r| r.length),
            uri,
            range,
            discontinuity: s.discontinuity,
        };
        budget.take(&segment)?;
        segments.push(segment);
        start += duration;
    }
    let container = match (&init_uri, segments.first()) {
        (Some(_), _) | (None, None) => Container::Fmp4,
        (None, Some(first)) => Container::of_unmapped_segment(&first.uri),
    };
    Ok(MediaPlaylistInfo {
        segments,
        init_uri,
        init_range,
        container,
        ended: playlist.end_list || playlist.playlist_type == Some(MediaPlaylistType::Vod),
        target_duration,
        first_program_date_time,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::tests::{sample_presentation, two_edges};

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
        assert!(parsed.delivery.is_empty());
        let parsed = parsed.renditions;
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
        let r = parse_multivariant(master, "https://origin.test/bipbop/master.m3u8")
            .unwrap()
            .renditions;
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
    fn pathways_round_trip_through_the_model() {
        let mut p = sample_presentation();
        p.renditions.push(crate::model::tests::audio_rendition());
        p.delivery = two_edges("/steering/hls", false);
        let master = write_multivariant(&p).unwrap();
        assert!(
            master.contains(
                "#EXT-X-CONTENT-STEERING:SERVER-URI=\"/steering/hls\",PATHWAY-ID=\"edge-2\""
            ),
            "{master}"
        );
        let videos = p.video().count();
        assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), 2 * videos);
        assert_eq!(master.matches("PATHWAY-ID=\"edge-1\"").count(), videos);
        assert!(master.contains("GROUP-ID=\"audio-edge-1\""), "{master}");
        assert!(master.contains("AUDIO=\"audio-edge-2\""), "{master}");
        assert!(
            master.contains("\nhttp://10.0.0.3:8081/vod/sample/"),
            "{master}"
        );
        let parsed =
            parse_multivariant(&master, "http://origin.test/vod/sample/master.m3u8").unwrap();
        // The default pathway's renditions, its audio group only.
        assert_eq!(parsed.renditions.len(), p.renditions.len());
        assert!(parsed.renditions.iter().all(|r| {
            r.playlist_uri
                .as_deref()
                .unwrap()
                .starts_with("http://10.0.0.3:8081/")
        }));
        let d = &parsed.delivery;
        assert_eq!(d.steering, p.delivery.steering);
        let ids: Vec<&str> = d.pathways.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["edge-2", "edge-1"]);
        let uri = parsed.renditions[0].playlist_uri.as_deref().unwrap();
        let moved = d.rebase(uri, "edge-2", "edge-1").unwrap();
        assert!(
            moved.starts_with("http://10.0.0.2:8081/vod/sample/"),
            "{moved}"
        );
        assert_eq!(moved.replace("10.0.0.2", "10.0.0.3"), uri);
    }

    #[test]
    fn pathways_that_are_not_copies_are_left_out() {
        let master = "#EXTM3U\n\
#EXT-X-CONTENT-STEERING:SERVER-URI=\"https://steer.test/m.json\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=500000,PATHWAY-ID=\"A\"\nhttps://a.test/lo.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=900000,PATHWAY-ID=\"A\"\nhttps://a.test/hi.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=500000,PATHWAY-ID=\"B\"\nhttps://b.test/x/lo.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=900000,PATHWAY-ID=\"B\"\nhttps://b.test/x/hi.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=500000,PATHWAY-ID=\"C\"\nhttps://c.test/other.m3u8\n";
        let p = parse_multivariant(master, "https://origin.test/m.m3u8").unwrap();
        assert_eq!(p.renditions.len(), 2);
        let ids: Vec<&str> = p.delivery.pathways.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["A", "B"]);
        assert_eq!(p.delivery.pathways[1].base, "https://b.test/x/");
        assert_eq!(
            p.delivery.steering.as_ref().unwrap().uri,
            "https://steer.test/m.json"
        );
    }

    #[test]
    fn a_foreign_multivariant_is_steered_line_by_line() {
        // ffmpeg's, with a stale steering tag, an I-frame playlist and a comment.
        let master = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-CONTENT-STEERING:SERVER-URI=\"old\"\n\
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_aud\",NAME=\"audio, 2\",DEFAULT=YES,URI=\"a/2.m3u8\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=1012416,RESOLUTION=640x360,AUDIO=\"group_aud\",CLOSED-CAPTIONS=NONE\n0.m3u8\n\n\
#EXT-X-STREAM-INF:BANDWIDTH=2888059,RESOLUTION=1280x720,AUDIO=\"group_aud\"\n# made by ffmpeg\nhttps://cdn.test/1.m3u8\n\n\
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1000,URI=\"iframes.m3u8\"\n";
        let delivery = two_edges("/steering/hls?start=1", false);
        let steered = steer_multivariant(master, "hls/master.m3u8", &delivery).unwrap();
        assert!(steered.starts_with("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-CONTENT-STEERING:SERVER-URI=\"/steering/hls?start=1\",PATHWAY-ID=\"edge-2\"\n"), "{steered}");
        assert_eq!(steered.matches("CONTENT-STEERING").count(), 1, "{steered}");
        assert!(!steered.contains("\n\n"), "{steered}");
        assert!(
            steered.contains("GROUP-ID=\"group_aud-edge-1\",NAME=\"audio, 2\",DEFAULT=YES,URI=\"http://10.0.0.2:8081/vod/sample/hls/a/2.m3u8\""),
            "{steered}"
        );
        assert!(
            steered.contains("AUDIO=\"group_aud-edge-2\",CLOSED-CAPTIONS=NONE,PATHWAY-ID=\"edge-2\"\nhttp://10.0.0.3:8081/vod/sample/hls/0.m3u8\n"),
            "{steered}"
        );
        assert!(
            steered.contains(
                "URI=\"http://10.0.0.3:8081/vod/sample/hls/iframes.m3u8\",PATHWAY-ID=\"edge-2\""
            ),
            "{steered}"
        );
        assert_eq!(
            steered.matches("https://cdn.test/1.m3u8").count(),
            2,
            "absolute URIs stay"
        );
        // Players read it as the same renditions on two pathways.
        let parsed =
            parse_multivariant(&steered, "http://origin.test/vod/sample/hls/master.m3u8").unwrap();
        assert_eq!(parsed.delivery.steering, delivery.steering);
        let ids: Vec<&str> = parsed
            .delivery
            .pathways
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        assert_eq!(
            ids,
            ["edge-2"],
            "the CDN variant is no copy on both: {parsed:#?}"
        );
        assert_eq!(parsed.video().count(), 2);
        assert_eq!(
            parsed.audio().count(),
            1,
            "the default pathway's group only"
        );
        assert!(steer_multivariant("#EXTM3U\n#EXTINF:2,\na.ts\n", "m.m3u8", &delivery).is_err());
    }

    #[test]
    fn a_steered_multivariant_without_foreign_uris_round_trips_its_pathways() {
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\n0.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2000\n1.m3u8\n";
        let delivery = two_edges("/steering/hls?start=1", false);
        let steered = steer_multivariant(master, "master.m3u8", &delivery).unwrap();
        let parsed =
            parse_multivariant(&steered, "http://origin.test/vod/sample/master.m3u8").unwrap();
        let ids: Vec<&str> = parsed
            .delivery
            .pathways
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        assert_eq!(ids, ["edge-2", "edge-1"]);
        let uri = parsed.renditions[1].playlist_uri.as_deref().unwrap();
        assert_eq!(uri, "http://10.0.0.3:8081/vod/sample/1.m3u8");
        assert_eq!(
            parsed.delivery.rebase(uri, "edge-2", "edge-1").as_deref(),
            Some("http://10.0.0.2:8081/vod/sample/1.m3u8")
        );
    }

    #[test]
    fn attribute_lists() {
        type Pairs = Option<Vec<(&'static str, &'static str)>>;
        let cases: [(&str, Pairs); 5] = [
            ("A=1", Some(vec![("A", "1")])),
            (
                "SERVER-URI=\"http://x/a,b\",PATHWAY-ID=\"p\"",
                Some(vec![("SERVER-URI", "http://x/a,b"), ("PATHWAY-ID", "p")]),
            ),
            ("", Some(vec![])),
            ("A=\"open", None),
            ("NOVALUE", None),
        ];
        for (text, want) in cases {
            let got = parse_attribute_list(text).ok();
            let want = want.map(|w| {
                w.into_iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect::<Vec<_>>()
            });
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn byte_ranges_ts_and_discontinuities() {
        // ffmpeg's `-hls_flags single_file` fMP4 playlist.
        let fmp4 = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"fmp4.m4s\",BYTERANGE=\"1373@0\"\n\
#EXTINF:2.000000,\n#EXT-X-BYTERANGE:207728@1373\nfmp4.m4s\n\
#EXTINF:2.000000,\n#EXT-X-BYTERANGE:242489\nfmp4.m4s\n#EXT-X-ENDLIST\n";
        let info = parse_media_playlist(fmp4, "http://h/a/fmp4.m3u8").unwrap();
        assert_eq!(info.container, Container::Fmp4);
        assert_eq!(info.init_uri.as_deref(), Some("http://h/a/fmp4.m4s"));
        assert_eq!(info.init_range, ByteRange::new(0, 1373));
        let ranges: Vec<_> = info.segments.iter().map(|s| (s.range, s.size)).collect();
        assert_eq!(
            ranges,
            [
                (ByteRange::new(1373, 207_728), Some(207_728)),
                // No offset: right after the previous sub-range of the same file.
                (ByteRange::new(209_101, 242_489), Some(242_489)),
            ]
        );
        let ts = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n0.ts\n\
#EXT-X-DISCONTINUITY\n#EXTINF:2,\nad/0.ts?x=1\n#EXT-X-ENDLIST\n";
        let info = parse_media_playlist(ts, "http://h/a/ts.m3u8").unwrap();
        assert_eq!((info.container, info.init_uri), (Container::MpegTs, None));
        let breaks: Vec<bool> = info.segments.iter().map(|s| s.discontinuity).collect();
        assert_eq!(breaks, [false, true]);
        assert!(
            info.segments
                .iter()
                .all(|s| s.range.is_none() && s.size.is_none())
        );
        let packed = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na/0.AAC\n";
        let info = parse_media_playlist(packed, "http://h/p.m3u8").unwrap();
        assert_eq!(info.container, Container::PackedAudio);
        // An offset-less range with nothing before it of the same file.
        let orphan = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n#EXT-X-BYTERANGE:10@0\na.ts\n\
#EXTINF:2,\n#EXT-X-BYTERANGE:10\nb.ts\n";
        assert!(parse_media_playlist(orphan, "http://h/p.m3u8").is_err());
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
