//! An EHR terminal speaking plain HTTP to the server, as an EHR vendor would (docs/api.md):
//! RFC 8628 device authorization, QR image, wait/SSE, token, and the CSC v2 signing calls.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

/// `POST /oauth/device_authorization` response.
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: u64,
    pub interval: u64,
    pub login_id: String,
    pub match_number: u8,
    /// `number` or `code` (the server's confirmation policy).
    pub confirmation: String,
}

/// A successful `POST /oauth/token`.
#[derive(Debug, Clone, Deserialize)]
pub struct Token {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub grant_id: String,
    /// Who approved: the EHR shows whose signing day it opened.
    pub practitioner: Approver,
}

/// The practitioner named in a token response.
#[derive(Debug, Clone, Deserialize)]
pub struct Approver {
    pub id: String,
    pub display_name: String,
    pub role: String,
}

/// A non-2xx answer: HTTP status plus the body (`error` for /oauth, `code` for problems).
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: u16,
    pub body: Value,
}

impl Refusal {
    /// The stable machine code: RFC 6749 `error` or RFC 9457 `code`.
    pub fn code(&self) -> &str {
        self.body.get("code").or_else(|| self.body.get("error")).and_then(Value::as_str).unwrap_or("")
    }
}

pub struct Terminal {
    pub base: String,
    pub client_id: String,
    pub client_secret: String,
    http: reqwest::Client,
}

pub const SHA256_OID: &str = "2.16.840.1.101.3.4.2.1";
pub const RSA_SHA256_OID: &str = "1.2.840.113549.1.1.11";
pub const ECDSA_SHA256_OID: &str = "1.2.840.10045.4.3.2";

async fn parse<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, Refusal> {
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("read body");
    if (200..300).contains(&status) {
        let text = String::from_utf8_lossy(&bytes);
        Ok(serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("bad {status} body ({e}): {text}")))
    } else {
        Err(Refusal { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into())) })
    }
}

