//! Provider secrets in AWS: one Secrets Manager secret (the template's
//! `ProviderSecretsName`) holding a JSON object `{"NAME": "value", ...}`,
//! read once per cold start by the app.

use std::collections::HashMap;

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;

use crate::error::StoreError;

/// The secret's name/value pairs; an absent secret is an empty map.
pub async fn provider_secrets(
    sdk: &aws_config::SdkConfig,
    secret_id: &str,
) -> Result<HashMap<String, String>, StoreError> {
    // Counted (and recorded for tests/permissions.rs) like every other client.
    let conf = aws_sdk_secretsmanager::config::Builder::from(sdk).interceptor(crate::metrics::CountRequests).build();
    let client = aws_sdk_secretsmanager::Client::from_conf(conf);
    let out = match client.get_secret_value().secret_id(secret_id).send().await {
        Ok(out) => out,
        Err(e) => {
            if e.as_service_error().and_then(|se| se.code()) == Some("ResourceNotFoundException") {
                return Ok(HashMap::new());
            }
            return Err(StoreError::Unavailable(format!(
                "Secrets Manager: {}",
                aws_smithy_types::error::display::DisplayErrorContext(&e)
            )));
        }
    };
    let text = out.secret_string().unwrap_or("{}");
    let map: HashMap<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|_| StoreError::Corrupt(format!("secret {secret_id} is not a JSON object of strings")))?;
    Ok(map.into_iter().filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string()))).collect())
}
