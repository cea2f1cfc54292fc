//! The filter and order_by grammar of the model registry's search endpoints, after MLflow's
//! `SearchModelUtils` (registered models) and `SearchModelVersionUtils` (model versions).

use crate::search::CompareOp;
use crate::{Error, Result};

/// What a comparison is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryKey {
    /// An attribute: `name`, `run_id`, `source_path` or `version_number`.
    Attribute(String),
    /// A tag: `tags.<key>` / `tag.<key>` (backquotes allowed).
    Tag(String),
}

/// A compared value.
#[derive(Debug, Clone, PartialEq)]
pub enum RegistryValue {
    Text(String),
    Int(i64),
    List(Vec<String>),
}

/// One `key op value` term; terms are joined by AND.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryComparison {
    pub key: RegistryKey,
    pub op: CompareOp,
    pub value: RegistryValue,
}

/// One order_by clause: an attribute and its direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryOrderBy {
    pub key: String,
    pub ascending: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Quoted(String),
    Number(String),
    Op(String),
    LParen,
    RParen,
    Comma,
}

fn tokenize(s: &str) -> Result<Vec<Tok>> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' {
            let mut j = i + 1;
            let mut v = String::new();
            while j < chars.len() && chars[j] != c {
                v.push(chars[j]);
                j += 1;
            }
            if j >= chars.len() {
                return Err(invalid_filter(s));
            }
            out.push(Tok::Quoted(v));
            i = j + 1;
        } else if c == '(' {
            out.push(Tok::LParen);
            i += 1;
        } else if c == ')' {
            out.push(Tok::RParen);
            i += 1;
        } else if c == ',' {
            out.push(Tok::Comma);
            i += 1;
        } else if "=!<>".contains(c) {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if ["!=", "<=", ">="].contains(&two.as_str()) {
                out.push(Tok::Op(two));
                i += 2;
            } else if c == '!' {
                return Err(invalid_filter(s));
            } else {
                out.push(Tok::Op(c.to_string()));
                i += 1;
            }
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let mut j = i + 1;
            while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                j += 1;
            }
            out.push(Tok::Number(chars[i..j].iter().collect()));
            i = j;
        } else {
            // An identifier, possibly dotted with backquoted parts: tags.`a.b`.
            let mut j = i;
            let mut v = String::new();
            while j < chars.len() {
                let d = chars[j];
                if d == '`' {
                    let mut k = j + 1;
                    while k < chars.len() && chars[k] != '`' {
                        v.push(chars[k]);
                        k += 1;
                    }
                    if k >= chars.len() {
                        return Err(invalid_filter(s));
                    }
                    j = k + 1;
                } else if d.is_alphanumeric() || d == '_' || d == '.' || d == '-' {
                    v.push(d);
                    j += 1;
                } else {
                    break;
                }
            }
            if j == i {
                return Err(invalid_filter(s));
            }
            out.push(Tok::Ident(v));
            i = j;
        }
    }
    Ok(out)
}

fn invalid_filter(filter: &str) -> Error {
    Error::invalid(format!("Invalid filter '{filter}'. Could not be parsed."))
}

