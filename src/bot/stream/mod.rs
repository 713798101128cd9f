//! Reading an answer that arrives as a stream of JSON frames (NDJSON lines or server-sent
//! events), shared by the streamed `forward` call and the `llm` upstream: the frames
//! ([`frames`]), the text they build ([`StreamedText`], bounded), the read loop with its idle
//! limit, and what can go wrong ([`StreamError`]).

pub mod frames;

use std::time::Duration;

pub use frames::{FrameDecoder, Framing, MAX_FRAME_BYTES};

use super::TextSink;

/// The longest text a streamed answer may build.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;

/// The longest wait for the next piece of a streamed answer, unless the call's own time
/// limit is shorter: a model may think for a while before its first word.
pub const DEFAULT_IDLE_LIMIT: Duration = Duration::from_secs(120);

/// Why a streamed answer could not be read. No variant carries the answer's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// A line or an event over the limit.
    #[error("a line or event is longer than {limit} bytes")]
    FrameTooLong {
        /// [`MAX_FRAME_BYTES`].
        limit: usize,
    },
    /// The text grew over the limit.
    #[error("the text is longer than {limit} bytes")]
    TextTooLong {
        /// [`MAX_TEXT_BYTES`].
        limit: usize,
    },
    /// A frame that is not the JSON expected.
    #[error("a frame is not usable: {0}")]
    Frame(String),
    /// The body ended before the final marker; the text so far stays where it was put.
    #[error("the stream ended before its final marker (truncated)")]
    Truncated,
    /// Nothing arrived for this long.
    #[error("nothing arrived for {0} ms")]
    Idle(u64),
    /// The connection broke off.
    #[error("the stream broke off: {0}")]
    Transport(String),
    /// The upstream reported a failure in the stream (its message, shortened).
    #[error("the upstream reported an error: {0}")]
    Upstream(String),
}

impl StreamError {
    /// The `reason` label of the upstream failures metric.
    pub(crate) fn metric_label(&self) -> &'static str {
        match self {
            Self::FrameTooLong { .. } | Self::TextTooLong { .. } => "too_large",
            Self::Frame(_) => "answer",
            Self::Truncated => "truncated",
            Self::Idle(_) => "idle",
            Self::Transport(_) => "transport",
            Self::Upstream(_) => "upstream_error",
        }
    }

    /// A frame's JSON error, without quoting the frame.
    pub(crate) fn not_json(e: &serde_json::Error) -> Self {
        Self::Frame(format!(
            "not JSON ({})",
            crate::aibot::envelope::json_reason(e)
        ))
    }
}

/// Shortens a message an upstream put in its stream to one log-friendly line: at most 120
/// characters, control characters removed.
pub(crate) fn shorten(message: &str) -> String {
    let mut shown: String = message
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect();
    if message
        .chars()
        .filter(|c| !c.is_control())
        .nth(120)
        .is_some()
    {
        shown.push('…');
    }
    shown
}

/// The text a stream builds, kept under [`MAX_TEXT_BYTES`], and handed to a [`TextSink`]
/// as it grows.
#[derive(Debug)]
pub struct StreamedText<'a> {
    sink: &'a TextSink,
    len: usize,
}

impl<'a> StreamedText<'a> {
    /// Writes to `sink`, whose text so far is replaced by the first [`set`](Self::set) or
    /// extended by the first [`push`](Self::push).
    pub fn new(sink: &'a TextSink) -> Self {
        Self {
            len: sink.text().len(),
            sink,
        }
    }

    /// Appends `delta`.
    ///
    /// # Errors
    /// [`StreamError::TextTooLong`]; the text is then left as it was.
    pub fn push(&mut self, delta: &str) -> Result<(), StreamError> {
        self.fits(self.len + delta.len())?;
        self.sink.push(delta);
        self.len += delta.len();
        Ok(())
    }

    /// Replaces the whole text.
    ///
    /// # Errors
    /// [`StreamError::TextTooLong`]; the text is then left as it was.
    pub fn set(&mut self, full: &str) -> Result<(), StreamError> {
        self.fits(full.len())?;
        self.sink.set(full);
        self.len = full.len();
        Ok(())
    }

    /// The text so far: `None` when it is empty (no reply).
    pub fn finish(&self) -> Option<String> {
        Some(self.sink.text()).filter(|t| !t.is_empty())
    }

    fn fits(&self, len: usize) -> Result<(), StreamError> {
        if len > MAX_TEXT_BYTES {
            return Err(StreamError::TextTooLong {
                limit: MAX_TEXT_BYTES,
            });
        }
        Ok(())
    }
}

/// What to do after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read on.
    More,
    /// The final marker: stop reading.
    Done,
}

/// Reads `response`'s body frame by frame, handing each to `on_frame`, until it says
/// [`Flow::Done`] (then [`Flow::Done`]) or the body ends ([`Flow::More`]: the caller tells
/// whether that is [`StreamError::Truncated`]). A wait for the next piece over `idle` is
/// [`StreamError::Idle`].
pub(crate) async fn read_frames(
    response: &mut reqwest::Response,
    framing: Framing,
    idle: Duration,
    mut on_frame: impl FnMut(&[u8]) -> Result<Flow, StreamError>,
) -> Result<Flow, StreamError> {
    let mut decoder = FrameDecoder::new(framing);
    let mut frames = Vec::new();
    loop {
        let chunk = tokio::time::timeout(idle, response.chunk())
            .await
            .map_err(|_| StreamError::Idle(crate::clock::millis(idle)))?
            .map_err(|e| StreamError::Transport(crate::http::error_chain(&e.without_url())))?;
        match &chunk {
            Some(bytes) => decoder.feed(bytes, &mut frames)?,
            None => decoder.finish(&mut frames)?,
        }
        for frame in frames.drain(..) {
            if on_frame(&frame)? == Flow::Done {
                return Ok(Flow::Done);
            }
        }
        if chunk.is_none() {
            return Ok(Flow::More);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_bounded_and_left_as_it_was_when_too_long() {
        let (sink, _watch) = TextSink::new();
        let mut text = StreamedText::new(&sink);
        assert_eq!(text.finish(), None);
        text.push("你好").unwrap();
        let big = "x".repeat(MAX_TEXT_BYTES);
        assert_eq!(
            text.push(&big),
            Err(StreamError::TextTooLong {
                limit: MAX_TEXT_BYTES
            })
        );
        assert_eq!(sink.text(), "你好");
        text.set(&big).unwrap();
        assert_eq!(
            text.push("y"),
            Err(StreamError::TextTooLong {
                limit: MAX_TEXT_BYTES
            })
        );
        text.set("short").unwrap();
        text.push("er").unwrap();
        assert_eq!(text.finish().as_deref(), Some("shorter"));
    }

    #[test]
    fn upstream_messages_are_shortened_to_one_line() {
        assert_eq!(shorten("model\noverloaded"), "modeloverloaded");
        let long = "é".repeat(200);
        let shown = shorten(&long);
        assert_eq!(shown.chars().count(), 121);
        assert!(shown.ends_with('…'));
        assert_eq!(shorten(&"a".repeat(120)), "a".repeat(120));
    }

    #[test]
    fn json_errors_do_not_quote_the_frame() {
        let e = serde_json::from_str::<u32>(r#""secret words""#).unwrap_err();
        let shown = StreamError::not_json(&e).to_string();
        assert!(!shown.contains("secret"), "{shown}");
    }
}
