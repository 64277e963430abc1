//! The SRTP master key of a subscriber leg, so the fan-out can protect forwarded RTP itself.
//!
//! rtc 0.21 keeps a session's SRTP context crate-private, and its `write_rtp` costs more than
//! the encryption (per packet: the sender's parameters rebuilt, seven handler queues, stats
//! keyed by strings). [`SrtpKeyTap`] is the session's crypto provider: it delegates every
//! operation to the built-in provider and notes the master key and salt that SRTP's key
//! derivation feeds to `block_encrypt` (RFC 3711 §4.3; nothing else in rtc calls it), and which
//! cipher each key then keys, which names the negotiated profile. rtc derives the local context
//! first, then the remote one (`DtlsHandler::update_srtp_contexts`); the unit tests below pin
//! the derivation pattern this relies on.

use std::sync::{Arc, Mutex};

use rtc::crypto::{
    ActiveKeyExchange, AeadAlgorithm, AeadCipher, BlockCipherAlgorithm, CbcAlgorithm, CbcCipher,
    CryptoAlgorithm, CryptoError, HashAlgorithm, HmacAlgorithm, KeyExchangeAlgorithm, Mac,
    PublicKey, RTCCrypto, RTCCryptoProvider, RTCRandom, SignatureScheme, SigningKey, StreamCipher,
    StreamCipherAlgorithm,
};
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile as DtlsProfile;
use rtc::srtp::protection_profile::ProtectionProfile;

/// The SRTP profiles a subscriber leg offers in DTLS: those whose cipher names them exactly
/// (the 32-bit-tag variant keys the same cipher as the 80-bit one).
pub(crate) const SUBSCRIBER_SRTP_PROFILES: [DtlsProfile; 3] = [
    DtlsProfile::Srtp_Aead_Aes_128_Gcm,
    DtlsProfile::Srtp_Aead_Aes_256_Gcm,
    DtlsProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
];

/// Why a session's local SRTP keys are not known.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum SrtpTapError {
    #[error("the SRTP keys were not derived yet ({0} of 2 seen)")]
    NotDerived(usize),
    #[error("the SRTP key was derived for an unknown cipher")]
    UnknownCipher,
}

/// A session's local (sending) SRTP master key and salt, and its profile.
#[derive(Clone)]
pub(crate) struct LocalSrtpKeys {
    pub master_key: Vec<u8>,
    pub master_salt: Vec<u8>,
    pub profile: ProtectionProfile,
}

impl std::fmt::Debug for LocalSrtpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSrtpKeys")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// One master key seen in key derivation: the first block derived from it (master salt ⊕
/// label 0, index 0: the salt itself), and the cipher it then keyed.
struct SeenKey {
    master_key: Vec<u8>,
    first_block: [u8; 16],
    cipher: Option<CipherKind>,
}

#[derive(Clone, Copy)]
enum CipherKind {
    Stream(StreamCipherAlgorithm),
    Aead(AeadAlgorithm),
}

/// A session's crypto provider that records its SRTP master keys (see the module docs).
pub(crate) struct SrtpKeyTap {
    inner: Arc<dyn RTCCryptoProvider>,
    crypto: TapCrypto,
}

struct TapCrypto {
    inner: Arc<dyn RTCCryptoProvider>,
    seen: Mutex<Vec<SeenKey>>,
}

impl SrtpKeyTap {
    pub fn new(inner: Arc<dyn RTCCryptoProvider>) -> Arc<Self> {
        Arc::new(Self {
            crypto: TapCrypto {
                inner: inner.clone(),
                seen: Mutex::new(Vec::new()),
            },
            inner,
        })
    }

    /// The provider that did the work, for contexts the gateway builds from the keys.
    pub fn inner(&self) -> &Arc<dyn RTCCryptoProvider> {
        &self.inner
    }

    /// The local keys of the last derivation (local, then remote).
    pub fn local_keys(&self) -> Result<LocalSrtpKeys, SrtpTapError> {
        let seen = self.crypto.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() < 2 {
            return Err(SrtpTapError::NotDerived(seen.len()));
        }
        let local = &seen[seen.len() - 2];
        let (profile, salt_len) = match local.cipher {
            Some(CipherKind::Stream(StreamCipherAlgorithm::Aes128Ctr)) => {
                (ProtectionProfile::Aes128CmHmacSha1_80, 14)
            }
            Some(CipherKind::Aead(AeadAlgorithm::Aes128Gcm)) => {
                (ProtectionProfile::AeadAes128Gcm, 12)
            }
            Some(CipherKind::Aead(AeadAlgorithm::Aes256Gcm)) => {
                (ProtectionProfile::AeadAes256Gcm, 12)
            }
            _ => return Err(SrtpTapError::UnknownCipher),
        };
        Ok(LocalSrtpKeys {
            master_key: local.master_key.clone(),
            master_salt: local.first_block[..salt_len].to_vec(),
            profile,
        })
    }
}

impl RTCCryptoProvider for SrtpKeyTap {
    fn name(&self) -> &'static str {
        "gatehouse-srtp-key-tap"
    }

    fn crypto(&self) -> &dyn RTCCrypto {
        &self.crypto
    }

    fn random(&self) -> &dyn RTCRandom {
        self.inner.random()
    }
}

impl TapCrypto {
    fn note_block(&self, key: &[u8], block: &[u8]) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.last().is_some_and(|s| s.master_key == key) {
            return; // a later block of the same derivation
        }
        let mut first_block = [0u8; 16];
        let n = block.len().min(16);
        first_block[..n].copy_from_slice(&block[..n]);
        seen.push(SeenKey {
            master_key: key.to_vec(),
            first_block,
            cipher: None,
        });
    }

    fn note_cipher(&self, kind: CipherKind) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(last) = seen.last_mut()
            && last.cipher.is_none()
        {
            last.cipher = Some(kind);
        }
    }
}

