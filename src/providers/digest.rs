//! Digests the providers sign with. Several sign the same way: a lower-case hex SHA-1 over their
//! secret followed by two values (a nonce and a time), on requests and on the callbacks they
//! send.

use sha1::{Digest, Sha1};

/// `lowercase_hex(SHA1(parts concatenated))`.
pub fn sha1_hex(parts: &[&str]) -> String {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Compares two hex digests in time independent of where they differ, ignoring case.
pub fn same_digest(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| {
            acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())
        }) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_over_parts_is_sha1_of_their_concatenation_in_lower_hex() {
        // SHA1("abc") = a9993e36…, however the input is split.
        let want = "a9993e364706816aba3e25717850c26c9cd0d89d";
        assert_eq!(sha1_hex(&["a", "b", "c"]), want);
        assert_eq!(sha1_hex(&["abc"]), want);
        assert!(same_digest(&want.to_uppercase(), want));
        assert!(!same_digest(&sha1_hex(&["a", "b", "d"]), want));
        assert!(!same_digest("ab", want));
    }
}
