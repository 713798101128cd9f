//! The AI bot's media files (images, files, videos behind the five-minute URLs its
//! messages carry): the bytes encrypted with the bot's EncodingAESKey by the same
//! AES-256-CBC (IV = the key's first 16 bytes) and PKCS#7 padding to 32-byte blocks, but
//! raw, without the callback frame's random prefix, length or receive id.

use aes::Aes256;
use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, InnerIvInit};

use super::frame::PAD_BLOCK;
use super::key::EncodingAesKey;
use crate::error::ProtocolError;

impl EncodingAesKey {
    /// Decrypts a downloaded media file in place and returns it without its padding.
    ///
    /// # Errors
    /// -40007 for a length that is not a positive multiple of 32, -40008 for bad padding
    /// (the wrong key, or not an encrypted file).
    pub fn decrypt_media(&self, mut encrypted: Vec<u8>) -> Result<Vec<u8>, ProtocolError> {
        let len = encrypted.len();
        if len == 0 || !len.is_multiple_of(PAD_BLOCK) {
            return Err(ProtocolError::CiphertextLength(len));
        }
        let decryptor =
            cbc::Decryptor::<Aes256>::inner_iv_init(self.cipher().clone(), &self.iv().into());
        decryptor
            .decrypt_padded::<NoPadding>(&mut encrypted)
            .map_err(|_| ProtocolError::CiphertextLength(len))?;
        let pad = usize::from(encrypted[len - 1]);
        let padding_ok = (1..=PAD_BLOCK).contains(&pad)
            && encrypted[len - pad..]
                .iter()
                .all(|&b| usize::from(b) == pad);
        if !padding_ok {
            return Err(ProtocolError::IllegalBuffer(
                "the media file's padding is wrong",
            ));
        }
        encrypted.truncate(len - pad);
        Ok(encrypted)
    }

    /// Encrypts a media file the way the platform does: for tests and fakes.
    pub fn encrypt_media(&self, plain: &[u8]) -> Vec<u8> {
        let pad = PAD_BLOCK - plain.len() % PAD_BLOCK;
        let mut buf = Vec::with_capacity(plain.len() + pad);
        buf.extend_from_slice(plain);
        // `pad` is 1..=32, so it fits a byte.
        buf.resize(plain.len() + pad, pad as u8);
        let len = buf.len();
        let encryptor =
            cbc::Encryptor::<Aes256>::inner_iv_init(self.cipher().clone(), &self.iv().into());
        // A whole number of blocks: cannot fail.
        let _ = encryptor.encrypt_padded::<NoPadding>(&mut buf, len);
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MsgCrypt;

    const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

    #[test]
    fn media_round_trips_at_every_padding_length() {
        let key = EncodingAesKey::parse(KEY).unwrap();
        for len in [0, 1, 31, 32, 33, 1000] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let encrypted = key.encrypt_media(&plain);
            assert_eq!(encrypted.len() % 32, 0);
            if len >= 16 {
                assert_ne!(&encrypted[..16], &plain[..16], "not encrypted");
            }
            assert_eq!(key.decrypt_media(encrypted).unwrap(), plain, "{len}");
        }
    }

    #[test]
    fn wrong_keys_and_lengths_are_errors_not_panics() {
        let key = EncodingAesKey::parse(KEY).unwrap();
        let other = EncodingAesKey::parse("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").unwrap();
        let encrypted = key.encrypt_media(b"%PDF-1.7 a file");
        assert!(other.decrypt_media(encrypted).is_err());
        for len in [0, 1, 31, 33] {
            assert!(key.decrypt_media(vec![0; len]).is_err(), "{len}");
        }
    }

    #[test]
    fn during_a_rotation_a_file_under_the_previous_key_is_decrypted() {
        const NEW: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
        let encrypted = EncodingAesKey::parse(KEY)
            .unwrap()
            .encrypt_media(b"%PDF-1.7 a file");
        let rotated = MsgCrypt::new("QDG6eK", NEW, "").unwrap();
        assert!(rotated.decrypt_media(encrypted.clone()).is_err());
        let rotated = rotated.with_previous_key(KEY).unwrap();
        assert_eq!(
            rotated.decrypt_media(encrypted).unwrap(),
            b"%PDF-1.7 a file"
        );
        // The current key's own files still open with it.
        let own = EncodingAesKey::parse(NEW).unwrap().encrypt_media(b"image");
        assert_eq!(rotated.decrypt_media(own).unwrap(), b"image");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let key = EncodingAesKey::parse(KEY).unwrap();
            let _ = key.decrypt_media(bytes);
        }
    }
}
