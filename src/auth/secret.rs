//! Random one-time secrets (invite links, API tokens). Only their SHA-256 is stored: they are
//! 256-bit random, so a fast hash is enough and lookups stay a single indexed equality.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new secret as `{prefix}{43 url-safe characters}`.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_unique_and_hash_stably() {
        let a = super::generate("x_");
        let b = super::generate("x_");
        assert_ne!(a, b);
        assert!(a.starts_with("x_") && a.len() == 45);
        assert_eq!(super::hash(&a), super::hash(&a));
        assert_ne!(super::hash(&a), super::hash(&b));
    }
}
