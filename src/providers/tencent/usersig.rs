//! UserSig, TLSSigAPIv2 "HMAC" version (spec §2): generate for the client, verify for the
//! sandbox. Only decoded fields and `TLS.sig` are stable across SDKs, so verification never
//! compares usersig strings.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::io::{Read, Write};

type HmacSha256 = Hmac<Sha256>;

/// Official SDK default validity: 180 days.
pub const DEFAULT_EXPIRE_SECS: u64 = 180 * 86_400;

/// Why a UserSig was refused; `code()` is the Tencent error code the server returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserSigError {
    #[error("the UserSig cannot be decoded: {0}")]
    Malformed(String),
    #[error("the UserSig is for SDKAppID {in_sig}, the request says {expected}")]
    SdkAppIdMismatch { expected: u64, in_sig: u64 },
    #[error("the UserSig is for identifier {in_sig:?}, the request says {expected:?}")]
    IdentifierMismatch { expected: String, in_sig: String },
    #[error("the UserSig expired at {expired_at} (now {now})")]
    Expired { expired_at: u64, now: u64 },
    #[error("the UserSig signature does not match the secret key")]
    BadSignature,
    #[error("the UserSig userbuf does not match what was expected")]
    UserBufMismatch,
}

impl UserSigError {
    pub fn code(&self) -> i64 {
        match self {
            UserSigError::Malformed(_) | UserSigError::UserBufMismatch => 70003,
            UserSigError::SdkAppIdMismatch { .. } => 70014,
            UserSigError::IdentifierMismatch { .. } => 70013,
            UserSigError::Expired { .. } => 70001,
            UserSigError::BadSignature => 70009,
        }
    }
}

/// The JSON document inside a UserSig. Field order mirrors the Python SDK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSigDoc {
    #[serde(rename = "TLS.ver")]
    pub ver: String,
    #[serde(rename = "TLS.identifier")]
    pub identifier: String,
    #[serde(rename = "TLS.sdkappid")]
    pub sdkappid: u64,
    #[serde(rename = "TLS.expire")]
    pub expire: u64,
    #[serde(rename = "TLS.time")]
    pub time: u64,
    /// Standard base64 of the user buffer, when present.
    #[serde(
        rename = "TLS.userbuf",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub userbuf: Option<String>,
    #[serde(rename = "TLS.sig")]
    pub sig: String,
}

impl UserSigDoc {
    /// The moment after which the sig is expired (expired iff now > this).
    pub fn expires_at(&self) -> u64 {
        self.time.saturating_add(self.expire)
    }
}

fn hmac_content(
    identifier: &str,
    sdkappid: u64,
    time: u64,
    expire: u64,
    userbuf_b64: Option<&str>,
) -> String {
    let mut s = format!(
        "TLS.identifier:{identifier}\nTLS.sdkappid:{sdkappid}\nTLS.time:{time}\nTLS.expire:{expire}\n"
    );
    if let Some(b) = userbuf_b64 {
        s.push_str("TLS.userbuf:");
        s.push_str(b);
        s.push('\n');
    }
    s
}

fn mac(key: &str, content: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    m.update(content.as_bytes());
    m
}

/// Generate a UserSig valid from `now` for `expire` seconds.
pub fn generate(sdkappid: u64, key: &str, identifier: &str, expire: u64, now: u64) -> String {
    generate_with_userbuf(sdkappid, key, identifier, expire, now, None)
}

pub fn generate_with_userbuf(
    sdkappid: u64,
    key: &str,
    identifier: &str,
    expire: u64,
    now: u64,
    userbuf: Option<&[u8]>,
) -> String {
    let userbuf = userbuf.map(|b| STANDARD.encode(b));
    let content = hmac_content(identifier, sdkappid, now, expire, userbuf.as_deref());
    let sig = STANDARD.encode(mac(key, &content).finalize().into_bytes());
    let doc = UserSigDoc {
        ver: "2.0".into(),
        identifier: identifier.into(),
        sdkappid,
        expire,
        time: now,
        userbuf,
        sig,
    };
    encode_doc(&doc)
}

/// Python-style JSON (`", "` and `": "` separators), zlib level 6, Tencent's base64 variant.
fn encode_doc(doc: &UserSigDoc) -> String {
    let mut json = String::from("{");
    let mut fields: Vec<(&str, String)> = vec![
        ("TLS.ver", json_str(&doc.ver)),
        ("TLS.identifier", json_str(&doc.identifier)),
        ("TLS.sdkappid", doc.sdkappid.to_string()),
        ("TLS.expire", doc.expire.to_string()),
        ("TLS.time", doc.time.to_string()),
    ];
    if let Some(b) = &doc.userbuf {
        fields.push(("TLS.userbuf", json_str(b)));
    }
    fields.push(("TLS.sig", json_str(&doc.sig)));
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            json.push_str(", ");
        }
        json.push_str(&json_str(k));
        json.push_str(": ");
        json.push_str(v);
    }
    json.push('}');
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    z.write_all(json.as_bytes())
        .expect("writing to a Vec cannot fail");
    let compressed = z.finish().expect("writing to a Vec cannot fail");
    STANDARD
        .encode(compressed)
        .chars()
        .map(|c| match c {
            '+' => '*',
            '/' => '-',
            '=' => '_',
            c => c,
        })
        .collect()
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

