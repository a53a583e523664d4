//! `Serialize` for the report types without serde's derive macro.
//!
//! The derive would be the obvious choice, but its proc macro is among the slowest
//! things a student's first `cargo xtask grade` compiles, for a dozen plain structs.
//! [`serialize_fields!`] writes the same impl a derive would: the fields in the order
//! given (keep it the declared order, as readers of `--json` see it), each under its
//! own name, and a field followed by `if PREDICATE` left out when the predicate on it
//! is false (what `#[serde(skip_serializing_if = ...)]` does).

/// `serialize_fields!(Report { lab, score, steps if Option::is_some })`.
macro_rules! serialize_fields {
    ($type:ident { $($field:ident $(if $keep:path)?),* $(,)? }) => {
        impl serde_core::Serialize for $type {
            fn serialize<S: serde_core::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde_core::ser::SerializeStruct;
                let fields = [$(stringify!($field)),*].len();
                let mut out = serializer.serialize_struct(stringify!($type), fields)?;
                $(
                    let keep = true $(&& $keep(&self.$field))?;
                    if keep {
                        out.serialize_field(stringify!($field), &self.$field)?;
                    } else {
                        out.skip_field(stringify!($field))?;
                    }
                )*
                out.end()
            }
        }
    };
}
pub(crate) use serialize_fields;

/// For `if`: a list worth writing out.
pub fn not_empty<T>(list: &[T]) -> bool {
    !list.is_empty()
}

/// `Serialize` for an enum as its name (`"not-implemented"`), from a `name()` method.
macro_rules! serialize_by_name {
    ($type:ident) => {
        impl serde_core::Serialize for $type {
            fn serialize<S: serde_core::Serializer>(
                &self,
                serializer: S,
            ) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.name())
            }
        }
    };
}
pub(crate) use serialize_by_name;

#[cfg(test)]
mod tests {
    use super::*;

    struct Sample {
        first: u32,
        maybe: Option<String>,
        list: Vec<u8>,
        last: &'static str,
    }
    serialize_fields!(Sample { first, maybe if Option::is_some, list if not_empty, last });

    #[test]
    fn fields_keep_their_order_and_skip_what_is_empty() {
        let sample = Sample {
            first: 1,
            maybe: None,
            list: vec![],
            last: "z",
        };
        assert_eq!(
            serde_json::to_string(&sample).unwrap(),
            r#"{"first":1,"last":"z"}"#
        );
        let sample = Sample {
            first: 2,
            maybe: Some("m".into()),
            list: vec![7],
            last: "a",
        };
        assert_eq!(
            serde_json::to_string(&sample).unwrap(),
            r#"{"first":2,"maybe":"m","list":[7],"last":"a"}"#
        );
    }
}
