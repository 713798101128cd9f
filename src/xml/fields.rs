//! Flattens a callback document into `(path, value)` fields.
//!
//! `<xml><A>1</A><G><B>2</B><B>3</B></G></xml>` becomes `A=1, G.B=2, G.B=3`: the root
//! name is dropped, nested names are joined with dots, repeats are kept in order. Values
//! borrow from the input unless entities or several CDATA sections force a copy.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::Event;

use super::chars::{clean, is_forbidden, needs_cleaning};
use crate::error::ProtocolError;

/// Largest document accepted, envelope or body; real callbacks are a few KiB.
pub const MAX_XML_LEN: usize = 1 << 20;
/// Deepest nesting accepted below the root; the deepest real payload uses 4.
pub const MAX_DEPTH: usize = 16;
/// Most fields accepted in one document.
pub const MAX_FIELDS: usize = 4096;
/// Longest element name accepted, in bytes; the platforms' longest is under 32.
pub const MAX_NAME_LEN: usize = 64;
/// Longest dotted path of a field accepted, in bytes. With [`MAX_DEPTH`] and
/// [`MAX_NAME_LEN`] it bounds what naming one leaf may cost, so a document of deeply nested
/// long names costs about what a plain one of its size does.
pub const MAX_PATH_LEN: usize = 256;

/// One leaf element: its dotted path below the root and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    /// Element names from below the root, joined with `.`.
    pub name: Cow<'a, str>,
    /// The text, entities resolved, CDATA unwrapped.
    pub value: Cow<'a, str>,
}

/// The leaf fields of one document, in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields<'a> {
    fields: Vec<Field<'a>>,
    root: Cow<'a, str>,
}

/// Text collected for the element being read.
#[derive(Default)]
pub(super) struct Pending<'a> {
    value: Option<Cow<'a, str>>,
    /// A CDATA section was seen: whitespace text around it is layout, not content.
    saw_cdata: bool,
    /// Only whitespace text has been collected so far.
    only_space: bool,
}

impl<'a> Pending<'a> {
    fn push(&mut self, piece: Cow<'a, str>) {
        match &mut self.value {
            None => self.value = Some(piece),
            Some(v) => v.to_mut().push_str(&piece),
        }
    }

    pub(super) fn push_text(&mut self, piece: Cow<'a, str>) {
        let space = piece.bytes().all(|b| b.is_ascii_whitespace());
        if space && self.saw_cdata {
            return;
        }
        if self.value.is_none() {
            self.only_space = space;
        } else {
            self.only_space &= space;
        }
        self.push(piece);
    }

    pub(super) fn push_cdata(&mut self, piece: Cow<'a, str>) {
        if !self.saw_cdata && self.only_space {
            self.value = None;
        }
        self.saw_cdata = true;
        self.only_space = false;
        self.push(piece);
    }

    /// A resolved entity or character reference (`None`: one to a character XML cannot
    /// carry, dropped). Either way the value is no longer only whitespace.
    pub(super) fn push_reference(&mut self, resolved: Option<String>) {
        self.only_space = false;
        if let Some(c) = resolved {
            self.push(Cow::Owned(c));
        }
    }

    pub(super) fn take(&mut self) -> Cow<'a, str> {
        let value = self.value.take().unwrap_or(Cow::Borrowed(""));
        *self = Pending::default();
        value
    }
}

impl<'a> Fields<'a> {
    /// Parses a document into its fields.
    ///
    /// # Errors
    /// As [`scan`].
    pub fn parse(xml: &'a str) -> Result<Self, ProtocolError> {
        let mut fields = Vec::with_capacity(16);
        let root = scan(xml, |name, value| {
            fields.push(Field { name, value });
            Ok(())
        })?;
        Ok(Self { fields, root })
    }

    /// The root element's name (`xml` on every platform today).
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The first field with this path.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| &*f.value)
    }

    /// Removes and returns the first field with this path.
    pub fn take(&mut self, name: &str) -> Option<Cow<'a, str>> {
        let at = self.fields.iter().position(|f| f.name == name)?;
        Some(self.fields.remove(at).value)
    }

    /// Removes and returns every field with this path, in order.
    pub fn take_all(&mut self, name: &str) -> Vec<String> {
        let mut taken = Vec::new();
        self.fields.retain_mut(|f| {
            if f.name == name {
                taken.push(std::mem::take(&mut f.value).into_owned());
                false
            } else {
                true
            }
        });
        taken
    }

    /// All fields, in document order.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub fn iter(&self) -> impl Iterator<Item = &Field<'a>> {
        self.fields.iter()
    }

    /// How many fields there are.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when there are none.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Converts what is left into owned `(name, value)` pairs.
    pub fn into_owned_pairs(self) -> Vec<(String, String)> {
        self.fields
            .into_iter()
            .map(|f| (f.name.into_owned(), f.value.into_owned()))
            .collect()
    }
}

