//! The root certificates outgoing TLS trusts (HTTP client: `fetch`, webhooks, media URLs,
//! transcription, the CLI's dry run; SMTP for `email_send`), read from the image's CA bundle
//! instead of compiled into the binary.
//!
//! The compiled-in Mozilla roots (webpki-roots) cost flash on every board and went stale with
//! the firmware; the image's `ca-certificates` package (the Yocto recipe depends on it) is
//! updated with the rest of the root file system. The bundle is `$SSL_CERT_FILE` when set
//! (the variable OpenSSL and most TLS clients honour), else
//! `/etc/ssl/certs/ca-certificates.crt` (Debian's and Yocto's path), read once per process.
//!
//! Without a bundle the daemon still runs (plain-HTTP webhooks, a relay with `security =
//! "none"` or its own `ca_file`), logs why at start-up, and a request that needs TLS fails
//! with [`TlsError`]'s message instead of an opaque "unknown issuer".
//!
//! [`parse_bundle`] is the sans-IO part (PEM text in, trust anchors out); [`Roots::load`]
//! only reads the file.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

/// Where Debian, Yocto and most distributions put the PEM bundle of trusted roots.
pub const DEFAULT_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Largest bundle read (Debian's is about 220 KB).
const MAX_BUNDLE_BYTES: u64 = 8 * 1024 * 1024;

/// Why outgoing TLS has no trusted roots.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The bundle could not be read.
    #[error(
        "TLS is not available: CA bundle {path}: {reason} (install ca-certificates or set SSL_CERT_FILE)"
    )]
    NoBundle {
        /// The bundle's path.
        path: String,
        /// Why it could not be read.
        reason: String,
    },
    /// The bundle holds no certificate usable as a trust anchor.
    #[error(
        "TLS is not available: CA bundle {path} holds no usable certificate (install ca-certificates or set SSL_CERT_FILE)"
    )]
    Empty {
        /// The bundle's path.
        path: String,
    },
}

/// The trusted roots of this process.
#[derive(Debug)]
pub struct Roots {
    path: PathBuf,
    certs: Result<Vec<CertificateDer<'static>>, TlsError>,
    skipped: usize,
}

impl Roots {
    /// The process's roots: the bundle named by `$SSL_CERT_FILE` or [`DEFAULT_CA_BUNDLE`],
    /// read at the first call.
    pub fn get() -> &'static Roots {
        static ROOTS: OnceLock<Roots> = OnceLock::new();
        ROOTS.get_or_init(|| {
            let path = match std::env::var_os("SSL_CERT_FILE") {
                Some(p) if !p.is_empty() => PathBuf::from(p),
                _ => PathBuf::from(DEFAULT_CA_BUNDLE),
            };
            Roots::load(&path)
        })
    }

    /// Reads the PEM bundle at `path`.
    pub fn load(path: &Path) -> Roots {
        let shown = path.display().to_string();
        let read = std::fs::File::open(path).and_then(|f| {
            use std::io::Read as _;
            let mut bytes = Vec::new();
            f.take(MAX_BUNDLE_BYTES).read_to_end(&mut bytes)?;
            Ok(bytes)
        });
        let (certs, skipped) = match read {
            Ok(bytes) => {
                let (certs, skipped) = parse_bundle(&bytes);
                if certs.is_empty() {
                    (Err(TlsError::Empty { path: shown }), skipped)
                } else {
                    (Ok(certs), skipped)
                }
            }
            Err(e) => (
                Err(TlsError::NoBundle {
                    path: shown,
                    reason: e.to_string(),
                }),
                0,
            ),
        };
        Roots {
            path: path.to_owned(),
            certs,
            skipped,
        }
    }

    /// The bundle's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The trusted roots (DER), or why there are none.
    pub fn certs(&self) -> Result<&[CertificateDer<'static>], &TlsError> {
        self.certs.as_deref()
    }

    /// Certificates of the bundle that were not usable as trust anchors (ignored).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Ok when a request to `url` can be made: plain `http://` always, `https://` only with
    /// roots.
    pub fn check_url(&self, url: &str) -> Result<(), TlsError> {
        let https = url
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
        match &self.certs {
            Err(e) if https => Err(e.clone()),
            _ => Ok(()),
        }
    }

    /// `builder` trusting these roots (and nothing compiled in: reqwest has no built-in
    /// roots in this build). Without roots it is left as it is: plain HTTP still works, and
    /// [`Roots::check_url`] explains an `https://` URL.
    pub fn http_client(&self, mut builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        if let Ok(certs) = &self.certs {
            for der in certs {
                match reqwest::Certificate::from_der(der) {
                    Ok(cert) => builder = builder.add_root_certificate(cert),
                    Err(e) => tracing::debug!(cause = %e, "CA certificate skipped"),
                }
            }
        }
        builder
    }

    /// Logs where the roots come from, or why TLS will not work (once, at start-up).
    pub fn log(&self) {
        match &self.certs {
            Ok(certs) => tracing::info!(
                path = %self.path.display(),
                roots = certs.len(),
                skipped = self.skipped,
                "TLS roots from the CA bundle"
            ),
            Err(e) => tracing::warn!(
                cause = %e,
                "outgoing TLS (https:// fetch, webhooks and media, SMTP with TLS) will fail"
            ),
        }
    }
}

