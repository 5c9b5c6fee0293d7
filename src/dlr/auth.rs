//! Receipt authentication: Twilio's request signature, and secret tokens.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

type HmacSha1 = Hmac<Sha1>;

/// Twilio's `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, URL + every POST parameter,
/// sorted by name, written name then value)).
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut mac = HmacSha1::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key");
    mac.update(url.as_bytes());
    for (k, v) in sorted(params) {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks a Twilio signature in constant time.
pub fn verify_twilio(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> bool {
    let Ok(given) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    let mut mac = HmacSha1::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key");
    mac.update(url.as_bytes());
    for (k, v) in sorted(params) {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    mac.verify_slice(&given).is_ok()
}

fn sorted(params: &[(String, String)]) -> Vec<&(String, String)> {
    let mut p: Vec<&(String, String)> = params.iter().collect();
    p.sort();
    p
}

/// Compares a presented token with the expected one in constant time.
pub fn token_matches(expected: &str, given: Option<&str>) -> bool {
    match given {
        Some(g) => !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(g.as_bytes())),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    /// The example of Twilio's security documentation.
    #[test]
    fn matches_twilios_documented_example() {
        let params = vec![
            p("CallSid", "CA1234567890ABCDE"),
            p("Caller", "+14158675309"),
            p("Digits", "1234"),
            p("From", "+14158675309"),
            p("To", "+18005551212"),
        ];
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let sig = twilio_signature("12345", url, &params);
        assert_eq!(sig, "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert!(verify_twilio("12345", url, &params, &sig));
        assert!(!verify_twilio("12346", url, &params, &sig));
        assert!(!verify_twilio("12345", url, &params[1..], &sig));
        assert!(!verify_twilio("12345", url, &params, "not base64!"));
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(token_matches("abc", Some("abc")));
        assert!(!token_matches("abc", Some("abd")));
        assert!(!token_matches("abc", Some("ab")));
        assert!(!token_matches("abc", None));
        assert!(!token_matches("", Some("")));
    }
}
