//! The signature cases of `tests/data/signature_vectors.json` (produced by Twilio's official
//! SDKs), loaded once for every test that checks against them.

use serde::Deserialize;

/// One case; see `tests/data/README.md` for the fields.
#[derive(Deserialize)]
pub struct SignatureCase {
    pub name: String,
    pub auth_token: String,
    pub url: String,
    pub params: Option<Vec<(String, String)>>,
    pub body: Option<String>,
    pub signature: String,
    pub expect_valid: bool,
    signed_url: Option<String>,
}

impl SignatureCase {
    /// A valid form or GET case (no raw body): what `sign` must reproduce.
    pub fn is_valid_form(&self) -> bool {
        self.expect_valid && self.body.is_none()
    }

    /// The URL the signature was really made over.
    pub fn signed_url(&self) -> &str {
        self.signed_url.as_deref().unwrap_or(&self.url)
    }
}

pub fn signature_cases() -> Vec<SignatureCase> {
    serde_json::from_str(include_str!("../data/signature_vectors.json")).expect("vectors parse")
}
