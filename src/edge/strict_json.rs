//! A second, stricter reading of a JSON body that serde's derive already accepted.
//!
//! Derived `Deserialize` impls take a struct written as an array of its fields in order
//! (`"limits": []` is a `Limits` with every field defaulted, `"persona": ["x"]` a persona whose
//! first field is "x"). That is a binary-format convenience nobody means in an API body, and it
//! let a wrong-shaped value through as "valid". serde has no switch for it, so the body is read
//! once more through [`Strict`], a view of the parsed `serde_json::Value` that refuses a sequence
//! wherever the target asks for a struct, at any depth. The first, streaming reading keeps
//! doing what it does best (positions, duplicate keys, unknown fields); this one only adds
//! the shape rule, and its error carries the field path like every other field error.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde_json::{Error, Value};

/// A JSON value read as a Rust value, with structs written only as objects.
pub struct Strict<'a>(pub &'a Value);

macro_rules! delegate {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                self.0.$method(visitor)
            }
        )*
    };
}

impl<'de> Deserializer<'de> for Strict<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Items(items.iter())),
            Value::Object(map) => visitor.visit_map(Entries {
                entries: map.iter(),
                value: None,
            }),
            Value::String(s) => visitor.visit_borrowed_str(s),
            scalar => scalar.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(_) => Err(de::Error::invalid_type(Unexpected::Seq, &visitor)),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    /// Enums keep serde_json's own reading: their variants' payloads are not re-checked.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_unit_struct(name, visitor)
    }

    delegate! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_unit
        deserialize_identifier deserialize_ignored_any
    }
}

struct Items<'a>(std::slice::Iter<'a, Value>);

impl<'de> SeqAccess<'de> for Items<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .next()
            .map(|v| seed.deserialize(Strict(v)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries<'a> {
    entries: serde_json::map::Iter<'a>,
    value: Option<&'a Value>,
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        let key = de::value::BorrowedStrDeserializer::<'de, Error>::new(key.as_str());
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(v) => seed.deserialize(Strict(v)),
            None => Err(de::Error::custom(
                "a map value was asked for before its key",
            )),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(deny_unknown_fields)]
    struct Limits {
        memory_mb: Option<u64>,
        pids: Option<u32>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Body {
        name: String,
        #[serde(default)]
        limits: Option<Limits>,
        #[serde(default)]
        ports: Vec<Limits>,
        #[serde(default)]
        env: BTreeMap<String, String>,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        id: Option<Id>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Id(String);

    fn read(json: &str) -> Result<Body, String> {
        let value: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        serde_path_to_error::deserialize(Strict(&value))
            .map_err(|e| format!("{}: {}", e.path(), e.inner()))
    }

    #[test]
    fn a_struct_written_as_an_array_is_refused_at_its_path() {
        let err = read(r#"{"name":"a","limits":[]}"#).unwrap_err();
        assert!(err.starts_with("limits: invalid type: sequence"), "{err}");
        let err = read(r#"{"name":"a","ports":[{"pids":1},[2]]}"#).unwrap_err();
        assert!(err.starts_with("ports[1]: invalid type: sequence"), "{err}");
        let err = read(r#"["a"]"#).unwrap_err();
        assert!(err.contains("invalid type: sequence"), "{err}");
    }

    #[test]
    fn every_other_shape_reads_as_serde_json_would() {
        let json = r#"{"name":"a","limits":{"memory_mb":64,"pids":null},"ports":[{"pids":2}],
            "env":{"K":"v"},"tags":["x","y"],"id":"i"}"#;
        let strict = read(json).unwrap();
        let plain: Body = serde_json::from_str(json).unwrap();
        assert_eq!(strict, plain);
        assert_eq!(strict.limits.unwrap().memory_mb, Some(64));
        let err = read(r#"{"name":"a","limits":{"pids":70000000000}}"#).unwrap_err();
        assert!(err.starts_with("limits.pids: invalid value"), "{err}");
        let err = read(r#"{"name":"a","limits":{"nope":1}}"#).unwrap_err();
        assert!(err.contains("unknown field `nope`"), "{err}");
    }
}
