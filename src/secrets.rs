//! Sealing secrets at rest (app keys, callback tokens) with XChaCha20-Poly1305 under one master
//! key. The master key comes from `IMSHIFT_MASTER_KEY` (64 hex characters) or from a key file
//! created with mode 0600 on first run; losing it makes every stored secret unreadable, so the
//! README says how to back it up.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use std::path::{Path, PathBuf};

const NONCE_LEN: usize = 24;

pub struct MasterKey {
    cipher: XChaCha20Poly1305,
}

// Never print key material.
impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("IMSHIFT_MASTER_KEY must be 64 hexadecimal characters (32 bytes)")]
    BadEnvKey,
    #[error(
        "the master key file {0} is not 32 bytes (64 hex characters); restore it from your backup"
    )]
    BadKeyFile(PathBuf),
    #[error("cannot read or create the master key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "a stored secret cannot be opened with this master key (was the key changed or lost?)"
    )]
    Open,
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(&bytes.into()),
        }
    }

    /// A fresh random key (tests and first runs).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    fn parse_hex(text: &str) -> Option<[u8; 32]> {
        hex::decode(text.trim()).ok()?.try_into().ok()
    }

    /// From `IMSHIFT_MASTER_KEY` if set, else from `file`, creating it (0600) if missing.
    pub fn load(env_value: Option<&str>, file: &Path) -> Result<Self, SecretError> {
        if let Some(v) = env_value {
            return Self::parse_hex(v)
                .map(Self::from_bytes)
                .ok_or(SecretError::BadEnvKey);
        }
        let io = |source| SecretError::Io {
            path: file.to_path_buf(),
            source,
        };
        match std::fs::read_to_string(file) {
            Ok(text) => Self::parse_hex(&text)
                .map(Self::from_bytes)
                .ok_or_else(|| SecretError::BadKeyFile(file.to_path_buf())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                rand::rng().fill_bytes(&mut bytes);
                if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                write_private(file, &format!("{}\n", hex::encode(bytes))).map_err(io)?;
                tracing::warn!(
                    file = %file.display(),
                    "created a new master key; back it up: without it stored app keys cannot be read"
                );
                Ok(Self::from_bytes(bytes))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// `nonce || ciphertext`. `context` binds the secret to where it is stored (say, a migration
    /// id and field name), so a sealed value copied elsewhere does not open.
    pub fn seal(&self, secret: &SecretString, context: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret.expose_secret().as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory input");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, sealed: &[u8], context: &str) -> Result<SecretString, SecretError> {
        if sealed.len() < NONCE_LEN {
            return Err(SecretError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Open)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| SecretError::Open)
    }
}

/// The last characters of a secret, which the UI shows so people can tell keys apart.
pub fn last4(secret: &SecretString) -> String {
    let s = secret.expose_secret();
    let n = s.chars().count();
    s.chars().skip(n.saturating_sub(4)).collect()
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_in_their_context() {
        let key = MasterKey::generate();
        let secret = SecretString::from("5bd2850fff3ecb11d7c805251c51ee46");
        let sealed = key.seal(&secret, "m1/secret");
        assert!(
            !sealed.windows(8).any(|w| w == b"5bd2850f"),
            "ciphertext hides the secret"
        );
        assert_eq!(
            key.open(&sealed, "m1/secret").unwrap().expose_secret(),
            secret.expose_secret()
        );
        assert!(key.open(&sealed, "m2/secret").is_err());
        assert!(MasterKey::generate().open(&sealed, "m1/secret").is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key.open(&tampered, "m1/secret").is_err());
        assert_eq!(last4(&secret), "ee46");
    }

    #[test]
    fn the_key_file_is_created_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("imshift-key-{}", uuid::Uuid::new_v4()));
        let file = dir.join("master.key");
        let a = MasterKey::load(None, &file).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let sealed = a.seal(&SecretString::from("x"), "c");
        let b = MasterKey::load(None, &file).unwrap();
        assert!(b.open(&sealed, "c").is_ok(), "the same key is loaded again");
        assert!(MasterKey::load(Some("zz"), &file).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
