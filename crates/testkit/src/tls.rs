//! Certificates a test makes for itself (with the `openssl` command), and a look at what a TLS listener presents.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A self-signed certificate and its key (EC P-256) in `dir`, named `{stem}.crt` / `{stem}.key`, for `name`
/// (its CN and a DNS subject alternative name) and 127.0.0.1. None (after a loud skip line) when `openssl` is
/// missing outside CI.
pub fn self_signed(dir: &Path, stem: &str, name: &str) -> Option<(PathBuf, PathBuf)> {
    if !crate::require_program("openssl", "openssl") {
        return None;
    }
    let (cert, key) = (dir.join(format!("{stem}.crt")), dir.join(format!("{stem}.key")));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", &format!("/CN={name}"), "-addext", &format!("subjectAltName=DNS:{name},IP:127.0.0.1")])
        // A server certificate, not a CA: rustls refuses a CA certificate as a server's own.
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth"])
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl req failed: {}", String::from_utf8_lossy(&out.stderr));
    Some((cert, key))
}

/// What `openssl s_client` says of a handshake with `addr` asking for `server_name` (SNI): its whole output,
/// the presented certificate's subject included. Input is closed at once, so it returns after the handshake.
pub fn s_client(addr: std::net::SocketAddr, server_name: &str) -> String {
    let out = Command::new("timeout")
        .args(["10", "openssl", "s_client", "-connect", &addr.to_string(), "-servername", server_name])
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}
