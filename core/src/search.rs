//! MLflow's search grammar: the `filter` and `order_by` strings of `runs/search` and
//! `experiments/search`, ported from MLflow 3.17.2 `mlflow/utils/search_utils.py`
//! (`SearchUtils`, `SearchExperimentsUtils`) together with the comparator checks that MLflow
//! performs in `mlflow/store/tracking/sqlalchemy_store.py` (`_get_sqlalchemy_filter_clauses`,
//! `_get_orderby_clauses`, `_get_search_experiments_filter_clauses`,
//! `_get_search_experiments_order_by_clauses`), so that everything MLflow rejects with
//! `INVALID_PARAMETER_VALUE` is rejected here, with MLflow's wording.
//!
//! MLflow tokenizes with `sqlparse`; this is a hand-written lexer that reproduces the
//! token classes MLflow relies on (dotted identifiers, back-ticked and double-quoted names,
//! single-quoted strings, numbers, comparison operators, parenthesised lists and the
//! keywords `AND`, `IN`, `NOT`, `IS`, `NULL`).
//!
//! # What the SQL layer receives
//!
//! A filter is a list of [`Comparison`]s that are all AND-ed. Keys are canonical:
//!
//! * **Runs, [`EntityType::Attribute`]**: `run_id`, `run_name`, `status`, `user_id`,
//!   `artifact_uri` (string attributes, value [`FilterValue::Text`], or
//!   [`FilterValue::List`] for `run_id IN/NOT IN`), and `start_time`, `end_time` (numeric,
//!   value [`FilterValue::Number`]). The aliases `created`/`Created` arrive as `start_time` and
//!   `run name`/`Run name`/`Run Name` as `run_name`. MLflow stores `run_id` in the column
//!   `run_uuid`, and filters on `run_name` through the tag `mlflow.runName` (the name column is
//!   empty for runs logged by MLflow <= 1.29), while *ordering* by `run_name` uses the runs'
//!   name column.
//! * **Runs, [`EntityType::Metric`]**: any key, value [`FilterValue::Number`]; compared against
//!   the *latest* metric value. **[`EntityType::Param`] / [`EntityType::Tag`]**: any key (may
//!   contain dots, e.g. `mlflow.runName`), value [`FilterValue::Text`] or
//!   [`FilterValue::Null`] for `IS NULL` / `IS NOT NULL`.
//! * **Runs, [`EntityType::Dataset`]**: `name`, `digest` (columns of the datasets table) and
//!   `context` (the input tag `mlflow.data.context`), value [`FilterValue::Text`] or
//!   [`FilterValue::List`].
//! * **Experiments, [`EntityType::Attribute`]**: `name` (Text), `creation_time`,
//!   `last_update_time` (Number, always integral) and `experiment_id` (Text or List, each a
//!   canonical decimal integer such as `"0"`). **[`EntityType::Tag`]**: any key.
//!
//! String values are the text between the quotes, exactly as written: MLflow does not
//! unescape `''` or `\'` inside a quoted value. LIKE / ILIKE patterns are SQL patterns (`%`,
//! `_`, no ESCAPE clause) handed to the database unchanged.

use crate::error::{Error, Result};

/// The entity a filter or order-by key refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityType {
    Metric,
    Param,
    Tag,
    Attribute,
    Dataset,
}

impl EntityType {
    /// MLflow's internal identifier (`SearchUtils._METRIC_IDENTIFIER`, ...), as it appears
    /// in MLflow's error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::Metric => "metric",
            EntityType::Param => "parameter",
            EntityType::Tag => "tag",
            EntityType::Attribute => "attribute",
            EntityType::Dataset => "dataset",
        }
    }
}

/// A comparator, already checked against the entity's valid set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

impl CompareOp {
    /// The comparator as MLflow spells it (`"="`, `"!="`, `"LIKE"`, `"NOT IN"`, `"IS NULL"`...).
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Like => "LIKE",
            CompareOp::ILike => "ILIKE",
            CompareOp::In => "IN",
            CompareOp::NotIn => "NOT IN",
            CompareOp::IsNull => "IS NULL",
            CompareOp::IsNotNull => "IS NOT NULL",
        }
    }

    fn from_comparator(comparator: &str) -> Option<Self> {
        Some(match comparator {
            "=" => CompareOp::Eq,
            "!=" => CompareOp::Ne,
            "<" => CompareOp::Lt,
            "<=" => CompareOp::Le,
            ">" => CompareOp::Gt,
            ">=" => CompareOp::Ge,
            "LIKE" => CompareOp::Like,
            "ILIKE" => CompareOp::ILike,
            "IN" => CompareOp::In,
            "NOT IN" => CompareOp::NotIn,
            "IS NULL" => CompareOp::IsNull,
            "IS NOT NULL" => CompareOp::IsNotNull,
            _ => return None,
        })
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    /// Metrics and numeric attributes (`start_time`, `end_time`, `creation_time`,
    /// `last_update_time`).
    Number(f64),
    /// A quoted string (quotes removed, content verbatim) — also LIKE / ILIKE patterns.
    Text(String),
    /// The values of `IN (...)` / `NOT IN (...)`; never empty.
    List(Vec<String>),
    /// `IS NULL` / `IS NOT NULL` (params and tags only).
    Null,
}

/// One AND-ed term of a filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub entity: EntityType,
    /// Canonical key, see the module documentation.
    pub key: String,
    pub op: CompareOp,
    pub value: FilterValue,
}

/// One element of `order_by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBy {
    /// Metric, Param, Tag or Attribute for runs; always Attribute for experiments.
    pub entity: EntityType,
    /// Canonical key; for run attributes one of `run_id`, `run_name`, `status`, `user_id`,
    /// `artifact_uri`, `start_time` (also for `created`/`Created`), `end_time`; for
    /// experiments one of `name`, `experiment_id`, `creation_time`, `last_update_time`.
    pub key: String,
    pub ascending: bool,
}

// ---------------------------------------------------------------------------------------------
// MLflow's constant sets (printed in MLflow's set notation in error messages).

const VALID_METRIC_COMPARATORS: &[&str] = &[">", ">=", "!=", "=", "<", "<="];
const VALID_PARAM_COMPARATORS: &[&str] = &["!=", "=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL"];
const VALID_TAG_COMPARATORS: &[&str] = &["!=", "=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL"];
const VALID_STRING_ATTRIBUTE_COMPARATORS: &[&str] = &["!=", "=", "LIKE", "ILIKE", "IN", "NOT IN"];
const VALID_NUMERIC_ATTRIBUTE_COMPARATORS: &[&str] = VALID_METRIC_COMPARATORS;
const VALID_DATASET_COMPARATORS: &[&str] = &["!=", "=", "LIKE", "ILIKE", "IN", "NOT IN"];

/// `SearchUtils.NUMERIC_ATTRIBUTES` (before alias translation).
const RUN_NUMERIC_ATTRIBUTES: &[&str] = &["start_time", "end_time", "created", "Created"];
/// `SearchUtils.VALID_SEARCH_ATTRIBUTE_KEYS`.
const RUN_SEARCH_ATTRIBUTE_KEYS: &[&str] = &[
    "run_id",
    "run_name",
    "status",
    "user_id",
    "artifact_uri",
    "start_time",
    "end_time",
    "created",
    "Created",
    "run name",
    "Run name",
    "Run Name",
];
/// `SearchUtils.VALID_ORDER_BY_ATTRIBUTE_KEYS`.
const RUN_ORDER_BY_ATTRIBUTE_KEYS: &[&str] = &[
    "run_id",
    "run_name",
    "status",
    "user_id",
    "artifact_uri",
    "start_time",
    "end_time",
    "created",
    "Created",
];
const RUN_LIST_SUPPORTED_KEYS: &[&str] = &["run_id"];
const DATASET_ATTRIBUTES: &[&str] = &["name", "digest", "context"];

const EXPERIMENT_ATTRIBUTE_KEYS: &[&str] =
    &["name", "experiment_id", "creation_time", "last_update_time"];
const EXPERIMENT_NUMERIC_ATTRIBUTES: &[&str] = &["creation_time", "last_update_time"];
const EXPERIMENT_LIST_SUPPORTED_KEYS: &[&str] = &["experiment_id"];

