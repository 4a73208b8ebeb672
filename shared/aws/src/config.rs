//! Settings from the environment and the SDK clients built from them.
//!
//! Endpoints, region and credentials come from the SDK's standard variables
//! (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SQS`, `AWS_REGION`, ...),
//! so the local stack needs no code path of its own. The template also
//! declares `PUFFLE_DYNAMODB_ENDPOINT` and `PUFFLE_SQS_ENDPOINT`, empty on
//! AWS: `sam local invoke --env-vars` can only override variables the
//! template declares, and an empty `AWS_ENDPOINT_URL_*` would be an invalid
//! endpoint rather than none.

use crate::bus::EventBus;
use crate::metrics;
use crate::queue::Queue;
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct Settings {
    pub table_name: String,
    /// Full queue URL (set on AWS by the template).
    pub queue_url: Option<String>,
    /// Queue name to look up when no URL is given (local stack).
    pub queue_name: String,
    pub dlq_name: String,
    /// The EventBridge bus lifecycle events go to.
    pub event_bus_name: String,
    /// The webhook delivery queue (URL on AWS, name locally).
    pub webhook_queue_url: Option<String>,
    pub webhook_queue_name: String,
}

impl Settings {
    pub fn from_env() -> Settings {
        let var = |k: &str, d: &str| std::env::var(k).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| d.to_string());
        Settings {
            table_name: var("PUFFLE_TABLE_NAME", crate::definitions::local_name("Table").as_str()),
            queue_url: std::env::var("PUFFLE_QUEUE_URL").ok().filter(|v| !v.is_empty()),
            queue_name: var("PUFFLE_QUEUE_NAME", crate::definitions::local_name("WorkQueue").as_str()),
            dlq_name: var("PUFFLE_DLQ_NAME", crate::definitions::local_name("WorkDeadLetterQueue").as_str()),
            event_bus_name: var("PUFFLE_EVENT_BUS_NAME", "puffle"),
            webhook_queue_url: std::env::var("PUFFLE_WEBHOOK_QUEUE_URL").ok().filter(|v| !v.is_empty()),
            webhook_queue_name: var(
                "PUFFLE_WEBHOOK_QUEUE_NAME",
                crate::definitions::local_name("WebhookQueue").as_str(),
            ),
        }
    }
}

/// The clients a function needs, built once per process (cold start) and
/// cloned cheaply into every invocation.
#[derive(Clone)]
pub struct AwsContext {
    pub sdk: aws_config::SdkConfig,
    pub store: Store,
    pub queue: Queue,
    /// Webhook deliveries (one message per attempt).
    pub webhook_queue: Queue,
    pub bus: EventBus,
    pub settings: Settings,
}

/// The SDK's retries, the one policy for throttling, 5xx and dropped
/// connections (the store retries only what the SDK does not: unprocessed
/// batch keys and transaction conflicts). Standard mode (exponential
/// backoff with jitter); 5 attempts, where the default is 3,
/// because DynamoDB throttles in bursts while on-demand capacity scales.
pub fn sdk_retries() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard().with_max_attempts(5)
}

/// The SDK's HTTP client: hyper and rustls with ring, the crypto provider
/// reqwest (provider calls, webhooks) uses too, so a binary links one TLS
/// stack and one crypto library. The SDK's `default-https-client` would add
/// aws-lc (about 1 MB per binary) for the same job.
pub fn sdk_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// The SDK's default configuration chain with [`sdk_http_client`]: for the
/// CLI, the local server, the tests and the benchmarks.
pub fn sdk_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(sdk_http_client())
}

impl AwsContext {
    pub async fn from_env() -> AwsContext {
        let settings = Settings::from_env();
        let sdk = sdk_loader().retry_config(sdk_retries()).load().await;
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let (dynamodb, sqs) = (var("PUFFLE_DYNAMODB_ENDPOINT"), var("PUFFLE_SQS_ENDPOINT"));
        Self::with_endpoints(sdk, settings, dynamodb.as_deref(), sqs.as_deref())
    }

    /// What a Lambda function needs, and no more: the region and the
    /// credentials Lambda puts in the environment, the endpoints of
    /// `PUFFLE_*_ENDPOINT` / `AWS_ENDPOINT_URL_*` when set (local runs). The
    /// SDK's default chain (profiles, SSO, STS web identity, ECS, IMDS) is
    /// about 1 MiB of code a function never runs; [`AwsContext::from_env`]
    /// keeps it for the CLI, the local server and the tests.
    pub async fn for_lambda() -> AwsContext {
        use aws_credential_types::provider::SharedCredentialsProvider;
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".into());
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .http_client(sdk_http_client())
            .region(aws_config::Region::new(region))
            .retry_config(sdk_retries())
            .credentials_provider(SharedCredentialsProvider::new(
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            ))
            .build();
        let dynamodb = var("PUFFLE_DYNAMODB_ENDPOINT").or_else(|| var("AWS_ENDPOINT_URL_DYNAMODB"));
        let sqs = var("PUFFLE_SQS_ENDPOINT").or_else(|| var("AWS_ENDPOINT_URL_SQS"));
        let mut ctx = Self::with_endpoints(sdk, Settings::from_env(), dynamodb.as_deref(), sqs.as_deref());
        if let Some(u) = var("PUFFLE_EVENTBRIDGE_ENDPOINT").or_else(|| var("AWS_ENDPOINT_URL_EVENTBRIDGE")) {
            let conf = aws_sdk_eventbridge::config::Builder::from(&ctx.sdk)
                .interceptor(metrics::CountRequests)
                .endpoint_url(u)
                .build();
            ctx.bus = EventBus::new(aws_sdk_eventbridge::Client::from_conf(conf), ctx.settings.event_bus_name.clone());
        }
        ctx
    }

