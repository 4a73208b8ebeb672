//! Opaque ids: a type prefix and a ULID, so ids sort by creation time and a
//! stray id in a log says what it names.

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_lowercase())
}

pub fn workspace_id() -> String {
    new_id("ws")
}
pub fn lead_id() -> String {
    new_id("lead")
}
pub fn list_id() -> String {
    new_id("list")
}
pub fn run_id() -> String {
    new_id("run")
}

/// An id that is the same every time it is derived from the same `seed`,
/// stamped with `at_ms` so it still sorts by time (a rule run's id comes from
/// the stream records that started it: a redelivery derives the same run).
pub fn derived_id(prefix: &str, at_ms: u64, seed: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(seed.as_bytes());
    let random = u128::from_be_bytes(digest[..16].try_into().expect("16 bytes"));
    format!("{prefix}_{}", ulid::Ulid::from_parts(at_ms, random).to_string().to_lowercase())
}

/// A random API token. Only its hash is stored (see `credits`/auth).
pub fn api_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("pfl_{}", hex::encode(bytes))
}

/// The stored form of a token: SHA-256, hex. Tokens carry 256 bits of
/// randomness, so a plain (unsalted) hash is enough and allows a key lookup.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Checks an id's form before it reaches a key expression: callers' ids end up
/// inside composite keys, so a `#` or an over-long string must not pass.
pub fn is_valid_id(id: &str, prefix: &str) -> bool {
    id.len() <= 64
        && id
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('_'))
            .is_some_and(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ids_sort_by_creation() {
        let a = run_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = run_id();
        assert!(a < b);
        assert!(is_valid_id(&a, "run"));
        assert!(!is_valid_id("run_a#b", "run"));
        assert!(!is_valid_id(&a, "lead"));
    }
    #[test]
    fn derived_ids_are_stable_valid_and_distinct() {
        let a = derived_id("run", 1_700_000_000_000, "rule_1/evt_1");
        assert_eq!(a, derived_id("run", 1_700_000_000_000, "rule_1/evt_1"));
        assert_ne!(a, derived_id("run", 1_700_000_000_000, "rule_1/evt_2"));
        assert!(is_valid_id(&a, "run"));
        assert!(derived_id("run", 1, "x") < derived_id("run", 2, "x"));
    }
    #[test]
    fn token_hash_is_stable_and_not_the_token() {
        let t = api_token();
        assert_eq!(token_hash(&t), token_hash(&t));
        assert_ne!(token_hash(&t), t);
        assert_ne!(api_token(), t);
    }
}