/// Renders a set the way Python prints one: `{'a', 'b'}`.
fn py_set(items: &[&str]) -> String {
    let inner: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// Python's `str(float)` for the values that can reach a message.
fn py_float(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A (possibly dotted) name: words, `back-ticked` and "double-quoted" parts.
    Ident,
    /// 'single-quoted string'.
    Str,
    Number {
        integer: bool,
    },
    /// A balanced `( ... )` group, kept as raw text.
    Paren,
    /// `=`, `!=`, `<`, `>=`, ... (any run of `<>=~!`), or LIKE / ILIKE / RLIKE / NOT LIKE ...
    Op,
    And,
    Or,
    Not,
    In,
    Is,
    Null,
    Semicolon,
    /// Anything else (stray punctuation, unbalanced quotes or parentheses, ...).
    Other,
}

#[derive(Debug, Clone)]
struct Tok {
    kind: Kind,
    start: usize,
    end: usize,
    /// Normalised comparator for `Kind::Op` (upper-case, single spaces).
    op: String,
}

fn is_word_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_at(&self, at: usize) -> Option<char> {
        self.src.get(at..).and_then(|s| s.chars().next())
    }

    /// End of a quoted run starting at `start` (which holds `quote`), following sqlparse's
    /// `'(''|\\'|[^'])*'`; `None` when unterminated.
    fn quoted_end(&self, start: usize, quote: char, backslash_escapes: bool) -> Option<usize> {
        let bytes = self.src.as_bytes();
        let q = quote as u8;
        let scan = |escapes: bool| -> Option<usize> {
            let mut i = start + 1;
            while i < bytes.len() {
                let b = bytes[i];
                if escapes && b == b'\\' && bytes.get(i + 1) == Some(&q) {
                    i += 2;
                } else if b == q {
                    if bytes.get(i + 1) == Some(&q) {
                        i += 2;
                    } else {
                        return Some(i + 1);
                    }
                } else {
                    i += 1;
                }
            }
            None
        };
        // The regex backtracks when a `\'` swallowed the closing quote.
        scan(backslash_escapes).or_else(|| if backslash_escapes { scan(false) } else { None })
    }

    fn word_end(&self, start: usize) -> usize {
        let mut end = start;
        for (i, c) in self.src[start..].char_indices() {
            if is_word_char(c) || (i > 0 && (c == '$' || c == '#')) {
                end = start + i + c.len_utf8();
            } else {
                break;
            }
        }
        end
    }

    /// One part of a dotted name at `at`; `after_dot` also allows words starting with a digit
    /// and single-quoted parts (`tags.'my tag'`).
    fn name_part_end(&self, at: usize, after_dot: bool) -> Option<usize> {
        match self.peek_at(at)? {
            '`' => self.quoted_end(at, '`', false),
            '"' => self.quoted_end(at, '"', true),
            '\'' if after_dot => self.quoted_end(at, '\'', true),
            c if is_word_start(c) || (after_dot && is_word_char(c)) => Some(self.word_end(at)),
            _ => None,
        }
    }

    /// A dotted identifier starting with the part that ends at `first_end`.
    fn ident_end(&self, first_end: usize) -> usize {
        let mut end = first_end;
        while self.peek_at(end) == Some('.') {
            match self.name_part_end(end + 1, true) {
                Some(e) => end = e,
                None => break,
            }
        }
        end
    }

    /// `-?(\d+(\.\d*)?|\.\d+)([eE]-?\d+)?` at `start`; returns (end, is_integer).
    fn number_end(&self, start: usize) -> Option<(usize, bool)> {
        let b = self.src.as_bytes();
        let digits = |mut i: usize| {
            let from = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            (i, i > from)
        };
        let mut i = start;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let (after_int, has_int) = digits(i);
        let mut integer = true;
        i = after_int;
        if b.get(i) == Some(&b'.') {
            let (after_frac, has_frac) = digits(i + 1);
            if !has_int && !has_frac {
                return None;
            }
            integer = false;
            i = after_frac;
        } else if !has_int {
            return None;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if b.get(j) == Some(&b'-') {
                j += 1;
            }
            let (after_exp, has_exp) = digits(j);
            if has_exp {
                integer = false;
                i = after_exp;
            }
        }
        Some((i, integer))
    }

    fn tokens(src: &'a str) -> Vec<Tok> {
        let mut lx = Lexer { src, pos: 0 };
        let mut out = Vec::new();
        while let Some(c) = lx.peek() {
            let start = lx.pos;
            if c.is_whitespace() {
                lx.pos += c.len_utf8();
                continue;
            }
            let simple = |kind, end| Tok {
                kind,
                start,
                end,
                op: String::new(),
            };
            let rest = &src[start..];
            if rest.starts_with("--") || rest.starts_with("# ") || rest.starts_with("/*") {
                // SQL comments: sqlparse keeps them as single tokens that MLflow then reports
                // as invalid clauses.
                let end = if let Some(body) = rest.strip_prefix("/*") {
                    body.find("*/").map_or(src.len(), |i| start + 2 + i + 2)
                } else {
                    rest.find(['\r', '\n']).map_or(src.len(), |i| start + i)
                };
                out.push(Tok {
                    kind: Kind::Other,
                    start,
                    end,
                    op: String::new(),
                });
                lx.pos = end;
                continue;
            }
            let tok = match c {
                '\'' => match lx.quoted_end(start, '\'', true) {
                    Some(end) => simple(Kind::Str, end),
                    None => simple(Kind::Other, start + 1),
                },
                '`' | '"' => match lx.name_part_end(start, false) {
                    Some(end) => simple(Kind::Ident, lx.ident_end(end)),
                    None => simple(Kind::Other, start + 1),
                },
                '(' | ')' => simple(Kind::Other, start + 1),
                ';' => simple(Kind::Semicolon, start + 1),
                '<' | '>' | '=' | '~' | '!' => {
                    let len = src[start..]
                        .bytes()
                        .take_while(|b| b"<>=~!".contains(b))
                        .count();
                    let op = src[start..start + len].to_string();
                    Tok {
                        kind: Kind::Op,
                        start,
                        end: start + len,
                        op,
                    }
                }
                c if c.is_ascii_digit() || c == '-' || c == '.' => match lx.number_end(start) {
                    Some((end, integer)) => {
                        if lx.peek_at(end).is_some_and(is_word_char) {
                            // `12abc`, `1and`, `1e`: sqlparse lexes these as names.
                            let mut e = end;
                            while let Some(ch) = lx.peek_at(e) {
                                if is_word_char(ch) || ch == '.' || ch == '$' || ch == '#' {
                                    e += ch.len_utf8();
                                } else {
                                    break;
                                }
                            }
                            simple(Kind::Ident, e)
                        } else {
                            simple(Kind::Number { integer }, end)
                        }
                    }
                    None => simple(Kind::Other, start + 1),
                },
                c if is_word_start(c) => {
                    let word_end = lx.word_end(start);
                    let dotted = lx.ident_end(word_end);
                    if dotted > word_end {
                        simple(Kind::Ident, dotted)
                    } else {
                        let word = src[start..word_end].to_ascii_uppercase();
                        match word.as_str() {
                            "AND" => simple(Kind::And, word_end),
                            "OR" => simple(Kind::Or, word_end),
                            "NOT" => simple(Kind::Not, word_end),
                            "IN" => simple(Kind::In, word_end),
                            "IS" => simple(Kind::Is, word_end),
                            "NULL" => simple(Kind::Null, word_end),
                            "LIKE" | "ILIKE" | "RLIKE" => Tok {
                                kind: Kind::Op,
                                start,
                                end: word_end,
                                op: word,
                            },
                            _ => simple(Kind::Ident, word_end),
                        }
                    }
                }
                c => simple(Kind::Other, start + c.len_utf8()),
            };
            lx.pos = tok.end;
            out.push(tok);
        }
        group_parens(src, out)
    }
}

/// Collapses balanced parentheses into single `Kind::Paren` tokens (outermost groups only);
/// unbalanced ones stay `Kind::Other`. Linear, no recursion.
fn group_parens(src: &str, toks: Vec<Tok>) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::with_capacity(toks.len());
    // Indices into `out` of the currently open `(` tokens.
    let mut open: Vec<usize> = Vec::new();
    for tok in toks {
        let text = &src[tok.start..tok.end];
        if tok.kind == Kind::Other && text == "(" {
            open.push(out.len());
            out.push(tok);
        } else if tok.kind == Kind::Other && text == ")" {
            match open.pop() {
                Some(at) => {
                    let start = out[at].start;
                    // Everything inside the group is subsumed by it.
                    out.truncate(at);
                    out.push(Tok {
                        kind: Kind::Paren,
                        start,
                        end: tok.end,
                        op: String::new(),
                    });
                }
                None => out.push(tok),
            }
        } else {
            out.push(tok);
        }
    }
    // Unclosed `(` stay as `Other`; groups inside them remain as they are.
    out
}

// ---------------------------------------------------------------------------------------------
// Grouping into comparisons (MLflow: sqlparse's `Comparison` plus `_join_in_comparison_tokens`).

struct RawComparison<'t> {
    left: &'t Tok,
    /// `=`, `LIKE`, `IN`, `NOT IN`, `IS NULL`, ... (upper-case).
    comparator: String,
    right: Option<&'t Tok>,
}

fn is_value(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Ident | Kind::Str | Kind::Number { .. } | Kind::Paren | Kind::Null
    )
}

/// Which flavour of MLflow's "Invalid clause(s)" message to produce.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Runs,
    Experiments,
}

fn group_statement<'t>(
    src: &str,
    toks: &'t [Tok],
    flavor: Flavor,
) -> Result<Vec<RawComparison<'t>>> {
    if let Some(semi) = toks.iter().position(|t| t.kind == Kind::Semicolon) {
        if semi + 1 < toks.len() {
            return Err(Error::invalid(format!(
                "Search filter contained multiple expression {}. Provide AND-ed expression list.",
                crate::py_repr(src)
            )));
        }
    }
    let kind_at = |i: usize| toks.get(i).map(|t| t.kind);
    let mut comparisons = Vec::new();
    let mut invalid: Vec<&Tok> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        if t.kind == Kind::And {
            i += 1;
            continue;
        }
        let left_ok = matches!(t.kind, Kind::Ident | Kind::Str | Kind::Number { .. });
        if left_ok {
            // `x <op> value`, with `NOT LIKE` etc. merged into one comparator.
            let (op, op_len) = match (kind_at(i + 1), kind_at(i + 2)) {
                (Some(Kind::Op), _) => (Some(toks[i + 1].op.clone()), 1),
                (Some(Kind::Not), Some(Kind::Op))
                    if toks[i + 2].op.chars().all(|c| c.is_ascii_alphabetic()) =>
                {
                    (Some(format!("NOT {}", toks[i + 2].op)), 2)
                }
                _ => (None, 0),
            };
            if let Some(op) = op {
                if let Some(right) = toks.get(i + 1 + op_len).filter(|r| is_value(r.kind)) {
                    comparisons.push(RawComparison {
                        left: t,
                        comparator: op,
                        right: Some(right),
                    });
                    i += 2 + op_len;
                    continue;
                }
            }
        }
        if t.kind == Kind::Ident {
            let pattern: Option<(&str, usize, bool)> =
                match (kind_at(i + 1), kind_at(i + 2), kind_at(i + 3)) {
                    (Some(Kind::In), Some(Kind::Paren), _) => Some(("IN", 3, true)),
                    (Some(Kind::Not), Some(Kind::In), Some(Kind::Paren)) => {
                        Some(("NOT IN", 4, true))
                    }
                    (Some(Kind::Is), Some(Kind::Null), _) => Some(("IS NULL", 3, false)),
                    (Some(Kind::Is), Some(Kind::Not), Some(Kind::Null)) => {
                        Some(("IS NOT NULL", 4, false))
                    }
                    _ => None,
                };
            if let Some((comparator, len, has_value)) = pattern {
                let right = if has_value {
                    Some(&toks[i + len - 1])
                } else {
                    None
                };
                comparisons.push(RawComparison {
                    left: t,
                    comparator: comparator.into(),
                    right,
                });
                i += len;
                continue;
            }
        }
        invalid.push(t);
        i += 1;
    }
    if !invalid.is_empty() {
        let texts = invalid.iter().map(|t| &src[t.start..t.end]);
        let listed: Vec<String> = match flavor {
            Flavor::Runs => texts.map(|s| format!("'{s}'")).collect(),
            Flavor::Experiments => texts.map(str::to_string).collect(),
        };
        return Err(Error::invalid(format!(
            "Invalid clause(s) in filter string: {}",
            listed.join(", ")
        )));
    }
    Ok(comparisons)
}

