//! Model version stages: stage names and MLflow's transition and archive rules.

use ferroflow_core::{now_millis, Error, Result, StorageContext};

use super::{parse_version, validate_model_name, RegistryService};
use crate::model::{canonical_stage, ModelVersion};
use crate::store;

/// The canonical stage, or MLflow's INVALID_PARAMETER_VALUE.
pub fn parse_stage(stage: &str) -> Result<&'static str> {
    canonical_stage(stage).ok_or_else(|| {
        Error::invalid(format!(
            "Invalid Model Version stage: {stage}. Value must be one of None, Staging, Production, Archived."
        ))
    })
}

impl RegistryService {
    /// Moves a version to `stage`; with `archive_existing_versions` (Staging/Production
    /// only) every other version in that stage goes to Archived. The model's lock is taken
    /// first, so simultaneous moves run one after the other and the last one leaves exactly
    /// one version in the stage.
    pub async fn transition_model_version_stage(
        &self,
        name: &str,
        version: &str,
        stage: &str,
        archive_existing_versions: bool,
    ) -> Result<ModelVersion> {
        validate_model_name(name, "name")?;
        let version = parse_version(version)?;
        let stage = parse_stage(stage)?;
        if archive_existing_versions && !matches!(stage, "Staging" | "Production") {
            return Err(Error::invalid(format!(
                "Model version transition cannot archive existing model versions because '{stage}' \
                 is not an Active stage. Valid stages are ['Staging', 'Production']"
            )));
        }
        let now = now_millis();
        let mut tx = self.begin().await?;
        store::lock_model(&mut tx, name, now).await?;
        self.require_version(&mut tx, name, version).await?;
        if archive_existing_versions {
            store::archive_other_versions(&mut tx, name, version, stage, now).await?;
        }
        store::set_version_stage(&mut tx, name, version, stage, now).await?;
        let mv = self
            .load_version_with_aliases(&mut tx, name, version)
            .await?;
        tx.commit().await.context("failed to commit")?;
        Ok(mv)
    }
}
