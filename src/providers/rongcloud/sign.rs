//! RongCloud's request signature (reference §1.2), also the one on its routed callbacks (§3):
//! `Signature = lowercase_hex(SHA1(AppSecret + Nonce + Timestamp))`.

pub use crate::providers::digest::same_digest;

/// `lowercase_hex(SHA1(secret + nonce + timestamp))`.
pub fn signature(secret: &str, nonce: &str, timestamp: &str) -> String {
    crate::providers::digest::sha1_hex(&[secret, nonce, timestamp])
}

/// A fresh nonce: 16 hexadecimal characters, inside the documented 18 (§1.2).
pub fn nonce() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_sha1_of_secret_nonce_and_timestamp_in_lower_hex() {
        // SHA1("abc") = a9993e36…; split across the three parts it must be the same.
        assert_eq!(
            signature("a", "b", "c"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert!(same_digest(
            &signature("a", "b", "c").to_uppercase(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        ));
        assert!(!same_digest(
            &signature("a", "b", "d"),
            &signature("a", "b", "c")
        ));
        let n = nonce();
        assert!(n.len() <= 18 && n.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
