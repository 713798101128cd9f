//! Playing a Mini Program whose message push is set to JSON (`data_format = "json"`): the
//! message is a JSON object with the XML's field names; in safe mode it travels in
//! `{"ToUserName","Encrypt"}` and the reply in `{"Encrypt","MsgSignature","TimeStamp","Nonce"}`.

use super::{AnswerError, Header, PlatformSim, push_param};
use crate::error::ProtocolError;
use crate::message::Callback;

impl PlatformSim {
    /// The query and body of a JSON push carrying `message_json`: the plain `signature`
    /// always, and in safe mode `encrypt_type=aes` and `msg_signature` over the ciphertext.
    pub(super) fn json_push(
        &self,
        message_json: &str,
        ts: &str,
        nonce: &str,
    ) -> Result<(String, String), ProtocolError> {
        let field = |name: &str| -> String {
            serde_json::from_str::<serde_json::Value>(message_json)
                .ok()
                .and_then(|v| v.get(name)?.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        let mut query = String::new();
        let plain_signature = self.token.sign(ts, nonce)?;
        push_param(&mut query, "signature", plain_signature.to_hex().as_str());
        push_param(&mut query, "timestamp", ts);
        push_param(&mut query, "nonce", nonce);
        push_param(&mut query, "openid", &field("FromUserName"));
        if self.plaintext {
            return Ok((query, message_json.to_owned()));
        }
        let encrypt = self.encrypt(message_json.as_bytes())?;
        let signature = self.token.sign_encrypted(ts, nonce, &encrypt)?;
        push_param(&mut query, "encrypt_type", "aes");
        push_param(&mut query, "msg_signature", signature.to_hex().as_str());
        let body = serde_json::json!({ "ToUserName": field("ToUserName"), "Encrypt": encrypt });
        Ok((query, body.to_string()))
    }

    /// A JSON reply as the platform reads it: in safe mode the envelope (`TimeStamp` a
    /// number or a string) whose signature verifies and whose ciphertext decrypts for this
    /// app; then a JSON object that reads as a reply (header fields and `MsgType`). The
    /// plaintext JSON.
    pub(super) fn open_mini_program_reply(
        &self,
        encrypted: bool,
        body: &str,
    ) -> Result<String, AnswerError> {
        let bad = |reason: &str| AnswerError::from(ProtocolError::Json(reason.to_owned()));
        let inner = if encrypted {
            let value: serde_json::Value =
                serde_json::from_str(body).map_err(|_| bad("the reply envelope is not JSON"))?;
            let field = |name: &'static str| match value.get(name) {
                Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                Some(serde_json::Value::Number(n)) if name == "TimeStamp" => Ok(n.to_string()),
                _ => Err(AnswerError::from(ProtocolError::JsonMissingField(name))),
            };
            let (encrypt, signature) = (field("Encrypt")?, field("MsgSignature")?);
            let (timestamp, nonce) = (field("TimeStamp")?, field("Nonce")?);
            let opened = self.crypt()?.open(&signature, &timestamp, &nonce, &encrypt)?;
            opened.frame.message_str()?.to_owned()
        } else {
            body.to_owned()
        };
        Callback::parse(&crate::json_push::to_xml(&inner)?)?;
        Ok(inner)
    }
}

/// A Mini Program text message (customer service message, 客服消息) from `header.from`.
pub fn mini_program_text_json(header: &Header<'_>, content: &str, msg_id: u64) -> String {
    serde_json::json!({
        "ToUserName": header.to,
        "FromUserName": header.from,
        "CreateTime": header.create_time,
        "MsgType": "text",
        "Content": content,
        "MsgId": msg_id,
    })
    .to_string()
}

/// The `user_enter_tempsession` event: the user opened the customer service session, from
/// `session_from` (the button's `session-from`).
pub fn enter_tempsession_json(header: &Header<'_>, session_from: &str) -> String {
    serde_json::json!({
        "ToUserName": header.to,
        "FromUserName": header.from,
        "CreateTime": header.create_time,
        "MsgType": "event",
        "Event": "user_enter_tempsession",
        "SessionFrom": session_from,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::simulate::Answer;

    const CONFIG: &str = r#"
[[apps]]
name = "mini"
platform = "mp"
app_id = "wx5823bf96d3bd56c7"
token = "QDG6eK"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
data_format = "json"
"#;

    fn sim() -> PlatformSim {
        let config = Config::parse(CONFIG).unwrap();
        PlatformSim::new(config.app("mini").unwrap()).unwrap()
    }

    const HEADER: Header<'static> = Header {
        to: "gh_mini",
        from: "o_user",
        create_time: 1_700_000_000,
        agent_id: None,
    };

    #[test]
    fn a_safe_mode_push_is_the_json_envelope_signed_over_encrypt() {
        let json = mini_program_text_json(&HEADER, "hi", 42);
        let request = sim().post(&json, 1_700_000_000, "n1").unwrap();
        assert_eq!(request.path, "/mp/mini");
        assert!(request.query.contains("encrypt_type=aes"), "{}", request.query);
        assert!(request.query.contains("openid=o_user"), "{}", request.query);
        let envelope = crate::aibot::JsonEnvelope::parse(&request.body).unwrap();
        assert_eq!(envelope.to_user_name_hint.as_deref(), Some("gh_mini"));
        let crypt = sim().crypt.unwrap();
        let opened = crypt.decrypt(&envelope.encrypt).unwrap();
        assert_eq!(opened.frame.message(), json.as_bytes());
        let plain = sim().plaintext(true).post(&json, 1, "n").unwrap();
        assert_eq!(plain.body, json);
        assert!(!plain.query.contains("msg_signature"));
    }

    #[test]
    fn check_opens_a_json_reply_with_a_number_or_string_timestamp() {
        let sim = sim();
        let request = sim.post(&enter_tempsession_json(&HEADER, "card"), 5, "n1").unwrap();
        let reply = r#"{"ToUserName":"o_user","FromUserName":"gh_mini","CreateTime":5,"MsgType":"transfer_customer_service"}"#;
        let crypt = sim.crypt.clone().unwrap();
        let (encrypt, signature) = crypt
            .encrypt_and_sign(reply, crate::crypto::KeySlot::Current, 5, "abc")
            .unwrap();
        for timestamp in [serde_json::json!(5), serde_json::json!("5")] {
            let body = serde_json::json!({"Encrypt":encrypt,"MsgSignature":signature,"TimeStamp":timestamp,"Nonce":"abc"});
            let answer = sim.check(&request, 200, &body.to_string()).unwrap();
            assert_eq!(answer, Answer::Reply(reply.to_owned()));
        }
        let forged = serde_json::json!({"Encrypt":encrypt,"MsgSignature":signature,"TimeStamp":6,"Nonce":"abc"});
        assert!(sim.check(&request, 200, &forged.to_string()).is_err());
        assert!(sim.check(&request, 200, "<xml/>").is_err());
    }
}
