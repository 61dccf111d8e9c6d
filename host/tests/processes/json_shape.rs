//! The `shape` blocks of `docs/cli-json.md`, read from the document itself, and a check of a
//! command's JSON output against one. The shape language is described at the top of that file.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde_json::Value;

/// The documented shapes, by name.
pub(crate) struct Shapes {
    shapes: BTreeMap<String, Value>,
    /// The shapes some check has used, directly or through a reference.
    used: Mutex<BTreeSet<String>>,
}

impl Shapes {
    /// Every ```` ```shape NAME ```` block of `docs/cli-json.md`.
    pub(crate) fn documented() -> Self {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cli-json.md");
        let text = std::fs::read_to_string(path).expect("read docs/cli-json.md");
        let mut shapes = BTreeMap::new();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let Some(name) = line.strip_prefix("```shape ") else {
                continue;
            };
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            let shape: Value = serde_json::from_str(&body.join("\n"))
                .unwrap_or_else(|e| panic!("shape {name} in docs/cli-json.md is not JSON: {e}"));
            assert!(
                shapes.insert(name.trim().to_string(), shape).is_none(),
                "shape {name} is documented twice"
            );
        }
        assert!(!shapes.is_empty(), "docs/cli-json.md documents no shapes");
        Self {
            shapes,
            used: Mutex::default(),
        }
    }

    /// Panics, naming the first mismatch, unless `value` has the shape `name`.
    pub(crate) fn assert(&self, name: &str, value: &Value) {
        if let Err(mismatch) = self.named(name, value, "$") {
            panic!("not the documented shape `{name}`: {mismatch}\n{value:#}");
        }
    }

    /// The documented shapes no check has used.
    pub(crate) fn unused(&self) -> BTreeSet<String> {
        let used = self.used.lock().expect("lock");
        self.shapes
            .keys()
            .filter(|name| !used.contains(*name))
            .cloned()
            .collect()
    }

    fn named(&self, name: &str, value: &Value, at: &str) -> Result<(), String> {
        let shape = self
            .shapes
            .get(name)
            .ok_or_else(|| format!("{at}: no shape `{name}` is documented"))?;
        self.check(shape, value, at)?;
        self.used.lock().expect("lock").insert(name.to_string());
        Ok(())
    }

    fn check(&self, shape: &Value, value: &Value, at: &str) -> Result<(), String> {
        match shape {
            Value::String(kind) => self.check_kind(kind, value, at),
            Value::Array(elements) => {
                let Value::Array(items) = value else {
                    return Err(format!("{at}: an array expected, found {value}"));
                };
                match elements.as_slice() {
                    [each] => items
                        .iter()
                        .enumerate()
                        .try_for_each(|(i, item)| self.check(each, item, &format!("{at}[{i}]"))),
                    tuple => {
                        if items.len() != tuple.len() {
                            return Err(format!("{at}: {} elements expected", tuple.len()));
                        }
                        tuple
                            .iter()
                            .zip(items)
                            .enumerate()
                            .try_for_each(|(i, (s, item))| {
                                self.check(s, item, &format!("{at}[{i}]"))
                            })
                    }
                }
            }
            Value::Object(fields) => {
                if value.is_null() && fields.contains_key("?") {
                    return Ok(());
                }
                let Value::Object(object) = value else {
                    return Err(format!("{at}: an object expected, found {value}"));
                };
                if let Some(each) = fields.get("*") {
                    return object.iter().try_for_each(|(key, item)| {
                        self.check(each, item, &format!("{at}.{key}"))
                    });
                }
                for (key, field) in fields.iter().filter(|(key, _)| *key != "?") {
                    let item = object
                        .get(key)
                        .ok_or_else(|| format!("{at}: field `{key}` is missing"))?;
                    self.check(field, item, &format!("{at}.{key}"))?;
                }
                match object.keys().find(|key| !fields.contains_key(*key)) {
                    Some(extra) => Err(format!("{at}: field `{extra}` is not documented")),
                    None => Ok(()),
                }
            }
            other => Err(format!("{at}: the shape {other} means nothing")),
        }
    }

    fn check_kind(&self, kind: &str, value: &Value, at: &str) -> Result<(), String> {
        let (kind, nullable) = match kind.strip_suffix('?') {
            Some(kind) => (kind, true),
            None => (kind, false),
        };
        if nullable && value.is_null() {
            return Ok(());
        }
        if let Some(choices) = kind.strip_prefix('=') {
            return match value.as_str() {
                Some(text) if choices.split('|').any(|c| c == text) => Ok(()),
                _ => Err(format!("{at}: one of {choices} expected, found {value}")),
            };
        }
        if kind.starts_with('@') {
            let mut problems = Vec::new();
            for name in kind.split('|') {
                let name = name
                    .strip_prefix('@')
                    .expect("every alternative is a @name");
                match self.named(name, value, at) {
                    Ok(()) => return Ok(()),
                    Err(problem) => problems.push(problem),
                }
            }
            return Err(problems.join("; or "));
        }
        let fits = match kind {
            "u64" => value.is_u64(),
            "number" => value.is_number(),
            "bool" => value.is_boolean(),
            "string" => value.is_string(),
            "hex" => value.as_str().is_some_and(|text| {
                text.len() % 2 == 0
                    && text
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            }),
            "time" => value
                .as_str()
                .is_some_and(|text| chrono::DateTime::parse_from_rfc3339(text).is_ok()),
            "any" => true,
            other => return Err(format!("{at}: the shape names an unknown type `{other}`")),
        };
        if fits {
            Ok(())
        } else {
            Err(format!("{at}: {kind} expected, found {value}"))
        }
    }
}
