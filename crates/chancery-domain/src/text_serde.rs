//! Serde for values whose JSON form is their text form: times and hashes, written with their
//! `Display` and read back with their parser, so that the two forms can never disagree.

/// Implements `Serialize` as the type's `Display` text and `Deserialize` with `$parse`, which
/// takes that text and answers the value or an error to show the user.
macro_rules! serde_as_text {
    ($ty:ty, $parse:expr) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                $parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use serde_as_text;
