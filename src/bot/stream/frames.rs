//! Cutting a streamed answer body into frames: one JSON text per line (NDJSON), or the
//! `data` of one server-sent event (SSE). Pure and incremental: bytes go in as the network
//! hands them over, split anywhere, and whole frames come out. Bounded: a line or an event
//! over [`MAX_FRAME_BYTES`] is an error, so a peer that never ends a line cannot grow the
//! buffer without end.

use super::StreamError;

/// The largest line, or the largest `data` of one event.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// How the body is cut into frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `application/x-ndjson`: every non-blank line is a frame.
    Lines,
    /// `text/event-stream`: the `data` fields of an event, joined by `\n`, are a frame;
    /// comments and the `event`, `id` and `retry` fields are ignored.
    Sse,
}

/// The decoder's state between two pieces of the body.
#[derive(Debug)]
pub struct FrameDecoder {
    framing: Framing,
    /// The line read so far (without its end).
    line: Vec<u8>,
    /// The last byte seen was `\r`, so a `\n` right after it ends no second line.
    after_cr: bool,
    /// At the start of the body, where an SSE stream may carry a byte order mark.
    at_start: bool,
    /// SSE: the `data` of the event read so far, each field followed by `\n`.
    data: Vec<u8>,
    /// SSE: the event read so far has a `data` field (possibly empty).
    has_data: bool,
}

impl FrameDecoder {
    /// A decoder at the start of a body.
    pub fn new(framing: Framing) -> Self {
        Self {
            framing,
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            data: Vec::new(),
            has_data: false,
        }
    }

    /// Reads the next piece of the body; the frames it completes are appended to `frames`.
    ///
    /// # Errors
    /// [`StreamError::FrameTooLong`] when a line or an event passes [`MAX_FRAME_BYTES`].
    pub fn feed(&mut self, mut bytes: &[u8], frames: &mut Vec<Vec<u8>>) -> Result<(), StreamError> {
        if self.at_start && self.framing == Framing::Sse {
            // The BOM may itself arrive split; wait for three bytes or a mismatch.
            let bom = b"\xEF\xBB\xBF";
            let seen = self.line.len();
            let wanted = &bom[seen..];
            let n = wanted.len().min(bytes.len());
            if bytes[..n] == wanted[..n] {
                self.line.extend_from_slice(&bytes[..n]);
                bytes = &bytes[n..];
                if self.line.len() < bom.len() {
                    return Ok(());
                }
                self.line.clear();
                self.at_start = false;
            }
            // Not a BOM: what was held back is the start of the first line.
        }
        if !bytes.is_empty() {
            self.at_start = false;
        }
        while !bytes.is_empty() {
            if self.after_cr && bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
            self.after_cr = false;
            match memchr::memchr2(b'\n', b'\r', bytes) {
                Some(end) => {
                    self.take(&bytes[..end])?;
                    self.after_cr = bytes[end] == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.line_ended(&line, frames)?;
                    self.line = line;
                    self.line.clear();
                    bytes = &bytes[end + 1..];
                }
                None => {
                    self.take(bytes)?;
                    bytes = &[];
                }
            }
        }
        Ok(())
    }

    /// The end of the body: NDJSON's last line may lack its newline and is a frame; an SSE
    /// event that was not ended by a blank line is dropped, as the SSE spec says.
    ///
    /// # Errors
    /// As [`feed`](Self::feed).
    pub fn finish(&mut self, frames: &mut Vec<Vec<u8>>) -> Result<(), StreamError> {
        if self.framing == Framing::Lines {
            let line = std::mem::take(&mut self.line);
            self.line_ended(&line, frames)?;
        }
        self.line.clear();
        self.data.clear();
        self.has_data = false;
        Ok(())
    }

