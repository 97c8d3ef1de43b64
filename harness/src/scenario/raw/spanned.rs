//! `S<T>`: a value of the scenario file with its byte span. A local newtype over
//! `toml::Spanned` so that the raw shape can derive `JsonSchema` (the JSON Schema of `S<T>`
//! is `T`'s: a span is no part of what the file says). It offers `Spanned`'s methods and
//! deserializes exactly as `Spanned` does.

use std::borrow::Cow;
use std::ops::Range;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(transparent)]
pub struct S<T>(toml::Spanned<T>);

impl<T> S<T> {
    pub fn new(span: Range<usize>, value: T) -> Self {
        S(toml::Spanned::new(span, value))
    }

    /// Byte range of the value in the file.
    pub fn span(&self) -> Range<usize> {
        self.0.span()
    }

    pub fn into_inner(self) -> T {
        self.0.into_inner()
    }

    pub fn get_ref(&self) -> &T {
        self.0.get_ref()
    }

    pub fn get_mut(&mut self) -> &mut T {
        self.0.get_mut()
    }
}

impl<T> AsRef<T> for S<T> {
    fn as_ref(&self) -> &T {
        self.0.as_ref()
    }
}

impl<T> AsMut<T> for S<T> {
    fn as_mut(&mut self) -> &mut T {
        self.0.as_mut()
    }
}

impl std::borrow::Borrow<str> for S<String> {
    fn borrow(&self) -> &str {
        self.get_ref()
    }
}

impl<T: std::fmt::Display> std::fmt::Display for S<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: JsonSchema> JsonSchema for S<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}
