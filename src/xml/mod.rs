//! XML in and out, without a DOM: the platforms' documents are one flat element of fields
//! with a few shallow groups, so a bounded pull parser and a string writer suffice.

// Some re-exports are reached only by the crate's tests and benches (`testing`).
#![cfg_attr(not(feature = "testing"), allow(unused_imports))]

mod chars;
mod fields;
mod shallow;
mod writer;

pub use chars::{is_forbidden, written_as};
pub use fields::{
    Field, Fields, MAX_DEPTH, MAX_FIELDS, MAX_NAME_LEN, MAX_PATH_LEN, MAX_XML_LEN, scan,
};
pub use shallow::{MAX_ENVELOPE_NODES, scan_top_level};
pub use writer::XmlWriter;
