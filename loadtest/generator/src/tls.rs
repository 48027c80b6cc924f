//! Trust for `https://` and `wss://` targets: the edge's certificate (self-signed
//! on a local cluster) given with `--ca-cert`, the same roots for REST and
//! WebSocket connections.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// What the clients trust: nothing extra (plain `http://` targets), or the
/// certificates of one PEM file.
#[derive(Clone, Default)]
pub struct Trust {
    pem: Option<Vec<u8>>,
    websocket: Option<Arc<rustls::ClientConfig>>,
}

impl Trust {
    pub fn load(ca_cert: Option<&Path>) -> anyhow::Result<Trust> {
        let Some(path) = ca_cert else {
            return Ok(Trust::default());
        };
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        for certificate in CertificateDer::pem_slice_iter(&pem) {
            let certificate = certificate
                .with_context(|| format!("{}: not a PEM certificate", path.display()))?;
            roots.add(certificate)?;
        }
        anyhow::ensure!(
            !roots.is_empty(),
            "{}: no certificate in it",
            path.display()
        );
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Trust {
            pem: Some(pem),
            websocket: Some(Arc::new(config)),
        })
    }

    /// A REST client that trusts these certificates besides nothing else.
    pub fn http_client(&self) -> anyhow::Result<reqwest::Client> {
        // reqwest takes the process's TLS provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .connect_timeout(std::time::Duration::from_secs(5))
            .pool_max_idle_per_host(64);
        if let Some(pem) = &self.pem {
            builder = builder.tls_certs_only(reqwest::Certificate::from_pem_bundle(pem)?);
        }
        Ok(builder.build()?)
    }

    /// The connector for `wss://` (plain TCP when no certificate was given).
    pub fn websocket_connector(&self) -> Option<tokio_tungstenite::Connector> {
        self.websocket
            .clone()
            .map(tokio_tungstenite::Connector::Rustls)
    }
}