/// Reads a document and calls `on_field` with the dotted path and value of each leaf field,
/// in document order; returns the root element's name. Values borrow from `xml` unless
/// entities, split CDATA sections or line-end normalisation force a copy.
///
/// # Errors
/// -40002 for malformed XML, a DOCTYPE, unknown entities, more than one root, input over
/// [`MAX_XML_LEN`], nesting over [`MAX_DEPTH`] or more than [`MAX_FIELDS`] fields; and
/// whatever `on_field` returns.
pub fn scan<'a>(
    xml: &'a str,
    mut on_field: impl FnMut(Cow<'a, str>, Cow<'a, str>) -> Result<(), ProtocolError>,
) -> Result<Cow<'a, str>, ProtocolError> {
    if xml.len() > MAX_XML_LEN {
        return Err(ProtocolError::XmlTooLarge {
            len: xml.len(),
            max: MAX_XML_LEN,
        });
    }
    let mut reader = Reader::from_str(xml);
    // End names are checked below against `path`, which holds them anyway; the reader's
    // own check would keep a second copy of every open name.
    reader.config_mut().check_end_names = false;

    let mut root: Cow<'a, str> = Cow::Borrowed("");
    let mut count = 0usize;
    let mut emit = |name: Cow<'a, str>, value: Cow<'a, str>| {
        count += 1;
        if count > MAX_FIELDS {
            return Err(ProtocolError::Xml(format!("more than {MAX_FIELDS} fields")));
        }
        on_field(name, value)
    };
    // Values drop what XML cannot carry and report CR LF and lone CR as LF (`chars`); one
    // check of the whole input decides whether any value can need that, so the usual
    // document pays nothing per value.
    let cleaning = needs_cleaning(xml.as_bytes());
    let eol = |text: Cow<'a, str>| if cleaning { clean(text) } else { text };
    // Names of the open elements below the root, and whether each has child elements.
    let mut path: Vec<(Cow<'a, str>, bool)> = Vec::with_capacity(4);
    // The bytes of the dotted path of the open elements, separators included.
    let mut path_len = 0usize;
    let mut in_root = false;
    let mut root_done = false;
    let mut pending = Pending::default();

    loop {
        let event = reader
            .read_event()
            .map_err(|e| ProtocolError::Xml(crate::escape::shown(&e.to_string(), 160)))?;
        let self_closing = matches!(event, Event::Empty(_));
        match event {
            Event::Start(start) | Event::Empty(start) => {
                // `<a/>` is `<a></a>`: the same bookkeeping, closed at once.
                let name = element_name(xml, start.name().into_inner())?;
                if root_done {
                    return Err(ProtocolError::Xml("more than one root element".into()));
                }
                if !in_root {
                    root = name;
                    in_root = !self_closing;
                    root_done = self_closing;
                    continue;
                }
                if path.len() >= MAX_DEPTH {
                    return Err(ProtocolError::Xml(format!(
                        "elements nest deeper than {MAX_DEPTH} levels"
                    )));
                }
                if let Some(parent) = path.last_mut() {
                    parent.1 = true;
                }
                let leaf_len = path_len + usize::from(!path.is_empty()) + name.len();
                if leaf_len > MAX_PATH_LEN {
                    return Err(ProtocolError::Xml(format!(
                        "a field path is longer than {MAX_PATH_LEN} bytes"
                    )));
                }
                pending = Pending::default();
                if self_closing {
                    emit(joined(&path, name), Cow::Borrowed(""))?;
                } else {
                    path_len = leaf_len;
                    path.push((name, false));
                }
            }
            Event::End(end) => {
                let closing = end.name().into_inner();
                let open = match path.last() {
                    Some((name, _)) => &**name,
                    None if in_root => &*root,
                    None => {
                        return Err(ProtocolError::Xml(
                            "a closing tag without an opening one".into(),
                        ));
                    }
                };
                if open != closing {
                    return Err(mismatched_end(open, closing));
                }
                match path.pop() {
                    Some((name, has_children)) => {
                        path_len =
                            path_len.saturating_sub(name.len() + usize::from(!path.is_empty()));
                        let value = pending.take();
                        if !has_children {
                            emit(joined(&path, name), value)?;
                        }
                    }
                    None => {
                        in_root = false;
                        root_done = true;
                    }
                }
            }
            Event::Text(text) => {
                let text = eol(text.into_inner());
                if !path.is_empty() {
                    pending.push_text(text);
                } else if !text.trim_ascii().is_empty() {
                    return Err(ProtocolError::Xml("text outside any field".into()));
                }
            }
            Event::CData(cdata) => {
                if path.is_empty() {
                    return Err(ProtocolError::Xml("CDATA outside any field".into()));
                }
                pending.push_cdata(eol(cdata.into_inner()));
            }
            Event::GeneralRef(reference) => {
                if path.is_empty() {
                    return Err(ProtocolError::Xml(
                        "entity reference outside any field".into(),
                    ));
                }
                pending.push_reference(resolve_reference(&reference)?);
            }
            Event::DocType(_) => return Err(ProtocolError::XmlDoctype),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !root_done {
        return Err(ProtocolError::Xml(if in_root {
            "the document ends inside an element".into()
        } else {
            "no root element".into()
        }));
    }
    Ok(root)
}

/// An element name lies inside the `&str` input, but the reader lends it only for as long
/// as its event. Finding it in the input again gives `&'a str` without copying: `str::get`
/// checks only that both ends are character boundaries. A name not found there (never the
/// case for a reader over a `&str`) is copied instead.
fn reborrow<'a>(input: &'a str, piece: &str) -> Cow<'a, str> {
    let offset = (piece.as_ptr() as usize).wrapping_sub(input.as_ptr() as usize);
    if let Some(found) = input.get(offset..offset.saturating_add(piece.len())) {
        // Same address and length: the very same bytes.
        if found.as_ptr() == piece.as_ptr() {
            return Cow::Borrowed(found);
        }
    }
    Cow::Owned(piece.to_owned())
}

