//! integrity::signature: CloudTrail's signature of each digest — the string it signs, the public
//! keys (files given with `--public-key`, or `ListPublicKeys`), and RSA PKCS#1 v1.5 / SHA-256
//! verification.

use super::digest::Digest;
use super::{days_between, Checked, Finding, Kind};
use sha2::Digest as _;
use std::collections::HashMap;

/// Checks each digest's signature with `keys`. A digest without a signature, or with no key to
/// try, is counted unchecked; one whose fingerprint names no key is `public_key_not_found`.
pub(super) fn check_all(digests: &[Digest], keys: &PublicKeys, out: &mut Checked) {
    for d in digests {
        let message = signed_string(
            &d.end_text,
            &d.s3_bucket,
            &d.s3_object,
            &d.sha256,
            d.prev_signature.as_deref(),
        );
        let Some(sig) = &d.signature else {
            out.signatures_unchecked += 1;
            continue;
        };
        let matching: Vec<&Vec<u8>> = keys
            .keys
            .iter()
            .filter(|(fp, _)| Some(fp) == d.fingerprint.as_ref())
            .map(|(_, der)| der)
            .collect();
        let candidates: Vec<&Vec<u8>> = if matching.is_empty() && keys.try_all {
            keys.keys.iter().map(|(_, der)| der).collect()
        } else {
            matching
        };
        if candidates.is_empty() {
            if keys.keys.is_empty() && keys.try_all {
                out.signatures_unchecked += 1;
                continue;
            }
            out.findings.push(Finding {
                kind: Kind::PublicKeyNotFound,
                object: d.key.clone(),
                account_id: d.account.clone(),
                region: d.region.clone(),
                days: days_between(d.start, d.end),
                detail: format!(
                    "no public key with fingerprint {}",
                    d.fingerprint.as_deref().unwrap_or("(none)")
                ),
            });
            continue;
        }
        if candidates
            .iter()
            .any(|der| verify_signature(der, message.as_bytes(), sig))
        {
            out.signatures_verified += 1;
        } else {
            out.findings.push(Finding {
                kind: Kind::DigestBadSignature,
                object: d.key.clone(),
                account_id: d.account.clone(),
                region: d.region.clone(),
                days: days_between(d.start, d.end),
                detail: "the signature does not verify (RSA PKCS#1 v1.5, SHA-256)".into(),
            });
        }
    }
}

/// What CloudTrail signs for a digest (CloudTrail user guide, "CloudTrail digest file
/// structure": <https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-validation-digest-file-structure.html>).
pub fn signed_string(
    end_text: &str,
    bucket: &str,
    object: &str,
    sha256_hex: &str,
    prev_signature: Option<&str>,
) -> String {
    format!(
        "{end_text}\n{bucket}/{object}\n{sha256_hex}\n{}",
        prev_signature.unwrap_or("null")
    )
}

/// The public keys digests are verified with.
#[derive(Debug, Default, Clone)]
pub struct PublicKeys {
    /// `(fingerprint, DER)`; a key from a file carries keytrail's own fingerprint
    /// ([`fingerprint`]), a key from `ListPublicKeys` CloudTrail's.
    pub keys: Vec<(String, Vec<u8>)>,
    /// Keys from files may be tried against any digest (their CloudTrail fingerprint is unknown).
    pub try_all: bool,
}

impl PublicKeys {
    /// No key yet, for a local archive: file keys may be tried against any digest.
    pub fn default_local() -> PublicKeys {
        PublicKeys {
            keys: Vec::new(),
            try_all: true,
        }
    }
}

/// keytrail's fingerprint of a public key (what `synth --sign` writes into its digests): the
/// first 16 bytes of the SHA-256 of its DER, in hex.
pub fn fingerprint(der: &[u8]) -> String {
    crate::model::hex(&sha2::Sha256::digest(der)[..16])
}

/// Reads a public key file: DER (PKCS#1 `RSAPublicKey` or SubjectPublicKeyInfo), or the same
/// in base64 (as the AWS CLI shows `ListPublicKeys` values), or PEM.
pub fn read_public_key(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    if bytes.first() == Some(&0x30) {
        return bytes.to_vec();
    }
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
        .split_whitespace()
        .collect();
    base64_decode(&body).unwrap_or_else(|| bytes.to_vec())
}

pub(super) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

pub(super) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn verify_signature(der: &[u8], message: &[u8], signature_hex: &str) -> bool {
    let Some(sig) = unhex(signature_hex) else {
        return false;
    };
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        der,
    )
    .verify(message, &sig)
    .is_ok()
}

/// Reads `--digest-signatures` (a JSON object: digest object key -> hex signature).
pub fn read_signatures(path: &std::path::Path) -> anyhow::Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("--digest-signatures {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "--digest-signatures {}: expected a JSON object of digest key -> hex signature ({e})",
            path.display()
        )
    })
}

/// Reads `--public-key` files.
pub fn read_public_keys(paths: &[std::path::PathBuf]) -> anyhow::Result<PublicKeys> {
    let mut keys = Vec::new();
    for p in paths {
        let bytes =
            std::fs::read(p).map_err(|e| anyhow::anyhow!("--public-key {}: {e}", p.display()))?;
        let der = read_public_key(&bytes);
        anyhow::ensure!(
            aws_lc_rs::rsa::PublicKey::from_der(&der).is_ok(),
            "--public-key {}: not an RSA public key (PKCS#1 or SubjectPublicKeyInfo, DER, PEM or base64)",
            p.display()
        );
        keys.push((fingerprint(&der), der));
    }
    Ok(PublicKeys {
        keys,
        try_all: true,
    })
}
