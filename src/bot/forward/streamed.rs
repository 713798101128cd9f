//! The objects of a streamed `forward` answer (one per NDJSON line or SSE event):
//! `{"delta": "…"}` appends, `{"content": "…"}` replaces the whole text, `{"done": true}`
//! is the final marker, `{"error": "…"}` a failure the upstream reports. One object may
//! carry several of them: `content`, then `delta`, are applied before `done`. Unknown
//! fields are ignored.

use serde_json::Value;

use crate::bot::stream::{Flow, StreamError, StreamedText, shorten};

/// Applies one object of the stream to the text.
///
/// # Errors
/// [`StreamError::Frame`] for an object that is not one (field names only, never values),
/// [`StreamError::Upstream`] for `error`, [`StreamError::TextTooLong`].
pub fn apply_object(frame: &[u8], text: &mut StreamedText<'_>) -> Result<Flow, StreamError> {
    let value: Value = serde_json::from_slice(frame).map_err(|e| StreamError::not_json(&e))?;
    let Value::Object(object) = value else {
        return Err(StreamError::Frame("not a JSON object".into()));
    };
    match object.get("error") {
        None | Some(Value::Null | Value::Bool(false)) => {}
        Some(Value::String(message)) => return Err(StreamError::Upstream(shorten(message))),
        Some(Value::Object(error)) => {
            let message = error.get("message").and_then(Value::as_str).unwrap_or("");
            return Err(StreamError::Upstream(shorten(message)));
        }
        Some(_) => return Err(StreamError::Upstream(String::new())),
    }
    let string = |field: &'static str| match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(StreamError::Frame(format!("`{field}` must be a string"))),
    };
    if let Some(content) = string("content")? {
        text.set(content)?;
    }
    if let Some(delta) = string("delta")? {
        text.push(delta)?;
    }
    match object.get("done") {
        Some(Value::Bool(true)) => Ok(Flow::Done),
        None | Some(Value::Null | Value::Bool(false)) => Ok(Flow::More),
        Some(_) => Err(StreamError::Frame("`done` must be true or false".into())),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::bot::TextSink;

    fn run(frames: &[&str]) -> (Result<Vec<Flow>, StreamError>, String) {
        let (sink, _watch) = TextSink::new();
        let mut text = StreamedText::new(&sink);
        let flows = frames
            .iter()
            .map(|f| apply_object(f.as_bytes(), &mut text))
            .collect();
        (flows, sink.text())
    }

    #[test]
    fn deltas_append_content_replaces_done_ends() {
        let (flows, text) = run(&[
            r#"{"delta":"Hel"}"#,
            r#"{"delta":"lo","id":1}"#,
            r#"{"content":"Hi"}"#,
            r#"{"content":"Hello","delta":", world"}"#,
            r#"{"delta":"!","done":true}"#,
        ]);
        use Flow::{Done, More};
        assert_eq!(flows.unwrap(), [More, More, More, More, Done]);
        assert_eq!(text, "Hello, world!");
        let (flows, text) = run(&[r#"{"done":false,"delta":null}"#, r#"{}"#]);
        assert_eq!(flows.unwrap(), [More, More]);
        assert_eq!(text, "");
    }

    #[test]
    fn errors_are_typed_and_quote_no_text() {
        let (result, text) = run(&[r#"{"delta":"so far"}"#, r#"{"error":"model overloaded"}"#]);
        assert_eq!(
            result,
            Err(StreamError::Upstream("model overloaded".into()))
        );
        assert_eq!(text, "so far", "the text so far stays");
        let (result, _) = run(&[r#"{"error":{"message":"quota"}}"#]);
        assert_eq!(result, Err(StreamError::Upstream("quota".into())));
        for frame in [
            r#"{"delta":["private words"]}"#,
            r#"{"content":5}"#,
            r#"{"done":"private words"}"#,
            r#"["private words"]"#,
            r#"{"delta":"private words""#,
            "private words",
        ] {
            let (result, _) = run(&[frame]);
            let e = result.unwrap_err();
            assert!(matches!(e, StreamError::Frame(_)), "{frame}: {e:?}");
            assert!(!e.to_string().contains("private"), "{e}");
        }
    }

    proptest! {
        #[test]
        fn any_frame_is_applied_without_panic(frame in proptest::collection::vec(any::<u8>(), 0..256)) {
            let (sink, _watch) = TextSink::new();
            let _ = apply_object(&frame, &mut StreamedText::new(&sink));
        }

        #[test]
        fn any_json_object_is_applied_without_panic(
            delta in prop_oneof![Just(serde_json::json!(null)), "[^\"]{0,10}".prop_map(serde_json::Value::from), any::<i32>().prop_map(serde_json::Value::from)],
            content in prop_oneof![Just(serde_json::json!(null)), "[^\"]{0,10}".prop_map(serde_json::Value::from), any::<bool>().prop_map(serde_json::Value::from)],
            done in prop_oneof![Just(serde_json::json!(null)), any::<bool>().prop_map(serde_json::Value::from), Just(serde_json::json!(1))],
        ) {
            let frame = serde_json::json!({"delta": delta, "content": content, "done": done}).to_string();
            let (sink, _watch) = TextSink::new();
            let _ = apply_object(frame.as_bytes(), &mut StreamedText::new(&sink));
        }
    }
}
