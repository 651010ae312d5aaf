//! Templates: `${name}` and `${name:-default}` in strings, the profiles'
//! syntax (expansion is `driver::profile::expand_string`; this module
//! only finds the names, for static checks, and walks JSON values).

use serde_json::Value;

use driver::profile::{Vars, expand_string};

/// A placeholder found in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    pub name: String,
    pub has_default: bool,
}

/// The placeholders of a template, or why it is malformed (same rules as
/// the profiles' expansion: balanced braces in a default, names of ASCII
/// letters, digits and `_`).
pub fn template_vars(s: &str) -> Result<Vec<Placeholder>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let body = &rest[start + 2..];
        let mut depth = 0usize;
        let mut end = None;
        for (i, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    end = Some(i);
                    break;
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
        let end = end.ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
        let inner = &body[..end];
        let (name, has_default) = match inner.split_once(":-") {
            Some((n, _)) => (n, true),
            None => (inner, false),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad variable name {name:?} in {s:?}"));
        }
        out.push(Placeholder {
            name: name.to_owned(),
            has_default,
        });
        rest = &body[end + 1..];
    }
    Ok(out)
}

/// Expands every string of a JSON value (keys are left alone); a string
/// that is exactly one placeholder keeps the variable's JSON type.
pub fn expand_json(v: &Value, vars: &Vars) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => expand_string(s, vars)?,
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| expand_json(x, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => {
            let mut m = serde_json::Map::new();
            for (k, x) in o {
                m.insert(k.clone(), expand_json(x, vars)?);
            }
            Value::Object(m)
        }
        other => other.clone(),
    })
}
