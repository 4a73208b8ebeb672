//! Records of the table's change stream, as the event flow sees them: the
//! same shape whether they came from Lambda's DynamoDB event (AWS) or from
//! the local poller reading DynamoDB Local's Streams API.

use crate::store::Row;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Modify,
    Remove,
}

impl ChangeKind {
    pub fn parse(s: &str) -> Option<ChangeKind> {
        match s {
            "INSERT" => Some(ChangeKind::Insert),
            "MODIFY" => Some(ChangeKind::Modify),
            "REMOVE" => Some(ChangeKind::Remove),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct StreamRecord {
    /// Stable across redeliveries of the same record.
    pub event_id: String,
    /// Position in its shard; what a partial batch failure reports.
    pub sequence_number: String,
    pub kind: ChangeKind,
    /// When the change happened (milliseconds since the epoch, approximate).
    pub created_at_ms: u64,
    pub keys: Row,
    pub old_image: Option<Row>,
    pub new_image: Option<Row>,
}

impl StreamRecord {
    pub fn key(&self, name: &str) -> Option<&str> {
        self.keys.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
    }
}