/// `Parent.Child` below the root; a field directly under the root keeps its bare name
/// without allocating.
fn joined<'a>(path: &[(Cow<'a, str>, bool)], name: Cow<'a, str>) -> Cow<'a, str> {
    if path.is_empty() {
        return name;
    }
    let mut full = String::new();
    for (segment, _) in path {
        full.push_str(segment);
        full.push('.');
    }
    full.push_str(&name);
    Cow::Owned(full)
}

/// Only the five predefined entities and character references exist without a DTD, and
/// DTDs are refused, so anything else is an error rather than an expansion. A character
/// reference to a character XML cannot carry is dropped, as the raw character would be.
pub(super) fn resolve_reference(
    reference: &quick_xml::events::BytesRef<'_>,
) -> Result<Option<String>, ProtocolError> {
    if reference.is_char_ref() {
        return match reference.resolve_char_ref() {
            Ok(Some(c)) if is_forbidden(c) => Ok(None),
            Ok(Some(c)) => Ok(Some(c.to_string())),
            _ => Err(ProtocolError::Xml("invalid character reference".into())),
        };
    }
    let name: &str = reference;
    quick_xml::escape::resolve_predefined_entity(name)
        .map(|resolved| Some(resolved.to_owned()))
        .ok_or_else(|| ProtocolError::Xml(format!("unknown entity &{};", shown(name))))
}

/// An element name, checked for length before anything else is done with it.
pub(super) fn element_name<'a>(xml: &'a str, raw: &str) -> Result<Cow<'a, str>, ProtocolError> {
    if raw.len() > MAX_NAME_LEN {
        return Err(ProtocolError::Xml(format!(
            "an element name is longer than {MAX_NAME_LEN} bytes"
        )));
    }
    Ok(reborrow(xml, raw))
}

/// The error for `<open>` closed by `</closing>`, names shortened and escaped.
pub(super) fn mismatched_end(open: &str, closing: &str) -> ProtocolError {
    ProtocolError::Xml(format!(
        "<{}> is closed by </{}>",
        shown(open),
        shown(closing)
    ))
}

