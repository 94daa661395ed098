//! Credentials' certificate validity periods, parsed once (issue 11).
//!
//! Why: every signing call checks the leaf certificate's notBefore and
//! notAfter at the call's time, twice on signHash (admitting the call and
//! signing). Parsing the X.509 DER for that cost ≈2 % of the server's CPU
//! per signHash (docs/performance.md). The period is a pure function of
//! the certificate's bytes, so this is a memo: an entry answers only for
//! the exact DER it was parsed from (a credential whose certificate was
//! replaced is parsed afresh), and the check itself — against the call's
//! own clock, and the revocation read with the call — is unchanged.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::{Error, Result};
use crate::signing::{Validity, certificate_validity};
use crate::store::Credential;

/// Credential id → (the leaf DER parsed, its validity period).
#[derive(Default)]
pub(crate) struct Validities {
    entries: Mutex<HashMap<String, (Vec<u8>, Validity)>>,
}

impl Validities {
    /// Credentials remembered at most; when full the memo starts over
    /// (one parse per credential in use follows, nothing else changes).
    const CAPACITY: usize = 4096;

    fn lock(&self) -> MutexGuard<'_, HashMap<String, (Vec<u8>, Validity)>> {
        // Every change is one map call: a poisoned lock is still consistent.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The validity period of `c`'s leaf certificate.
    pub(crate) fn of(&self, c: &Credential) -> Result<Validity> {
        let leaf = c.certificate_chain.first().ok_or_else(|| Error::Internal("credential without certificate".into()))?;
        if let Some((der, v)) = self.lock().get(&c.id)
            && der == leaf
        {
            return Ok(*v);
        }
        let v = certificate_validity(leaf).map_err(|e| Error::Internal(e.to_string()))?;
        let mut entries = self.lock();
        if entries.len() >= Self::CAPACITY && !entries.contains_key(&c.id) {
            entries.clear();
        }
        entries.insert(c.id.clone(), (leaf.clone(), v));
        Ok(v)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{DevCa, HcRole, KeyAlgorithm, Subject};

    fn credential(id: &str, leaf: Vec<u8>) -> Credential {
        Credential {
            id: id.into(),
            practitioner_id: "p".into(),
            algorithm: "rsa2048".into(),
            sealed_key: Vec::new().into(),
            certificate_chain: vec![leaf],
            created_ms: 0,
            revoked_ms: None,
            revoked_reason: None,
        }
    }

    /// The memo answers what parsing the certificate answers, for the
    /// certificate it holds now: a credential whose certificate changes is
    /// parsed afresh, never answered from the old one's period.
    #[test]
    fn a_replaced_certificate_is_parsed_afresh() {
        let ca = DevCa::generate().unwrap();
        // Two certificates with different periods: an issued leaf (five
        // years) and the CA's own (ten years).
        let subject = Subject { common_name: "Validity".into(), role: HcRole::Doctor, organization: None };
        let short = ca.issue(&subject, KeyAlgorithm::EcdsaP256).unwrap().certificate_chain.remove(0);
        let long = ca.certificate_der().to_vec();
        let memo = Validities::default();
        let first = memo.of(&credential("c", short.clone())).unwrap();
        assert_eq!(first, certificate_validity(&short).unwrap());
        assert_eq!(memo.of(&credential("c", short.clone())).unwrap(), first, "same DER, same answer");
        let replaced = memo.of(&credential("c", long.clone())).unwrap();
        assert_eq!(replaced, certificate_validity(&long).unwrap());
        assert_ne!(replaced, first, "the new certificate's own period");
        assert_eq!(memo.len(), 1);
    }

    /// A credential row without a certificate is an internal error, as it
    /// was before the memo; garbage DER too, and neither is remembered.
    #[test]
    fn a_missing_or_broken_certificate_is_an_error_and_not_remembered() {
        let memo = Validities::default();
        let mut none = credential("n", vec![]);
        none.certificate_chain.clear();
        assert!(matches!(memo.of(&none), Err(Error::Internal(_))));
        assert!(matches!(memo.of(&credential("b", vec![0x30, 0x03, 1, 2, 3])), Err(Error::Internal(_))));
        assert_eq!(memo.len(), 0);
    }
}
