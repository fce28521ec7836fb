//! The certificate signer: an approved CertificateSigningRequest gets a certificate in
//! `status.certificate` (a self-signed one for the request's name: the simulation has no CA
//! that clients would trust), with the `Issued` column kubectl shows; a denied or failed one
//! gets nothing.

use base64::Engine as _;
use serde_json::{Value, json};

use super::util::{Ctx, name, s};
use crate::pointer::Pointer;

pub(super) fn reconcile(ctx: &mut Ctx<'_>) {
    for csr in ctx.all("certificates.k8s.io", "CertificateSigningRequest") {
        if !s(&csr, "/status/certificate").is_empty() {
            continue;
        }
        let conditions = csr
            .at("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let holds = |kind: &str| {
            conditions
                .iter()
                .any(|c| s(c, "/type") == kind && s(c, "/status") != "False")
        };
        if !holds("Approved") || holds("Denied") || holds("Failed") {
            continue;
        }
        let Ok(issued) = rcgen::generate_simple_self_signed(vec![name(&csr)]) else {
            continue;
        };
        let mut signed = csr;
        signed["status"]["certificate"] =
            json!(base64::engine::general_purpose::STANDARD.encode(issued.cert.pem()));
        let _ = ctx.update_status("certificates.k8s.io", "CertificateSigningRequest", signed);
    }
}
