//! Bearer token verification: any string presented as a token is refused or accepted, never a
//! panic, and nothing unsigned or signed with another key is accepted.
#![no_main]

use std::sync::OnceLock;

use events::service::auth::{AuthSettings, Authenticator};
use libfuzzer_sys::fuzz_target;

fn authenticator() -> &'static Authenticator {
    static AUTHENTICATOR: OnceLock<Authenticator> = OnceLock::new();
    AUTHENTICATOR.get_or_init(|| {
        Authenticator::from_settings(&AuthSettings {
            jwt_secret: Some("fuzz-secret-that-is-at-least-32-bytes-long".parse().expect("a secret")),
            jwt_public_key_file: None,
            jwt_issuer: "cstrack".into(),
            jwt_audience: "cstrack-api".into(),
        })
        .expect("an authenticator")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        // The fuzzer cannot forge an HS256 signature: anything it accepts is a finding.
        assert!(authenticator().verify(token).is_err(), "accepted a token not signed by us: {token}");
    }
});