/// Decode without checking anything but the format.
pub fn decode(usersig: &str) -> Result<UserSigDoc, UserSigError> {
    if usersig.is_empty() {
        return Err(UserSigError::Malformed("empty".into()));
    }
    let b64: String = usersig
        .chars()
        .map(|c| match c {
            '*' => '+',
            '-' => '/',
            '_' => '=',
            c => c,
        })
        .collect();
    let compressed = STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| UserSigError::Malformed(format!("base64: {e}")))?;
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(&compressed[..])
        .take(64 * 1024)
        .read_to_end(&mut json)
        .map_err(|e| UserSigError::Malformed(format!("zlib: {e}")))?;
    serde_json::from_slice(&json).map_err(|e| UserSigError::Malformed(format!("json: {e}")))
}

/// Verify a REST UserSig (no userbuf allowed), as the server does (spec §2.2).
pub fn verify(
    usersig: &str,
    sdkappid: u64,
    key: &str,
    identifier: &str,
    now: u64,
) -> Result<UserSigDoc, UserSigError> {
    verify_with_userbuf(usersig, sdkappid, key, identifier, now, None)
}

/// Verify, requiring exactly `userbuf` (None = must have no userbuf).
pub fn verify_with_userbuf(
    usersig: &str,
    sdkappid: u64,
    key: &str,
    identifier: &str,
    now: u64,
    userbuf: Option<&[u8]>,
) -> Result<UserSigDoc, UserSigError> {
    let doc = decode(usersig)?;
    if doc.sdkappid != sdkappid {
        return Err(UserSigError::SdkAppIdMismatch {
            expected: sdkappid,
            in_sig: doc.sdkappid,
        });
    }
    if doc.identifier != identifier {
        return Err(UserSigError::IdentifierMismatch {
            expected: identifier.into(),
            in_sig: doc.identifier.clone(),
        });
    }
    if now > doc.expires_at() {
        return Err(UserSigError::Expired {
            expired_at: doc.expires_at(),
            now,
        });
    }
    match (&doc.userbuf, userbuf) {
        (None, None) => {}
        (Some(have), Some(want)) if STANDARD.decode(have).ok().as_deref() == Some(want) => {}
        _ => return Err(UserSigError::UserBufMismatch),
    }
    let claimed = STANDARD
        .decode(doc.sig.as_bytes())
        .map_err(|_| UserSigError::BadSignature)?;
    let content = hmac_content(
        &doc.identifier,
        doc.sdkappid,
        doc.time,
        doc.expire,
        doc.userbuf.as_deref(),
    );
    // verify_slice compares in constant time.
    mac(key, &content)
        .verify_slice(&claimed)
        .map_err(|_| UserSigError::BadSignature)?;
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
    const A_PY: &str = "eJyrVgrxCdYrSy1SslJQMtIzUNJRAItkpqTmlWSmZUIkKjIT87NK82CSxSnZiQUFmSlAKUMTAyiAyqVWFGQWpYJkTE1NjRDiJZm5YFFzNPXFmekgG3zKHM1T9D3LzdODi-OKs8vCqpxcAvydnV2SSv2cy03cPcpDnA2SMgu0nUxslWoBHdYzUg__";
    const A_NPM: &str = "eJyrVgrxCdYrSy1SslIy0jNQ0gHzM1NS80oy0zLBwhWZiflZpXlQqeKU7MSCgswUJStDEwMogMiUZOamKlkZmqOKplYUZBaBxE1NTY3gosWZ6UpWSj5ljuYp*p7l5unBxXnF2WVhVU4uAf7Ozi5JpX7O5SbuHuUhzgZJmQXaTia2SrUAohcx8g__";
    const B_PY: &str = "eJyrVgrxCdYrSy1SslJQMtIzUNJRAItkpqTmlWSmZUIkElNyM-Myi0uKEkvyi2BKilOyEwsKMlOACgxNDKAAKpdaUZBZlAqUsTAzgQuWZOaChAzN0RQXZ6aDLKn0cUzVLjcPD00NLS1MCrPM0A*JMLcoNTLMD3HP1M60jCowLDUOKMiLNDOwVaoFAD4PNPI_";
    const B_NPM: &str = "eJyrVgrxCdYrSy1SslIy0jNQ0gHzM1NS80oy0zLBwokpuZl5mcUlRYkl*UVQBcUp2YkFBZkpSlaGJgZQAJEpycxNVbIyNEcVTa0oyCxKVbKyMDOBCRVnpitZKVX6OKZql5uHh6aGlhYmhVlm6IdEmFuUGhnmh7hnamdaRhUYlhoHFORFmhnYKtUCAK0SM5I_";
    const C_PY: &str = "eJyrVgrxCdYrSy1SslJQMtIzUNJRAItkpqTmlWSmZUIkElNyM-NgUsUp2YkFBZkpQAlDEwMIMITKpVYUZBalAmWMzQwMoGIlmbkgEUMzqFqYeGlxalFSaRrI-Mhwryy48ZnpIKHCUPNCL*Mg7VxP7QAD88QUI-PKENOwLEPfQm*X0uDiIuOMfLcCT5OyPN9sW6VaAGYEOAk_";

    const A_SIG: &str = "LvA7d/Iw7gSsnskvVzBDPOCCDbuNCw4GHwTC0bip+B4=";
    const B_SIG: &str = "yLAe+w7WUeUuqbV9h/TX78u21oTGi+i9Zp1u3PpnY60=";
    const C_SIG: &str = "qU7qJ3R+mI+P07ad27yT5Vj1MqKDuSsr3hoFpI4vnMk=";

    fn assert_doc(doc: &UserSigDoc, id: &str, app: u64, expire: u64, time: u64, sig: &str) {
        assert_eq!(doc.ver, "2.0");
        assert_eq!(doc.identifier, id);
        assert_eq!(doc.sdkappid, app);
        assert_eq!(doc.expire, expire);
        assert_eq!(doc.time, time);
        assert_eq!(doc.sig, sig);
    }

    #[test]
    fn vector_a_generates_the_official_sig() {
        let ours = generate(1_400_000_000, K1, "xiaojun", 15_552_000, 1_700_000_000);
        let doc = decode(&ours).unwrap();
        assert_doc(
            &doc,
            "xiaojun",
            1_400_000_000,
            15_552_000,
            1_700_000_000,
            A_SIG,
        );
        assert_eq!(doc.userbuf, None);
        for official in [A_PY, A_NPM] {
            let doc = decode(official).unwrap();
            assert_doc(
                &doc,
                "xiaojun",
                1_400_000_000,
                15_552_000,
                1_700_000_000,
                A_SIG,
            );
            verify(official, 1_400_000_000, K1, "xiaojun", 1_700_000_001).unwrap();
        }
        verify(&ours, 1_400_000_000, K1, "xiaojun", 1_700_000_001).unwrap();
    }

    #[test]
    fn vector_b_expiry_is_strict() {
        let ours = generate(1_400_000_000, K1, "administrator", 86_400, 1_700_000_000);
        assert_doc(
            &decode(&ours).unwrap(),
            "administrator",
            1_400_000_000,
            86_400,
            1_700_000_000,
            B_SIG,
        );
        for s in [B_PY, B_NPM, ours.as_str()] {
            assert_doc(
                &decode(s).unwrap(),
                "administrator",
                1_400_000_000,
                86_400,
                1_700_000_000,
                B_SIG,
            );
            verify(s, 1_400_000_000, K1, "administrator", 1_700_086_400).unwrap();
            let e = verify(s, 1_400_000_000, K1, "administrator", 1_700_086_401).unwrap_err();
            assert_eq!(e.code(), 70001);
        }
    }

    #[test]
    fn vector_c_with_userbuf() {
        let ours = generate_with_userbuf(
            1_400_000_001,
            "testkey",
            "admin",
            3600,
            1_600_000_000,
            Some(b"abc"),
        );
        for s in [C_PY, ours.as_str()] {
            let doc = decode(s).unwrap();
            assert_doc(&doc, "admin", 1_400_000_001, 3600, 1_600_000_000, C_SIG);
            assert_eq!(doc.userbuf.as_deref(), Some("YWJj"));
            verify_with_userbuf(
                s,
                1_400_000_001,
                "testkey",
                "admin",
                1_600_000_100,
                Some(b"abc"),
            )
            .unwrap();
            // A REST sig must not carry a userbuf.
            let e = verify(s, 1_400_000_001, "testkey", "admin", 1_600_000_100).unwrap_err();
            assert_eq!(e, UserSigError::UserBufMismatch);
        }
    }

    #[test]
    fn python_layout_is_reproduced() {
        // Same JSON text as Python; zlib backends may still differ, so compare decoded text.
        let ours = generate(1_400_000_000, K1, "xiaojun", 15_552_000, 1_700_000_000);
        assert_eq!(decode(&ours).unwrap(), decode(A_PY).unwrap());
    }

    #[test]
    fn verification_errors_map_to_codes() {
        let s = generate(1_400_000_000, K1, "administrator", 86_400, 1_700_000_000);
        let now = 1_700_000_010;
        let code = |r: Result<UserSigDoc, UserSigError>| r.unwrap_err().code();
        assert_eq!(
            code(verify("not a sig", 1_400_000_000, K1, "administrator", now)),
            70003
        );
        assert_eq!(
            code(verify("", 1_400_000_000, K1, "administrator", now)),
            70003
        );
        assert_eq!(
            code(verify(&s, 1_400_000_001, K1, "administrator", now)),
            70014
        );
        assert_eq!(code(verify(&s, 1_400_000_000, K1, "other", now)), 70013);
        assert_eq!(
            code(verify(&s, 1_400_000_000, "wrong-key", "administrator", now)),
            70009
        );
        assert_eq!(
            code(verify(
                &s,
                1_400_000_000,
                K1,
                "administrator",
                1_800_000_000
            )),
            70001
        );
    }
}
