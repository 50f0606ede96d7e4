//! HTTPS in `ims serve`: rustls on the `ring` provider, HTTP/1.1 and HTTP/2 by ALPN, the
//! certificate reloaded without a restart, and optional client certificates.
//!
//! The handshake runs in each connection's own task (the listener hands out a stream that
//! finishes its handshake when first read or written), so a slow or silent client holds only
//! its own connection, within [`HANDSHAKE_TIMEOUT`]. A client that speaks plain HTTP to the TLS
//! port is answered a plain `400` saying so, and the connection closed.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

pub use rustls::ServerConfig;

/// `server.tls`: with `cert` and `key` the server speaks HTTPS only; without, plain HTTP.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// The certificate chain, PEM, the server's own certificate first.
    pub cert: Option<PathBuf>,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// PEM certificates of the authorities whose client certificates are accepted; set, every
    /// client must present one.
    pub client_ca: Option<PathBuf>,
}

impl TlsSettings {
    /// The certificate and key paths, when TLS is on; an error when only one is set.
    pub fn files(&self) -> Result<Option<(&Path, &Path)>, TlsError> {
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Ok(Some((cert, key))),
            (None, None) if self.client_ca.is_none() => Ok(None),
            _ => Err(TlsError::Incomplete),
        }
    }
}

/// How long a client may take to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the certificate files are checked for a change.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("server.tls needs both cert and key (client_ca only with them)")]
    Incomplete,
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path} holds no certificate")]
    NoCertificate { path: PathBuf },
    #[error("the key in {key} does not belong to the certificate in {cert}: {reason}")]
    Mismatch { cert: PathBuf, key: PathBuf, reason: String },
    #[error("invalid TLS configuration: {0}")]
    Config(String),
}

fn unreadable(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::Unreadable { path: path.to_owned(), reason: reason.to_string() }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| unreadable(path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| unreadable(path, e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_owned() });
    }
    Ok(chain)
}

/// Reads and checks a certificate chain and its key.
fn certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = pem_certificates(cert)?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| unreadable(key, e))?;
    let signing = provider().key_provider.load_private_key(private).map_err(|e| unreadable(key, e))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| TlsError::Mismatch {
        cert: cert.to_owned(),
        key: key.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(certified)
}

/// When each of the two files last changed and how long it is: a renewal replaces at least one.
type Stamp = Option<[(SystemTime, u64); 2]>;

fn stamp(paths: [&Path; 2]) -> Stamp {
    let one = |p: &Path| std::fs::metadata(p).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
    Some([one(paths[0])?, one(paths[1])?])
}

/// The certificate served to every new connection, replaced by [`Certificates::reload`].
#[derive(Debug)]
pub struct Certificates {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<(Arc<CertifiedKey>, Stamp)>,
}

impl Certificates {
    pub fn load(cert: &Path, key: &Path) -> Result<Certificates, TlsError> {
        // Stamped before reading: a change while reading shows at the next check.
        let stamp = stamp([cert, key]);
        let loaded = certified_key(cert, key)?;
        Ok(Certificates { cert: cert.to_owned(), key: key.to_owned(), current: RwLock::new((Arc::new(loaded), stamp)) })
    }

    /// Reads the files again when `always` or when they changed since the last load; a failure
    /// keeps the certificate served. Whether a new one is served now.
    pub fn reload(&self, always: bool) -> Result<bool, TlsError> {
        let stamp = stamp([&self.cert, &self.key]);
        if !always && stamp == self.current.read().unwrap_or_else(|e| e.into_inner()).1 {
            return Ok(false);
        }
        let loaded = certified_key(&self.cert, &self.key);
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        // Remember the failed files too, so that one broken renewal is logged once, not at
        // every check; the next change (or SIGHUP) tries again.
        current.1 = stamp;
        current.0 = Arc::new(loaded?);
        Ok(true)
    }

    fn served(&self) -> Arc<CertifiedKey> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).0.clone()
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.served())
    }
}

/// The rustls configuration: `certificates`, HTTP/2 and HTTP/1.1 by ALPN, and client
/// certificates from `client_ca` when set.
pub fn server_config(certificates: Arc<Certificates>, client_ca: Option<&Path>) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in pem_certificates(path)? {
                roots.add(ca).map_err(|e| unreadable(path, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(certificates);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Reloads the certificate when its files change and on SIGHUP, logging each outcome; stops
/// when the server does.
pub fn spawn_reloader(certificates: Arc<Certificates>) {
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            #[cfg(unix)]
            let hangup = async {
                match hangups.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hangup = std::future::pending::<Option<()>>();
            let always = tokio::select! {
                _ = hangup => true,
                _ = tokio::time::sleep(WATCH_INTERVAL) => false,
            };
            match certificates.reload(always) {
                Ok(true) => tracing::info!(cert = %certificates.cert.display(), "TLS certificate reloaded"),
                Ok(false) => {}
                Err(error) => tracing::error!(%error, "cannot reload the TLS certificate; still serving the old one"),
            }
        }
    });
}

/// A TCP listener whose connections speak TLS.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: ServerConfig) -> TlsListener {
        TlsListener { tcp, acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)) }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsConnection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TlsConnection, SocketAddr) {
        let (tcp, address) = axum::serve::Listener::accept(&mut self.tcp).await;
        let acceptor = self.acceptor.clone();
        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(acceptor, tcp));
        let handshake = async move {
            handshake.await.unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")))
        };
        (TlsConnection::Handshake(Box::pin(handshake)), address)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// What a plain-HTTP request to the TLS port is answered.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 54\r\n\
