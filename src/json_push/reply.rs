//! The rendered XML reply → the JSON reply of a Mini Program's JSON push.
//!
//! Every element becomes a key of the same name, in document order: text as a JSON string,
//! `CreateTime` and `ArticleCount` as numbers (as the platform's JSON shows them); a group
//! element (`<TransInfo><KfAccount>…`) an object; a repeated element an array of them, so a
//! news reply's `<Articles><item>…</item><item>…</item></Articles>` is
//! `"Articles":{"item":[{…},{…}]}`. The Mini Program's passive replies are essentially
//! `transfer_customer_service` and text; the others are converted the same way.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::error::ProtocolError;
use crate::xml::Fields;

/// The fields written as JSON numbers.
const NUMBER_FIELDS: &[&str] = &["CreateTime", "ArticleCount"];

/// Converts a passive reply's XML (as [`Reply::render`](crate::reply::Reply::render) writes
/// it) into the JSON object the Mini Program's JSON push expects.
///
/// # Errors
/// -40002 when `reply_xml` is not a well-formed document.
pub fn reply_to_json(reply_xml: &str) -> Result<String, ProtocolError> {
    let fields = Fields::parse(reply_xml)?;
    let mut root = Group::default();
    for field in fields.iter() {
        let path: Vec<&str> = field.name.split('.').collect();
        root.insert(&path, &field.value);
    }
    serde_json::to_string(&root).map_err(|e| ProtocolError::Json(e.to_string()))
}

/// One element's content: each child name with its occurrences, in document order.
#[derive(Debug, Default)]
struct Group(Vec<(String, Vec<Entry>)>);

#[derive(Debug)]
enum Entry {
    Text(String),
    Number(u64),
    Group(Group),
}

impl Group {
    /// Puts `value` at `path` (element names from here down). A leaf already present where
    /// `path` ends means the element holding it repeats: a new occurrence is started.
    fn insert(&mut self, path: &[&str], value: &str) {
        let Some((&name, rest)) = path.split_first() else {
            return;
        };
        let occurrences = self.occurrences(name);
        if rest.is_empty() {
            occurrences.push(leaf(name, value));
            return;
        }
        let continues = matches!(
            occurrences.last(),
            Some(Entry::Group(group)) if !(rest.len() == 1 && group.has(rest[0]))
        );
        if !continues {
            occurrences.push(Entry::Group(Group::default()));
        }
        if let Some(Entry::Group(group)) = occurrences.last_mut() {
            group.insert(rest, value);
        }
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    fn occurrences(&mut self, name: &str) -> &mut Vec<Entry> {
        let at = match self.0.iter().position(|(n, _)| n == name) {
            Some(at) => at,
            None => {
                self.0.push((name.to_owned(), Vec::new()));
                self.0.len() - 1
            }
        };
        &mut self.0[at].1
    }
}

/// A leaf's JSON value: a number for the numeric fields (when the text is one), else text.
fn leaf(name: &str, value: &str) -> Entry {
    match value.parse::<u64>() {
        Ok(n) if NUMBER_FIELDS.contains(&name) => Entry::Number(n),
        _ => Entry::Text(value.to_owned()),
    }
}

impl Serialize for Group {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, occurrences) in &self.0 {
            match occurrences.as_slice() {
                [one] => map.serialize_entry(name, one)?,
                many => map.serialize_entry(name, &Occurrences(many))?,
            }
        }
        map.end()
    }
}

/// A repeated element, as an array.
struct Occurrences<'a>(&'a [Entry]);

impl Serialize for Occurrences<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for entry in self.0 {
            seq.serialize_element(entry)?;
        }
        seq.end()
    }
}

impl Serialize for Entry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(text) => serializer.serialize_str(text),
            Self::Number(n) => serializer.serialize_u64(*n),
            Self::Group(group) => group.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Callback;
    use crate::platform::Platform;
    use crate::reply::{Article, Reply};

    fn message() -> crate::message::Message {
        let xml = "<xml><ToUserName>gh_x</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>hi</Content><MsgId>7</MsgId></xml>";
        match Callback::parse(xml).unwrap() {
            Callback::Message(m) => m,
            other => panic!("{other:?}"),
        }
    }

    fn json_of(reply: &Reply) -> serde_json::Value {
        let xml = reply
            .render(&message(), Platform::Mp, 1_700_000_000)
            .unwrap();
        serde_json::from_str(&reply_to_json(&xml).unwrap()).unwrap()
    }

    #[test]
    fn transfer_and_text_replies_have_the_xml_fields() {
        assert_eq!(
            json_of(&Reply::TransferCustomerService { kf_account: None }),
            serde_json::json!({"ToUserName":"o1","FromUserName":"gh_x","CreateTime":1_700_000_000u64,"MsgType":"transfer_customer_service"})
        );
        let text = json_of(&Reply::text("你好 ]]> \"quoted\""));
        assert_eq!(
            text,
            serde_json::json!({"ToUserName":"o1","FromUserName":"gh_x","CreateTime":1_700_000_000u64,"MsgType":"text","Content":"你好 ]]> \"quoted\""})
        );
    }

    #[test]
    fn keys_keep_the_documents_order() {
        let xml = Reply::text("x")
            .render(&message(), Platform::Mp, 5)
            .unwrap();
        assert_eq!(
            reply_to_json(&xml).unwrap(),
            r#"{"ToUserName":"o1","FromUserName":"gh_x","CreateTime":5,"MsgType":"text","Content":"x"}"#
        );
    }

    #[test]
    fn groups_become_objects_and_repeats_arrays() {
        // Two articles, as a WeCom news reply writes them (an MP reply carries one).
        let mut xml = String::new();
        let mut w = crate::xml::XmlWriter::new(&mut xml);
        w.open("xml").number("ArticleCount", 2).open("Articles");
        for (title, description) in [("one", ""), ("two", "d")] {
            w.open("item")
                .text("Title", title)
                .text("Description", description)
                .text("Url", "https://example.com/")
                .close("item");
        }
        w.close("Articles").close("xml");
        let v: serde_json::Value = serde_json::from_str(&reply_to_json(&xml).unwrap()).unwrap();
        assert_eq!(v["ArticleCount"], 2);
        let items = v["Articles"]["item"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["Title"], "one");
        assert_eq!(items[1]["Title"], "two");
        assert_eq!(items[1]["Description"], "d");
        assert_eq!(items[1]["Url"], "https://example.com/");
        let one = json_of(&Reply::News {
            articles: vec![Article::new("only", "https://example.com/")],
        });
        assert_eq!(one["Articles"]["item"]["Title"], "only");
        let transfer = json_of(&Reply::TransferCustomerService {
            kf_account: Some("kf@x".into()),
        });
        assert_eq!(
            transfer["TransInfo"],
            serde_json::json!({"KfAccount":"kf@x"})
        );
    }

    #[test]
    fn malformed_xml_is_an_error() {
        assert!(reply_to_json("<xml><A>").is_err());
        assert!(reply_to_json("").is_err());
    }
}
