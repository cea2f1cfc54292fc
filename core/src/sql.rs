//! Statements built at run time for sqlx's `Any` driver, with placeholders in each backend's
//! style: the one SQL dialect layer every capability's store uses.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Arguments};

use crate::Backend;

/// A value bound into a dynamically built statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Int(i64),
    Float(f64),
    Text(String),
    /// A nullable text value (`None` binds SQL NULL).
    OptText(Option<String>),
    /// A nullable integer (`None` binds an integer-typed SQL NULL).
    OptInt(Option<i64>),
}

/// A statement built at run time with placeholders in the backend's style and its bound
/// values. SQLite gets anonymous `?` placeholders: with `$N` names, binding costs SQLite a
/// name lookup per parameter that is linear in the parameter count, which made a 1000-metric
/// batch quadratic.
#[derive(Debug)]
pub struct SqlBuilder {
    pub sql: String,
    binds: Vec<Bind>,
    backend: Backend,
}

impl SqlBuilder {
    pub fn new(backend: Backend, sql: impl Into<String>) -> Self {
        SqlBuilder {
            sql: sql.into(),
            binds: Vec::new(),
            backend,
        }
    }

    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a placeholder for `value`.
    pub fn bind(&mut self, value: Bind) -> &mut Self {
        self.binds.push(value);
        match self.backend {
            Backend::Sqlite => self.sql.push('?'),
            Backend::Postgres => {
                self.sql.push('$');
                self.sql.push_str(&self.binds.len().to_string());
            }
        }
        self
    }

    pub fn bind_text(&mut self, value: &str) -> &mut Self {
        self.bind(Bind::Text(value.to_string()))
    }

    pub fn bind_int(&mut self, value: i64) -> &mut Self {
        self.bind(Bind::Int(value))
    }

    /// Appends `(p1, p2, …)` binding each text value.
    pub fn bind_text_list<'s>(&mut self, values: impl IntoIterator<Item = &'s str>) -> &mut Self {
        self.sql.push('(');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.bind_text(v);
        }
        self.sql.push(')');
        self
    }

    pub fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut args = AnyArguments::default();
        for b in &self.binds {
            // Adding a supported scalar to AnyArguments cannot fail.
            let _ = match b {
                Bind::Int(v) => args.add(*v),
                Bind::Float(v) => args.add(*v),
                Bind::Text(v) => args.add(v.as_str()),
                Bind::OptText(v) => args.add(v.as_deref()),
                Bind::OptInt(v) => args.add(*v),
            };
        }
        sqlx::query_with(&self.sql, args)
    }
}
