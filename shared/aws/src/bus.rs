//! The event bus (EventBridge): run lifecycle events go out here, with
//! `Source: "puffle"` and the event name as `DetailType`. Locally the bus is
//! moto's EventBridge, reached through `AWS_ENDPOINT_URL_EVENTBRIDGE`.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use puffle_domain::events::{RunEvent, SOURCE};

use crate::error::{classify, StoreError};

#[derive(Clone)]
pub struct EventBus {
    client: aws_sdk_eventbridge::Client,
    name: String,
}

fn bus_err<E, R>(e: aws_sdk_eventbridge::error::SdkError<E, R>) -> StoreError
where
    E: aws_sdk_eventbridge::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match classify(e) {
        StoreError::Other(m) => StoreError::Queue(format!("event bus: {m}")),
        other => other,
    }
}

impl EventBus {
    pub fn new(client: aws_sdk_eventbridge::Client, name: String) -> EventBus {
        EventBus { client, name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn client(&self) -> &aws_sdk_eventbridge::Client {
        &self.client
    }

    /// Publishes events, ten per PutEvents (the API's limit). Any entry the
    /// bus did not take fails the call, so the stream batch is retried; the
    /// event ids stay the same, so a consumer sees duplicates, never gaps.
    pub async fn publish(&self, events: &[RunEvent]) -> Result<(), StoreError> {
        for batch in events.chunks(10) {
            let mut req = self.client.put_events();
            for e in batch {
                let detail = serde_json::to_string(e).map_err(|err| StoreError::Other(err.to_string()))?;
                req = req.entries(
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.name)
                        .source(SOURCE)
                        .detail_type(e.event_type.as_str())
                        .detail(detail)
                        .resources(format!("puffle:run:{}", e.run_id))
                        .build(),
                );
            }
            let out = req.send().await.map_err(bus_err)?;
            if out.failed_entry_count > 0 {
                let why: Vec<String> =
                    out.entries().iter().filter_map(|r| r.error_message().map(str::to_string)).collect();
                return Err(StoreError::Unavailable(format!(
                    "the event bus refused {} event(s): {}",
                    out.failed_entry_count,
                    why.join("; ")
                )));
            }
        }
        Ok(())
    }

    /// Creates the bus if it is missing (the local stack; AWS has the template's).
    pub async fn provision(&self) -> Result<(), StoreError> {
        match self.client.create_event_bus().name(&self.name).send().await {
            Ok(_) => Ok(()),
            Err(e) => match bus_err(e) {
                StoreError::Queue(m) if m.contains("ResourceAlreadyExists") => Ok(()),
                other => Err(other),
            },
        }
    }
}
