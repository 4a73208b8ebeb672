//! Settings from the environment and the SDK clients built from them.
//!
//! Endpoints, region and credentials come only from the SDK's standard
//! variables (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SQS`,
//! `AWS_REGION`, ...), so the local stack needs no code path of its own.

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

impl AwsContext {
    pub async fn from_env() -> AwsContext {
        let settings = Settings::from_env();
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        Self::with_config(sdk, settings)
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
