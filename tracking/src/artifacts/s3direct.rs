//! Direct S3 access for clients: the proxied multipart-upload protocol (the server opens and
//! completes the upload, the client PUTs each part to a presigned URL) and presigned
//! downloads, as MLflow's `S3ArtifactRepository` offers them through `mlflow-artifacts/mpu/*`
//! and `mlflow-artifacts/presigned/*`.
//!
//! object_store signs URLs for a path only; an `UploadPart` URL must also sign its
//! `partNumber` and `uploadId` query parameters, so part URLs are signed here with SigV4
//! query authentication (<https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html>).

use std::time::Duration;

use chrono::{DateTime, Utc};
use ferroflow_core::{Error, Result};
use hmac::{Hmac, Mac};
use object_store::aws::{AmazonS3, AwsCredential};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::ObjectStoreExt;
use sha2::{Digest, Sha256};
use url::Url;

/// Lifetime of presigned part and download URLs.
pub const PRESIGNED_TTL: Duration = Duration::from_secs(3600);
/// S3 accepts part numbers 1..=10000.
pub const MAX_PARTS: u32 = 10_000;

/// The S3 bucket behind an `s3://bucket/prefix` destination, for presigned access.
#[derive(Clone)]
pub struct S3Direct {
    s3: AmazonS3,
    prefix: String,
    region: String,
}

fn s3_error(context: &str, e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::not_found(format!("{context}: not found")),
        e => Error::internal(format!("{context}: {e}")),
    }
}

impl S3Direct {
    pub fn new(s3: AmazonS3, prefix: &str, region: &str) -> Self {
        S3Direct {
            s3,
            prefix: prefix.trim_matches('/').to_string(),
            region: region.to_string(),
        }
    }

    /// The bucket key of `location` (relative to the destination root).
    fn key(&self, location: &Path) -> Path {
        if self.prefix.is_empty() {
            location.clone()
        } else {
            Path::from(format!("{}/{}", self.prefix, location))
        }
    }

    async fn credential(&self) -> Result<std::sync::Arc<AwsCredential>> {
        self.s3
            .credentials()
            .get_credential()
            .await
            .map_err(|e| s3_error("reading S3 credentials", e))
    }

    /// Starts a multipart upload of `location` and presigns a PUT URL for parts 1..=num_parts.
    pub async fn create_multipart(
        &self,
        location: &Path,
        num_parts: u32,
    ) -> Result<(String, Vec<(u32, String)>)> {
        let key = self.key(location);
        let ctx = format!("starting multipart upload of '{location}'");
        let upload_id = self
            .s3
            .create_multipart(&key)
            .await
            .map_err(|e| s3_error(&ctx, e))?;
        let base = self.object_url(&key).await?;
        let credential = self.credential().await?;
        let now = Utc::now();
        let urls = (1..=num_parts)
            .map(|part| {
                let mut url = base.clone();
                url.query_pairs_mut()
                    .append_pair("partNumber", &part.to_string())
                    .append_pair("uploadId", &upload_id);
                presign(
                    "PUT",
                    &mut url,
                    &credential,
                    &self.region,
                    now,
                    PRESIGNED_TTL,
                );
                (part, url.to_string())
            })
            .collect();
        Ok((upload_id, urls))
    }

    /// Completes the upload from its parts' ETags, which must be parts 1..=n in order.
    pub async fn complete_multipart(
        &self,
        location: &Path,
        upload_id: &str,
        parts: Vec<(u32, String)>,
    ) -> Result<()> {
        for (i, (number, _)) in parts.iter().enumerate() {
            if *number as usize != i + 1 {
                return Err(Error::invalid(format!(
                    "Invalid parts: expected part_number {} at position {i}, got {number}",
                    i + 1
                )));
            }
        }
        let parts = parts
            .into_iter()
            .map(|(_, etag)| PartId { content_id: etag })
            .collect();
        self.s3
            .complete_multipart(&self.key(location), &upload_id.to_string(), parts)
            .await
            .map_err(|e| upload_error(&format!("completing upload of '{location}'"), e))?;
        Ok(())
    }

    pub async fn abort_multipart(&self, location: &Path, upload_id: &str) -> Result<()> {
        self.s3
            .abort_multipart(&self.key(location), &upload_id.to_string())
            .await
            .map_err(|e| upload_error(&format!("aborting upload of '{location}'"), e))
    }

