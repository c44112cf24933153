//! Errors as one log line.

use std::fmt::Write;

/// An error and its causes on one line, `top: cause: root cause` (reqwest's and hyper's
/// top-level messages alone hide the cause that matters, such as "connection refused").
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors repeat their source in their own message: say it once.
        if !text.ends_with(&cause_text) {
            let _ = write!(text, ": {cause_text}");
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        #[source]
        source: Option<Box<Layer>>,
    }

    fn layer(text: &'static str, source: Option<Layer>) -> Layer {
        Layer {
            text,
            source: source.map(Box::new),
        }
    }

    #[test]
    fn prints_every_cause_once() {
        let rows = [
            (layer("top", None), "top"),
            (
                layer("request failed", Some(layer("connection refused", None))),
                "request failed: connection refused",
            ),
            (
                layer("a", Some(layer("b", Some(layer("c", None))))),
                "a: b: c",
            ),
            // A message that already ends with its cause does not get it twice.
            (
                layer("read failed: timed out", Some(layer("timed out", None))),
                "read failed: timed out",
            ),
        ];
        for (error, want) in rows {
            assert_eq!(error_chain(&error), want);
        }
    }
}
