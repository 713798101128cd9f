//! XML in and out, without a DOM: the platforms' documents are one flat element of fields
//! with a few shallow groups, so a bounded pull parser and a string writer suffice.

mod fields;
mod writer;

pub use fields::{Field, Fields, MAX_DEPTH, MAX_FIELDS, MAX_XML_LEN, scan};
pub use writer::XmlWriter;
