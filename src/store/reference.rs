//! Our reference for a delivery, as gateways carry it back in receipts.
//!
//! `smscast-{campaign}-{delivery}-{tag}`, where the tag is the first 64 bits of
//! HMAC-SHA256(database key, "{campaign}-{delivery}"). The key is made once per database (the
//! `settings` table) and never leaves it, so nobody can write a reference for a message they
//! were not handed, even knowing that ids are sequential. References made before the key
//! existed (`smscast-{campaign}-{delivery}`) are still accepted, but only for messages that
//! were out before it existed: see [`ReferenceCheck::Legacy`].

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Hex digits of the tag (64 bits).
const TAG_LEN: usize = 16;

/// Makes and checks references with one database's key.
#[derive(Clone)]
pub struct References {
    /// (key, when it was made, UTC ms); `None` on a read-only store of a database that never
    /// had one (nothing was sent with a signed reference).
    key: Option<(Vec<u8>, i64)>,
}

impl std::fmt::Debug for References {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("References")
            .field("since_ms", &self.key.as_ref().map(|(_, at)| at))
            .finish()
    }
}

/// What a reference is worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReferenceCheck {
    /// Signed with this database's key.
    Signed { campaign: i64, delivery: i64 },
    /// The old unsigned form: good only for a message submitted before `before_ms`.
    Legacy {
        campaign: i64,
        delivery: i64,
        before_ms: i64,
    },
    /// Not ours, or forged.
    Invalid,
}

impl References {
    /// `key_hex` as stored in `settings`, made at `since_ms`.
    pub fn new(key_hex: Option<(&str, i64)>) -> Self {
        Self {
            key: key_hex.and_then(|(k, at)| hex::decode(k).ok().map(|k| (k, at))),
        }
    }

    /// A fresh random key, hex, for `settings`.
    pub fn new_key() -> String {
        hex::encode(rand::random::<[u8; 32]>())
    }

    pub fn make(&self, campaign_id: i64, delivery_id: i64) -> String {
        match &self.key {
            Some((key, _)) => format!(
                "smscast-{campaign_id}-{delivery_id}-{}",
                tag(key, campaign_id, delivery_id)
            ),
            None => format!("smscast-{campaign_id}-{delivery_id}"),
        }
    }

    pub fn check(&self, reference: &str) -> ReferenceCheck {
        let Some(rest) = reference.strip_prefix("smscast-") else {
            return ReferenceCheck::Invalid;
        };
        let mut parts = rest.split('-');
        let (Some(c), Some(d)) = (parts.next(), parts.next()) else {
            return ReferenceCheck::Invalid;
        };
        let (Ok(campaign), Ok(delivery)) = (c.parse::<i64>(), d.parse::<i64>()) else {
            return ReferenceCheck::Invalid;
        };
        match (parts.next(), parts.next(), &self.key) {
            (Some(given), None, Some((key, _))) => {
                let Ok(given) = hex::decode(given) else {
                    return ReferenceCheck::Invalid;
                };
                let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key");
                mac.update(format!("{campaign}-{delivery}").as_bytes());
                if given.len() == TAG_LEN / 2 && mac.verify_truncated_left(&given).is_ok() {
                    ReferenceCheck::Signed { campaign, delivery }
                } else {
                    ReferenceCheck::Invalid
                }
            }
            (None, _, Some((_, since))) => ReferenceCheck::Legacy {
                campaign,
                delivery,
                before_ms: *since,
            },
            (None, _, None) => ReferenceCheck::Legacy {
                campaign,
                delivery,
                before_ms: i64::MAX,
            },
            _ => ReferenceCheck::Invalid,
        }
    }
}

fn tag(key: &[u8], campaign_id: i64, delivery_id: i64) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key");
    mac.update(format!("{campaign_id}-{delivery_id}").as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..TAG_LEN / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_references_round_trip_and_resist_forgery() {
        let key = References::new_key();
        let refs = References::new(Some((&key, 1_000)));
        let r = refs.make(3, 1234);
        assert_eq!(
            refs.check(&r),
            ReferenceCheck::Signed {
                campaign: 3,
                delivery: 1234
            }
        );
        // Another delivery's tag, a flipped digit, another key: all invalid.
        let other = refs.make(3, 1235);
        let forged = format!("smscast-3-1234-{}", other.rsplit('-').next().unwrap());
        assert_eq!(refs.check(&forged), ReferenceCheck::Invalid);
        let flipped = format!(
            "{}{}",
            &r[..r.len() - 1],
            if r.ends_with('0') { '1' } else { '0' }
        );
        assert_eq!(refs.check(&flipped), ReferenceCheck::Invalid);
        let stranger = References::new(Some((&References::new_key(), 1_000)));
        assert_eq!(stranger.check(&r), ReferenceCheck::Invalid);
        assert_eq!(refs.check("smscast-3"), ReferenceCheck::Invalid);
        assert_eq!(refs.check("other-3-4"), ReferenceCheck::Invalid);
        assert_eq!(refs.check("smscast-x-4"), ReferenceCheck::Invalid);
        assert_eq!(refs.check("smscast-3-4-zz"), ReferenceCheck::Invalid);
    }

    #[test]
    fn old_references_count_only_for_messages_out_before_the_key() {
        let refs = References::new(Some((&References::new_key(), 5_000)));
        assert_eq!(
            refs.check("smscast-3-4"),
            ReferenceCheck::Legacy {
                campaign: 3,
                delivery: 4,
                before_ms: 5_000
            }
        );
        assert!(format!("{refs:?}").contains("5000"));
    }
}
