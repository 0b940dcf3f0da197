//! NetEase Yunxin's signatures (reference §1.2 and §3.1): one SHA-1 over the secret and two
//! values, shared by the client, the sandbox and the 抄送 (message copy) door.

pub use crate::providers::digest::same_digest;

/// `lowercase_hex(SHA1(secret + a + b))`: a request's `CheckSum` is over (Nonce, CurTime in
/// seconds), a message copy's over (MD5 of the body, CurTime in milliseconds).
pub fn checksum(secret: &str, a: &str, b: &str) -> String {
    crate::providers::digest::sha1_hex(&[secret, a, b])
}

/// Lower-case hex MD5 of a message copy's exact body bytes (its `MD5` header).
pub fn body_md5(body: &[u8]) -> String {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    h.update(body);
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_sha1_of_the_three_strings_in_lower_hex() {
        // SHA1("abc") = a9993e36…; split across the three parts it must be the same.
        assert_eq!(
            checksum("a", "b", "c"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert!(same_digest(
            &checksum("a", "b", "c").to_uppercase(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        ));
        assert!(!same_digest(
            &checksum("a", "b", "d"),
            &checksum("a", "b", "c")
        ));
    }

    #[test]
    fn body_md5_is_the_hex_md5_of_the_bytes() {
        assert_eq!(body_md5(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
