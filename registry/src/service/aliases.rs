//! Registered model aliases: name rules, set, delete and lookup of the version an alias names.

use ferroflow_core::{Error, Result, StorageContext};

use super::{parse_version, validate_model_name, RegistryService, MAX_ALIAS_LENGTH};
use crate::model::ModelVersion;
use crate::store;

fn validate_alias(alias: &str) -> Result<()> {
    if alias.is_empty() {
        return Err(Error::invalid(
            "Registered model alias name cannot be empty.",
        ));
    }
    if !alias
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err(Error::invalid(format!(
            "Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_), and dashes (-)."
        )));
    }
    if alias.chars().count() > MAX_ALIAS_LENGTH {
        return Err(Error::invalid(format!(
            "'Registered model alias name' exceeds the maximum length of {MAX_ALIAS_LENGTH} characters"
        )));
    }
    Ok(())
}

fn validate_alias_not_reserved(alias: &str) -> Result<()> {
    if alias.eq_ignore_ascii_case("latest") {
        return Err(Error::invalid(
            "'latest' alias name (case insensitive) is reserved.",
        ));
    }
    let mut chars = alias.chars();
    if matches!(chars.next(), Some('v' | 'V'))
        && alias.len() > 1
        && chars.all(|c| c.is_ascii_digit())
    {
        return Err(Error::invalid(format!(
            "Version alias name '{alias}' is reserved."
        )));
    }
    Ok(())
}

impl RegistryService {
    /// Points `alias` at `version` (moving it if it pointed elsewhere).
    pub async fn set_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: &str,
    ) -> Result<()> {
        validate_model_name(name, "name")?;
        validate_alias(alias)?;
        validate_alias_not_reserved(alias)?;
        let version = parse_version(version)?;
        let mut tx = self.begin().await?;
        Self::require_model(&mut tx, name).await?;
        self.require_version(&mut tx, name, version).await?;
        store::set_alias(&mut tx, name, alias, version).await?;
        tx.commit().await.context("failed to commit")
    }

    /// Removes an alias; removing one that does not exist is not an error (as MLflow).
    pub async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<()> {
        validate_model_name(name, "name")?;
        validate_alias(alias)?;
        let mut tx = self.begin().await?;
        Self::require_model(&mut tx, name).await?;
        store::delete_alias(&mut tx, name, alias).await?;
        tx.commit().await.context("failed to commit")
    }

    /// The version an alias points at. A missing alias is INVALID_PARAMETER_VALUE (400), as
    /// MLflow answers.
    pub async fn get_model_version_by_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<ModelVersion> {
        validate_model_name(name, "name")?;
        validate_alias(alias)?;
        let mut conn = self.reader().await?;
        Self::require_model(&mut conn, name).await?;
        let version = store::alias_version(&mut conn, name, alias)
            .await?
            .ok_or_else(|| Error::invalid(format!("Registered model alias {alias} not found.")))?;
        self.load_version_with_aliases(&mut conn, name, version)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::parse_stage;

    #[test]
    fn stages_are_canonicalised_and_aliases_checked() {
        assert_eq!(parse_stage("pRoDuCtIoN").unwrap(), "Production");
        assert!(parse_stage("bogus").is_err());
        assert!(validate_alias_not_reserved("v3").is_err());
        assert!(validate_alias_not_reserved("Latest").is_err());
        assert!(validate_alias_not_reserved("champion").is_ok());
        assert!(validate_alias("bad alias").is_err());
        assert!(parse_version("abc").is_err());
    }
}
