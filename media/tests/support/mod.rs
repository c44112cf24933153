//! Manifests the tests of `media` and `player` build (the player's include this file).
// Each test target uses some of these.
#![allow(dead_code)]

/// An MPD of type `kind` with the MPD attributes `top`, whose one period has one video
/// adaptation set of `representations` representations, each holding `addressing`.
pub fn mpd(kind: &str, top: &str, representations: usize, addressing: &str) -> String {
    let reps: String = (0..representations)
        .map(|i| {
            format!(
                "<Representation id=\"r{i}\" bandwidth=\"{}\" codecs=\"avc1.64001f\">{addressing}</Representation>\n",
                100_000 * (i + 1)
            )
        })
        .collect();
    format!(
        r#"<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="{kind}" {top} minBufferTime="PT2S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
 <Period id="0" start="PT0S">
  <AdaptationSet contentType="video" mimeType="video/mp4">
{reps}  </AdaptationSet>
 </Period>
</MPD>"#
    )
}