// ---------------------------------------------------------------------------------------------
// MLflow's string helpers.

fn is_quoted(value: &str, quote: char) -> bool {
    value.chars().count() >= 2 && value.starts_with(quote) && value.ends_with(quote)
}

fn trim_ends(value: &str) -> &str {
    let mut chars = value.chars();
    chars.next();
    chars.next_back();
    chars.as_str()
}

/// `SearchUtils._trim_backticks`.
fn trim_backticks(value: &str) -> &str {
    if is_quoted(value, '`') {
        trim_ends(value)
    } else {
        value
    }
}

/// `SearchUtils._strip_quotes`.
fn strip_quotes(value: &str, expect_quoted_value: bool) -> Result<&str> {
    if is_quoted(value, '\'') || is_quoted(value, '"') {
        Ok(trim_ends(value))
    } else if expect_quoted_value {
        Err(Error::invalid(format!(
            "Parameter value is either not quoted or unidentified quote types used for string \
             value {value}. Use either single or double quotes."
        )))
    } else {
        Ok(value)
    }
}

/// `SearchUtils._valid_entity_type`.
fn valid_entity_type(entity_type: &str) -> Result<EntityType> {
    let entity_type = trim_backticks(entity_type);
    Ok(match entity_type {
        "metric" | "metrics" => EntityType::Metric,
        "parameter" | "parameters" | "param" | "params" => EntityType::Param,
        "tag" | "tags" => EntityType::Tag,
        "attribute" | "attributes" | "attr" | "run" => EntityType::Attribute,
        "dataset" | "datasets" => EntityType::Dataset,
        _ => {
            return Err(Error::invalid(format!(
                "Invalid entity type '{entity_type}'. Valid values are ['metric', 'parameter', \
                 'tag', 'attribute', 'dataset']"
            )))
        }
    })
}

/// `SearchUtils.translate_key_alias`.
fn translate_key_alias(key: &str) -> &str {
    match key {
        "created" | "Created" => "start_time",
        "run name" | "Run name" | "Run Name" => "run_name",
        other => other,
    }
}

/// `SearchUtils._get_identifier` (runs).
fn run_identifier(identifier: &str, valid_attributes: &[&str]) -> Result<(EntityType, String)> {
    let (entity, key) = match identifier.split_once('.') {
        None => (EntityType::Attribute, identifier),
        Some((entity_type, key)) => (valid_entity_type(entity_type)?, key),
    };
    let key = trim_backticks(strip_quotes(key, false)?);
    if entity == EntityType::Attribute && !valid_attributes.contains(&key) {
        return Err(Error::invalid(format!(
            "Invalid attribute key '{key}' specified. Valid keys are '{}'",
            py_set(valid_attributes)
        )));
    }
    if entity == EntityType::Dataset && !DATASET_ATTRIBUTES.contains(&key) {
        return Err(Error::invalid(format!(
            "Invalid dataset key '{key}' specified. Valid keys are '{}'",
            py_set(DATASET_ATTRIBUTES)
        )));
    }
    Ok((entity, key.to_string()))
}

/// `SearchExperimentsUtils._get_identifier`.
fn experiment_identifier(
    identifier: &str,
    valid_attributes: &[&str],
) -> Result<(EntityType, String)> {
    let (entity, key) = match identifier.split_once('.') {
        None => (EntityType::Attribute, identifier),
        Some((entity_type, key)) => {
            if !matches!(entity_type, "attribute" | "tag" | "tags") {
                return Err(Error::invalid(format!(
                    "Invalid entity type '{entity_type}'. Valid entity types are ('attribute', \
                     'tag', 'tags')"
                )));
            }
            (valid_entity_type(entity_type)?, key)
        }
    };
    let key = trim_backticks(strip_quotes(key, false)?);
    if entity == EntityType::Attribute && !valid_attributes.contains(&key) {
        return Err(Error::invalid(format!(
            "Invalid attribute key '{key}' specified. Valid keys are '{}'",
            py_set(valid_attributes)
        )));
    }
    Ok((entity, key.to_string()))
}

/// Parses a parenthesised list the way MLflow does (`ast.literal_eval` of the group, which
/// must be a non-empty tuple of strings).
fn parse_string_list(text: &str) -> Result<Vec<String>> {
    let ill_formed = || {
        Error::invalid(
            "While parsing a list in the query, expected a non-empty list of string values, but \
             got ill-formed list.",
        )
    };
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let skip_ws = |mut i: usize| {
        while i < n && chars[i].is_whitespace() {
            i += 1;
        }
        i
    };
    if n < 2 || chars[0] != '(' || chars[n - 1] != ')' {
        return Err(ill_formed());
    }
    let end = n - 1;
    let mut values: Vec<String> = Vec::new();
    let mut non_string = false;
    let mut i = skip_ws(1);
    while i < end {
        // One element: adjacent string literals concatenate, or a number-like literal.
        match chars[i] {
            '\'' | '"' => {
                let mut value = String::new();
                while i < end && (chars[i] == '\'' || chars[i] == '"') {
                    let quote = chars[i];
                    i += 1;
                    loop {
                        if i >= end {
                            return Err(ill_formed());
                        }
                        let c = chars[i];
                        if c == quote {
                            i += 1;
                            break;
                        }
                        if c == '\n' {
                            return Err(ill_formed());
                        }
                        if c == '\\' && i + 1 < end {
                            let next = chars[i + 1];
                            match next {
                                '\\' | '\'' | '"' => value.push(next),
                                'n' => value.push('\n'),
                                't' => value.push('\t'),
                                'r' => value.push('\r'),
                                '0' => value.push('\0'),
                                '\n' => {}
                                other => {
                                    value.push('\\');
                                    value.push(other);
                                }
                            }
                            i += 2;
                            continue;
                        }
                        value.push(c);
                        i += 1;
                    }
                    i = skip_ws(i);
                }
                values.push(value);
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                let start = i;
                while i < end && (chars[i].is_ascii_alphanumeric() || "+-._".contains(chars[i])) {
                    i += 1;
                }
                let literal: String = chars[start..i].iter().collect();
                if literal.parse::<f64>().is_err() {
                    return Err(ill_formed());
                }
                non_string = true;
                i = skip_ws(i);
            }
            _ => {
                let start = i;
                while i < end && is_word_char(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if !matches!(word.as_str(), "None" | "True" | "False") {
                    return Err(ill_formed());
                }
                non_string = true;
                i = skip_ws(i);
            }
        }
        if i < end {
            if chars[i] != ',' {
                return Err(ill_formed());
            }
            i = skip_ws(i + 1);
        }
    }
    if values.is_empty() && !non_string {
        return Err(Error::invalid(
            "While parsing a list in the query, expected a non-empty list of string values, but \
             got empty list",
        ));
    }
    if non_string {
        return Err(Error::invalid(format!(
            "While parsing a list in the query, expected string value, punctuation, or \
             whitespace, but got different type in list: {text}"
        )));
    }
    Ok(values)
}

/// Which grammar a value is read for: `SearchUtils` (runs) or `SearchExperimentsUtils`.
#[derive(Clone, Copy)]
struct Grammar {
    numeric_attributes: &'static [&'static str],
    list_supported_keys: &'static [&'static str],
}

const RUNS: Grammar = Grammar {
    numeric_attributes: RUN_NUMERIC_ATTRIBUTES,
    list_supported_keys: RUN_LIST_SUPPORTED_KEYS,
};
const EXPERIMENTS: Grammar = Grammar {
    numeric_attributes: EXPERIMENT_NUMERIC_ATTRIBUTES,
    list_supported_keys: EXPERIMENT_LIST_SUPPORTED_KEYS,
};

fn parse_number(text: &str) -> Result<f64> {
    text.parse::<f64>()
        .map_err(|_| Error::invalid(format!("Expected numeric value type. Found {text}")))
}