/// A name from the document for an error message: at most 32 characters, control
/// characters escaped (errors reach logs and response bodies).
fn shown(name: &str) -> String {
    crate::escape::shown(name, 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(xml: &str) -> Vec<(String, String)> {
        Fields::parse(xml).unwrap().into_owned_pairs()
    }

    fn p(n: &str, v: &str) -> (String, String) {
        (n.to_owned(), v.to_owned())
    }

    #[test]
    fn flat_document_with_and_without_cdata() {
        let xml = "<xml><ToUserName><![CDATA[toUser]]></ToUserName>\n <CreateTime>1348831860</CreateTime><Empty/><E2></E2></xml>";
        let f = Fields::parse(xml).unwrap();
        assert_eq!(f.root(), "xml");
        assert_eq!(
            f.into_owned_pairs(),
            vec![
                p("ToUserName", "toUser"),
                p("CreateTime", "1348831860"),
                p("Empty", ""),
                p("E2", "")
            ]
        );
    }

    #[test]
    fn values_borrow_from_the_input() {
        let xml = String::from("<xml><A><![CDATA[x]]></A><B>y</B></xml>");
        let f = Fields::parse(&xml).unwrap();
        assert!(
            f.iter()
                .all(|f| matches!(f.value, Cow::Borrowed(_)) && matches!(f.name, Cow::Borrowed(_)))
        );
    }

    #[test]
    fn nested_groups_flatten_to_dotted_paths() {
        let xml = "<xml><Event>pic_weixin</Event><SendPicsInfo><Count>2</Count><PicList><item><PicMd5Sum>a</PicMd5Sum></item><item><PicMd5Sum>b</PicMd5Sum></item></PicList></SendPicsInfo></xml>";
        assert_eq!(
            pairs(xml),
            vec![
                p("Event", "pic_weixin"),
                p("SendPicsInfo.Count", "2"),
                p("SendPicsInfo.PicList.item.PicMd5Sum", "a"),
                p("SendPicsInfo.PicList.item.PicMd5Sum", "b"),
            ]
        );
    }

    #[test]
    fn entities_and_char_refs_resolve() {
        assert_eq!(
            pairs("<xml><C>a &lt;b&gt; &amp; &#20320;&#x597d;</C></xml>"),
            vec![p("C", "a <b> & 你好")]
        );
    }

    #[test]
    fn cdata_keeps_markup_and_split_sections_rejoin() {
        assert_eq!(
            pairs("<xml><C><![CDATA[a ]]]]><![CDATA[> <b>]]></C></xml>"),
            vec![p("C", "a ]]> <b>")]
        );
    }

    #[test]
    fn layout_whitespace_around_cdata_is_dropped_but_plain_text_kept() {
        assert_eq!(
            pairs("<xml><C>\n  <![CDATA[hi]]>\n</C></xml>"),
            vec![p("C", "hi")]
        );
        assert_eq!(
            pairs("<xml><C>  two spaces </C></xml>"),
            vec![p("C", "  two spaces ")]
        );
    }

    #[test]
    fn crlf_in_text_is_normalised_like_any_xml_parser() {
        assert_eq!(pairs("<xml><C>a\r\nb</C></xml>"), vec![p("C", "a\nb")]);
    }

    #[test]
    fn characters_xml_cannot_carry_are_dropped_raw_or_as_references() {
        let f = pairs("<xml><C><![CDATA[a\u{1}b\u{0}]]></C><D>x&#1;y&#x1F;z&#xFFFE;</D></xml>");
        assert_eq!(f, vec![p("C", "ab"), p("D", "xyz")]);
        // A character reference to CR is kept (it is how XML writes a literal CR).
        assert_eq!(pairs("<xml><C>a&#13;b</C></xml>"), vec![p("C", "a\rb")]);
    }

    #[test]
    fn names_and_paths_are_bounded() {
        let long = "n".repeat(MAX_NAME_LEN + 1);
        let e = Fields::parse(&format!("<xml><{long}>1</{long}></xml>")).unwrap_err();
        assert!(e.to_string().contains("element name is longer"), "{e}");
        let name = "n".repeat(MAX_NAME_LEN);
        let at_limit = format!("<xml><{name}>1</{name}></xml>");
        assert_eq!(Fields::parse(&at_limit).unwrap().len(), 1);
        // Five nested 60-byte names make a 304-byte path.
        let g = "g".repeat(60);
        let deep = format!(
            "<xml>{}<a/>{}</xml>",
            format!("<{g}>").repeat(5),
            format!("</{g}>").repeat(5)
        );
        let e = Fields::parse(&deep).unwrap_err();
        assert!(e.to_string().contains("path is longer"), "{e}");
        let four = format!(
            "<xml>{}<a/>{}</xml>",
            format!("<{g}>").repeat(4),
            format!("</{g}>").repeat(4)
        );
        assert_eq!(Fields::parse(&four).unwrap().len(), 1);
    }

    #[test]
    fn names_in_errors_are_escaped_and_short() {
        let e = Fields::parse("<xml><a\u{1b}[2J>1</b></xml>")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(!e.contains('\u{1b}'), "{e}");
    }

    #[test]
    fn doctype_is_refused() {
        let xml = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e \"boom\">]><xml><C>&e;</C></xml>";
        assert_eq!(Fields::parse(xml).unwrap_err(), ProtocolError::XmlDoctype);
    }

    #[test]
    fn unknown_entity_is_refused() {
        let err = Fields::parse("<xml><C>&e;</C></xml>").unwrap_err();
        assert!(
            matches!(err, ProtocolError::Xml(ref m) if m.contains("&e;")),
            "{err}"
        );
    }

    #[test]
    fn malformed_documents_are_40002() {
        for bad in [
            "",
            "   ",
            "not xml",
            "<xml>",
            "<xml><A>1</B></xml>",
            "<xml><A>1</A></xml><xml/>",
            "<xml/><xml/>",
            "<xml><A><![CDATA[x</A></xml>",
            "<xml></xml>trailing",
            "<xml><A>&#0;</A></xml>",
            "<xml><A>&#xD800;</A></xml>",
        ] {
            let err = Fields::parse(bad).unwrap_err();
            assert_eq!(err.code().as_i32(), -40002, "{bad:?} gave {err}");
        }
    }

    #[test]
    fn size_depth_and_count_are_bounded() {
        let big = format!("<xml><A>{}</A></xml>", "x".repeat(MAX_XML_LEN));
        assert!(matches!(
            Fields::parse(&big),
            Err(ProtocolError::XmlTooLarge { .. })
        ));
        let deep = format!(
            "<xml>{}{}</xml>",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        assert!(matches!(Fields::parse(&deep), Err(ProtocolError::Xml(m)) if m.contains("deeper")));
        let ok_deep = format!(
            "<xml>{}{}</xml>",
            "<a>".repeat(MAX_DEPTH),
            "</a>".repeat(MAX_DEPTH)
        );
        assert_eq!(Fields::parse(&ok_deep).unwrap().len(), 1);
        let many = format!("<xml>{}</xml>", "<a/>".repeat(MAX_FIELDS + 1));
        assert!(matches!(Fields::parse(&many), Err(ProtocolError::Xml(m)) if m.contains("fields")));
    }

    #[test]
    fn self_closing_elements_follow_the_same_rules_as_empty_pairs() {
        let root = Fields::parse("<xml/>").unwrap();
        assert_eq!((root.root(), root.len()), ("xml", 0));
        for leaf in ["<a/>", "<a></a>"] {
            let at_limit = format!(
                "<xml>{}{leaf}{}</xml>",
                "<g>".repeat(MAX_DEPTH - 1),
                "</g>".repeat(MAX_DEPTH - 1)
            );
            assert_eq!(Fields::parse(&at_limit).unwrap().len(), 1, "{leaf}");
            let too_deep = format!(
                "<xml>{}{leaf}{}</xml>",
                "<g>".repeat(MAX_DEPTH),
                "</g>".repeat(MAX_DEPTH)
            );
            assert!(
                matches!(Fields::parse(&too_deep), Err(ProtocolError::Xml(m)) if m.contains("deeper")),
                "{leaf}"
            );
        }
    }

    #[test]
    fn take_and_take_all_remove_fields() {
        let mut f = Fields::parse("<xml><A>1</A><B>2</B><A>3</A></xml>").unwrap();
        assert_eq!(f.get("A"), Some("1"));
        assert_eq!(f.take_all("A"), vec!["1", "3"]);
        assert_eq!(f.take("B").as_deref(), Some("2"));
        assert!(f.is_empty());
        assert_eq!(f.take("B"), None);
    }
}
