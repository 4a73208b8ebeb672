//! Opaque, tamper-evident paging cursors.
//!
//! A cursor is `base64url(json) . base64url(hmac)`. The MAC covers the
//! listing it belongs to (`scope`), so a cursor from one run's items cannot
//! page another run, and an edited cursor is a 400, never a 500.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{de::DeserializeOwned, Serialize};
use sha2::Sha256;

use crate::error::DomainError;

#[derive(Clone)]
pub struct CursorKey(Vec<u8>);

impl CursorKey {
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        CursorKey(secret.as_ref().to_vec())
    }

    fn mac(&self, scope: &str, payload: &[u8]) -> Hmac<Sha256> {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.0).expect("hmac takes any key length");
        m.update(scope.as_bytes());
        m.update(&[0]);
        m.update(payload);
        m
    }

    pub fn encode<T: Serialize>(&self, scope: &str, value: &T) -> String {
        let payload = serde_json::to_vec(value).expect("cursor payloads serialise");
        let tag = self.mac(scope, &payload).finalize().into_bytes();
        format!("{}.{}", B64.encode(&payload), B64.encode(tag))
    }

    pub fn decode<T: DeserializeOwned>(&self, scope: &str, cursor: &str) -> Result<T, DomainError> {
        let (p, t) = cursor.split_once('.').ok_or(DomainError::InvalidCursor)?;
        let payload = B64.decode(p).map_err(|_| DomainError::InvalidCursor)?;
        let tag = B64.decode(t).map_err(|_| DomainError::InvalidCursor)?;
        self.mac(scope, &payload).verify_slice(&tag).map_err(|_| DomainError::InvalidCursor)?;
        serde_json::from_slice(&payload).map_err(|_| DomainError::InvalidCursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let k = CursorKey::new("k");
        let c = k.encode("items:run_1", &("lead_a".to_string(), 3u32));
        let back: (String, u32) = k.decode("items:run_1", &c).unwrap();
        assert_eq!(back, ("lead_a".to_string(), 3));
    }

    #[test]
    fn other_scope_or_key_is_rejected() {
        let k = CursorKey::new("k");
        let c = k.encode("items:run_1", &"x");
        assert!(k.decode::<String>("items:run_2", &c).is_err());
        assert!(CursorKey::new("other").decode::<String>("items:run_1", &c).is_err());
    }

    proptest! {
        #[test]
        fn any_edit_is_rejected(pos in 0usize..40, ch in proptest::char::range('0', 'z')) {
            let k = CursorKey::new("k");
            let c = k.encode("s", &"lead_01hzzzzzzzzzzzzz");
            let mut chars: Vec<char> = c.chars().collect();
            let i = pos % chars.len();
            prop_assume!(chars[i] != ch);
            chars[i] = ch;
            let edited: String = chars.into_iter().collect();
            prop_assert!(k.decode::<String>("s", &edited).is_err());
        }
    }
}
