//! Closed lists of words: one macro defines the enum, its spellings and the list of
//! every value, so the list cannot drift from the enum.

/// A word that is not in a closed list; says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{word}` (known: {known})", known = .known.join(", "))]
pub struct UnknownWord {
    /// What the word names: "protocol", "scheduler", ...
    pub what: &'static str,
    pub word: String,
    /// Every valid spelling, in documentation order.
    pub known: Vec<&'static str>,
}

/// `words! { /// docs  Name, "what", { /// docs  Variant = "word", ... } }`: the enum with
/// serde names, `ALL` (documentation order), `as_str`, `Display` and `FromStr`.
macro_rules! words {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name { $($(#[$vmeta])* #[serde(rename = $word)] $variant),+ }

        impl $name {
            /// What a value names, for messages.
            pub const WHAT: &'static str = $what;
            /// Every value, in documentation order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The spelling in scenario files and JSON.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::lvs::UnknownWord;
            fn from_str(word: &str) -> Result<Self, Self::Err> {
                $name::ALL.iter().copied().find(|v| v.as_str() == word).ok_or_else(|| $crate::lvs::UnknownWord {
                    what: $what,
                    word: word.to_owned(),
                    known: $name::ALL.iter().map(|v| v.as_str()).collect(),
                })
            }
        }
    };
}

pub(crate) use words;
