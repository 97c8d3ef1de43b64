//! The MAC type lives in `crate::wire`; evidence re-exports it from here.

pub use crate::wire::Mac;
