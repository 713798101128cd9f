//! Reads only the root's direct children: the encrypted envelope, which is parsed before its
//! signature can be checked.
//!
//! Anyone can post a body to a callback URL, and the signature covers only the `Encrypt`
//! value, so the envelope must be read first. What it costs must not depend on how the body
//! is shaped: a crafted body of long names nested deep would otherwise make the field
//! scanner build a long dotted path for every leaf. Here nothing below the first level is
//! named, names are capped before they are used, nothing is allocated per element, and the
//! number of nodes is capped ([`MAX_ENVELOPE_NODES`]): a real envelope has a few (a dozen
//! in safe mode, about fifty for the largest event in compatible mode, which repeats the
//! message in clear),
//! and a body of thousands of tiny nodes would otherwise cost the parser's per-node overhead
//! thousands of times. So the cost is one pass over the body plus at most that many nodes.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::Event;

use super::fields::{Pending, element_name, mismatched_end, resolve_reference};
use super::{MAX_DEPTH, MAX_XML_LEN};
use crate::error::ProtocolError;

/// The most nodes (elements, text runs other than blank ones, CDATA sections, references,
/// comments, processing instructions) an envelope may have. The largest real one, an album
/// of nine pictures in compatible mode, has about fifty.
pub const MAX_ENVELOPE_NODES: usize = 128;

