//! Which servers a client trusts over TLS, for REST and WebSocket alike.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls_platform_verifier::BuilderVerifierExt;

/// The system's roots, or the certificates of one PEM file instead.
#[derive(Clone)]
pub struct Trust {
    pem: Option<Vec<u8>>,
    tls: Arc<rustls::ClientConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{path}: {reason}")]
    Certificate { path: String, reason: String },
    #[error("TLS set-up: {0}")]
    Tls(#[from] rustls::Error),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    // The HTTP client takes the process default; install ours if none is.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Trust {
    /// The system's root certificates.
    pub fn system() -> Result<Trust, TrustError> {
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_platform_verifier()?
            .with_no_client_auth();
        Ok(Trust {
            pem: None,
            tls: Arc::new(config),
        })
    }

    /// Only the certificates in the PEM file at `path`.
    pub fn pem_file(path: &Path) -> Result<Trust, TrustError> {
        let failed = |reason: String| TrustError::Certificate {
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|error| failed(error.to_string()))?;
        let mut roots = rustls::RootCertStore::empty();
        for certificate in CertificateDer::pem_slice_iter(&pem) {
            let certificate = certificate.map_err(|_| failed("not a PEM certificate".into()))?;
            roots
                .add(certificate)
                .map_err(|error| failed(error.to_string()))?;
        }
        if roots.is_empty() {
            return Err(failed("no certificate in it".into()));
        }
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Trust {
            pem: Some(pem),
            tls: Arc::new(config),
        })
    }

    pub(crate) fn http_client(
        &self,
        timeout: std::time::Duration,
    ) -> Result<reqwest::Client, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(std::time::Duration::from_secs(5)));
        if let Some(pem) = &self.pem {
            builder = builder.tls_certs_only(reqwest::Certificate::from_pem_bundle(pem)?);
        }
        builder.build()
    }

    pub(crate) fn websocket_connector(&self) -> tokio_tungstenite::Connector {
        tokio_tungstenite::Connector::Rustls(self.tls.clone())
    }
}
