//! Reading an AI bot's decrypted answers.
#![allow(dead_code)]

use serde_json::Value;

/// The stream reply's id, whether it is finished, and its content; panics when `answer` is
/// not a stream reply.
pub fn stream_of(answer: &Value) -> (String, bool, String) {
    assert_eq!(answer["msgtype"], "stream", "{answer}");
    let s = &answer["stream"];
    (
        s["id"].as_str().unwrap().to_owned(),
        s["finish"].as_bool().unwrap(),
        s["content"].as_str().unwrap().to_owned(),
    )
}
