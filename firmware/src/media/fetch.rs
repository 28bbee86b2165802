//! Where `play` audio comes from: http(s) downloads and local files.
//!
//! # Local files are confined to the sound directories
//!
//! A flow or an API call can name a file to play. Flows come over the LAN API,
//! so an unrestricted path would let anyone who can create a flow probe or play
//! any file the daemon can read (`/etc/...`, the API token in the data
//! directory, other calls' recordings). Local files must therefore resolve —
//! after following symlinks and `..` — inside `<data>/sounds` or a directory
//! listed in `media.sound_dirs`. A relative path is taken inside `<data>/sounds`
//! (`welcome.wav`). Everything else is [`MediaError::PathNotAllowed`], with the
//! fix in the message.
//!
//! # Downloads
//!
//! http(s) only, with a total timeout and a size cap (checked against
//! `Content-Length` and again while streaming). Responses are cached by URL for a
//! configurable time, so a prompt played on every call is fetched once.

use std::path::PathBuf;

use reqwest::Url;

use super::error::{MediaError, Result};

/// Where a `play` URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// A local file (already checked against the sound directories).
    File(PathBuf),
    /// An http(s) URL.
    Http(Url),
}

/// Classifies `url` and, for local files, resolves and checks it. Blocking
/// (it canonicalizes paths).
pub(crate) fn locate(url: &str, sound_dirs: &[PathBuf]) -> Result<Location> {
    let unsupported = |reason: &str| MediaError::UnsupportedUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err(unsupported("empty"));
    }
    let path = if trimmed.starts_with('/') {
        PathBuf::from(trimmed)
    } else if let Ok(parsed) = Url::parse(trimmed) {
        match parsed.scheme() {
            "http" | "https" => return Ok(Location::Http(parsed)),
            "file" => parsed
                .to_file_path()
                .map_err(|()| unsupported("not a local file URL"))?,
            other => {
                return Err(unsupported(&format!(
                    "scheme {other:?} (use http, https, file or a path)"
                )));
            }
        }
    } else {
        let first = sound_dirs
            .first()
            .ok_or_else(|| unsupported("relative path and no sound directory"))?;
        first.join(trimmed)
    };
    let resolved = path
        .canonicalize()
        .map_err(|e| MediaError::io("open", &path, e))?;
    let allowed = sound_dirs
        .iter()
        .filter_map(|d| d.canonicalize().ok())
        .any(|d| resolved.starts_with(d));
    if !allowed {
        return Err(MediaError::PathNotAllowed {
            path: resolved,
            allowed: sound_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    if !resolved.is_file() {
        return Err(unsupported("not a regular file"));
    }
    Ok(Location::File(resolved))
}

/// Downloads `url` (at most `max_bytes`).
pub(crate) async fn download(
    client: &reqwest::Client,
    url: &Url,
    max_bytes: u64,
) -> Result<Vec<u8>> {
    let fail = |reason: String| MediaError::Fetch {
        url: url.to_string(),
        reason,
    };
    let too_large = || MediaError::FetchTooLarge {
        url: url.to_string(),
        limit: max_bytes,
    };
    crate::tls::Roots::get()
        .check_url(url.as_str())
        .map_err(|e| fail(e.to_string()))?;
    let mut resp = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status())));
    }
    if resp.content_length().is_some_and(|n| n > max_bytes) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| fail(e.to_string()))? {
        if body.len() as u64 + chunk.len() as u64 > max_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_must_be_inside_the_sound_dirs() {
        let dir = tempfile::tempdir().expect("dir");
        let sounds = dir.path().join("sounds");
        std::fs::create_dir(&sounds).expect("mkdir");
        std::fs::write(sounds.join("a.wav"), b"x").expect("write");
        std::fs::write(dir.path().join("secret"), b"x").expect("write");
        let dirs = vec![sounds.clone()];
        let inside = sounds.canonicalize().expect("canon").join("a.wav");
        assert_eq!(
            locate("a.wav", &dirs).expect("relative"),
            Location::File(inside.clone())
        );
        assert_eq!(
            locate(inside.to_str().expect("utf8"), &dirs).expect("abs"),
            Location::File(inside.clone())
        );
        let file_url = Url::from_file_path(&inside).expect("url").to_string();
        assert_eq!(
            locate(&file_url, &dirs).expect("file url"),
            Location::File(inside)
        );
        for bad in [
            "../secret",
            dir.path().join("secret").to_str().expect("utf8"),
        ] {
            assert!(
                matches!(locate(bad, &dirs), Err(MediaError::PathNotAllowed { .. })),
                "{bad}"
            );
        }
        std::os::unix::fs::symlink(dir.path().join("secret"), sounds.join("link.wav"))
            .expect("symlink");
        assert!(matches!(
            locate("link.wav", &dirs),
            Err(MediaError::PathNotAllowed { .. })
        ));
        assert!(matches!(
            locate("missing.wav", &dirs),
            Err(MediaError::Io { .. })
        ));
        assert!(matches!(
            locate("ftp://x/y.wav", &dirs),
            Err(MediaError::UnsupportedUrl { .. })
        ));
        assert!(matches!(
            locate("https://example.invalid/a.mp3", &dirs),
            Ok(Location::Http(_))
        ));
    }
}
