//! Workspace secrets (provider keys a workspace brings): names, and the
//! envelope that keeps values unreadable at rest.
//!
//! Envelope encryption: each value is sealed with its own random data key
//! (AES-256-GCM); the data key is sealed with the key-encryption key (KEK),
//! which never touches the table. The row's identity (workspace and name)
//! is the associated data of both, so a sealed value copied to another row
//! does not open.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Largest secret value accepted, in bytes.
pub const MAX_SECRET_BYTES: usize = 4096;

/// `^[A-Z][A-Z0-9_]{0,63}$`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=64).contains(&b.len())
        && b[0].is_ascii_uppercase()
        && b.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
}

/// The key-encryption key.
#[derive(Clone)]
pub struct Kek {
    key: [u8; 32],
    /// A fingerprint stored with each value, so a rotated KEK is noticed.
    pub id: String,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kek({})", self.id)
    }
}

impl Kek {
    /// From base64 of exactly 32 bytes.
    pub fn from_base64(s: &str) -> Result<Kek, String> {
        let bytes = B64.decode(s.trim()).map_err(|_| "the key is not base64".to_string())?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| "the key must be 32 bytes".to_string())?;
        let id = hex::encode(&Sha256::digest(key)[..8]);
        Ok(Kek { key, id })
    }
}

/// A sealed value as stored (all base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sealed {
    pub ciphertext: String,
    pub nonce: String,
    pub wrapped_key: String,
    pub key_nonce: String,
    pub kek_id: String,
}

fn aad(workspace: &str, name: &str) -> Vec<u8> {
    format!("puffle-secret:{workspace}:{name}").into_bytes()
}

pub fn seal(kek: &Kek, workspace: &str, name: &str, value: &str) -> Sealed {
    let aad = aad(workspace, name);
    let data_key = Aes256Gcm::generate_key(&mut OsRng);
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let ciphertext = Aes256Gcm::new(&data_key)
        .encrypt(&nonce, Payload { msg: value.as_bytes(), aad: &aad })
        .expect("AES-GCM encryption of a small value cannot fail");
    let key_nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let wrapped = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&kek.key))
        .encrypt(&key_nonce, Payload { msg: data_key.as_slice(), aad: &aad })
        .expect("AES-GCM encryption of a key cannot fail");
    Sealed {
        ciphertext: B64.encode(ciphertext),
        nonce: B64.encode(nonce),
        wrapped_key: B64.encode(wrapped),
        key_nonce: B64.encode(key_nonce),
        kek_id: kek.id.clone(),
    }
}

pub fn open(kek: &Kek, workspace: &str, name: &str, sealed: &Sealed) -> Result<String, String> {
    if sealed.kek_id != kek.id {
        return Err(format!("sealed with key {}, not the configured key", sealed.kek_id));
    }
    let aad = aad(workspace, name);
    let d = |s: &str| B64.decode(s).map_err(|_| "corrupt sealed value".to_string());
    let (key_nonce, nonce) = (d(&sealed.key_nonce)?, d(&sealed.nonce)?);
    if key_nonce.len() != 12 || nonce.len() != 12 {
        return Err("corrupt sealed value".into());
    }
    let data_key = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&kek.key))
        .decrypt(Nonce::from_slice(&key_nonce), Payload { msg: &d(&sealed.wrapped_key)?, aad: &aad })
        .map_err(|_| "the data key does not open with this key".to_string())?;
    if data_key.len() != 32 {
        return Err("corrupt sealed value".into());
    }
    let plain = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&data_key))
        .decrypt(Nonce::from_slice(&nonce), Payload { msg: &d(&sealed.ciphertext)?, aad: &aad })
        .map_err(|_| "the value does not open".to_string())?;
    String::from_utf8(plain).map_err(|_| "the value is not UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(byte: u8) -> Kek {
        Kek::from_base64(&B64.encode([byte; 32])).unwrap()
    }

    #[test]
    fn names() {
        for ok in ["A", "ACME_API_KEY", "K9", &format!("A{}", "B".repeat(63))] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "a", "1A", "_A", "A-B", "A B", "Ä", &format!("A{}", "B".repeat(64))] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn seal_and_open() {
        let k = kek(7);
        let s = seal(&k, "ws_1", "ACME_KEY", "sk_live_abc");
        assert!(!serde_json::to_string(&s).unwrap().contains("sk_live_abc"));
        assert_eq!(open(&k, "ws_1", "ACME_KEY", &s).unwrap(), "sk_live_abc");
        // Fresh data key and nonce each time.
        assert_ne!(seal(&k, "ws_1", "ACME_KEY", "sk_live_abc").ciphertext, s.ciphertext);
        // Bound to its row and its key.
        assert!(open(&k, "ws_2", "ACME_KEY", &s).is_err());
        assert!(open(&k, "ws_1", "OTHER", &s).is_err());
        assert!(open(&kek(8), "ws_1", "ACME_KEY", &s).is_err());
        let mut tampered = s.clone();
        tampered.ciphertext = B64.encode(b"garbage-garbage-garbage");
        assert!(open(&k, "ws_1", "ACME_KEY", &tampered).is_err());
    }

    #[test]
    fn keks() {
        assert!(Kek::from_base64("not base64!").is_err());
        assert!(Kek::from_base64(&B64.encode([1u8; 16])).is_err());
        assert_eq!(kek(1).id.len(), 16);
        assert_ne!(kek(1).id, kek(2).id);
        assert!(!format!("{:?}", kek(1)).contains("AQEB"));
    }
}