impl Terminal {
    pub fn new(base: &str, client_id: &str, client_secret: &str) -> Terminal {
        Terminal {
            base: base.trim_end_matches('/').to_string(),
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            http: reqwest::Client::builder().timeout(std::time::Duration::from_secs(90)).build().expect("http client"),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn basic(&self) -> String {
        format!("Basic {}", STANDARD.encode(format!("{}:{}", self.client_id, self.client_secret)))
    }

    /// Starts a login: the EHR screen will show the QR and `match_number`.
    pub async fn start_login(&self) -> DeviceAuthorization {
        self.try_start_login().await.unwrap_or_else(|r| panic!("device_authorization refused: {r:?}"))
    }

    pub async fn try_start_login(&self) -> Result<DeviceAuthorization, Refusal> {
        let resp = self
            .http
            .post(self.url("/oauth/device_authorization"))
            .header("Authorization", self.basic())
            .form(&[("scope", "sign")])
            .send()
            .await
            .expect("POST device_authorization");
        parse(resp).await
    }

    /// The QR image the EHR screen shows, as PNG bytes.
    pub async fn qr_png(&self, login_id: &str) -> Vec<u8> {
        let resp = self
            .http
            .get(self.url(&format!("/v1/terminal/logins/{login_id}/qr.png")))
            .header("Authorization", self.basic())
            .send()
            .await
            .expect("GET qr.png");
        assert_eq!(resp.status().as_u16(), 200, "qr.png status");
        let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert!(ct.starts_with("image/png"), "qr.png content type {ct}");
        resp.bytes().await.expect("png body").to_vec()
    }

    /// Long-polls the login's status (`pending` at timeout, else the final status).
    pub async fn wait(&self, login_id: &str, timeout_s: u32) -> String {
        let resp = self
            .http
            .get(self.url(&format!("/v1/terminal/logins/{login_id}/wait?timeout={timeout_s}")))
            .header("Authorization", self.basic())
            .send()
            .await
            .expect("GET wait");
        let v: Value = parse(resp).await.unwrap_or_else(|r| panic!("wait refused: {r:?}"));
        v["status"].as_str().expect("status string").to_string()
    }

    /// Follows the SSE stream until the server closes it; returns every status seen, in order.
    pub async fn events(&self, login_id: &str) -> Vec<String> {
        let resp = self
            .http
            .get(self.url(&format!("/v1/terminal/logins/{login_id}/events")))
            .header("Authorization", self.basic())
            .header("Accept", "text/event-stream")
            .send()
            .await
            .expect("GET events");
        assert_eq!(resp.status().as_u16(), 200, "events status");
        let mut resp = resp;
        let mut buf = String::new();
        let mut statuses = Vec::new();
        while let Some(chunk) = resp.chunk().await.expect("event chunk") {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                for line in event.lines() {
                    if let Some(data) = line.strip_prefix("data:") {
                        let v: Value = serde_json::from_str(data.trim()).expect("event data JSON");
                        statuses.push(v["status"].as_str().expect("status").to_string());
                    }
                }
            }
        }
        statuses
    }

    /// One token poll (RFC 8628 §3.4).
    pub async fn token(&self, device_code: &str) -> Result<Token, Refusal> {
        self.token_with(device_code, None).await
    }

    /// One token poll carrying the confirmation code the practitioner typed (the `code` policy).
    pub async fn token_with(&self, device_code: &str, confirmation_code: Option<&str>) -> Result<Token, Refusal> {
        let mut form = vec![("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", device_code)];
        if let Some(c) = confirmation_code {
            form.push(("confirmation_code", c));
        }
        let resp = self
            .http
            .post(self.url("/oauth/token"))
            .header("Authorization", self.basic())
            .form(&form)
            .send()
            .await
            .expect("POST token");
        parse(resp).await
    }

    async fn csc(&self, path: &str, grant: &str, body: Value) -> Result<Value, Refusal> {
        let resp = self
            .http
            .post(self.url(path))
            .header("Authorization", format!("Bearer {grant}"))
            .header("Shomei-Terminal-Authorization", self.basic())
            .json(&body)
            .send()
            .await
            .expect("POST csc");
        parse(resp).await
    }

    pub async fn credentials_list(&self, grant: &str) -> Result<Vec<String>, Refusal> {
        let v = self.csc("/csc/v2/credentials/list", grant, json!({})).await?;
        Ok(v["credentialIDs"].as_array().expect("credentialIDs").iter().map(|x| x.as_str().unwrap().to_string()).collect())
    }

    /// `credentials/info` with the single certificate: returns the DER certificate.
    pub async fn credential_certificate(&self, grant: &str, credential_id: &str) -> Result<Vec<u8>, Refusal> {
        let v = self
            .csc("/csc/v2/credentials/info", grant, json!({ "credentialID": credential_id, "certificates": "single" }))
            .await?;
        let cert = v["cert"]["certificates"][0].as_str().unwrap_or_else(|| panic!("no certificate in {v}"));
        Ok(STANDARD.decode(cert).expect("certificate base64"))
    }

    /// `signatures/signHash` for SHA-256 digests; returns the raw signatures in order.
    pub async fn sign_hash(&self, grant: &str, credential_id: &str, digests: &[Vec<u8>], sign_algo: &str) -> Result<Vec<Vec<u8>>, Refusal> {
        let hashes: Vec<String> = digests.iter().map(|d| STANDARD.encode(d)).collect();
        let v = self
            .csc(
                "/csc/v2/signatures/signHash",
                grant,
                json!({ "credentialID": credential_id, "hashes": hashes, "hashAlgorithmOID": SHA256_OID, "signAlgo": sign_algo }),
            )
            .await?;
        Ok(v["signatures"].as_array().expect("signatures").iter().map(|s| STANDARD.decode(s.as_str().unwrap()).expect("signature base64")).collect())
    }

    /// `credentials/info` with the whole chain: DER certificates, leaf first.
    pub async fn credential_chain(&self, grant: &str, credential_id: &str) -> Result<Vec<Vec<u8>>, Refusal> {
        let v = self.csc("/csc/v2/credentials/info", grant, json!({ "credentialID": credential_id, "certificates": "chain" })).await?;
        Ok(v["cert"]["certificates"].as_array().expect("certificates").iter().map(|c| STANDARD.decode(c.as_str().unwrap()).expect("certificate base64")).collect())
    }

    /// `signatures/signDoc` with the given `documentDigests` entries; returns the decoded
    /// `SignatureObject`s in order (XAdES element bytes or CMS DER).
    pub async fn sign_doc(&self, grant: &str, credential_id: &str, document_digests: Value) -> Result<Vec<Vec<u8>>, Refusal> {
        let v = self.csc("/csc/v2/signatures/signDoc", grant, json!({ "credentialID": credential_id, "documentDigests": document_digests })).await?;
        Ok(v["SignatureObject"].as_array().expect("SignatureObject").iter().map(|s| STANDARD.decode(s.as_str().unwrap()).expect("signature object base64")).collect())
    }
}