fn parse_filter(
    filter: &str,
    attributes: &[&str],
    numeric: &[&str],
    lists: &[&str],
) -> Result<Vec<RegistryComparison>> {
    let toks = tokenize(filter)?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if !out.is_empty() {
            match &toks[i] {
                Tok::Ident(a) if a.eq_ignore_ascii_case("and") => i += 1,
                _ => return Err(invalid_filter(filter)),
            }
        }
        let ident = match toks.get(i) {
            Some(Tok::Ident(s)) => s.clone(),
            _ => return Err(invalid_filter(filter)),
        };
        i += 1;
        let key = if let Some(k) = ident
            .strip_prefix("tags.")
            .or_else(|| ident.strip_prefix("tag."))
        {
            RegistryKey::Tag(k.to_string())
        } else {
            let attr = ident
                .strip_prefix("attributes.")
                .or_else(|| ident.strip_prefix("attribute."))
                .unwrap_or(&ident);
            if !attributes.contains(&attr) {
                let valid: Vec<String> = attributes.iter().map(|a| format!("'{a}'")).collect();
                return Err(Error::invalid(format!(
                    "Invalid attribute key '{attr}' specified. Valid keys are '{{{}}}'",
                    valid.join(", ")
                )));
            }
            RegistryKey::Attribute(attr.to_string())
        };
        let op = match toks.get(i) {
            Some(Tok::Op(o)) => match o.as_str() {
                "=" => CompareOp::Eq,
                "!=" => CompareOp::Ne,
                "<" => CompareOp::Lt,
                "<=" => CompareOp::Le,
                ">" => CompareOp::Gt,
                ">=" => CompareOp::Ge,
                _ => return Err(invalid_filter(filter)),
            },
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("like") => CompareOp::Like,
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("ilike") => CompareOp::ILike,
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("in") => CompareOp::In,
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("not") => match toks.get(i + 1) {
                Some(Tok::Ident(w2)) if w2.eq_ignore_ascii_case("in") => {
                    i += 1;
                    CompareOp::NotIn
                }
                _ => return Err(invalid_filter(filter)),
            },
            _ => return Err(invalid_filter(filter)),
        };
        i += 1;
        let is_numeric = matches!(&key, RegistryKey::Attribute(a) if numeric.contains(&a.as_str()));
        let value = if matches!(op, CompareOp::In | CompareOp::NotIn) {
            let listable = matches!(&key, RegistryKey::Attribute(a) if lists.contains(&a.as_str()));
            if !listable {
                return Err(Error::invalid(format!(
                    "Invalid comparator '{}' in filter '{filter}': IN is supported for {} only",
                    if op == CompareOp::In { "IN" } else { "NOT IN" },
                    lists.join(", ")
                )));
            }
            if toks.get(i) != Some(&Tok::LParen) {
                return Err(invalid_filter(filter));
            }
            i += 1;
            let mut items = Vec::new();
            loop {
                match toks.get(i) {
                    Some(Tok::Quoted(v)) => items.push(v.clone()),
                    _ => return Err(invalid_filter(filter)),
                }
                i += 1;
                match toks.get(i) {
                    Some(Tok::Comma) => i += 1,
                    Some(Tok::RParen) => {
                        i += 1;
                        break;
                    }
                    _ => return Err(invalid_filter(filter)),
                }
            }
            RegistryValue::List(items)
        } else {
            let v = match toks.get(i) {
                Some(Tok::Quoted(v)) if !is_numeric => RegistryValue::Text(v.clone()),
                Some(Tok::Number(n)) | Some(Tok::Quoted(n)) if is_numeric => {
                    RegistryValue::Int(n.parse().map_err(|_| {
                        Error::invalid(format!(
                            "Expected an integer value in filter '{filter}', got '{n}'"
                        ))
                    })?)
                }
                _ => {
                    return Err(Error::invalid(format!(
                        "Invalid filter '{filter}': expected a {} value after '{ident}'",
                        if is_numeric {
                            "numeric"
                        } else {
                            "quoted string"
                        }
                    )))
                }
            };
            i += 1;
            let allowed = if is_numeric {
                !matches!(op, CompareOp::Like | CompareOp::ILike)
            } else {
                matches!(
                    op,
                    CompareOp::Eq | CompareOp::Ne | CompareOp::Like | CompareOp::ILike
                )
            };
            if !allowed {
                return Err(Error::invalid(format!(
                    "Invalid comparator in filter '{filter}' for '{ident}'"
                )));
            }
            v
        };
        out.push(RegistryComparison { key, op, value });
    }
    Ok(out)
}