Connection: close\r\n\r\nThis port speaks HTTPS: call https:// instead of http\n";

/// TLS records of a handshake begin with this byte; an HTTP request with a letter.
const HANDSHAKE_RECORD: u8 = 0x16;

async fn handshake(acceptor: tokio_rustls::TlsAcceptor, mut tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    tcp.peek(&mut first).await?;
    if first[0] != HANDSHAKE_RECORD {
        tcp.write_all(PLAIN_HTTP_ANSWER).await?;
        tcp.shutdown().await?;
        return Err(io::Error::new(io::ErrorKind::InvalidData, "plain HTTP to the TLS port"));
    }
    acceptor.accept(tcp).await
}

type Handshaking = Pin<Box<dyn Future<Output = io::Result<TlsStream<TcpStream>>> + Send>>;

/// One connection of a [`TlsListener`]: its handshake, then its TLS stream.
pub enum TlsConnection {
    Handshake(Handshaking),
    Open(Box<TlsStream<TcpStream>>),
    Failed,
}

impl TlsConnection {
    /// Drives the handshake; ready with the stream once it is open.
    fn open(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Pin<&mut TlsStream<TcpStream>>>> {
        if let TlsConnection::Handshake(handshake) = self {
            match handshake.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(stream)) => *self = TlsConnection::Open(Box::new(stream)),
                Poll::Ready(Err(error)) => {
                    tracing::debug!(%error, "TLS handshake failed");
                    *self = TlsConnection::Failed;
                    return Poll::Ready(Err(error));
                }
            }
        }
        match self {
            TlsConnection::Open(stream) => Poll::Ready(Ok(Pin::new(stream.as_mut()))),
            _ => Poll::Ready(Err(io::Error::new(io::ErrorKind::NotConnected, "the TLS handshake failed"))),
        }
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.open(cx) {
            Poll::Ready(Ok(stream)) => stream.poll_read(cx, buf),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.open(cx) {
            Poll::Ready(Ok(stream)) => stream.poll_write(cx, buf),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.open(cx) {
            Poll::Ready(Ok(stream)) => stream.poll_flush(cx),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            // Nothing to close politely before the handshake is done.
            TlsConnection::Handshake(_) | TlsConnection::Failed => Poll::Ready(Ok(())),
            TlsConnection::Open(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_and_key_go_together() {
        let both = TlsSettings { cert: Some("c".into()), key: Some("k".into()), client_ca: None };
        assert!(both.files().unwrap().is_some());
        assert!(TlsSettings::default().files().unwrap().is_none());
        for half in [
            TlsSettings { cert: Some("c".into()), ..TlsSettings::default() },
            TlsSettings { key: Some("k".into()), ..TlsSettings::default() },
            TlsSettings { client_ca: Some("ca".into()), ..TlsSettings::default() },
        ] {
            assert!(matches!(half.files(), Err(TlsError::Incomplete)));
        }
    }

    /// A self-signed certificate for `host` and its key, PEM.
    fn pair(host: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![host.to_string()]).unwrap().self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Writes `text` to `path`, dated `seconds` after the epoch (so that a change shows however
    /// fast the test runs).
    fn write(path: &Path, text: &str, seconds: u64) {
        std::fs::write(path, text).unwrap();
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)).unwrap();
    }

    #[test]
    fn a_certificate_loads_only_with_its_own_key() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let (one, one_key) = pair("one.example");
        let (_, other_key) = pair("two.example");
        write(&cert, &one, 1);
        write(&key, &one_key, 1);
        assert!(Certificates::load(&cert, &key).is_ok());
        write(&key, &other_key, 2);
        assert!(matches!(Certificates::load(&cert, &key), Err(TlsError::Mismatch { .. })));
        assert!(matches!(Certificates::load(&dir.path().join("absent.pem"), &key), Err(TlsError::Unreadable { .. })));
        write(&cert, "not a certificate\n", 3);
        assert!(matches!(Certificates::load(&cert, &key), Err(TlsError::NoCertificate { .. })));
        write(&cert, &one, 4);
        write(&key, "-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n", 4);
        assert!(matches!(Certificates::load(&cert, &key), Err(TlsError::Unreadable { .. })));
    }

    #[test]
    fn a_changed_certificate_is_served_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let (one, one_key) = pair("one.example");
        write(&cert, &one, 1);
        write(&key, &one_key, 1);
        let certificates = Certificates::load(&cert, &key).unwrap();
        let first = certificates.served().cert[0].clone();
        assert!(!certificates.reload(false).unwrap(), "nothing changed");

        let (two, two_key) = pair("two.example");
        write(&cert, &two, 2);
        write(&key, &two_key, 2);
        assert!(certificates.reload(false).unwrap());
        let second = certificates.served().cert[0].clone();
        assert_ne!(first, second);

        // Half a renewal (a new certificate beside the old key) keeps the one served, and is
        // reported once, not at every check.
        let (three, _) = pair("three.example");
        write(&cert, &three, 3);
        assert!(matches!(certificates.reload(false), Err(TlsError::Mismatch { .. })));
        assert_eq!(certificates.served().cert[0], second);
        assert!(!certificates.reload(false).unwrap());
        // Forced (SIGHUP), the files are read again: still broken.
        assert!(certificates.reload(true).is_err());
        assert_eq!(certificates.served().cert[0], second);
    }

    #[test]
    fn the_plain_http_answer_is_well_formed() {
        let text = std::str::from_utf8(PLAIN_HTTP_ANSWER).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())), "{text}");
    }
}