    pub fn with_config(sdk: aws_config::SdkConfig, settings: Settings) -> AwsContext {
        Self::with_endpoints(sdk, settings, None, None)
    }

    /// Explicit endpoints (tests that run a stack of their own on other ports).
    pub fn with_endpoints(
        sdk: aws_config::SdkConfig,
        settings: Settings,
        dynamodb: Option<&str>,
        sqs: Option<&str>,
    ) -> AwsContext {
        let mut dynamo_conf = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(metrics::CountRequests)
            .interceptor(metrics::InjectThrottling::from_env());
        if let Some(u) = dynamodb {
            dynamo_conf = dynamo_conf.endpoint_url(u);
        }
        let mut sqs_conf = aws_sdk_sqs::config::Builder::from(&sdk).interceptor(metrics::CountRequests);
        if let Some(u) = sqs {
            sqs_conf = sqs_conf.endpoint_url(u);
        }
        let (dynamo_conf, sqs_conf) = (dynamo_conf.build(), sqs_conf.build());
        let bus_conf = aws_sdk_eventbridge::config::Builder::from(&sdk).interceptor(metrics::CountRequests).build();
        let db = aws_sdk_dynamodb::Client::from_conf(dynamo_conf);
        let sqs = aws_sdk_sqs::Client::from_conf(sqs_conf);
        AwsContext {
            store: Store::new(db, settings.table_name.clone()),
            webhook_queue: Queue::new(
                sqs.clone(),
                settings.webhook_queue_url.clone(),
                settings.webhook_queue_name.clone(),
            ),
            queue: Queue::new(sqs, settings.queue_url.clone(), settings.queue_name.clone()),
            bus: EventBus::new(aws_sdk_eventbridge::Client::from_conf(bus_conf), settings.event_bus_name.clone()),
            sdk,
            settings,
        }
    }

    /// The dead-letter queue, for the local poller and tests.
    pub fn dead_letter_queue(&self) -> Queue {
        Queue::new(self.queue.client().clone(), None, self.settings.dlq_name.clone())
    }
}

#[cfg(test)]
mod tests {
    /// One crypto library in every binary: ring, through rustls, for the SDK
    /// and reqwest alike. A dependency that brings aws-lc back (the SDK's
    /// `default-https-client`, reqwest's default TLS) fails here, before it
    /// costs each Lambda zip about a megabyte.
    #[test]
    fn one_crypto_library_is_linked() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock")).unwrap();
        let has = |name: &str| lock.lines().any(|l| l == format!("name = \"{name}\""));
        assert!(has("ring") && has("rustls"), "rustls on ring is the TLS stack");
        for other in ["aws-lc-rs", "aws-lc-sys", "openssl", "openssl-sys", "native-tls"] {
            assert!(!has(other), "{other} is in Cargo.lock: a second crypto library");
        }
    }

    /// The SDK's client speaks TLS with the provider it names (no
    /// process-wide default is installed, and none is needed): a call to an
    /// https endpoint opens with a TLS handshake record.
    #[tokio::test]
    async fn sdk_calls_over_https_open_with_a_tls_handshake() {
        use aws_credential_types::{provider::SharedCredentialsProvider, Credentials};
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let first_bytes = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut head = [0u8; 3];
            s.read_exact(&mut head).await.unwrap();
            head
        });
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .http_client(super::sdk_http_client())
            .region(aws_config::Region::new("us-east-1"))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new("k", "s", None, None, "test")))
            .build();
        let conf =
            aws_sdk_dynamodb::config::Builder::from(&sdk).endpoint_url(format!("https://127.0.0.1:{port}")).build();
        let db = aws_sdk_dynamodb::Client::from_conf(conf);
        let call = tokio::spawn(async move { db.list_tables().send().await.is_ok() });
        let head = tokio::time::timeout(std::time::Duration::from_secs(5), first_bytes).await.unwrap().unwrap();
        call.abort();
        // 0x16: a handshake record; 0x03: TLS (1.0 as record version for the ClientHello).
        assert_eq!((head[0], head[1]), (0x16, 0x03), "{head:?}");
    }
}
