//! Access control's vocabulary, shared by every capability: permission levels as MLflow 3.17.2's
//! basic-auth app defines them, how grants fold into one permission, and the rule each route
//! declares next to its route table (what it touches and what it needs). The `auth` crate
//! stores users and grants; the server's auth gate evaluates these rules on every request.

use std::fmt;

/// A permission level (MLflow's `mlflow.server.auth.permissions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    Read,
    Use,
    Edit,
    Manage,
    NoPermissions,
    /// An explicit veto: beats every positive grant on the same key.
    Deny,
}

/// What a request does to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Use,
    Update,
    Delete,
    Manage,
    /// Anything but an explicit DENY.
    NotDenied,
}

impl Permission {
    pub const ALL: [Permission; 6] = [
        Permission::Read,
        Permission::Use,
        Permission::Edit,
        Permission::Manage,
        Permission::NoPermissions,
        Permission::Deny,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Permission::Read => "READ",
            Permission::Use => "USE",
            Permission::Edit => "EDIT",
            Permission::Manage => "MANAGE",
            Permission::NoPermissions => "NO_PERMISSIONS",
            Permission::Deny => "DENY",
        }
    }

    pub fn parse(name: &str) -> Option<Permission> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    fn priority(self) -> i32 {
        match self {
            Permission::Deny => -1,
            Permission::NoPermissions => 0,
            Permission::Read => 1,
            Permission::Use => 2,
            Permission::Edit => 3,
            Permission::Manage => 4,
        }
    }

    /// Whether this level allows `need`.
    pub fn allows(self, need: Need) -> bool {
        let p = self.priority();
        match need {
            Need::Read => p >= 1,
            Need::Use => p >= 2,
            Need::Update => p >= 3,
            Need::Delete | Need::Manage => p >= 4,
            Need::NotDenied => self != Permission::Deny,
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kinds of resource a grant names. MLflow's types first; `feature_table` and
/// `serving_endpoint` are ferroflow's own.
pub const RESOURCE_TYPES: &[(&str, bool)] = &[
    // (name, whether a grant may name one resource; false: only the wildcard `*`)
    ("experiment", true),
    ("registered_model", true),
    ("prompt", true),
    ("feature_table", true),
    ("serving_endpoint", true),
    ("workspace", false),
    ("run", false),
    ("logged_model", false),
    ("registered_model_version", false),
    ("trace", false),
    ("assessment", false),
];

/// Whether `resource_type` takes ids (else only `*`); `None` for an unknown type.
pub fn takes_ids(resource_type: &str) -> Option<bool> {
    RESOURCE_TYPES
        .iter()
        .find(|(t, _)| *t == resource_type)
        .map(|(_, ids)| *ids)
}

/// One grant row: `(resource_type, resource_pattern, permission)` of a role the user holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub resource_type: String,
    pub pattern: String,
    pub permission: Permission,
}

/// A user's grants and the server's default permission: answers "may this user do X to Y"
/// exactly as MLflow 3.17.2 resolves it (workspaces off).
#[derive(Debug, Clone)]
pub struct Grants {
    pub rows: Vec<Grant>,
    pub default: Permission,
}

impl Grants {
    /// A workspace admin (`workspace`, `*`, MANAGE) resolves MANAGE everywhere.
    pub fn workspace_admin(&self) -> bool {
        self.rows.iter().any(|g| {
            g.resource_type == "workspace" && g.pattern == "*" && g.permission == Permission::Manage
        })
    }

    /// The grants on one key folded: DENY if any denies, else the highest; `None` if none.
    pub fn fold(&self, resource_type: &str, id: &str) -> Option<Permission> {
        let ids = takes_ids(resource_type).unwrap_or(false);
        let mut out: Option<Permission> = None;
        for g in &self.rows {
            if g.resource_type != resource_type || !(g.pattern == "*" || (ids && g.pattern == id)) {
                continue;
            }
            if g.permission == Permission::Deny {
                return Some(Permission::Deny);
            }
            if out.is_none_or(|o| g.permission.priority() > o.priority()) {
                out = Some(g.permission);
            }
        }
        out
    }

    /// A positive grant never resolves below the default permission.
    fn floor(&self, p: Permission) -> Permission {
        match p {
            Permission::Deny | Permission::NoPermissions => p,
            p if p.priority() < self.default.priority() => self.default,
            p => p,
        }
    }

    /// The permission on one resource (`P(type, id)`).
    pub fn point(&self, resource_type: &str, id: &str) -> Permission {
        if self.workspace_admin() {
            return Permission::Manage;
        }
        match self.fold(resource_type, id) {
            Some(p) => self.floor(p),
            None => self.default,
        }
    }

    /// A requirement with fallbacks: the first rung with a grant decides (and must allow its
    /// own need); with no grant anywhere the default must allow the last rung's need.
    pub fn allows(&self, rungs: &[(&str, &str, Need)]) -> bool {
        if self.workspace_admin() {
            return true;
        }
        for (t, id, need) in rungs {
            if let Some(p) = self.fold(t, id) {
                return self.floor(p).allows(*need);
            }
        }
        match rungs.last() {
            Some((_, _, need)) => self.floor(self.default).allows(*need),
            None => true,
        }
    }

    /// A sub-resource of an experiment (`run`, `logged_model`, …): the experiment must be
    /// readable, and the sub-resource's tier (falling back to the experiment) must allow `need`.
    pub fn in_experiment(&self, tier: &str, experiment_id: &str, need: Need) -> bool {
        self.allows(&[("experiment", experiment_id, Need::Read)])
            && self.allows(&[(tier, "*", need), ("experiment", experiment_id, need)])
    }

    /// A model version: the model must be readable and the version tier (falling back to the
    /// model) must allow `need`.
    pub fn in_model(&self, name: &str, need: Need) -> bool {
        self.allows(&[("registered_model", name, Need::Read)])
            && self.allows(&[
                ("registered_model_version", "*", need),
                ("registered_model", name, need),
            ])
    }

    /// Whether a row of a list (search results) may be shown.
    pub fn row_visible(&self, resource_type: &str, id: &str) -> bool {
        self.allows(&[
            (resource_type, id, Need::Read),
            ("workspace", "*", Need::Read),
        ])
    }
}

/// Where a request names a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// A request parameter: the query string for GET (and bodyless DELETE), else the JSON body.
    Field(&'static str),
    /// A segment of the route's path, `{name}` in its pattern.
    Path(&'static str),
    /// The query string, whatever the method (routes whose body is data, not JSON).
    Query(&'static str),
}

/// A resource a route creates: any authenticated user may, and becomes its owner (MANAGE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// Its id is the answer's `experiment_id`.
    Experiment,
    /// Its id is the request's `name`.
    RegisteredModel,
    /// Its id is the request's `name`.
    FeatureTable,
    /// Its id is the request's `name`; MANAGE on every model it serves is needed too.
    Endpoint,
}

/// What a route needs from the caller. Every route of every capability declares one, next to
/// its route table; a route with no rule is refused to everyone but admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No credentials needed (health, static files, server-info).
    Open,
    /// Any authenticated user.
    Authenticated,
    /// Admins only.
    Admin,
    /// `/metrics`: admins, or anyone when the server runs with `--public-metrics`.
    Metrics,
    /// GraphQL: any user; each protected field checks the caller's grants and resolves to
    /// null when they may not read it (as MLflow's basic-auth does).
    Graphql,
    /// Creates a resource (see [`Created`]).
    Creates(Created),
    /// One experiment, by id.
    Experiment(Param, Need),
    /// Every experiment of a list parameter (bulk reads).
    Experiments(Param, Need),
    /// An experiment by name.
    ExperimentByName(Param, Need),
    /// Creating something inside an experiment: EDIT on it, and `tier` not denied.
    CreateIn(Param, &'static str),
    /// A run (`run_id`, or `run_uuid`), checked through its experiment.
    Run(Param, Need),
    /// Every run of a list parameter.
    Runs(Param, Need),
    /// A logged model, checked through its experiment.
    LoggedModel(Param, Need),
    /// A registered model by name.
    Model(Param, Need),
    /// A model version (or alias) of the named model.
    ModelVersion(Param, Need),
    /// A proxied artifact path (`<experiment id>/<run id>/artifacts/…`).
    ArtifactPath(Param, Need),
    /// A feature table by name.
    FeatureTable(Param, Need),
    /// A serving endpoint by name (config changes need MANAGE on it; queries READ).
    Endpoint(Param, Need),
    /// A new config for an endpoint: MANAGE on it and on every model it would serve.
    EndpointConfig(Param),
    /// A model version's creation: EDIT on the model, and READ on the source run or logged
    /// model it names.
    CreateVersion,
    /// An AutoML run by id, checked through its experiment.
    AutomlRun(Param, Need),
    /// A training set: READ on every feature table its lookups name.
    FeatureLookups,
    /// A search whose results the gate filters to what the caller may read.
    Filtered(Filter),
}

/// The searches whose answers are filtered per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// `experiments` rows by `experiment_id`.
    Experiments,
    /// The request's `experiment_ids` narrowed to readable experiments.
    RunsSearch,
    /// `registered_models` rows by `name`.
    RegisteredModels,
    /// `model_versions` rows by `name`.
    ModelVersions,
    /// `models` rows by `info.experiment_id`.
    LoggedModels,
    /// `feature_tables` rows by `name`.
    FeatureTables,
    /// `endpoints` rows by `name`.
    Endpoints,
    /// AutoML `runs` rows by `experiment_id`.
    AutomlRuns,
}

/// A route and its rule: `(method, path pattern, rule)`. Patterns use `{name}` for one segment
/// and `{name:.*}` for the rest of the path; `/ajax-api/` twins share the `/api/` rule.
pub type RouteRule = (&'static str, &'static str, Rule);

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(rows: &[(&str, &str, Permission)], default: Permission) -> Grants {
        Grants {
            rows: rows
                .iter()
                .map(|(t, p, perm)| Grant {
                    resource_type: t.to_string(),
                    pattern: p.to_string(),
                    permission: *perm,
                })
                .collect(),
            default,
        }
    }

    #[test]
    fn deny_beats_every_positive_grant_on_the_same_key() {
        let g = grants(
            &[
                ("experiment", "1", Permission::Manage),
                ("experiment", "*", Permission::Deny),
            ],
            Permission::Read,
        );
        assert_eq!(g.point("experiment", "1"), Permission::Deny);
        assert_eq!(g.point("experiment", "2"), Permission::Deny);
    }

    #[test]
    fn a_grant_never_resolves_below_the_default() {
        let g = grants(&[("experiment", "1", Permission::Read)], Permission::Edit);
        assert_eq!(g.point("experiment", "1"), Permission::Edit);
        let g = grants(
            &[("experiment", "1", Permission::NoPermissions)],
            Permission::Edit,
        );
        assert_eq!(g.point("experiment", "1"), Permission::NoPermissions);
    }

    #[test]
    fn a_run_tier_grant_overrides_the_experiment() {
        let g = grants(
            &[
                ("experiment", "1", Permission::Read),
                ("run", "*", Permission::Manage),
            ],
            Permission::NoPermissions,
        );
        assert!(g.in_experiment("run", "1", Need::Delete));
        assert!(!g.in_experiment("run", "2", Need::Read));
        let g = grants(
            &[
                ("experiment", "1", Permission::Edit),
                ("run", "*", Permission::Read),
            ],
            Permission::NoPermissions,
        );
        assert!(!g.in_experiment("run", "1", Need::Update));
    }

    #[test]
    fn a_workspace_admin_manages_everything_even_past_deny() {
        let g = grants(
            &[
                ("workspace", "*", Permission::Manage),
                ("experiment", "1", Permission::Deny),
            ],
            Permission::NoPermissions,
        );
        assert_eq!(g.point("experiment", "1"), Permission::Manage);
    }

    #[test]
    fn wildcard_only_types_ignore_ids() {
        let g = grants(&[("run", "abc", Permission::Manage)], Permission::Read);
        assert_eq!(g.fold("run", "abc"), None);
    }
}