/// `SearchUtils._get_value`: the right-hand side, checked against the entity type.
fn get_value(
    src: &str,
    grammar: Grammar,
    entity: EntityType,
    key: &str,
    token: &Tok,
) -> Result<FilterValue> {
    let text = &src[token.start..token.end];
    let is_string_like = matches!(token.kind, Kind::Str | Kind::Ident);
    match entity {
        EntityType::Metric => match token.kind {
            Kind::Number { .. } => Ok(FilterValue::Number(parse_number(text)?)),
            _ => Err(Error::invalid(format!(
                "Expected numeric value type for metric. Found {text}"
            ))),
        },
        EntityType::Param | EntityType::Tag => {
            if is_string_like {
                Ok(FilterValue::Text(strip_quotes(text, true)?.to_string()))
            } else {
                Err(Error::invalid(format!(
                    "Expected a quoted string value for {} (e.g. 'my-value'). Got value {text}",
                    entity.as_str()
                )))
            }
        }
        EntityType::Attribute => {
            if grammar.numeric_attributes.contains(&key) {
                match token.kind {
                    Kind::Number { .. } => Ok(FilterValue::Number(parse_number(text)?)),
                    _ => Err(Error::invalid(format!(
                        "Expected numeric value type for numeric attribute: {key}. Found {text}"
                    ))),
                }
            } else if is_string_like {
                Ok(FilterValue::Text(strip_quotes(text, true)?.to_string()))
            } else if token.kind == Kind::Paren {
                if !grammar.list_supported_keys.contains(&key) {
                    let keys: Vec<String> = grammar
                        .list_supported_keys
                        .iter()
                        .map(|k| format!("'{k}'"))
                        .collect();
                    return Err(Error::invalid(format!(
                        "Only [{}] attributes support comparison with a list of quoted string \
                         values.",
                        keys.join(", ")
                    )));
                }
                Ok(FilterValue::List(parse_string_list(text)?))
            } else {
                Err(Error::invalid(format!(
                    "Expected a quoted string value for attributes. Got value {text}"
                )))
            }
        }
        EntityType::Dataset => {
            if is_string_like {
                Ok(FilterValue::Text(strip_quotes(text, true)?.to_string()))
            } else if token.kind == Kind::Paren {
                Ok(FilterValue::List(parse_string_list(text)?))
            } else {
                Err(Error::invalid(format!(
                    "Expected a quoted string value for dataset attributes. Got value {text}"
                )))
            }
        }
    }
}

/// `SearchUtils._validate_comparison`: the left side must be an identifier.
fn check_left_is_identifier(src: &str, raw: &RawComparison<'_>) -> Result<()> {
    if raw.left.kind != Kind::Ident {
        return Err(Error::invalid(format!(
            "Invalid comparison clause. Expected 'Identifier' found '{}'",
            &src[raw.left.start..raw.left.end]
        )));
    }
    Ok(())
}

fn check_comparator(comparator: &str, valid: &[&str]) -> Result<()> {
    if valid.contains(&comparator) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "Invalid comparator '{comparator}' not one of '{}'",
            py_set(valid)
        )))
    }
}

/// MLflow leaves a list with `=`/`!=` to the database, which then fails; reject it here.
fn check_list_comparator(comparator: &str, value: &FilterValue) -> Result<()> {
    let is_list_op = matches!(comparator, "IN" | "NOT IN");
    if matches!(value, FilterValue::List(_)) != is_list_op {
        return Err(Error::invalid(format!(
            "Invalid comparator '{comparator}' for a list of values. Use IN or NOT IN with a \
             parenthesised list of quoted string values."
        )));
    }
    Ok(())
}

fn to_op(comparator: &str) -> CompareOp {
    CompareOp::from_comparator(comparator).expect("comparator validated against a valid set")
}

fn is_blank(filter: &str) -> bool {
    filter.trim().is_empty()
}

// ---------------------------------------------------------------------------------------------
// Public entry points.

/// Parses a `runs/search` filter into AND-ed comparisons. An empty or whitespace-only string
/// gives an empty list.
///
/// As in MLflow, `AND` only separates comparisons: it is matched case-insensitively, and
/// repeated, leading, trailing or missing `AND`s are tolerated (`a > 1 b > 2` is `a > 1 AND
/// b > 2`). `OR`, `NOT`, parentheses and anything that is not a comparison are rejected.
pub fn parse_run_filter(filter: &str) -> Result<Vec<Comparison>> {
    if is_blank(filter) {
        return Ok(Vec::new());
    }
    let toks = Lexer::tokens(filter);
    let raws = group_statement(filter, &toks, Flavor::Runs)?;

    // Phase 1 (`SearchUtils.parse_search_filter`): identifiers and values.
    let mut parsed: Vec<(EntityType, String, String, FilterValue)> = Vec::with_capacity(raws.len());
    for raw in &raws {
        check_left_is_identifier(filter, raw)?;
        let ident = &filter[raw.left.start..raw.left.end];
        let (entity, key) = run_identifier(ident, RUN_SEARCH_ATTRIBUTE_KEYS)?;
        let value = match raw.right {
            None => {
                if !matches!(entity, EntityType::Tag | EntityType::Param) {
                    return Err(Error::invalid(format!(
                        "IS NULL / IS NOT NULL is only supported for tags and params, not for \
                         '{}' '{key}'",
                        entity.as_str()
                    )));
                }
                FilterValue::Null
            }
            Some(right) => get_value(filter, RUNS, entity, &key, right)?,
        };
        parsed.push((entity, key, raw.comparator.clone(), value));
    }

    // Phase 2 (`_get_sqlalchemy_filter_clauses`): comparators per entity, aliases.
    let mut out = Vec::with_capacity(parsed.len());
    for (entity, key, comparator, value) in parsed {
        let key = translate_key_alias(&key).to_string();
        match entity {
            EntityType::Attribute if RUN_NUMERIC_ATTRIBUTES.contains(&key.as_str()) => {
                check_comparator(&comparator, VALID_NUMERIC_ATTRIBUTE_COMPARATORS)?
            }
            EntityType::Attribute => {
                check_comparator(&comparator, VALID_STRING_ATTRIBUTE_COMPARATORS)?;
                check_list_comparator(&comparator, &value)?;
            }
            EntityType::Metric => check_comparator(&comparator, VALID_METRIC_COMPARATORS)?,
            EntityType::Param => check_comparator(&comparator, VALID_PARAM_COMPARATORS)?,
            EntityType::Tag => check_comparator(&comparator, VALID_TAG_COMPARATORS)?,
            EntityType::Dataset => {
                check_comparator(&comparator, VALID_DATASET_COMPARATORS)?;
                check_list_comparator(&comparator, &value)?;
            }
        }
        out.push(Comparison {
            entity,
            key,
            op: to_op(&comparator),
            value,
        });
    }
    Ok(out)
}

/// Parses an `experiments/search` filter: attributes `name`, `experiment_id`,
/// `creation_time`, `last_update_time` (bare or as `attribute.<key>`) and `tags.<key>` /
/// `tag.<key>`. An empty or whitespace-only string gives an empty list.
///
/// `experiment_id` values are validated as integers and returned in canonical decimal form;
/// `creation_time` / `last_update_time` take integer literals only.
pub fn parse_experiment_filter(filter: &str) -> Result<Vec<Comparison>> {
    if is_blank(filter) {
        return Ok(Vec::new());
    }
    let toks = Lexer::tokens(filter);
    let raws = group_statement(filter, &toks, Flavor::Experiments)?;

    // Phase 1 (`SearchExperimentsUtils.parse_search_filter`).
    let mut parsed: Vec<(EntityType, String, String, FilterValue, bool)> =
        Vec::with_capacity(raws.len());
    for raw in &raws {
        check_left_is_identifier(filter, raw)?;
        let ident = &filter[raw.left.start..raw.left.end];
        let (entity, key) = experiment_identifier(ident, EXPERIMENT_ATTRIBUTE_KEYS)?;
        let (value, integer) = match raw.right {
            None => {
                if entity != EntityType::Tag {
                    return Err(Error::invalid(format!(
                        "IS NULL / IS NOT NULL is only supported for tags, not for attribute \
                         '{key}'"
                    )));
                }
                (FilterValue::Null, false)
            }
            Some(right) => (
                get_value(filter, EXPERIMENTS, entity, &key, right)?,
                matches!(right.kind, Kind::Number { integer: true }),
            ),
        };
        parsed.push((entity, key, raw.comparator.clone(), value, integer));
    }

    // Phase 2 (`_get_search_experiments_filter_clauses`).
    let mut out = Vec::with_capacity(parsed.len());
    for (entity, key, comparator, value, integer) in parsed {
        let value = match entity {
            EntityType::Attribute if key == "experiment_id" => {
                if !matches!(comparator.as_str(), "=" | "!=" | "IN" | "NOT IN") {
                    return Err(Error::invalid(format!(
                        "Invalid comparator for experiment_id: {comparator}"
                    )));
                }
                check_list_comparator(&comparator, &value)?;
                match value {
                    FilterValue::Text(id) => FilterValue::Text(parse_experiment_id(&id)?),
                    FilterValue::List(ids) => FilterValue::List(
                        ids.iter()
                            .map(|id| parse_experiment_id(id))
                            .collect::<Result<_>>()?,
                    ),
                    other => other,
                }
            }
            EntityType::Attribute if EXPERIMENT_NUMERIC_ATTRIBUTES.contains(&key.as_str()) => {
                check_comparator(&comparator, VALID_NUMERIC_ATTRIBUTE_COMPARATORS)?;
                if let FilterValue::Number(v) = value {
                    if !integer {
                        return Err(Error::invalid(format!(
                            "Invalid value for numeric attribute '{key}': '{}'",
                            py_float(v)
                        )));
                    }
                }
                value
            }
            EntityType::Attribute => {
                check_comparator(&comparator, VALID_STRING_ATTRIBUTE_COMPARATORS)?;
                if !matches!(comparator.as_str(), "=" | "!=" | "LIKE" | "ILIKE") {
                    return Err(Error::invalid(format!(
                        "Invalid comparator for string attribute: {comparator}"
                    )));
                }
                value
            }
            EntityType::Tag => {
                if !matches!(
                    comparator.as_str(),
                    "=" | "!=" | "LIKE" | "ILIKE" | "IS NULL" | "IS NOT NULL"
                ) {
                    return Err(Error::invalid(format!(
                        "Invalid comparator for tag: {comparator}"
                    )));
                }
                value
            }
            other => {
                return Err(Error::invalid(format!(
                    "Invalid token type: {}",
                    other.as_str()
                )))
            }
        };
        out.push(Comparison {
            entity,
            key,
            op: to_op(&comparator),
            value,
        });
    }
    Ok(out)
}