    fn take(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        if self.line.len() + bytes.len() > MAX_FRAME_BYTES {
            return Err(StreamError::FrameTooLong {
                limit: MAX_FRAME_BYTES,
            });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn line_ended(&mut self, line: &[u8], frames: &mut Vec<Vec<u8>>) -> Result<(), StreamError> {
        match self.framing {
            Framing::Lines => {
                let line = line.trim_ascii();
                if !line.is_empty() {
                    frames.push(line.to_vec());
                }
            }
            Framing::Sse => self.sse_line(line, frames)?,
        }
        Ok(())
    }

    fn sse_line(&mut self, line: &[u8], frames: &mut Vec<Vec<u8>>) -> Result<(), StreamError> {
        if line.is_empty() {
            if self.has_data {
                let mut data = std::mem::take(&mut self.data);
                data.pop(); // the `\n` after the last field
                frames.push(data);
            }
            self.has_data = false;
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(()); // a comment (a keep-alive)
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        if field != b"data" {
            return Ok(()); // `event`, `id`, `retry` and unknown fields
        }
        if self.data.len() + value.len() + 1 > MAX_FRAME_BYTES {
            return Err(StreamError::FrameTooLong {
                limit: MAX_FRAME_BYTES,
            });
        }
        self.data.extend_from_slice(value);
        self.data.push(b'\n');
        self.has_data = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn decode(framing: Framing, pieces: &[&[u8]]) -> Result<Vec<String>, StreamError> {
        let mut decoder = FrameDecoder::new(framing);
        let mut frames = Vec::new();
        for piece in pieces {
            decoder.feed(piece, &mut frames)?;
        }
        decoder.finish(&mut frames)?;
        Ok(frames
            .into_iter()
            .map(|f| String::from_utf8(f).unwrap())
            .collect())
    }

    #[test]
    fn lines_are_frames_whatever_their_end() {
        let body: &[u8] =
            b"{\"delta\":\"a\"}\n\n  \r\n{\"delta\":\"b\"}\r\n{\"delta\":\"c\"}\r{\"done\":true}";
        let expected = [
            r#"{"delta":"a"}"#,
            r#"{"delta":"b"}"#,
            r#"{"delta":"c"}"#,
            r#"{"done":true}"#,
        ];
        assert_eq!(decode(Framing::Lines, &[body]).unwrap(), expected);
        // Split between the `\r` and the `\n` of one line end: still one line end.
        let at = body.iter().position(|&b| b == b'\r').unwrap() + 1;
        assert_eq!(
            decode(Framing::Lines, &[&body[..at], &body[at..]]).unwrap(),
            expected
        );
    }

    #[test]
    fn sse_events_join_their_data_and_ignore_the_rest() {
        let body = "\u{FEFF}: keep-alive\n\
                    event: message\nid: 7\nretry: 1000\ndata: {\"delta\":\ndata:\"x\"}\n\n\
                    data:plain\r\n\r\n\
                    data\n\n\
                    event: only\n\n\
                    data: [DONE]\n\n\
                    data: never ended\n";
        let frames = decode(Framing::Sse, &[body.as_bytes()]).unwrap();
        assert_eq!(frames, ["{\"delta\":\n\"x\"}", "plain", "", "[DONE]"]);
        // The byte order mark split over three pieces is still skipped.
        let bytes = body.as_bytes();
        assert_eq!(
            decode(Framing::Sse, &[&bytes[..1], &bytes[1..2], &bytes[2..]]).unwrap(),
            frames
        );
    }

    #[test]
    fn a_frame_over_the_limit_is_an_error() {
        let long = vec![b'x'; MAX_FRAME_BYTES + 1];
        let too_long = Err(StreamError::FrameTooLong {
            limit: MAX_FRAME_BYTES,
        });
        assert_eq!(decode(Framing::Lines, &[&long]), too_long);
        let mut sse = b"data: ".to_vec();
        sse.extend_from_slice(&long);
        assert_eq!(decode(Framing::Sse, &[&sse]), too_long);
        // Many short `data` lines of one event add up.
        let line = format!("data: {}\n", "y".repeat(1000));
        let many = line.repeat(70);
        assert_eq!(decode(Framing::Sse, &[many.as_bytes()]), too_long);
        // At the limit is fine.
        let exact = vec![b'x'; MAX_FRAME_BYTES];
        assert_eq!(
            decode(Framing::Lines, &[&exact]).unwrap()[0].len(),
            MAX_FRAME_BYTES
        );
    }

    fn split_decode(
        framing: Framing,
        body: &[u8],
        cuts: &[usize],
    ) -> Result<Vec<Vec<u8>>, StreamError> {
        let mut decoder = FrameDecoder::new(framing);
        let mut frames = Vec::new();
        let mut start = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        cuts.sort_unstable();
        for cut in cuts {
            decoder.feed(&body[start..cut], &mut frames)?;
            start = cut;
        }
        decoder.feed(&body[start..], &mut frames)?;
        decoder.finish(&mut frames)?;
        Ok(frames)
    }

    fn framing() -> impl Strategy<Value = Framing> {
        prop_oneof![Just(Framing::Lines), Just(Framing::Sse)]
    }

    proptest! {
        /// Any bytes, split anywhere: frames or a typed error, never a panic, and the
        /// frames do not depend on where the body was split.
        #[test]
        fn any_bytes_split_anywhere_decode_the_same(
            framing in framing(),
            body in proptest::collection::vec(
                prop_oneof![
                    4 => any::<u8>(),
                    1 => Just(b'\n'), 1 => Just(b'\r'), 1 => Just(b':'), 1 => Just(b' '),
                ],
                0..600,
            ),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let whole = split_decode(framing, &body, &[]);
            let split = split_decode(framing, &body, &cuts);
            prop_assert_eq!(whole, split);
        }

        /// Structured SSE input: every event's data comes out whole.
        #[test]
        fn sse_events_survive_any_split(
            events in proptest::collection::vec("[a-z{}\":, ]{0,20}", 0..10),
            crlf in any::<bool>(),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let end = if crlf { "\r\n" } else { "\n" };
            let body: String = events
                .iter()
                .map(|e| format!(": c{end}data: {e}{end}id: 1{end}{end}"))
                .collect();
            let frames = split_decode(Framing::Sse, body.as_bytes(), &cuts).unwrap();
            let expected: Vec<Vec<u8>> = events.iter().map(|e| e.clone().into_bytes()).collect();
            prop_assert_eq!(frames, expected);
        }
    }
}