/// The certificates of a PEM bundle that can serve as trust anchors, and how many others it
/// held (malformed PEM sections, certificates webpki cannot use as an anchor). A bundle is
/// a list to pick from, not an all-or-nothing input: one odd certificate must not cost the
/// gateway every TLS connection.
pub fn parse_bundle(pem: &[u8]) -> (Vec<CertificateDer<'static>>, usize) {
    let mut certs = Vec::new();
    let mut skipped = 0;
    for item in CertificateDer::pem_slice_iter(pem) {
        match item {
            Ok(der) if webpki::anchor_from_trusted_cert(&der).is_ok() => certs.push(der),
            Ok(_) => skipped += 1,
            // The iterator reports a broken section and moves on only for some errors;
            // stop at the first one rather than risk not advancing.
            Err(_) => {
                skipped += 1;
                break;
            }
        }
    }
    (certs, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system_bundle() -> Vec<u8> {
        std::fs::read(DEFAULT_CA_BUNDLE).expect("the build machine has ca-certificates")
    }

    #[test]
    fn the_system_bundle_gives_many_roots() {
        let (certs, _) = parse_bundle(&system_bundle());
        assert!(certs.len() > 50, "{}", certs.len());
    }

    #[test]
    fn garbage_between_and_inside_certificates_is_not_fatal() {
        let bundle = String::from_utf8(system_bundle()).expect("PEM is text");
        let first_end = bundle.find("-----END CERTIFICATE-----").expect("a cert") + 25;
        let first = &bundle[..first_end];
        // Text around PEM sections is allowed (bundles carry comments).
        let commented = format!("# a comment\n{first}\nmore words\n");
        assert_eq!(parse_bundle(commented.as_bytes()).0.len(), 1);
        // A section whose base64 is not a certificate: skipped, the good one kept.
        let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let (certs, skipped) = parse_bundle(format!("{first}\n{junk}").as_bytes());
        assert_eq!((certs.len(), skipped), (1, 1));
        assert_eq!(parse_bundle(b"").0.len(), 0);
        assert_eq!(parse_bundle(b"not pem at all").0.len(), 0);
    }

    #[test]
    fn a_missing_bundle_is_a_clear_error_for_https_only() {
        let roots = Roots::load(Path::new("/nonexistent/ca.crt"));
        let err = roots
            .check_url("https://example.com/x")
            .expect_err("no roots");
        let text = err.to_string();
        assert!(text.contains("/nonexistent/ca.crt"), "{text}");
        assert!(text.contains("ca-certificates"), "{text}");
        assert!(roots.check_url("HTTPS://example.com/").is_err());
        assert!(roots.check_url("http://192.0.2.1/hook").is_ok());
        // The client still builds (plain HTTP works).
        assert!(
            roots
                .http_client(reqwest::Client::builder())
                .build()
                .is_ok()
        );
    }

    #[test]
    fn an_empty_bundle_is_an_error() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("empty.crt");
        std::fs::write(&path, b"# nothing here\n").expect("write");
        let roots = Roots::load(&path);
        assert!(matches!(roots.certs(), Err(TlsError::Empty { .. })));
        assert!(roots.check_url("https://x/").is_err());
    }

    #[test]
    fn the_system_bundle_makes_a_client() {
        let roots = Roots::load(Path::new(DEFAULT_CA_BUNDLE));
        assert!(roots.certs().is_ok_and(|c| !c.is_empty()));
        assert!(roots.check_url("https://example.com/").is_ok());
        assert!(
            roots
                .http_client(reqwest::Client::builder())
                .build()
                .is_ok()
        );
    }
}