/// `mlflow.utils.validation._parse_experiment_id`, returning the canonical decimal form.
fn parse_experiment_id(id: &str) -> Result<String> {
    id.trim()
        .parse::<i64>()
        .map(|v| v.to_string())
        .map_err(|_| {
            Error::invalid(format!(
                "Invalid experiment ID '{id}'. Experiment ID must be a valid integer."
            ))
        })
}

/// Minimal POSIX `shlex.split` (quotes removed, backslash escapes), as MLflow applies it to
/// an order-by clause after turning back-ticks into double quotes.
fn shlex_split(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_token = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_token {
                    out.push(std::mem::take(&mut cur));
                    in_token = false;
                }
            }
            '\'' => {
                in_token = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        ch => cur.push(ch),
                    }
                }
            }
            '"' => {
                in_token = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            ch @ ('"' | '\\') => cur.push(ch),
                            ch => {
                                cur.push('\\');
                                cur.push(ch);
                            }
                        },
                        ch => cur.push(ch),
                    }
                }
            }
            '\\' => {
                in_token = true;
                cur.push(chars.next()?);
            }
            c => {
                in_token = true;
                cur.push(c);
            }
        }
    }
    if in_token {
        out.push(cur);
    }
    Some(out)
}

/// `SearchUtils._parse_order_by_string`: the identifier text and the direction.
fn parse_order_by_string(order_by: &str) -> Result<(String, bool)> {
    let could_not = || {
        Error::invalid(format!(
            "Invalid order_by clause '{order_by}'. Could not be parsed."
        ))
    };
    // sqlparse must see exactly one Identifier token (which may carry ASC/DESC or an alias):
    // no surrounding whitespace, nothing else.
    if order_by.is_empty() || order_by.trim() != order_by {
        return Err(could_not());
    }
    let toks = Lexer::tokens(order_by);
    let shape_ok = match toks.as_slice() {
        [ident] => ident.kind == Kind::Ident,
        [ident, alias] => {
            ident.kind == Kind::Ident
                && alias.kind == Kind::Ident
                && !order_by[alias.start..alias.end].contains('.')
        }
        _ => false,
    };
    if !shape_ok {
        return Err(could_not());
    }
    let tokens = shlex_split(&order_by.replace('`', "\"")).ok_or_else(could_not)?;
    let mut token_value = order_by.to_string();
    let mut ascending = true;
    match tokens.len() {
        1 => {}
        2 => {
            let order_token = tokens[1].to_lowercase();
            if order_token != "asc" && order_token != "desc" {
                return Err(Error::invalid(format!(
                    "Invalid ordering key in order_by clause '{order_by}'."
                )));
            }
            ascending = order_token == "asc";
            token_value = tokens[0].clone();
        }
        _ => return Err(could_not()),
    }
    Ok((token_value.trim().to_string(), ascending))
}

/// Parses one `runs/search` `order_by` element, e.g. `metrics.acc DESC`,
/// `attributes.start_time`, `` `params`.`my key` ASC ``, `` tags.`a b` ``. `ASC`/`DESC` are
/// case-insensitive; the default is ascending.
///
/// Valid attribute keys: `run_id`, `run_name`, `status`, `user_id`, `artifact_uri`,
/// `start_time`, `end_time`, `created`, `Created` (the last two arrive as `start_time`).
/// Dataset keys cannot be ordered by.
pub fn parse_run_order_by(clause: &str) -> Result<OrderBy> {
    let (token_value, ascending) = parse_order_by_string(clause)?;
    let (entity, key) = run_identifier(&token_value, RUN_ORDER_BY_ATTRIBUTE_KEYS)?;
    if entity == EntityType::Dataset {
        return Err(Error::invalid(format!(
            "Invalid identifier type '{}'",
            entity.as_str()
        )));
    }
    let key = translate_key_alias(&key).to_string();
    Ok(OrderBy {
        entity,
        key,
        ascending,
    })
}

/// Parses a whole `runs/search` `order_by` list, rejecting a key that appears twice as
/// MLflow's `_get_orderby_clauses` does.
pub fn parse_run_order_by_list<S: AsRef<str>>(clauses: &[S]) -> Result<Vec<OrderBy>> {
    let mut out: Vec<OrderBy> = Vec::with_capacity(clauses.len());
    for clause in clauses {
        let order_by = parse_run_order_by(clause.as_ref())?;
        if out
            .iter()
            .any(|o| o.entity == order_by.entity && o.key == order_by.key)
        {
            let listed: Vec<String> = clauses.iter().map(|c| crate::py_repr(c.as_ref())).collect();
            return Err(Error::invalid(format!(
                "`order_by` contains duplicate fields: [{}]",
                listed.join(", ")
            )));
        }
        out.push(order_by);
    }
    Ok(out)
}

