//! Authentication and permissions, as MLflow 3.17.2's basic-auth app has them (users, admins,
//! roles, per-resource grants with READ/USE/EDIT/MANAGE/DENY) plus personal access tokens.
//! Users and grants live in the backend store, so every replica agrees. The server's auth gate
//! authenticates each request through [`AuthService`] and evaluates the route's
//! [`ferroflow_core::access::Rule`].

pub mod config;
pub mod model;
pub mod routes;
pub mod service;
pub mod store;

pub use config::AuthConfig;
pub use model::User;
pub use routes::{configure, ROUTES};
pub use service::{AuthService, Refusal};