    /// A presigned GET URL for `location` and its size; 404 when there is no such object.
    pub async fn presigned_get(&self, location: &Path) -> Result<(String, u64)> {
        let key = self.key(location);
        let meta = self.s3.head(&key).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => {
                Error::not_found(format!("Artifact '{location}' does not exist."))
            }
            e => s3_error(&format!("reading artifact '{location}'"), e),
        })?;
        let url = self
            .s3
            .signed_url(http::Method::GET, &key, PRESIGNED_TTL)
            .await
            .map_err(|e| s3_error("presigning a download", e))?;
        Ok((url.to_string(), meta.size))
    }

    /// The object's URL as object_store addresses it (endpoint, path or virtual-host style),
    /// without a query.
    async fn object_url(&self, key: &Path) -> Result<Url> {
        let mut url = self
            .s3
            .signed_url(http::Method::PUT, key, PRESIGNED_TTL)
            .await
            .map_err(|e| s3_error("building an S3 URL", e))?;
        url.set_query(None);
        Ok(url)
    }
}

/// An unknown or finished upload id is the client's mistake, not an internal error.
fn upload_error(context: &str, e: object_store::Error) -> Error {
    let text = e.to_string();
    if text.contains("NoSuchUpload") || text.contains("InvalidPart") {
        Error::invalid(format!("{context}: {text}"))
    } else {
        Error::internal(format!("{context}: {text}"))
    }
}

/// AWS's URI encoding: unreserved characters stay, every other byte is `%XX` (upper case).
fn aws_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Adds SigV4 query authentication to `url` (whose query already holds the request's own
/// parameters) for an S3 request with an unsigned payload and only `host` signed.
pub fn presign(
    method: &str,
    url: &mut Url,
    credential: &AwsCredential,
    region: &str,
    now: DateTime<Utc>,
    expires: Duration,
) {
    let date = now.format("%Y%m%d").to_string();
    let stamp = now.format("%Y%m%dT%H%M%SZ").to_string();
    let scope = format!("{date}/{region}/s3/aws4_request");
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("X-Amz-Algorithm", "AWS4-HMAC-SHA256")
            .append_pair(
                "X-Amz-Credential",
                &format!("{}/{scope}", credential.key_id),
            )
            .append_pair("X-Amz-Date", &stamp)
            .append_pair("X-Amz-Expires", &expires.as_secs().to_string())
            .append_pair("X-Amz-SignedHeaders", "host");
        if let Some(token) = &credential.token {
            q.append_pair("X-Amz-Security-Token", token);
        }
    }
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (aws_encode(&k), aws_encode(&v)))
        .collect();
    pairs.sort();
    let canonical_query = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let canonical_request = format!(
        "{method}\n{}\n{canonical_query}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD",
        url.path()
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let key = [date.as_str(), region, "s3", "aws4_request"].iter().fold(
        format!("AWS4{}", credential.secret_key).into_bytes(),
        |k, part| hmac(&k, part),
    );
    let signature = hex::encode(hmac(&key, &string_to_sign));
    url.query_pairs_mut()
        .append_pair("X-Amz-Signature", &signature);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// AWS's documented example of a presigned GET
    /// (sigv4-query-string-auth.html, "An Example").
    #[test]
    fn presign_matches_the_aws_documentation_example() {
        let credential = AwsCredential {
            key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            token: None,
        };
        let mut url = Url::parse("https://examplebucket.s3.amazonaws.com/test.txt").unwrap();
        let now = Utc.with_ymd_and_hms(2013, 5, 24, 0, 0, 0).unwrap();
        presign(
            "GET",
            &mut url,
            &credential,
            "us-east-1",
            now,
            Duration::from_secs(86400),
        );
        let signature = url
            .query_pairs()
            .find(|(k, _)| k == "X-Amz-Signature")
            .map(|(_, v)| v.into_owned());
        assert_eq!(
            signature.as_deref(),
            Some("aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
        );
    }

    #[test]
    fn aws_encoding_escapes_reserved_bytes() {
        assert_eq!(aws_encode("a b/c~d=e"), "a%20b%2Fc~d%3De");
    }
}
