//! The operator log: append-only and hash-chained.
//!
//! Each entry's hash is SHA-256 over the previous entry's hash and the entry's own fields, so
//! changing or removing any row breaks every hash after it. `smscast audit --verify` recomputes
//! the chain and names the first row that does not match. Cutting rows off the *end* leaves a
//! valid shorter chain, which is why reports print the head hash: an auditor who kept a copy of
//! an earlier head can tell the log was truncated.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::store::AuditEntry;

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of one entry, given the hash of the one before it.
pub fn entry_hash(
    prev_hash: &str,
    at_ms: i64,
    actor: &str,
    action: &str,
    subject: &str,
    details: &str,
) -> String {
    // A JSON array is an unambiguous encoding of the fields (no separator can be forged).
    let canonical = serde_json::json!([prev_hash, at_ms, actor, action, subject, details]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// The result of checking the chain.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry matches; `head` is the last hash (keep it to detect later truncation).
    Intact { entries: usize, head: String },
    /// The first entry that does not match, and why.
    Broken { id: i64, reason: String },
}

pub fn verify(entries: &[AuditEntry]) -> Verdict {
    let mut prev = GENESIS.to_string();
    for e in entries {
        // Ids need not be consecutive (a PostgreSQL sequence skips numbers after a rollback);
        // the chain itself shows a removed entry: the next one's prev_hash no longer matches.
        if e.prev_hash != prev {
            return Verdict::Broken {
                id: e.id,
                reason: "its prev_hash does not match the entry before it (an entry before it was removed or altered, or this link was)".into(),
            };
        }
        let expected = entry_hash(
            &e.prev_hash,
            e.at_ms,
            &e.actor,
            &e.action,
            &e.subject,
            &e.details,
        );
        if e.hash != expected {
            return Verdict::Broken {
                id: e.id,
                reason: "its contents do not match its hash (the row was altered)".into(),
            };
        }
        prev = e.hash.clone();
    }
    Verdict::Intact {
        entries: entries.len(),
        head: prev,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|id| {
                let hash = entry_hash(&prev, id, "op", "launch", "campaign 1", "{}");
                AuditEntry {
                    id,
                    at_ms: id,
                    actor: "op".into(),
                    action: "launch".into(),
                    subject: "campaign 1".into(),
                    details: "{}".into(),
                    prev_hash: std::mem::replace(&mut prev, hash.clone()),
                    hash,
                }
            })
            .collect()
    }

    #[test]
    fn intact_chain_verifies() {
        assert!(matches!(
            verify(&chain(5)),
            Verdict::Intact { entries: 5, .. }
        ));
    }

    #[test]
    fn altered_field_names_the_row() {
        let mut c = chain(5);
        c[2].actor = "someone else".into();
        assert!(matches!(verify(&c), Verdict::Broken { id: 3, .. }));
    }

    #[test]
    fn removed_row_is_found() {
        let mut c = chain(5);
        c.remove(1);
        assert!(matches!(verify(&c), Verdict::Broken { id: 3, .. }));
    }

    /// A PostgreSQL sequence has gaps after a rollback or a crash: not tampering.
    #[test]
    fn gaps_in_ids_are_not_tampering() {
        let mut c = chain(5);
        for e in &mut c[2..] {
            e.id += 10;
        }
        assert!(matches!(verify(&c), Verdict::Intact { entries: 5, .. }));
    }

    #[test]
    fn rehashed_row_still_breaks_the_next_link() {
        let mut c = chain(5);
        c[1].details = "{\"x\":1}".into();
        c[1].hash = entry_hash(
            &c[1].prev_hash,
            c[1].at_ms,
            "op",
            "launch",
            "campaign 1",
            &c[1].details,
        );
        assert!(matches!(verify(&c), Verdict::Broken { id: 3, .. }));
    }
}
