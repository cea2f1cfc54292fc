//! Python's `repr` for the few values MLflow's messages print, so ours read the same.

use serde_json::Value;

/// `repr(str)`: single quotes unless the text has a single quote and no double quote.
pub use ferroflow_core::py_repr as str_repr;

/// `repr(float)`: shortest round-trip digits, exponent form below 1e-4 and from 1e16.
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    if (-4..16).contains(&exp) {
        let s = format!("{x}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// `str()` of a JSON scalar as Python would print the decoded value.
pub fn value_str(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string(),
            (_, Some(u)) => u.to_string(),
            _ => float_repr(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `type(x)` as Python prints it, for a decoded JSON value.
pub fn type_repr(v: &Value) -> &'static str {
    match v {
        Value::Null => "<class 'NoneType'>",
        Value::Bool(_) => "<class 'bool'>",
        Value::Number(n) if n.is_f64() => "<class 'float'>",
        Value::Number(_) => "<class 'int'>",
        Value::String(_) => "<class 'str'>",
        Value::Array(_) => "<class 'list'>",
        Value::Object(_) => "<class 'dict'>",
    }
}

/// A Python exception: its class and message; `repr()` is `Class('message')`.
#[derive(Debug, Clone, PartialEq)]
pub struct PyExc {
    pub class: &'static str,
    pub message: String,
}

impl PyExc {
    pub fn value_error(message: impl Into<String>) -> Self {
        PyExc {
            class: "ValueError",
            message: message.into(),
        }
    }
    pub fn type_error(message: impl Into<String>) -> Self {
        PyExc {
            class: "TypeError",
            message: message.into(),
        }
    }
    pub fn repr(&self) -> String {
        format!("{}({})", self.class, str_repr(&self.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python() {
        assert_eq!(float_repr(0.5), "0.5");
        assert_eq!(float_repr(1.0), "1.0");
        assert_eq!(float_repr(1e-8), "1e-08");
        assert_eq!(float_repr(1.4395041603165737e-08), "1.4395041603165737e-08");
        assert_eq!(float_repr(1e16), "1e+16");
        assert_eq!(float_repr(0.0001), "0.0001");
        assert_eq!(float_repr(123.25), "123.25");
    }

    #[test]
    fn strings_and_exceptions_print_like_python() {
        assert_eq!(str_repr("abc"), "'abc'");
        let e = PyExc::value_error("could not convert string to float: 'abc'");
        assert_eq!(
            e.repr(),
            "ValueError(\"could not convert string to float: 'abc'\")"
        );
    }
}
