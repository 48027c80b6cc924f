//! JSON as Task Master reads and writes it: objects keep their key order,
//! numbers keep the value JavaScript gives them, and printing follows
//! `JSON.stringify(value, null, indent)` byte for byte, so that a file
//! Task Master wrote comes back exactly as it was.

use std::fmt::{self, Write as _};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value whose objects keep their members in document order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(Object),
}

/// A JSON number as the parser found it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
}

impl Number {
    /// The value as an exact non-negative integer, when it is one.
    pub fn as_u64(self) -> Option<u64> {
        match self {
            Number::Unsigned(value) => Some(value),
            Number::Signed(value) => u64::try_from(value).ok(),
            Number::Float(value) => {
                // Integral floats within the range where f64 is exact.
                (value.fract() == 0.0 && (0.0..=9_007_199_254_740_991.0).contains(&value))
                    .then_some(value as u64)
            }
        }
    }
}

/// An object's members in document order. A key repeated in the source
/// keeps its first position and its last value, as `JSON.parse` does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Object(Vec<(String, Json)>);

impl Object {
    pub fn new() -> Self {
        Object(Vec::new())
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        self.0
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Json> {
        self.0
            .iter_mut()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key`, in place when it is there, else at the end.
    pub fn insert(&mut self, key: &str, value: Json) {
        match self.get_mut(key) {
            Some(slot) => *slot = value,
            None => self.0.push((key.to_owned(), value)),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Json> {
        let index = self.0.iter().position(|(name, _)| name == key)?;
        Some(self.0.remove(index).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Json)> {
        self.0.iter().map(|(name, value)| (name.as_str(), value))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(name, _)| name.as_str())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Json {
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Json::Object(object) => Some(object),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(text) => Some(text),
            _ => None,
        }
    }

    /// What kind of value this is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    pub fn string(text: impl Into<String>) -> Json {
        Json::String(text.into())
    }

    pub fn unsigned(value: u64) -> Json {
        Json::Number(Number::Unsigned(value))
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Json, E> {
        Ok(Json::Bool(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Json, E> {
        Ok(Json::Number(Number::Unsigned(value)))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Json, E> {
        Ok(Json::Number(Number::Signed(value)))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Json, E> {
        Ok(Json::Number(Number::Float(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Json, E> {
        Ok(Json::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Json, E> {
        Ok(Json::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut object = Object::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value()?;
            object.insert(&key, value);
        }
        Ok(Json::Object(object))
    }
}

/// Parses exactly one JSON document (whitespace around it allowed).
pub fn parse(text: &str) -> Result<Json, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = Json::deserialize(&mut deserializer).map_err(de::Error::custom)?;
    deserializer.end()?;
    Ok(value)
}

/// How a document was laid out, so it can be written back the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The indentation unit (Task Master writes two spaces); `None` for a
    /// document written on one line.
    pub indent: Option<String>,
    /// Whatever followed the document (usually nothing or one newline).
    pub trailing: String,
    /// A byte order mark before the document.
    pub bom: bool,
}

impl Default for Layout {
    /// How Task Master writes `tasks.json`: `JSON.stringify(data, null, 2)`.
    fn default() -> Self {
        Layout {
            indent: Some("  ".into()),
            trailing: String::new(),
            bom: false,
        }
    }
}

impl Layout {
    /// Reads the layout of `text`, a document that parsed.
    pub fn of(text: &str) -> Layout {
        let bom = text.starts_with('\u{feff}');
        let body = text.trim_start_matches('\u{feff}');
        let trailing_len = body.len() - body.trim_end().len();
        let trailing = body[body.len() - trailing_len..].to_owned();
        // The whitespace that starts the first indented line is one unit.
        let indent = body.trim_end().lines().nth(1).and_then(|line| {
            let unit: String = line
                .chars()
                .take_while(|c| *c == ' ' || *c == '\t')
                .collect();
            (!unit.is_empty()).then_some(unit)
        });
        Layout {
            indent,
            trailing,
            bom,
        }
    }
}

/// Writes `value` as `JSON.stringify(value, null, indent)` would, then the
/// layout's trailing text.
pub fn print(value: &Json, layout: &Layout) -> String {
    let mut out = String::new();
    if layout.bom {
        out.push('\u{feff}');
    }
    write_value(&mut out, value, layout.indent.as_deref(), 0);
    out.push_str(&layout.trailing);
    out
}

fn newline(out: &mut String, indent: Option<&str>, depth: usize) {
    if let Some(unit) = indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(unit);
        }
    }
}

fn write_value(out: &mut String, value: &Json, indent: Option<&str>, depth: usize) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
        Json::Number(number) => write_number(out, *number),
        Json::String(text) => write_string(out, text),
        Json::Array(items) if items.is_empty() => out.push_str("[]"),
        Json::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                write_value(out, item, indent, depth + 1);
            }
            newline(out, indent, depth);
            out.push(']');
        }
        Json::Object(object) if object.is_empty() => out.push_str("{}"),
        Json::Object(object) => {
            out.push('{');
            for (index, (key, item)) in object.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                write_string(out, key);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write_value(out, item, indent, depth + 1);
            }
            newline(out, indent, depth);
            out.push('}');
        }
    }
}

/// Numbers as JavaScript prints them (`1`, not `1.0`; `1e+21`); what JSON
/// cannot hold (never produced by the parser) as `null`, as `JSON.stringify` does.
fn write_number(out: &mut String, number: Number) {
    match number {
        Number::Unsigned(value) => {
            let _ = write!(out, "{value}");
        }
        Number::Signed(value) => {
            let _ = write!(out, "{value}");
        }
        Number::Float(value) if value.is_finite() => {
            let mut buffer = ryu_js::Buffer::new();
            out.push_str(buffer.format_finite(value));
        }
        Number::Float(_) => out.push_str("null"),
    }
}

/// Strings escaped exactly as `JSON.stringify` escapes them.
fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> String {
        print(
            &parse(text.trim_start_matches('\u{feff}')).unwrap(),
            &Layout::of(text),
        )
    }

    #[test]
    fn prints_what_json_stringify_prints() {
        let text = "{\n  \"b\": 1,\n  \"a\": [\n    1.5,\n    \"x\\n\\u0001é\\\"\"\n  ],\n  \"e\": [],\n  \"o\": {},\n  \"n\": null,\n  \"t\": true\n}";
        assert_eq!(round_trip(text), text);
    }

    #[test]
    fn keeps_indentation_and_trailing_text() {
        let text = "{\n    \"tasks\": []\n}\n";
        assert_eq!(round_trip(text), text);
        let text = "\u{feff}{\n\t\"a\": 1\n}";
        assert_eq!(round_trip(text), text);
        assert_eq!(
            round_trip("{\"a\":[1,2],\"b\":{}}"),
            "{\"a\":[1,2],\"b\":{}}"
        );
    }

    /// Integers are kept as written (JavaScript would round those past
    /// 2^53, but Task Master never writes one it has rounded differently).
    #[test]
    fn numbers_come_out_as_javascript_writes_them() {
        assert_eq!(
            round_trip("[1.0,1e21,0.1,-0,1e-7,12345678901234567890]"),
            "[1,1e+21,0.1,0,1e-7,12345678901234567890]"
        );
    }

    #[test]
    fn a_repeated_key_keeps_its_first_place_and_last_value() {
        assert_eq!(round_trip("{\"a\":1,\"b\":2,\"a\":3}"), "{\"a\":3,\"b\":2}");
    }

    #[test]
    fn one_document_only() {
        assert!(parse("{} {}").is_err());
        assert!(parse("[1]\n[2]").is_err());
        assert!(parse(" {} \n").is_ok());
    }
}
