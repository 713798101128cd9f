//! A pushed JSON message → the XML document the inbound model reads.
//!
//! The mapping mirrors how the platform writes the same message in XML:
//!
//! * the object is the `<xml>` root; each key an element of that name;
//! * strings are text (CDATA), numbers their decimal text, booleans `true`/`false`;
//! * a nested object is an element with child elements (`"List":{"TemplateId":"t"}` →
//!   `<List><TemplateId>t</TemplateId></List>`, read as the field `List.TemplateId`);
//! * an array repeats its key, one element per item (`"List":[{…},{…}]` → `<List>…</List>
//!   <List>…</List>`), as the XML push repeats `<List>` for each template;
//! * `null` is an absent field.
//!
//! Refused, with [`ProtocolError::Json`]: anything but an object at the top, a key that is
//! not a plain XML name (see [`is_element_name`]) or given twice in one object, a string
//! holding a character XML cannot carry, a number that cannot be carried exactly (beyond
//! ±2^53 unless an integer that fits 64 bits, or not finite), an array directly inside an
//! array, nesting deeper than [`MAX_DEPTH`], more than [`MAX_FIELDS`] elements, or a result
//! over [`MAX_XML_LEN`]. Duplicate keys matter: a signature covers the ciphertext, not
//! which of two `MsgId`s a parser keeps.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::aibot::envelope::json_reason;
use crate::error::ProtocolError;
use crate::xml::{MAX_DEPTH, MAX_FIELDS, MAX_NAME_LEN, MAX_XML_LEN, XmlWriter, is_forbidden};

/// Longest key accepted, in bytes: the XML reader's limit on element names.
pub const MAX_KEY_LEN: usize = MAX_NAME_LEN;

/// 2^53: beyond it an f64 no longer holds every integer, so a number serde_json could only
/// read as a float (a fraction, an exponent, or an integer outside 64 bits) is not carried.
const MAX_EXACT_FLOAT: f64 = 9_007_199_254_740_992.0;

/// Converts a pushed JSON message (the decrypted plaintext, or the body in plaintext mode)
/// into an `<xml>` document for [`Callback::parse`](crate::message::Callback::parse).
///
/// # Errors
/// -40002 ([`ProtocolError::Json`]) for malformed JSON and for what the module refuses; the
/// reason names a position, never a value.
pub fn to_xml(json: &str) -> Result<String, ProtocolError> {
    let mut out = Out {
        xml: String::with_capacity(json.len().saturating_add(64)),
        elements: 0,
        refusal: None,
    };
    let mut de = serde_json::Deserializer::from_str(json);
    let result = Node::root(&mut out)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    match (result, out.refusal) {
        (Ok(()), _) => Ok(out.xml),
        (Err(e), Some(refusal)) if e.line() > 0 => Err(ProtocolError::Json(format!(
            "{refusal} at line {} column {}",
            e.line(),
            e.column()
        ))),
        (Err(_), Some(refusal)) => Err(ProtocolError::Json(refusal.to_string())),
        (Err(e), None) => Err(ProtocolError::Json(json_reason(&e))),
    }
}

/// Whether `key` can be an element name here: 1 to [`MAX_KEY_LEN`] bytes of ASCII letters,
/// digits, `_` and `-`, not starting with a digit or `-`. Narrower than XML allows: no `.`
/// (the reader joins nested names with dots) and no `:` (namespaces); every field the
/// platforms send fits.
pub fn is_element_name(key: &str) -> bool {
    let bytes = key.as_bytes();
    matches!(bytes.first(), Some(b) if b.is_ascii_alphabetic() || *b == b'_')
        && bytes.len() <= MAX_KEY_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// The document being written, and why the conversion stopped, if it did.
struct Out {
    xml: String,
    elements: usize,
    refusal: Option<Refusal>,
}

/// What the conversion refuses; none of them quotes the input.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    NotAnObject,
    KeyNotAName,
    KeyTwice,
    ForbiddenCharacter,
    InexactNumber,
    ArrayInArray,
    TooDeep,
    TooManyElements,
    TooLarge,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnObject => f.write_str("the message is not a JSON object"),
            Self::KeyNotAName => write!(
                f,
                "a key is not an element name (1 to {MAX_KEY_LEN} ASCII letters, digits, '_' or '-', starting with a letter or '_')"
            ),
            Self::KeyTwice => f.write_str("a key is given twice in one object"),
            Self::ForbiddenCharacter => f.write_str("a string holds a character XML cannot carry"),
            Self::InexactNumber => f.write_str("a number cannot be carried exactly"),
            Self::ArrayInArray => f.write_str("an array directly inside an array"),
            Self::TooDeep => write!(f, "nested deeper than {MAX_DEPTH} levels"),
            Self::TooManyElements => write!(f, "more than {MAX_FIELDS} fields"),
            Self::TooLarge => write!(f, "the message is over {MAX_XML_LEN} bytes as XML"),
        }
    }
}

