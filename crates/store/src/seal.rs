//! Encryption at rest for secrets the server has to read back.
//!
//! API secret keys cannot be hashed: verifying an HMAC signature needs the key itself. They are
//! sealed with AES-256-GCM under a master key that lives outside the database (a file created
//! with mode 0600 beside it, or given by the operator), with the record's identifier as
//! associated data so a sealed value cannot be moved to another record.

use crate::StoreError;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use std::io::Write;
use std::path::Path;

const NONCE_LEN: usize = 12;

#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<master key redacted>)")
    }
}

impl Sealer {
    pub fn from_key(key: &[u8; 32]) -> Self {
        Sealer { cipher: Aes256Gcm::new(key.into()) }
    }

    /// Parses a master key written as 64 hex digits.
    pub fn from_hex(hex_key: &str) -> Result<Self, String> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| "the master key is not hex".to_string())?;
        let key: [u8; 32] =
            bytes.try_into().map_err(|_| "the master key must be 32 bytes (64 hex digits)".to_string())?;
        Ok(Sealer::from_key(&key))
    }

    /// Reads the master key file, creating it with a random key (mode 0600) if it is absent.
    pub fn from_key_file(path: &Path) -> Result<Self, StoreError> {
        let err = |reason: String| StoreError::MasterKey { path: path.display().to_string(), reason };
        match std::fs::read_to_string(path) {
            Ok(text) => Sealer::from_hex(&text).map_err(err),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(|e| err(e.to_string()))?;
                file.write_all(hex::encode(key).as_bytes()).map_err(|e| err(e.to_string()))?;
                file.sync_all().map_err(|e| err(e.to_string()))?;
                Ok(Sealer::from_key(&key))
            }
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// Nonce followed by ciphertext and tag.
    pub fn seal(&self, plaintext: &[u8], associated: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: associated })
            .expect("AES-GCM encryption of a short secret cannot fail");
        [nonce.as_slice(), &sealed].concat()
    }

    pub fn open(&self, sealed: &[u8], associated: &[u8]) -> Result<Vec<u8>, StoreError> {
        if sealed.len() < NONCE_LEN {
            return Err(StoreError::Unseal);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: associated })
            .map_err(|_| StoreError::Unseal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let s = Sealer::from_key(&[7; 32]);
        let sealed = s.seal(b"secret", b"AKID1");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(s.open(&sealed, b"AKID1").unwrap(), b"secret");
        assert!(s.open(&sealed, b"AKID2").is_err(), "bound to its record");
        assert!(Sealer::from_key(&[8; 32]).open(&sealed, b"AKID1").is_err(), "bound to its key");
        assert!(s.open(&sealed[..5], b"AKID1").is_err());
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let sealed = Sealer::from_key_file(&path).unwrap().seal(b"x", b"");
        assert_eq!(Sealer::from_key_file(&path).unwrap().open(&sealed, b"").unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&path, "nothex").unwrap();
        assert!(Sealer::from_key_file(&path).is_err());
    }
}
