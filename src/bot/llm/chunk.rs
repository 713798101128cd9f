//! Reading what an OpenAI-compatible chat-completions endpoint answers: the SSE chunks of a
//! streamed completion (`{"choices":[{"delta":{"content":"…"}}]}` … `[DONE]`), a whole
//! completion (a server that does not stream), and the `code` of an error body.
//!
//! `delta.reasoning_content` (the thinking some models stream before their answer) is not
//! shown: it is skipped, and only the answer becomes the text.

use serde_json::Value;

use crate::bot::stream::{Flow, StreamError, StreamedText, shorten};

/// Where a completion's frames have got to.
#[derive(Debug, Default, Clone, Copy)]
pub struct Progress {
    /// A choice said why it finished (`finish_reason`): a stream that ends without `[DONE]`
    /// after that is still whole.
    pub finished: bool,
}

/// Applies one SSE frame of a streamed completion to the text.
///
/// # Errors
/// [`StreamError::Frame`] for a frame that is not a chunk, [`StreamError::Upstream`] for an
/// error object in the stream (its `code` or `type` only), [`StreamError::TextTooLong`].
pub fn apply_chunk(
    frame: &[u8],
    text: &mut StreamedText<'_>,
    progress: &mut Progress,
) -> Result<Flow, StreamError> {
    if frame.trim_ascii() == b"[DONE]" {
        return Ok(Flow::Done);
    }
    let value: Value = serde_json::from_slice(frame).map_err(|e| StreamError::not_json(&e))?;
    let Value::Object(chunk) = value else {
        return Err(StreamError::Frame("a chunk is not a JSON object".into()));
    };
    if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
        return Err(StreamError::Upstream(error_code(error).unwrap_or_default()));
    }
    let Some(choice) = first_choice(&chunk) else {
        return Ok(Flow::More); // a usage chunk, or a keep-alive of a server of its own
    };
    match choice.get("delta").and_then(|d| d.get("content")) {
        None | Some(Value::Null) => {}
        Some(Value::String(delta)) => text.push(delta)?,
        Some(_) => {
            return Err(StreamError::Frame(
                "`delta.content` must be a string".into(),
            ));
        }
    }
    if choice.get("finish_reason").is_some_and(|r| !r.is_null()) {
        progress.finished = true;
    }
    Ok(Flow::More)
}

/// Reads a whole (not streamed) completion into the text.
///
/// # Errors
/// [`StreamError::Frame`] when it is not a completion.
pub fn apply_completion(body: &[u8], text: &mut StreamedText<'_>) -> Result<(), StreamError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| StreamError::not_json(&e))?;
    let content = value
        .as_object()
        .and_then(first_choice)
        .and_then(|choice| choice.get("message"))
        .map(|message| message.get("content"));
    match content {
        Some(None | Some(Value::Null)) => Ok(()),
        Some(Some(Value::String(content))) => text.set(content),
        _ => Err(StreamError::Frame(
            "not a completion (`choices[0].message.content`)".into(),
        )),
    }
}

fn first_choice(chunk: &serde_json::Map<String, Value>) -> Option<&serde_json::Map<String, Value>> {
    chunk.get("choices")?.as_array()?.first()?.as_object()
}

/// The `code` (else `type`) of an error object or an error body `{"error": {…}}`, when it is
/// a short identifier: never its `message`, which may quote part of the API key.
pub fn error_code(error: &Value) -> Option<String> {
    let error = error
        .get("error")
        .filter(|e| e.is_object())
        .unwrap_or(error);
    ["code", "type"].iter().find_map(|field| {
        let code = error.get(field)?.as_str()?;
        let identifier = !code.is_empty()
            && code.len() <= 64
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
        identifier.then(|| shorten(code))
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::bot::TextSink;

    #[test]
    fn chunks_append_their_content_and_done_ends() {
        let (sink, _watch) = TextSink::new();
        let mut text = StreamedText::new(&sink);
        let mut progress = Progress::default();
        let mut apply = |frame: &str| apply_chunk(frame.as_bytes(), &mut text, &mut progress);
        for frame in [
            r#"{"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"choices":[{"delta":{"reasoning_content":"let me think"}}]}"#,
            r#"{"choices":[{"delta":{"content":"你好"}}]}"#,
            r#"{"choices":[{"delta":{"content":", world"},"finish_reason":null}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
            r#"{"choices":[],"usage":{"total_tokens":9}}"#,
        ] {
            assert_eq!(apply(frame), Ok(Flow::More), "{frame}");
        }
        assert_eq!(apply("[DONE]"), Ok(Flow::Done));
        assert!(progress.finished);
        assert_eq!(sink.text(), "你好, world", "reasoning is not shown");
    }

    #[test]
    fn errors_name_a_code_never_a_message() {
        let (sink, _watch) = TextSink::new();
        let mut text = StreamedText::new(&sink);
        let mut progress = Progress::default();
        let e = apply_chunk(
            br#"{"error":{"message":"Incorrect API key provided: sk-abc***xyz","type":"invalid_request_error","code":"invalid_api_key"}}"#,
            &mut text,
            &mut progress,
        )
        .unwrap_err();
        assert_eq!(e, StreamError::Upstream("invalid_api_key".into()));
        let body: Value =
            serde_json::json!({"error": {"message": "sk-abc", "type": "server error with spaces"}});
        assert_eq!(error_code(&body), None);
        assert_eq!(
            error_code(&serde_json::json!({"error": {"type": "rate_limit"}})).as_deref(),
            Some("rate_limit")
        );
        for frame in [
            r#"{"choices":[{"delta":{"content":["words"]}}]}"#,
            "[1]",
            "words",
        ] {
            let e = apply_chunk(frame.as_bytes(), &mut text, &mut progress).unwrap_err();
            assert!(matches!(e, StreamError::Frame(_)), "{frame}");
        }
    }

    #[test]
    fn a_whole_completion_is_read() {
        let (sink, _watch) = TextSink::new();
        let mut text = StreamedText::new(&sink);
        apply_completion(
            br#"{"choices":[{"message":{"role":"assistant","content":"whole"}}]}"#,
            &mut text,
        )
        .unwrap();
        assert_eq!(sink.text(), "whole");
        assert!(apply_completion(br#"{"choices":[]}"#, &mut text).is_err());
        assert!(
            apply_completion(br#"{"choices":[{"message":{"content":1}}]}"#, &mut text).is_err()
        );
    }

    proptest! {
        #[test]
        fn any_frame_is_applied_without_panic(frame in proptest::collection::vec(any::<u8>(), 0..256)) {
            let (sink, _watch) = TextSink::new();
            let _ = apply_chunk(&frame, &mut StreamedText::new(&sink), &mut Progress::default());
            let _ = apply_completion(&frame, &mut StreamedText::new(&sink));
        }
    }
}