/// Parses one `experiments/search` `order_by` element: `name`, `experiment_id`,
/// `creation_time` or `last_update_time`, bare or as `attribute.<key>`, optionally followed
/// by `ASC`/`DESC` (case-insensitive, default ascending).
///
/// MLflow orders by `creation_time DESC, experiment_id ASC` when no order is given, and
/// appends `experiment_id DESC` as a tie-breaker when `experiment_id` is not among the keys.
pub fn parse_experiment_order_by(clause: &str) -> Result<OrderBy> {
    let (token_value, ascending) = parse_order_by_string(clause)?;
    let (entity, key) = experiment_identifier(&token_value, EXPERIMENT_ATTRIBUTE_KEYS)?;
    if entity != EntityType::Attribute {
        return Err(Error::invalid(format!(
            "Invalid order_by entity: {}",
            entity.as_str()
        )));
    }
    Ok(OrderBy {
        entity,
        key,
        ascending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn cmp(entity: EntityType, key: &str, op: CompareOp, value: FilterValue) -> Comparison {
        Comparison {
            entity,
            key: key.to_string(),
            op,
            value,
        }
    }

    fn text(s: &str) -> FilterValue {
        FilterValue::Text(s.to_string())
    }

    fn list(items: &[&str]) -> FilterValue {
        FilterValue::List(items.iter().map(|s| s.to_string()).collect())
    }

    fn one(filter: &str) -> Comparison {
        let mut parsed = parse_run_filter(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        assert_eq!(parsed.len(), 1, "{filter}");
        parsed.remove(0)
    }

    fn run_err(filter: &str) -> String {
        match parse_run_filter(filter) {
            Ok(v) => panic!("{filter:?} parsed as {v:?}"),
            Err(e) => {
                assert_eq!(e.code, ErrorCode::InvalidParameterValue);
                e.message
            }
        }
    }

    fn exp_err(filter: &str) -> String {
        match parse_experiment_filter(filter) {
            Ok(v) => panic!("{filter:?} parsed as {v:?}"),
            Err(e) => {
                assert_eq!(e.code, ErrorCode::InvalidParameterValue);
                e.message
            }
        }
    }

    fn order(clause: &str) -> OrderBy {
        parse_run_order_by(clause).unwrap_or_else(|e| panic!("{clause}: {e}"))
    }

    fn order_err(clause: &str) -> String {
        match parse_run_order_by(clause) {
            Ok(v) => panic!("{clause:?} parsed as {v:?}"),
            Err(e) => e.message,
        }
    }

    fn ob(entity: EntityType, key: &str, ascending: bool) -> OrderBy {
        OrderBy {
            entity,
            key: key.to_string(),
            ascending,
        }
    }

    // ---- runs filter: valid forms ----

    #[test]
    fn empty_and_whitespace_filters_parse_to_nothing() {
        assert_eq!(parse_run_filter("").unwrap(), vec![]);
        assert_eq!(parse_run_filter("  \t ").unwrap(), vec![]);
        assert_eq!(parse_experiment_filter("").unwrap(), vec![]);
        assert_eq!(parse_experiment_filter("   ").unwrap(), vec![]);
    }

    #[test]
    fn parses_metric_comparisons_with_every_numeric_comparator() {
        for (op_text, op) in [
            (">", CompareOp::Gt),
            (">=", CompareOp::Ge),
            ("<", CompareOp::Lt),
            ("<=", CompareOp::Le),
            ("=", CompareOp::Eq),
            ("!=", CompareOp::Ne),
        ] {
            assert_eq!(
                one(&format!("metrics.acc {op_text} 0.9")),
                cmp(EntityType::Metric, "acc", op, FilterValue::Number(0.9))
            );
        }
    }

    #[test]
    fn parses_metric_number_formats() {
        for (literal, value) in [
            ("1", 1.0),
            ("-1", -1.0),
            ("1.5", 1.5),
            ("1.", 1.0),
            (".5", 0.5),
            ("1e3", 1000.0),
            ("1.5E-3", 0.0015),
        ] {
            assert_eq!(
                one(&format!("metric.m > {literal}")).value,
                FilterValue::Number(value),
                "{literal}"
            );
        }
    }

    #[test]
    fn parses_comparisons_without_spaces() {
        assert_eq!(one("metrics.acc>1").value, FilterValue::Number(1.0));
        assert_eq!(
            one("params.p!='a'"),
            cmp(EntityType::Param, "p", CompareOp::Ne, text("a"))
        );
    }

    #[test]
    fn parses_every_entity_prefix_alias() {
        for prefix in ["metric", "metrics"] {
            assert_eq!(one(&format!("{prefix}.k = 1")).entity, EntityType::Metric);
        }
        for prefix in ["param", "params", "parameter", "parameters"] {
            assert_eq!(one(&format!("{prefix}.k = 'v'")).entity, EntityType::Param);
        }
        for prefix in ["tag", "tags"] {
            assert_eq!(one(&format!("{prefix}.k = 'v'")).entity, EntityType::Tag);
        }
        for prefix in ["attribute", "attributes", "attr", "run"] {
            assert_eq!(
                one(&format!("{prefix}.status = 'RUNNING'")),
                cmp(
                    EntityType::Attribute,
                    "status",
                    CompareOp::Eq,
                    text("RUNNING")
                )
            );
        }
        for prefix in ["dataset", "datasets"] {
            assert_eq!(
                one(&format!("{prefix}.name = 'd'")).entity,
                EntityType::Dataset
            );
        }
    }

    #[test]
    fn parses_single_and_double_quoted_string_values() {
        assert_eq!(one("params.p = 'a'").value, text("a"));
        assert_eq!(one("params.p = \"a\"").value, text("a"));
        assert_eq!(one("tags.t = ''").value, text(""));
        assert_eq!(one("tags.t = 'a b'").value, text("a b"));
    }

    #[test]
    fn keeps_quoted_values_verbatim_like_mlflow() {
        assert_eq!(one("tags.t = 'a''b'").value, text("a''b"));
        assert_eq!(one(r"tags.t = 'a\'b'").value, text(r"a\'b"));
    }

    #[test]
    fn parses_like_and_ilike_case_insensitively() {
        assert_eq!(
            one("params.p like 'a%'"),
            cmp(EntityType::Param, "p", CompareOp::Like, text("a%"))
        );
        assert_eq!(
            one("tags.t ILIKE '%B_'"),
            cmp(EntityType::Tag, "t", CompareOp::ILike, text("%B_"))
        );
        assert_eq!(one("attributes.status LIKE 'RUN%'").op, CompareOp::Like);
    }

    #[test]
    fn parses_backtick_quoted_metric_key() {
        assert_eq!(
            one("metrics.`my metric` > 1"),
            cmp(
                EntityType::Metric,
                "my metric",
                CompareOp::Gt,
                FilterValue::Number(1.0)
            )
        );
    }

    #[test]
    fn parses_double_and_single_quoted_keys() {
        assert_eq!(one("metrics.\"my metric\" > 1").key, "my metric");
        assert_eq!(one("tags.'my tag' = 'x'").key, "my tag");
        assert_eq!(one("`tags`.`my tag` = 'x'").key, "my tag");
        assert_eq!(one("params.`a b` LIKE '%x%'").key, "a b");
    }

    #[test]
    fn parses_keys_containing_dots() {
        for filter in [
            "tags.mlflow.runName = 'x'",
            "tags.`mlflow.runName` = 'x'",
            "tags.\"mlflow.runName\" = 'x'",
        ] {
            assert_eq!(
                one(filter),
                cmp(EntityType::Tag, "mlflow.runName", CompareOp::Eq, text("x")),
                "{filter}"
            );
        }
        assert_eq!(one("metrics.a.b > 1").key, "a.b");
    }

    #[test]
    fn parses_keys_that_look_like_keywords_or_numbers() {
        assert_eq!(one("metrics.select > 1").key, "select");
        assert_eq!(one("tags.and = 'x'").key, "and");
        assert_eq!(one("params.status = 'x'").key, "status");
        assert_eq!(one("metrics.1abc > 1").key, "1abc");
        assert_eq!(one("metrics.é > 1").key, "é");
    }

    #[test]
    fn parses_bare_attribute_names() {
        assert_eq!(
            one("status = 'FINISHED'"),
            cmp(
                EntityType::Attribute,
                "status",
                CompareOp::Eq,
                text("FINISHED")
            )
        );
        assert_eq!(
            one("start_time > 1"),
            cmp(
                EntityType::Attribute,
                "start_time",
                CompareOp::Gt,
                FilterValue::Number(1.0)
            )
        );
        assert_eq!(one("`status` = 'x'").key, "status");
        assert_eq!(one("\"status\" = 'x'").key, "status");
        assert_eq!(one("user_id = 'me'").key, "user_id");
        assert_eq!(one("artifact_uri != 'x'").op, CompareOp::Ne);
        assert_eq!(one("end_time <= 5").key, "end_time");
    }

    #[test]
    fn normalises_created_to_start_time() {
        for filter in ["created > 1", "Created > 1", "attributes.created >= 1"] {
            assert_eq!(one(filter).key, "start_time", "{filter}");
        }
    }

    #[test]
    fn normalises_run_name_aliases_to_run_name() {
        for filter in [
            "run_name = 'a'",
            "attributes.run_name = 'a'",
            "attributes.`run name` = 'a'",
            "attributes.\"Run Name\" = 'a'",
            "`Run name` = 'a'",
        ] {
            assert_eq!(
                one(filter),
                cmp(EntityType::Attribute, "run_name", CompareOp::Eq, text("a")),
                "{filter}"
            );
        }
        // tags.mlflow.runName stays a tag comparison.
        assert_eq!(one("tags.mlflow.runName = 'a'").entity, EntityType::Tag);
    }

    #[test]
    fn keeps_run_id_as_the_attribute_key() {
        assert_eq!(
            one("attributes.run_id = 'abc'"),
            cmp(EntityType::Attribute, "run_id", CompareOp::Eq, text("abc"))
        );
    }

    #[test]
    fn parses_numeric_attributes_with_fractional_values() {
        assert_eq!(
            one("attributes.start_time > 1.5").value,
            FilterValue::Number(1.5)
        );
    }

    #[test]
    fn parses_run_id_in_and_not_in_lists() {
        assert_eq!(
            one("attributes.run_id IN ('a','b')"),
            cmp(
                EntityType::Attribute,
                "run_id",
                CompareOp::In,
                list(&["a", "b"])
            )
        );
        assert_eq!(
            one("run_id not in ('a')"),
            cmp(
                EntityType::Attribute,
                "run_id",
                CompareOp::NotIn,
                list(&["a"])
            )
        );
        assert_eq!(one("run_id IN (\"a\", 'b',)").value, list(&["a", "b"]));
        assert_eq!(one("run_id IN ( 'a' , 'b' )").value, list(&["a", "b"]));
    }

    #[test]
    fn parses_is_null_and_is_not_null_for_params_and_tags() {
        assert_eq!(
            one("params.p IS NULL"),
            cmp(EntityType::Param, "p", CompareOp::IsNull, FilterValue::Null)
        );
        assert_eq!(
            one("tags.t is not null"),
            cmp(
                EntityType::Tag,
                "t",
                CompareOp::IsNotNull,
                FilterValue::Null
            )
        );
    }

    #[test]
    fn parses_dataset_comparisons() {
        assert_eq!(
            one("datasets.name = 'x'"),
            cmp(EntityType::Dataset, "name", CompareOp::Eq, text("x"))
        );
        assert_eq!(
            one("dataset.digest IN ('a','b')"),
            cmp(
                EntityType::Dataset,
                "digest",
                CompareOp::In,
                list(&["a", "b"])
            )
        );
        assert_eq!(
            one("datasets.context NOT IN ('train')").op,
            CompareOp::NotIn
        );
        assert_eq!(one("datasets.context LIKE 'tr%'").op, CompareOp::Like);
        assert_eq!(one("datasets.name != 'a'").op, CompareOp::Ne);
    }

    #[test]
    fn parses_and_joined_comparisons_in_order() {
        let parsed = parse_run_filter(
            "metrics.a > 1 AND params.b = 'x' and tags.`c d` LIKE 'e%' And attributes.run_id IN ('r')",
        )
        .unwrap();
        assert_eq!(
            parsed,
            vec![
                cmp(
                    EntityType::Metric,
                    "a",
                    CompareOp::Gt,
                    FilterValue::Number(1.0)
                ),
                cmp(EntityType::Param, "b", CompareOp::Eq, text("x")),
                cmp(EntityType::Tag, "c d", CompareOp::Like, text("e%")),
                cmp(EntityType::Attribute, "run_id", CompareOp::In, list(&["r"])),
            ]
        );
    }

    #[test]
    fn tolerates_the_extra_or_missing_ands_mlflow_tolerates() {
        for filter in [
            "metrics.a > 1 AND",
            "AND metrics.a > 1",
            "metrics.a > 1 AND AND metrics.b > 2",
            "metrics.a > 1 metrics.b > 2",
            "params.a = 'x'and params.b = 'y'",
        ] {
            assert!(parse_run_filter(filter).is_ok(), "{filter}");
        }
        assert_eq!(parse_run_filter("and").unwrap(), vec![]);
    }

    #[test]
    fn tolerates_surrounding_whitespace_in_filters() {
        assert_eq!(one("  metrics.a > 1\n").key, "a");
    }

    // ---- runs filter: invalid forms ----

    #[test]
    fn rejects_or_operator() {
        assert_eq!(
            run_err("metrics.a > 1 OR params.b = 'x'"),
            "Invalid clause(s) in filter string: 'OR'"
        );
    }

    #[test]
    fn rejects_parenthesised_grouping() {
        assert_eq!(
            run_err("(metrics.a > 1)"),
            "Invalid clause(s) in filter string: '(metrics.a > 1)'"
        );
    }

    #[test]
    fn rejects_not_prefix() {
        assert_eq!(
            run_err("metrics.a = 1 AND NOT params.b = 'x'"),
            "Invalid clause(s) in filter string: 'NOT'"
        );
    }

    #[test]
    fn rejects_trailing_garbage() {
        assert!(run_err("metrics.a > 1 foo").starts_with("Invalid clause(s) in filter string:"));
        assert!(run_err("metrics.a >").starts_with("Invalid clause(s) in filter string:"));
        assert!(run_err("metrics.a").starts_with("Invalid clause(s) in filter string:"));
        assert!(run_err("params.a = 'x' -- c").starts_with("Invalid clause(s) in filter string:"));
        assert!(run_err("metrics.acc > +1").starts_with("Invalid clause(s) in filter string:"));
        assert!(run_err("tags.t = 'a' 'b'").starts_with("Invalid clause(s) in filter string:"));
        assert!(run_err("params.a IS 'x'").starts_with("Invalid clause(s) in filter string:"));
        assert!(run_err("params.a NOT NULL").starts_with("Invalid clause(s) in filter string:"));
        assert!(
            run_err("tags.t = 'unterminated").starts_with("Invalid clause(s) in filter string:")
        );
        assert!(run_err("run_id IN ('a'").starts_with("Invalid clause(s) in filter string:"));
        assert!(run_err("run_id IN 'a'").starts_with("Invalid clause(s) in filter string:"));
    }

    #[test]
    fn rejects_a_trailing_semicolon_and_multiple_statements() {
        assert_eq!(
            run_err("metrics.a > 1;"),
            "Invalid clause(s) in filter string: ';'"
        );
        assert_eq!(
            run_err("metrics.a > 1; metrics.b > 2"),
            "Search filter contained multiple expression 'metrics.a > 1; metrics.b > 2'. \
             Provide AND-ed expression list."
        );
    }

    #[test]
    fn rejects_unknown_entity_types() {
        let msg = "Invalid entity type 'foo'. Valid values are ['metric', 'parameter', 'tag', \
                   'attribute', 'dataset']";
        assert_eq!(run_err("foo.a = 1"), msg);
        assert!(run_err("METRICS.a > 1").starts_with("Invalid entity type 'METRICS'"));
        assert!(run_err("\"attributes\".status = 'x'")
            .starts_with("Invalid entity type '\"attributes\"'"));
    }

    #[test]
    fn rejects_unknown_attribute_names() {
        for filter in [
            "foo = 'x'",
            "attributes.lifecycle_stage = 'x'",
            "attributes.experiment_id = '1'",
        ] {
            assert!(
                run_err(filter).starts_with("Invalid attribute key '"),
                "{filter}"
            );
        }
        assert!(run_err("foo = 'x'")
            .starts_with("Invalid attribute key 'foo' specified. Valid keys are '{"));
    }

    #[test]
    fn rejects_unknown_dataset_keys() {
        assert_eq!(
            run_err("datasets.foo = 'a'"),
            "Invalid dataset key 'foo' specified. Valid keys are '{'name', 'digest', 'context'}'"
        );
    }

    #[test]
    fn rejects_string_value_for_metric() {
        assert_eq!(
            run_err("metrics.acc = 'a'"),
            "Expected numeric value type for metric. Found 'a'"
        );
        assert_eq!(
            run_err("metrics.acc > NaN"),
            "Expected numeric value type for metric. Found NaN"
        );
        assert_eq!(
            run_err("metrics.acc > 1e"),
            "Expected numeric value type for metric. Found 1e"
        );
        assert_eq!(
            run_err("metrics.a IN (1)"),
            "Expected numeric value type for metric. Found (1)"
        );
    }

    #[test]
    fn rejects_unquoted_value_for_param() {
        assert_eq!(
            run_err("params.p = a"),
            "Parameter value is either not quoted or unidentified quote types used for string \
             value a. Use either single or double quotes."
        );
        assert!(run_err("params.p = `a`").contains("string value `a`."));
        assert_eq!(
            run_err("params.p = 1"),
            "Expected a quoted string value for parameter (e.g. 'my-value'). Got value 1"
        );
        assert_eq!(
            run_err("tags.t = null"),
            "Expected a quoted string value for tag (e.g. 'my-value'). Got value null"
        );
    }

    #[test]
    fn rejects_non_numeric_value_for_numeric_attribute() {
        assert_eq!(
            run_err("attributes.start_time > '1'"),
            "Expected numeric value type for numeric attribute: start_time. Found '1'"
        );
        assert_eq!(
            run_err("created IN (1)"),
            "Expected numeric value type for numeric attribute: created. Found (1)"
        );
    }

    #[test]
    fn rejects_wrong_comparator_for_each_entity() {
        assert!(
            run_err("metrics.acc LIKE 1").starts_with("Invalid comparator 'LIKE' not one of '{")
        );
        assert!(run_err("metrics.acc == 1").starts_with("Invalid comparator '==' not one of"));
        assert!(run_err("metrics.acc <> 1").starts_with("Invalid comparator '<>' not one of"));
        assert!(run_err("params.p > 'a'").starts_with("Invalid comparator '>' not one of"));
        assert!(run_err("params.a NOT LIKE 'x'")
            .starts_with("Invalid comparator 'NOT LIKE' not one of"));
        assert!(run_err("params.a RLIKE 'x'").starts_with("Invalid comparator 'RLIKE' not one of"));
        assert!(run_err("tags.t < 'a'").starts_with("Invalid comparator '<' not one of"));
        assert!(run_err("attributes.status > 'a'").starts_with("Invalid comparator '>' not one of"));
        assert!(run_err("attributes.end_time != 'a'").starts_with("Expected numeric value type"));
        assert!(run_err("start_time LIKE 1").starts_with("Invalid comparator 'LIKE' not one of"));
        assert!(run_err("datasets.name > 'a'").starts_with("Invalid comparator '>' not one of"));
    }

    #[test]
    fn rejects_value_errors_before_comparator_errors_like_mlflow() {
        // MLflow reads every value while parsing, and checks comparators afterwards.
        assert_eq!(
            run_err("metrics.acc LIKE '1' AND params.p = 1"),
            "Expected numeric value type for metric. Found '1'"
        );
    }

    #[test]
    fn rejects_is_null_outside_params_and_tags() {
        assert_eq!(
            run_err("metrics.acc IS NULL"),
            "IS NULL / IS NOT NULL is only supported for tags and params, not for 'metric' 'acc'"
        );
        assert!(run_err("end_time IS NOT NULL").contains("not for 'attribute' 'end_time'"));
        assert!(run_err("datasets.name IS NULL").contains("not for 'dataset' 'name'"));
    }

    #[test]
    fn rejects_lists_for_keys_other_than_run_id() {
        assert_eq!(
            run_err("attributes.status IN ('a')"),
            "Only ['run_id'] attributes support comparison with a list of quoted string values."
        );
        assert_eq!(
            run_err("params.p IN ('a')"),
            "Expected a quoted string value for parameter (e.g. 'my-value'). Got value ('a')"
        );
        assert!(
            run_err("tags.t NOT IN ('a')").starts_with("Expected a quoted string value for tag")
        );
    }

    #[test]
    fn rejects_malformed_lists() {
        assert_eq!(
            run_err("attributes.run_id IN ()"),
            "While parsing a list in the query, expected a non-empty list of string values, but \
             got empty list"
        );
        assert_eq!(
            run_err("attributes.run_id IN (1, 2)"),
            "While parsing a list in the query, expected string value, punctuation, or \
             whitespace, but got different type in list: (1, 2)"
        );
        for filter in [
            "run_id IN ('a',,)",
            "run_id IN (a, b)",
            "run_id IN ('a', ('b'))",
        ] {
            assert_eq!(
                run_err(filter),
                "While parsing a list in the query, expected a non-empty list of string values, \
                 but got ill-formed list.",
                "{filter}"
            );
        }
    }

    #[test]
    fn rejects_a_list_with_a_scalar_comparator() {
        assert!(run_err("run_id = ('a', 'b')").starts_with("Invalid comparator '=' for a list"));
    }

    #[test]
    fn rejects_a_non_identifier_on_the_left() {
        assert_eq!(
            run_err("'status' = 'x'"),
            "Invalid comparison clause. Expected 'Identifier' found ''status''"
        );
        assert_eq!(
            run_err("1 = 1"),
            "Invalid comparison clause. Expected 'Identifier' found '1'"
        );
    }

    // ---- runs order_by ----

    #[test]
    fn parses_order_by_with_default_ascending() {
        assert_eq!(order("metrics.acc"), ob(EntityType::Metric, "acc", true));
        assert_eq!(
            order("attributes.start_time"),
            ob(EntityType::Attribute, "start_time", true)
        );
    }

    #[test]
    fn parses_order_by_direction_case_insensitively() {
        assert_eq!(
            order("metrics.acc DESC"),
            ob(EntityType::Metric, "acc", false)
        );
        assert_eq!(
            order("metrics.acc desc"),
            ob(EntityType::Metric, "acc", false)
        );
        assert_eq!(
            order("metrics.acc Asc"),
            ob(EntityType::Metric, "acc", true)
        );
        assert_eq!(
            order("metrics.acc  DESC"),
            ob(EntityType::Metric, "acc", false)
        );
    }

    #[test]
    fn parses_quoted_order_by_keys() {
        assert_eq!(
            order("`params`.`my key` ASC"),
            ob(EntityType::Param, "my key", true)
        );
        assert_eq!(
            order("params.`my key` ASC"),
            ob(EntityType::Param, "my key", true)
        );
        assert_eq!(order("tags.`a b`"), ob(EntityType::Tag, "a b", true));
        assert_eq!(
            order("metric.`my metric` DESC"),
            ob(EntityType::Metric, "my metric", false)
        );
        assert_eq!(
            order("metrics.\"my metric\" DESC"),
            ob(EntityType::Metric, "my metric", false)
        );
        assert_eq!(
            order("metrics.'my metric' DESC"),
            ob(EntityType::Metric, "my metric", false)
        );
        assert_eq!(
            order("tags.mlflow.runName DESC"),
            ob(EntityType::Tag, "mlflow.runName", false)
        );
        assert_eq!(
            order("`run_name`"),
            ob(EntityType::Attribute, "run_name", true)
        );
    }

    #[test]
    fn parses_bare_order_by_attributes_and_aliases() {
        for key in [
            "run_id",
            "run_name",
            "status",
            "user_id",
            "artifact_uri",
            "start_time",
            "end_time",
        ] {
            assert_eq!(order(key), ob(EntityType::Attribute, key, true), "{key}");
        }
        assert_eq!(
            order("created"),
            ob(EntityType::Attribute, "start_time", true)
        );
        assert_eq!(
            order("Created DESC"),
            ob(EntityType::Attribute, "start_time", false)
        );
    }

    #[test]
    fn rejects_unknown_order_by_attributes() {
        for clause in [
            "experiment_id",
            "lifecycle_stage",
            "foo",
            "timestamp",
            "attributes.`run name`",
        ] {
            assert!(
                order_err(clause).starts_with("Invalid attribute key '"),
                "{clause}"
            );
        }
    }

    #[test]
    fn rejects_order_by_on_datasets() {
        assert_eq!(
            order_err("datasets.name"),
            "Invalid identifier type 'dataset'"
        );
    }

    #[test]
    fn rejects_invalid_order_by_direction() {
        assert_eq!(
            order_err("metrics.acc DESCENDING"),
            "Invalid ordering key in order_by clause 'metrics.acc DESCENDING'."
        );
        assert_eq!(
            order_err("metrics.a b"),
            "Invalid ordering key in order_by clause 'metrics.a b'."
        );
    }

    #[test]
    fn rejects_unparseable_order_by_clauses() {
        for clause in [
            "",
            "metrics.acc DESC ASC",
            "metrics.acc DESC NULLS LAST",
            "metrics.acc, metrics.b",
            "metrics.a-b",
            " metrics.acc",
            "metrics.acc ",
            "1",
            "metrics.acc desc;",
        ] {
            assert_eq!(
                order_err(clause),
                format!("Invalid order_by clause '{clause}'. Could not be parsed."),
                "{clause:?}"
            );
        }
    }

    #[test]
    fn rejects_unknown_order_by_entity_types() {
        assert!(order_err("foo.bar").starts_with("Invalid entity type 'foo'"));
    }

    #[test]
    fn rejects_duplicate_order_by_keys() {
        let err = parse_run_order_by_list(&["metrics.a", "metrics.a DESC"]).unwrap_err();
        assert_eq!(
            err.message,
            "`order_by` contains duplicate fields: ['metrics.a', 'metrics.a DESC']"
        );
        assert!(parse_run_order_by_list(&["created", "start_time"]).is_err());
        assert_eq!(
            parse_run_order_by_list(&["metrics.a", "params.a"]).unwrap(),
            vec![
                ob(EntityType::Metric, "a", true),
                ob(EntityType::Param, "a", true)
            ]
        );
    }

    // ---- experiments filter ----

    fn exp_one(filter: &str) -> Comparison {
        let mut parsed =
            parse_experiment_filter(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        assert_eq!(parsed.len(), 1, "{filter}");
        parsed.remove(0)
    }

    #[test]
    fn parses_experiment_name_comparisons() {
        assert_eq!(
            exp_one("name = 'a'"),
            cmp(EntityType::Attribute, "name", CompareOp::Eq, text("a"))
        );
        assert_eq!(exp_one("attribute.name != \"a\"").op, CompareOp::Ne);
        assert_eq!(exp_one("name LIKE 'a%'").op, CompareOp::Like);
        assert_eq!(exp_one("name ILIKE 'a%'").op, CompareOp::ILike);
        assert_eq!(exp_one("`name` = 'a'").key, "name");
    }

    #[test]
    fn parses_experiment_time_comparisons() {
        assert_eq!(
            exp_one("creation_time > 1"),
            cmp(
                EntityType::Attribute,
                "creation_time",
                CompareOp::Gt,
                FilterValue::Number(1.0)
            )
        );
        assert_eq!(exp_one("last_update_time <= 2").op, CompareOp::Le);
    }

    #[test]
    fn parses_experiment_ids_as_canonical_integers() {
        assert_eq!(
            exp_one("experiment_id = '01'"),
            cmp(
                EntityType::Attribute,
                "experiment_id",
                CompareOp::Eq,
                text("1")
            )
        );
        assert_eq!(
            exp_one("experiment_id IN ('1', '2')"),
            cmp(
                EntityType::Attribute,
                "experiment_id",
                CompareOp::In,
                list(&["1", "2"])
            )
        );
        assert_eq!(exp_one("experiment_id NOT IN ('0')").op, CompareOp::NotIn);
    }

    #[test]
    fn parses_experiment_tag_comparisons() {
        assert_eq!(
            exp_one("tags.a = 'b'"),
            cmp(EntityType::Tag, "a", CompareOp::Eq, text("b"))
        );
        assert_eq!(exp_one("tag.`a b` LIKE 'b%'").key, "a b");
        assert_eq!(exp_one("tags.a IS NULL").op, CompareOp::IsNull);
        assert_eq!(exp_one("tags.a is not null").value, FilterValue::Null);
        let both = parse_experiment_filter("name = 'a' AND tags.b = 'c'").unwrap();
        assert_eq!(both.len(), 2);
    }

    #[test]
    fn rejects_experiment_entity_types_other_than_attribute_and_tags() {
        for filter in [
            "attributes.name = 'a'",
            "metrics.a > 1",
            "params.a = 'x'",
            "`tags`.a = 'b'",
        ] {
            assert!(
                exp_err(filter).ends_with("Valid entity types are ('attribute', 'tag', 'tags')"),
                "{filter}"
            );
        }
    }

    #[test]
    fn rejects_unknown_experiment_attributes() {
        assert!(exp_err("lifecycle_stage = 'a'")
            .starts_with("Invalid attribute key 'lifecycle_stage' specified. Valid keys are '{"));
    }

    #[test]
    fn rejects_wrong_experiment_comparators() {
        assert!(exp_err("name > 'a'").starts_with("Invalid comparator '>' not one of"));
        assert!(exp_err("creation_time LIKE 1").starts_with("Invalid comparator 'LIKE' not one of"));
        assert_eq!(
            exp_err("experiment_id > '1'"),
            "Invalid comparator for experiment_id: >"
        );
        assert_eq!(exp_err("tags.a > 'b'"), "Invalid comparator for tag: >");
        assert_eq!(
            exp_err("name IS NULL"),
            "IS NULL / IS NOT NULL is only supported for tags, not for attribute 'name'"
        );
    }

    #[test]
    fn rejects_wrong_experiment_values() {
        assert_eq!(
            exp_err("creation_time > 1.5"),
            "Invalid value for numeric attribute 'creation_time': '1.5'"
        );
        assert_eq!(
            exp_err("creation_time > '1'"),
            "Expected numeric value type for numeric attribute: creation_time. Found '1'"
        );
        assert_eq!(
            exp_err("experiment_id = 1"),
            "Expected a quoted string value for attributes. Got value 1"
        );
        assert_eq!(
            exp_err("experiment_id = 'abc'"),
            "Invalid experiment ID 'abc'. Experiment ID must be a valid integer."
        );
        assert_eq!(
            exp_err("name IN ('a')"),
            "Only ['experiment_id'] attributes support comparison with a list of quoted string \
             values."
        );
        assert!(exp_err("tags.a = 1").starts_with("Expected a quoted string value for tag"));
    }

    #[test]
    fn rejects_or_and_grouping_in_experiment_filters() {
        assert_eq!(
            exp_err("name = 'a' OR tags.b = 'c'"),
            "Invalid clause(s) in filter string: OR"
        );
        assert_eq!(
            exp_err("(name = 'a')"),
            "Invalid clause(s) in filter string: (name = 'a')"
        );
    }

    // ---- experiments order_by ----

    #[test]
    fn parses_experiment_order_by() {
        let attr = |key: &str, asc| ob(EntityType::Attribute, key, asc);
        assert_eq!(
            parse_experiment_order_by("name").unwrap(),
            attr("name", true)
        );
        assert_eq!(
            parse_experiment_order_by("name desc").unwrap(),
            attr("name", false)
        );
        assert_eq!(
            parse_experiment_order_by("experiment_id").unwrap(),
            attr("experiment_id", true)
        );
        assert_eq!(
            parse_experiment_order_by("creation_time ASC").unwrap(),
            attr("creation_time", true)
        );
        assert_eq!(
            parse_experiment_order_by("last_update_time DESC").unwrap(),
            attr("last_update_time", false)
        );
        assert_eq!(
            parse_experiment_order_by("attribute.name").unwrap(),
            attr("name", true)
        );
        assert_eq!(
            parse_experiment_order_by("`name` DESC").unwrap(),
            attr("name", false)
        );
    }

    #[test]
    fn rejects_invalid_experiment_order_by() {
        let err = |c: &str| parse_experiment_order_by(c).unwrap_err().message;
        assert_eq!(err("tags.a"), "Invalid order_by entity: tag");
        assert!(err("foo").starts_with("Invalid attribute key 'foo' specified."));
        assert!(err("attributes.name").starts_with("Invalid entity type 'attributes'"));
        assert_eq!(
            err("name DESC ASC"),
            "Invalid order_by clause 'name DESC ASC'. Could not be parsed."
        );
        assert_eq!(
            err("name up"),
            "Invalid ordering key in order_by clause 'name up'."
        );
    }

    // ---- helpers ----

    #[test]
    fn splits_like_posix_shlex() {
        assert_eq!(shlex_split("a \"b c\" 'd'").unwrap(), vec!["a", "b c", "d"]);
        assert_eq!(
            shlex_split("x.\"a b\"  DESC").unwrap(),
            vec!["x.a b", "DESC"]
        );
        assert!(shlex_split("\"open").is_none());
    }

    #[test]
    fn survives_deeply_nested_and_unbalanced_parentheses() {
        let deep = format!("{}{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse_run_filter(&deep).is_err());
        assert!(parse_run_filter(&"(".repeat(10_000)).is_err());
        assert!(parse_run_filter(&")".repeat(10_000)).is_err());
    }
}
