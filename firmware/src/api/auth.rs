//! API token: generated on first start, kept in `<data>/api-token` (mode 0600), checked in
//! constant time on every request but the health check.
//!
//! VoIPBIN accepts the token as `Authorization: Bearer <token>` or as `?token=<token>`; so do
//! we, because webhook-style clients and browsers' EventSource cannot set headers.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use parking_lot::RwLock;
use std::sync::Arc;
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// File name of the token inside the data directory.
pub const TOKEN_FILE: &str = "api-token";

/// The secret every API request must present. Clones share it: [`ApiToken::rotate`] changes
/// it for every holder at once.
///
/// The value is a leaked `&'static str` behind a lock so [`ApiToken::as_str`] can hand out a
/// plain `&str` without a guard: each rotation leaks the old token's few dozen bytes, on
/// purpose — rotations are rare human actions from the admin page.
#[derive(Clone)]
pub struct ApiToken(Arc<RwLock<&'static str>>);

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// Whether [`ApiToken::load_or_create`] made a new token (the daemon prints it once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOrigin {
    /// Read from the data directory.
    Existing,
    /// Generated now; show it to the admin once.
    Created,
}

impl ApiToken {
    /// A token with a known value (tests, config-provided tokens).
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::new(RwLock::new(Box::leak(
            value.into().into_boxed_str(),
        ))))
    }

    /// The token text.
    pub fn as_str(&self) -> &str {
        *self.0.read()
    }

    /// Replaces the token with a fresh random one, written to `<dir>/api-token` (mode 0600,
    /// synced, renamed over the old file so a crash leaves one of the two) before the
    /// daemon starts checking it. Returns the new token.
    pub fn rotate(&self, dir: &Path) -> std::io::Result<String> {
        let token = random_token();
        let tmp = dir.join(format!("{TOKEN_FILE}.new"));
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(token.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&tmp, dir.join(TOKEN_FILE))?;
        std::fs::File::open(dir)?.sync_all()?;
        *self.0.write() = Box::leak(token.clone().into_boxed_str());
        Ok(token)
    }

    /// Reads `<dir>/api-token`, or creates it with a fresh random token and mode 0600.
    pub fn load_or_create(dir: &Path) -> std::io::Result<(Self, TokenOrigin)> {
        let path = dir.join(TOKEN_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let token = text.trim().to_owned();
                if token.len() < 16 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "{} holds a token shorter than 16 characters; delete it to generate a new one",
                            path.display()
                        ),
                    ));
                }
                // Tighten permissions left loose by hand edits.
                let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                }
                Ok((Self::new(token), TokenOrigin::Existing))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let token = random_token();
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                file.write_all(token.as_bytes())?;
                file.write_all(b"\n")?;
                file.sync_all()?;
                Ok((Self::new(token), TokenOrigin::Created))
            }
            Err(e) => Err(e),
        }
    }

    /// Constant-time comparison with a presented token.
    pub fn matches(&self, presented: &str) -> bool {
        // Lengths are not secret (the token length is fixed), but compare through `ct_eq`
        // only when they match so timing does not depend on the content.
        let token = self.as_str();
        token.len() == presented.len() && bool::from(token.as_bytes().ct_eq(presented.as_bytes()))
    }
}

/// 24 random bytes in hex.
fn random_token() -> String {
    let mut bytes = [0u8; 24];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

/// Middleware: rejects requests without the right token with 401.
pub(crate) async fn require_token(
    State(token): State<ApiToken>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = bearer(&request).or_else(|| query_token(request.uri().query()));
    match presented {
        Some(p) if token.matches(&p) => Ok(next.run(request).await),
        Some(_) => Err(ApiError::unauthorized("the API token is wrong")),
        None => Err(ApiError::unauthorized(
            "an API token is required: send `Authorization: Bearer <token>` or `?token=<token>` (see <data dir>/api-token)",
        )),
    }
}

fn bearer(request: &Request) -> Option<String> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim().to_owned())
}

fn query_token(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "token").then(|| percent_decode(v))
    })
}

/// Minimal `%XX` and `+` decoding for the token parameter (tokens are hex, but a client may
/// still encode them).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let (a, origin) = ApiToken::load_or_create(dir.path()).unwrap();
        assert_eq!(origin, TokenOrigin::Created);
        let mode = std::fs::metadata(dir.path().join(TOKEN_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let (b, origin) = ApiToken::load_or_create(dir.path()).unwrap();
        assert_eq!(origin, TokenOrigin::Existing);
        assert_eq!(a.as_str(), b.as_str());
        assert!(a.matches(b.as_str()));
        assert!(!a.matches("nope"));
    }

    #[test]
    fn rotation_replaces_the_token_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _) = ApiToken::load_or_create(dir.path()).unwrap();
        let old = a.as_str().to_owned();
        let shared = a.clone();
        let new = a.rotate(dir.path()).unwrap();
        assert_ne!(old, new);
        assert!(shared.matches(&new));
        assert!(!shared.matches(&old));
        let (b, origin) = ApiToken::load_or_create(dir.path()).unwrap();
        assert_eq!(origin, TokenOrigin::Existing);
        assert_eq!(b.as_str(), new);
    }

    #[test]
    fn query_token_is_decoded() {
        assert_eq!(
            query_token(Some("page_size=3&token=ab%63d")).as_deref(),
            Some("abcd")
        );
        assert_eq!(query_token(Some("token=%zz")).as_deref(), Some("%zz"));
        assert_eq!(query_token(Some("token=%4")).as_deref(), Some("%4"));
        assert_eq!(query_token(Some("x=1")), None);
    }
}