/// Parses a `search_registered_models` filter: `name` (=, !=, LIKE, ILIKE) and tags.
pub fn parse_registered_model_filter(filter: &str) -> Result<Vec<RegistryComparison>> {
    parse_filter(filter, &["name"], &[], &[])
}

/// Parses a `search_model_versions` filter: `name`, `run_id` (also IN / NOT IN),
/// `source_path`, `version_number` (numeric comparisons) and tags.
pub fn parse_model_version_filter(filter: &str) -> Result<Vec<RegistryComparison>> {
    parse_filter(
        filter,
        &["name", "version_number", "run_id", "source_path"],
        &["version_number"],
        &["name", "run_id"],
    )
}

fn parse_order_by(clauses: &[String], valid: &[&str]) -> Result<Vec<RegistryOrderBy>> {
    let mut out = Vec::new();
    for clause in clauses {
        let parts: Vec<&str> = clause.split_whitespace().collect();
        let (key, ascending) = match parts.as_slice() {
            [k] => (*k, true),
            [k, d] if d.eq_ignore_ascii_case("asc") => (*k, true),
            [k, d] if d.eq_ignore_ascii_case("desc") => (*k, false),
            _ => {
                return Err(Error::invalid(format!(
                    "Invalid order_by clause '{clause}'."
                )))
            }
        };
        let key = key.trim_matches('`');
        let key = if key == "timestamp" {
            "last_updated_timestamp"
        } else {
            key
        };
        if !valid.contains(&key) {
            return Err(Error::invalid(format!(
                "Invalid order by key '{key}' specified. Valid keys are '{{{}}}'",
                valid
                    .iter()
                    .map(|v| format!("'{v}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if out.iter().any(|o: &RegistryOrderBy| o.key == key) {
            return Err(Error::invalid(format!(
                "`order_by` contains duplicate fields: {key}"
            )));
        }
        out.push(RegistryOrderBy {
            key: key.to_string(),
            ascending,
        });
    }
    Ok(out)
}

/// Parses registered-model order_by clauses (`name`, `creation_timestamp`,
/// `last_updated_timestamp`, `timestamp`).
pub fn parse_registered_model_order_by(clauses: &[String]) -> Result<Vec<RegistryOrderBy>> {
    parse_order_by(
        clauses,
        &["name", "creation_timestamp", "last_updated_timestamp"],
    )
}

/// Parses model-version order_by clauses (`name`, `version_number`, `creation_timestamp`,
/// `last_updated_timestamp`).
pub fn parse_model_version_order_by(clauses: &[String]) -> Result<Vec<RegistryOrderBy>> {
    parse_order_by(
        clauses,
        &[
            "name",
            "version_number",
            "creation_timestamp",
            "last_updated_timestamp",
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_tags_and_lists() {
        let f = parse_model_version_filter(
            "name = 'm' AND run_id IN ('a', 'b') and tags.`x.y` != 'z' AND version_number >= 2",
        )
        .unwrap();
        assert_eq!(f.len(), 4);
        assert_eq!(
            f[1].value,
            RegistryValue::List(vec!["a".into(), "b".into()])
        );
        assert_eq!(f[2].key, RegistryKey::Tag("x.y".into()));
        assert_eq!(f[3].value, RegistryValue::Int(2));
        let f = parse_registered_model_filter("name ILIKE '%abc%'").unwrap();
        assert_eq!(f[0].op, CompareOp::ILike);
    }

    #[test]
    fn rejects_unknown_keys_and_bad_syntax() {
        assert!(parse_registered_model_filter("bogus = 1").is_err());
        assert!(parse_registered_model_filter("run_id = 'x'").is_err());
        assert!(parse_model_version_filter("name = ").is_err());
        assert!(parse_model_version_filter("name = 'a' OR name = 'b'").is_err());
        assert!(parse_registered_model_order_by(&["bogus".into()]).is_err());
        assert!(parse_model_version_order_by(&["version_number DESC".into()]).is_ok());
    }
}