/// Calls `on_field` with the name and value of each leaf element directly under the root, in
/// document order, and checks that the whole document is well-formed within the same bounds
/// as [`scan`](super::scan). Deeper elements are checked but not reported.
///
/// # Errors
/// -40002 for malformed XML, a DOCTYPE, unknown entities, more than one root, input over
/// [`MAX_XML_LEN`], nesting over [`MAX_DEPTH`], more than [`MAX_ENVELOPE_NODES`] nodes, or a
/// name over [`MAX_NAME_LEN`](super::MAX_NAME_LEN).
pub fn scan_top_level<'a>(
    xml: &'a str,
    mut on_field: impl FnMut(&str, Cow<'a, str>),
) -> Result<(), ProtocolError> {
    if xml.len() > MAX_XML_LEN {
        return Err(ProtocolError::XmlTooLarge {
            len: xml.len(),
            max: MAX_XML_LEN,
        });
    }
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = false;
    // Values here are the envelope's (`Encrypt` is base64, where any character XML cannot
    // carry is a decoding error anyway), so values are cleaned (`chars`) only for what every
    // parser does to them, line ends, and only in a body that holds a CR (one memchr over
    // the input, cheaper than the exact check the field scanner makes).
    let has_cr = memchr::memchr(b'\r', xml.as_bytes()).is_some();
    let clean = |text: Cow<'a, str>| {
        if has_cr {
            super::chars::clean(text)
        } else {
            text
        }
    };
    // The open elements, the root first; each name at most MAX_NAME_LEN, borrowed.
    let mut open: Vec<Cow<'a, str>> = Vec::with_capacity(4);
    // Whether the open first-level element has children (then it is not a leaf).
    let mut has_children = false;
    let mut root_done = false;
    let mut nodes = 0usize;
    let mut pending = Pending::default();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| ProtocolError::Xml(crate::escape::shown(&e.to_string(), 160)))?;
        // An end tag closes a counted start; blank text only separates counted nodes.
        let counted = match &event {
            Event::End(_) => false,
            Event::Text(text) => !text.bytes().all(|b| b.is_ascii_whitespace()),
            _ => true,
        };
        if counted {
            nodes += 1;
            if nodes > MAX_ENVELOPE_NODES {
                return Err(ProtocolError::Xml(format!(
                    "more than {MAX_ENVELOPE_NODES} nodes in an envelope"
                )));
            }
        }
        let self_closing = matches!(event, Event::Empty(_));
        match event {
            Event::Start(start) | Event::Empty(start) => {
                let name = element_name(xml, start.name().into_inner())?;
                if root_done {
                    return Err(ProtocolError::Xml("more than one root element".into()));
                }
                if open.len() > MAX_DEPTH {
                    return Err(ProtocolError::Xml(format!(
                        "elements nest deeper than {MAX_DEPTH} levels"
                    )));
                }
                match open.len() {
                    0 => root_done = self_closing,
                    1 => {
                        has_children = false;
                        pending = Pending::default();
                        if self_closing {
                            on_field(&name, Cow::Borrowed(""));
                        }
                    }
                    _ => has_children = true,
                }
                if !self_closing {
                    open.push(name);
                }
            }
            Event::End(end) => {
                let closing = end.name().into_inner();
                let Some(name) = open.pop() else {
                    return Err(ProtocolError::Xml(
                        "a closing tag without an opening one".into(),
                    ));
                };
                if name != closing {
                    return Err(mismatched_end(&name, closing));
                }
                match open.len() {
                    0 => root_done = true,
                    1 if !has_children => on_field(&name, pending.take()),
                    _ => {}
                }
            }
            Event::Text(text) => {
                let text = text.into_inner();
                match open.len() {
                    0 | 1 if !text.trim_ascii().is_empty() => {
                        return Err(ProtocolError::Xml("text outside any field".into()));
                    }
                    2 => pending.push_text(clean(text)),
                    _ => {}
                }
            }
            Event::CData(cdata) => {
                let cdata = cdata.into_inner();
                match open.len() {
                    0 | 1 => return Err(ProtocolError::Xml("CDATA outside any field".into())),
                    2 => pending.push_cdata(clean(cdata)),
                    _ => {}
                }
            }
            Event::GeneralRef(reference) => {
                if open.len() < 2 {
                    return Err(ProtocolError::Xml(
                        "entity reference outside any field".into(),
                    ));
                }
                let resolved = resolve_reference(&reference)?;
                if open.len() == 2 {
                    pending.push_reference(resolved);
                }
            }
            Event::DocType(_) => return Err(ProtocolError::XmlDoctype),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !root_done {
        return Err(ProtocolError::Xml(if open.is_empty() {
            "no root element".into()
        } else {
            "the document ends inside an element".into()
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top(xml: &str) -> Result<Vec<(String, String)>, ProtocolError> {
        let mut out = Vec::new();
        scan_top_level(xml, |name, value| {
            out.push((name.to_owned(), value.into_owned()))
        })?;
        Ok(out)
    }

    #[test]
    fn only_direct_leaf_children_are_reported() {
        let xml = "<xml><ToUserName><![CDATA[ww1]]></ToUserName><G><Encrypt>deep</Encrypt></G>\
                   <Encrypt>a&amp;b</Encrypt><E/></xml>";
        assert_eq!(
            top(xml).unwrap(),
            vec![
                ("ToUserName".into(), "ww1".into()),
                ("Encrypt".into(), "a&b".into()),
                ("E".into(), String::new())
            ]
        );
    }

    #[test]
    fn the_whole_document_must_be_well_formed_within_the_bounds() {
        for bad in [
            "",
            "<xml>",
            "<xml><A>1</B></xml>",
            "<xml><G><A>1</B></G></xml>",
            "<xml/><xml/>",
            "<xml>text</xml>",
            "<!DOCTYPE x><xml/>",
            "<xml><A>&e;</A></xml>",
        ] {
            assert_eq!(top(bad).unwrap_err().code().as_i32(), -40002, "{bad:?}");
        }
        let deep = format!(
            "<xml>{}{}</xml>",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        assert!(top(&deep).is_err());
        let ok_deep = format!(
            "<xml>{}{}</xml>",
            "<a>".repeat(MAX_DEPTH),
            "</a>".repeat(MAX_DEPTH)
        );
        assert!(top(&ok_deep).is_ok());
        let long = "n".repeat(super::super::MAX_NAME_LEN + 1);
        assert!(top(&format!("<xml><G><{long}/></G></xml>")).is_err());
        assert!(top(&format!("<xml>{}</xml>", "<a/>".repeat(MAX_ENVELOPE_NODES))).is_err());
        assert!(
            top(&format!(
                "<xml>{}</xml>",
                "<!---->".repeat(MAX_ENVELOPE_NODES)
            ))
            .is_err()
        );
        assert!(
            top(&format!(
                "<xml><E>{}</E></xml>",
                "&amp;".repeat(MAX_ENVELOPE_NODES)
            ))
            .is_err()
        );
        // A compatible-mode envelope (the message in clear beside Encrypt) is far below it.
        // The largest: an album of 9 pictures, laid out on lines as the platform does.
        let compatible = "<xml>\n<ToUserName><![CDATA[gh_1]]></ToUserName>\n<FromUserName><![CDATA[o1]]></FromUserName>\n\
            <CreateTime>1</CreateTime>\n<MsgType><![CDATA[event]]></MsgType>\n<Event><![CDATA[pic_weixin]]></Event>\n\
            <EventKey><![CDATA[6]]></EventKey>\n<SendPicsInfo><Count>9</Count>\n<PicList>{items}</PicList>\n</SendPicsInfo>\n\
            <Encrypt><![CDATA[abc=]]></Encrypt>\n</xml>"
            .replace("{items}", &"<item><PicMd5Sum><![CDATA[0123456789abcdef]]></PicMd5Sum>\n</item>\n".repeat(9));
        assert_eq!(top(&compatible).unwrap().last().unwrap().0, "Encrypt");
    }
}