/// One JSON value and where it goes: the root, or the element `name` at `depth` (1 for the
/// root's fields).
struct Node<'o> {
    out: &'o mut Out,
    name: Option<String>,
    depth: usize,
    in_array: bool,
}

impl<'o> Node<'o> {
    fn root(out: &'o mut Out) -> Self {
        Self {
            out,
            name: None,
            depth: 0,
            in_array: false,
        }
    }

    fn refuse<E: de::Error>(self, refusal: Refusal) -> Result<(), E> {
        self.out.refusal = Some(refusal);
        Err(E::custom(refusal))
    }

    /// Writes one scalar as `<name>…</name>` with `write`.
    fn leaf<E: de::Error>(self, write: impl FnOnce(&mut XmlWriter<'_>, &str)) -> Result<(), E> {
        let Some(name) = self.name.as_deref() else {
            return self.refuse(Refusal::NotAnObject);
        };
        write(&mut XmlWriter::new(&mut self.out.xml), name);
        self.count()
    }

    /// Counts an element written and checks the totals.
    fn count<E: de::Error>(self) -> Result<(), E> {
        self.out.elements += 1;
        if self.out.elements > MAX_FIELDS {
            return self.refuse(Refusal::TooManyElements);
        }
        if self.out.xml.len() > MAX_XML_LEN {
            return self.refuse(Refusal::TooLarge);
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        // Checked before reading the value, so deep input stops here, not in the parser.
        if self.depth > MAX_DEPTH {
            return self.refuse(Refusal::TooDeep);
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of message fields")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        if v.chars().any(is_forbidden) {
            return self.refuse(Refusal::ForbiddenCharacter);
        }
        self.leaf(|w, name| {
            w.text(name, v);
        })
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.leaf(|w, name| {
            w.number(name, v);
        })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.leaf(|w, name| {
            w.text(name, itoa::Buffer::new().format(v));
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        if !v.is_finite() || v.abs() >= MAX_EXACT_FLOAT {
            return self.refuse(Refusal::InexactNumber);
        }
        self.leaf(|w, name| {
            w.decimal(name, v);
        })
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.leaf(|w, name| {
            w.text(name, if v { "true" } else { "false" });
        })
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        match self.name {
            Some(_) => Ok(()),
            None => self.refuse(Refusal::NotAnObject),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.name.is_none() {
            return self.refuse(Refusal::NotAnObject);
        }
        if self.in_array {
            return self.refuse(Refusal::ArrayInArray);
        }
        let Self {
            out, name, depth, ..
        } = self;
        loop {
            let item = Node {
                out: &mut *out,
                name: name.clone(),
                depth,
                in_array: true,
            };
            if seq.next_element_seed(item)?.is_none() {
                return Ok(());
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Self {
            out, name, depth, ..
        } = self;
        let element = name.as_deref().unwrap_or("xml");
        XmlWriter::new(&mut out.xml).open(element);
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let refusal = if !is_element_name(&key) {
                Some(Refusal::KeyNotAName)
            } else if !seen.insert(key.clone()) {
                Some(Refusal::KeyTwice)
            } else {
                None
            };
            if let Some(refusal) = refusal {
                out.refusal = Some(refusal);
                return Err(de::Error::custom(refusal));
            }
            map.next_value_seed(Node {
                out: &mut *out,
                name: Some(key),
                depth: depth + 1,
                in_array: false,
            })?;
        }
        XmlWriter::new(&mut out.xml).close(element);
        Node {
            out,
            name,
            depth,
            in_array: false,
        }
        .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Callback, Content};
    use crate::xml::Fields;

    fn fields(json: &str) -> Vec<(String, String)> {
        Fields::parse(&to_xml(json).unwrap())
            .unwrap()
            .into_owned_pairs()
    }

    fn refusal(json: &str) -> String {
        match to_xml(json) {
            Err(ProtocolError::Json(reason)) => reason,
            other => panic!("{json}: {other:?}"),
        }
    }

    #[test]
    fn a_text_message_reads_as_its_xml_twin() {
        let json = r#"{"ToUserName":"gh_x","FromUserName":"openid","CreateTime":1482048670,"MsgType":"text","Content":"hi <b>]]>&","MsgId":1234567890123456}"#;
        let Callback::Message(message) = Callback::parse(&to_xml(json).unwrap()).unwrap() else {
            panic!("not a message");
        };
        assert_eq!(message.to_user_name, "gh_x");
        assert_eq!(message.from_user_name, "openid");
        assert_eq!(message.create_time, 1_482_048_670);
        assert_eq!(message.msg_id, Some(1_234_567_890_123_456));
        assert_eq!(message.text(), Some("hi <b>]]>&"));
        assert!(matches!(message.content, Content::Text { .. }));
    }

    #[test]
    fn scalars_become_their_text() {
        assert_eq!(
            fields(
                r#"{"S":"中文","U":18446744073709551615,"I":-5,"F":23.5,"T":true,"N":null,"E":""}"#
            ),
            [
                ("S", "中文"),
                ("U", "18446744073709551615"),
                ("I", "-5"),
                ("F", "23.5"),
                ("T", "true"),
                ("E", ""),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn objects_nest_and_arrays_repeat_their_key() {
        let json = r#"{"MsgType":"event","Event":"subscribe_msg_popup_event","List":[{"TemplateId":"a","SubscribeStatusString":"accept"},{"TemplateId":"b","SubscribeStatusString":"reject"}],"One":{"Inner":{"Leaf":1}},"Empty":[]}"#;
        assert_eq!(
            fields(json),
            [
                ("MsgType", "event"),
                ("Event", "subscribe_msg_popup_event"),
                ("List.TemplateId", "a"),
                ("List.SubscribeStatusString", "accept"),
                ("List.TemplateId", "b"),
                ("List.SubscribeStatusString", "reject"),
                ("One.Inner.Leaf", "1"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn the_enter_tempsession_event_parses() {
        let json = r#"{"ToUserName":"gh_x","FromUserName":"o1","CreateTime":"1482048670","MsgType":"event","Event":"user_enter_tempsession","SessionFrom":"from-card"}"#;
        let Callback::Message(message) = Callback::parse(&to_xml(json).unwrap()).unwrap() else {
            panic!("not a message");
        };
        assert_eq!(message.msg_type(), "event");
        assert!(message.event().is_some());
        assert_eq!(message.create_time, 1_482_048_670);
    }

    #[test]
    fn what_xml_cannot_carry_is_refused_without_quoting_it() {
        for (json, why) in [
            ("[]", "not a JSON object"),
            ("\"secret\"", "not a JSON object"),
            ("12", "not a JSON object"),
            ("null", "not a JSON object"),
            (r#"{"a b":"secret"}"#, "not an element name"),
            (r#"{"1a":"secret"}"#, "not an element name"),
            (r#"{"A.B":"secret"}"#, "not an element name"),
            (r#"{"x:y":"secret"}"#, "not an element name"),
            (r#"{"":"secret"}"#, "not an element name"),
            (r#"{"MsgId":1,"MsgId":2}"#, "given twice"),
            (r#"{"A":{"K":"secret","K":"secret"}}"#, "given twice"),
            (r#"{"A":"secret\u0001"}"#, "XML cannot carry"),
            (r#"{"A":"\uFFFF"}"#, "XML cannot carry"),
            (r#"{"A":123456789012345678901234567890}"#, "carried exactly"),
            (r#"{"A":-99999999999999999999}"#, "carried exactly"),
            (r#"{"A":1e300}"#, "carried exactly"),
            (r#"{"A":[[1]]}"#, "array directly inside"),
        ] {
            let reason = refusal(json);
            assert!(reason.contains(why), "{json}: {reason}");
            assert!(!reason.contains("secret"), "{json}: {reason}");
        }
        let long_key = format!(r#"{{"{}":1}}"#, "k".repeat(MAX_KEY_LEN + 1));
        assert!(refusal(&long_key).contains("not an element name"));
    }

    #[test]
    fn malformed_json_is_refused_by_position() {
        for json in [
            "",
            "{",
            r#"{"A":"secret"#,
            r#"{"A":1} trailing"#,
            r#"{"A":"\ud800"}"#,
        ] {
            let reason = refusal(json);
            assert!(reason.contains("line"), "{json:?}: {reason}");
            assert!(!reason.contains("secret"), "{reason}");
        }
    }

    #[test]
    fn nesting_and_size_are_bounded() {
        let nested =
            |levels: usize| format!("{}1{}", r#"{"A":"#.repeat(levels), "}".repeat(levels));
        assert!(to_xml(&nested(MAX_DEPTH)).is_ok());
        assert!(refusal(&nested(MAX_DEPTH + 1)).contains("nested deeper"));
        // Far deeper than the parser's own recursion limit: still refused, never a crash.
        assert!(to_xml(&nested(100_000)).is_err());
        let arrays = format!(r#"{{"A":{}1{}}}"#, "[".repeat(50_000), "]".repeat(50_000));
        assert!(to_xml(&arrays).is_err());
        let many = format!("{{\"A\":[{}]}}", vec!["1"; MAX_FIELDS + 1].join(","));
        assert!(refusal(&many).contains("fields"));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_json_never_panics_and_what_passes_parses_as_xml(value in json_value()) {
            let text = value.to_string();
            if let Ok(xml) = to_xml(&text) {
                proptest::prop_assert!(Fields::parse(&xml).is_ok(), "{xml}");
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,200}") {
            let _ = to_xml(&text);
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            ".{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(6, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("[A-Za-z_][A-Za-z0-9_.-]{0,8}|.{0,4}", inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
