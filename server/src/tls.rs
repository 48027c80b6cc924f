//! TLS for outgoing connections (error reports, trace export, and any other
//! HTTP client the server makes): one provider, ring, installed as the
//! process's default, which those clients take. Idempotent; every path that
//! builds such a client calls it first.

pub fn install_default_provider() {
    // Fails only when a provider is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