impl RTCCrypto for TapCrypto {
    fn supports(&self, algorithm: CryptoAlgorithm) -> bool {
        self.inner.crypto().supports(algorithm)
    }

    fn hash(&self, algorithm: HashAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.crypto().hash(algorithm, data)
    }

    fn block_encrypt(
        &self,
        algorithm: BlockCipherAlgorithm,
        key: &[u8],
        block: &mut [u8],
    ) -> Result<(), CryptoError> {
        self.note_block(key, block);
        self.inner.crypto().block_encrypt(algorithm, key, block)
    }

    fn new_hmac(&self, algorithm: HmacAlgorithm, key: &[u8]) -> Result<Box<dyn Mac>, CryptoError> {
        self.inner.crypto().new_hmac(algorithm, key)
    }

    fn new_stream_cipher(
        &self,
        algorithm: StreamCipherAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn StreamCipher>, CryptoError> {
        self.note_cipher(CipherKind::Stream(algorithm));
        self.inner.crypto().new_stream_cipher(algorithm, key)
    }

    fn new_aead(
        &self,
        algorithm: AeadAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn AeadCipher>, CryptoError> {
        self.note_cipher(CipherKind::Aead(algorithm));
        self.inner.crypto().new_aead(algorithm, key)
    }

    fn new_cbc(
        &self,
        algorithm: CbcAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn CbcCipher>, CryptoError> {
        self.inner.crypto().new_cbc(algorithm, key)
    }

    fn start_key_exchange(
        &self,
        algorithm: KeyExchangeAlgorithm,
    ) -> Result<Box<dyn ActiveKeyExchange>, CryptoError> {
        self.inner.crypto().start_key_exchange(algorithm)
    }

    fn generate_signing_key(
        &self,
        scheme: SignatureScheme,
    ) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner.crypto().generate_signing_key(scheme)
    }

    fn import_signing_key(
        &self,
        scheme: SignatureScheme,
        pkcs8_der: &[u8],
    ) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner.crypto().import_signing_key(scheme, pkcs8_der)
    }

    fn verify_signature(
        &self,
        scheme: SignatureScheme,
        public_key: PublicKey<'_>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        self.inner
            .crypto()
            .verify_signature(scheme, public_key, message, signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp;
    use rtc::shared::marshal::Marshal;
    use rtc::srtp::context::Context;

    fn provider() -> Arc<dyn RTCCryptoProvider> {
        rtc::crypto::default_provider().unwrap()
    }

    fn keys(profile: ProtectionProfile, fill: u8) -> (Vec<u8>, Vec<u8>) {
        let key = vec![fill; profile.key_len()];
        let salt = (0..profile.salt_len() as u8).map(|i| fill ^ i).collect();
        (key, salt)
    }

    /// Derives a local then a remote context through the tap, as rtc's DTLS handler does.
    fn derive_pair(profile: ProtectionProfile) -> (Arc<SrtpKeyTap>, (Vec<u8>, Vec<u8>)) {
        let tap = SrtpKeyTap::new(provider());
        let local = keys(profile, 0x11);
        let remote = keys(profile, 0x77);
        for (key, salt) in [&local, &remote] {
            Context::new(key, salt, profile, None, None, tap.crypto()).unwrap();
        }
        (tap, local)
    }

    #[test]
    fn tap_reports_the_local_master_key_salt_and_profile_of_each_subscriber_profile() {
        for profile in [
            ProtectionProfile::Aes128CmHmacSha1_80,
            ProtectionProfile::AeadAes128Gcm,
            ProtectionProfile::AeadAes256Gcm,
        ] {
            let (tap, (key, salt)) = derive_pair(profile);
            let got = tap.local_keys().unwrap();
            assert_eq!(got.profile as u8, profile as u8);
            assert_eq!(got.master_key, key, "{profile:?}");
            assert_eq!(got.master_salt, salt, "{profile:?}");
        }
    }

    #[test]
    fn packets_protected_with_tapped_keys_decrypt_with_the_original_keys() {
        let profile = ProtectionProfile::Aes128CmHmacSha1_80;
        let (tap, (key, salt)) = derive_pair(profile);
        let got = tap.local_keys().unwrap();
        let crypto = tap.inner().crypto();
        let mut ours = Context::new(
            &got.master_key,
            &got.master_salt,
            got.profile,
            None,
            None,
            crypto,
        )
        .unwrap();
        let mut receiver = Context::new(&key, &salt, profile, None, None, crypto).unwrap();
        let packet = rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                ssrc: 42,
                sequence_number: 7,
                payload_type: 96,
                ..Default::default()
            },
            payload: vec![1, 2, 3, 4].into(),
        };
        let plain = packet.marshal().unwrap();
        let protected = ours.encrypt_rtp(&plain).unwrap();
        assert_ne!(protected[12..16], plain[12..16]);
        assert_eq!(receiver.decrypt_rtp(&protected).unwrap(), plain);
    }

    #[test]
    fn keys_are_unknown_before_both_contexts_are_derived() {
        let tap = SrtpKeyTap::new(provider());
        assert_eq!(tap.local_keys().err(), Some(SrtpTapError::NotDerived(0)));
        let (key, salt) = keys(ProtectionProfile::Aes128CmHmacSha1_80, 3);
        let profile = ProtectionProfile::Aes128CmHmacSha1_80;
        Context::new(&key, &salt, profile, None, None, tap.crypto()).unwrap();
        assert_eq!(tap.local_keys().err(), Some(SrtpTapError::NotDerived(1)));
    }
}
