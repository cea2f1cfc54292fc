//! Registered models: create, get, rename, update, delete, search, latest versions and tags.

use ferroflow_core::search_registry::{
    parse_registered_model_filter, parse_registered_model_order_by, RegistryOrderBy,
};
use ferroflow_core::{now_millis, paging, Error, Result, StorageContext};

use super::{
    max_results_in, parse_stage, prompt_rule, validate_model_name, validate_tag, RegistrySearch,
    RegistryService, SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD,
};
use crate::model::{KeyValue, ModelVersion, Page, RegisteredModel};
use crate::store;

impl RegistryService {
    pub async fn create_registered_model(
        &self,
        name: &str,
        tags: &[KeyValue],
        description: Option<&str>,
    ) -> Result<RegisteredModel> {
        validate_model_name(name, "name")?;
        for t in tags {
            validate_tag(&t.key, &t.value)?;
        }
        let mut tx = self.begin().await?;
        if store::get_model(&mut tx, name).await?.is_some() {
            return Err(Error::already_exists(format!(
                "Registered Model (name={name}) already exists."
            )));
        }
        store::insert_model(&mut tx, name, now_millis(), description).await?;
        for t in tags {
            store::set_model_tag(&mut tx, name, &t.key, &t.value).await?;
        }
        let model = self.load_model(&mut tx, name).await?;
        tx.commit().await.context("failed to commit")?;
        Ok(model)
    }

    pub async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        validate_model_name(name, "name")?;
        let mut conn = self.reader().await?;
        self.load_model(&mut conn, name).await
    }

    pub async fn rename_registered_model(
        &self,
        name: &str,
        new_name: &str,
    ) -> Result<RegisteredModel> {
        validate_model_name(name, "name")?;
        validate_model_name(new_name, "new_name")?;
        let mut tx = self.begin().await?;
        Self::require_model(&mut tx, name).await?;
        if new_name != name && store::get_model(&mut tx, new_name).await?.is_some() {
            return Err(Error::already_exists(format!(
                "Registered Model (name={new_name}) already exists."
            )));
        }
        store::rename_model(&mut tx, name, new_name, now_millis()).await?;
        let model = self.load_model(&mut tx, new_name).await?;
        tx.commit().await.context("failed to commit")?;
        Ok(model)
    }

    pub async fn update_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<RegisteredModel> {
        validate_model_name(name, "name")?;
        let mut tx = self.begin().await?;
        Self::require_model(&mut tx, name).await?;
        store::set_model_description(&mut tx, name, description, now_millis()).await?;
        let model = self.load_model(&mut tx, name).await?;
        tx.commit().await.context("failed to commit")?;
        Ok(model)
    }

    pub async fn delete_registered_model(&self, name: &str) -> Result<()> {
        validate_model_name(name, "name")?;
        let mut tx = self.begin().await?;
        Self::require_model(&mut tx, name).await?;
        store::delete_model(&mut tx, name).await?;
        tx.commit().await.context("failed to commit")
    }

    /// MLflow's search: filter on name and tags, prompts excluded unless the filter asks about
    /// the prompt tag, ordered by the given keys then name.
    pub async fn search_registered_models(
        &self,
        search: &RegistrySearch,
    ) -> Result<Page<RegisteredModel>> {
        let max_results = max_results_in(
            search.max_results,
            SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
            SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD,
        )?;
        let (filter, exclude_prompts) = prompt_rule(parse_registered_model_filter(&search.filter)?);
        let mut order = parse_registered_model_order_by(&search.order_by)?;
        if !order.iter().any(|o| o.key == "name") {
            order.push(RegistryOrderBy {
                key: "name".into(),
                ascending: true,
            });
        }
        let offset = paging::decode_offset(search.page_token.as_deref())?;
        let mut conn = self.reader().await?;
        let names = store::search_models(
            &mut conn,
            self.db.backend,
            &filter,
            exclude_prompts,
            &order,
            offset,
            max_results + 1,
        )
        .await?;
        let models = self.load_models(&mut conn, &names).await?;
        Ok(Page::from_overfetch(models, offset, max_results))
    }

    /// The latest version in each requested stage (all stages when none are given), with
    /// their aliases.
    pub async fn get_latest_versions(
        &self,
        name: &str,
        stages: &[String],
    ) -> Result<Vec<ModelVersion>> {
        validate_model_name(name, "name")?;
        let wanted = stages
            .iter()
            .map(|s| parse_stage(s))
            .collect::<Result<Vec<_>>>()?;
        let mut conn = self.reader().await?;
        let model = self.load_model(&mut conn, name).await?;
        let mut out = Vec::new();
        for mut mv in model.latest_versions {
            if wanted.is_empty() || wanted.contains(&mv.current_stage.as_str()) {
                mv.aliases = model
                    .aliases
                    .iter()
                    .filter(|a| a.version == mv.version)
                    .map(|a| a.alias.clone())
                    .collect();
                out.push(mv);
            }
        }
        Ok(out)
    }

    pub async fn set_registered_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        validate_model_name(name, "name")?;
        validate_tag(key, value)?;
        let mut tx = self.begin().await?;
        Self::require_model(&mut tx, name).await?;
        store::set_model_tag(&mut tx, name, key, value).await?;
        tx.commit().await.context("failed to commit")
    }

    pub async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()> {
        validate_model_name(name, "name")?;
        ferroflow_tracking::validate::entity_name(key, "key")?;
        let mut tx = self.begin().await?;
        Self::require_model(&mut tx, name).await?;
        store::delete_model_tag(&mut tx, name, key).await?;
        tx.commit().await.context("failed to commit")
    }
}
