//! Fetching `FileUrl` images without letting a customer reach inside the network.
//!
//! - only `http` and `https`; a host written as an IP address is refused;
//! - the host is resolved once, by our resolver, and the connection goes to one of the addresses
//!   it returned, each checked to be public ([`is_public`]): DNS rebinding cannot slip a private
//!   address in between the check and the connection;
//! - redirects are followed by hand, at most [`FetchSettings::max_redirects`] times, each hop
//!   checked like the first;
//! - each attempt has [`FetchSettings::timeout_secs`] in all and a failed attempt (timeout, network,
//!   5xx) is retried once;
//! - the body is streamed and abandoned as soon as it reaches the size limit;
//! - a fixed User-Agent ([`FetchSettings::user_agent`]) lets customers allow-list the fetcher.
//!
//! Operators of private deployments may list hosts in `allow_internal_hosts`: those names (or
//! literal addresses) skip the address checks.

use futures_util::StreamExt;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How the fetcher introduces itself: the product and its version.
const PRODUCT: &str = concat!("ims-image-fetcher/", env!("CARGO_PKG_VERSION"));
/// A `FileUrl` image must be smaller than this (30 MB).
pub const MAX_URL_BYTES: u64 = 30 * 1024 * 1024;

/// How `FileUrl` images are downloaded: the `[fetch]` section of the configuration.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchSettings {
    /// Seconds one download attempt may take in all (connect, headers, body).
    pub timeout_secs: u64,
    /// Further attempts after a timeout, a network error or a 5xx answer.
    pub retries: u32,
    pub max_redirects: u32,
    /// Host names (or literal addresses) that may be fetched although they resolve to internal
    /// addresses: for private deployments whose images live inside the network.
    pub allow_internal_hosts: Vec<String>,
    /// A page (or `mailto:`) where the owners of image hosts can reach this deployment's
    /// operator, added to the User-Agent; none by default.
    pub contact_url: Option<String>,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings {
            timeout_secs: 3,
            retries: 1,
            max_redirects: 3,
            allow_internal_hosts: Vec::new(),
            contact_url: None,
        }
    }
}

impl FetchSettings {
    /// `ims-image-fetcher/<version>`, and ` (+<contact_url>)` when the operator set one.
    pub fn user_agent(&self) -> String {
        match &self.contact_url {
            Some(url) => format!("{PRODUCT} (+{url})"),
            None => PRODUCT.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the URL is not valid: {0}")]
    InvalidUrl(String),
    #[error("the URL must use http or https, not `{0}`")]
    Scheme(String),
    #[error("the URL may not name its host by IP address ({0})")]
    IpLiteral(String),
    #[error("the host `{0}` resolves to an internal address, which is never fetched")]
    Internal(String),
    #[error("the host `{0}` could not be resolved")]
    Unresolvable(String),
    #[error("the download did not finish within {0} s (tried {1} times)")]
    Timeout(u64, u32),
    #[error("the server answered HTTP {0}{1}")]
    Status(u16, &'static str),
    #[error("the image is {0} bytes or more; a FileUrl image must be under {MAX_URL_BYTES} bytes")]
    TooLarge(u64),
    #[error("more than {0} redirects")]
    TooManyRedirects(u32),
    #[error("the download failed: {0}")]
    Network(String),
}

impl FetchError {
    /// Worth another attempt: the failure may be passing.
    fn is_transient(&self) -> bool {
        matches!(self, FetchError::Timeout(..) | FetchError::Network(_) | FetchError::Status(500..=599, _))
    }
}

/// Whether an address may be fetched: globally routable unicast, nothing reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                    // "this network", 0.0.0.0/8
        || a == 10                              // private
        || a == 127                             // loopback
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 169 && b == 254)               // link-local
        || (a == 172 && (16..32).contains(&b))  // private
        || (a == 192 && b == 0 && c == 0)       // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)       // documentation
        || (a == 192 && b == 88 && c == 99)     // 6to4 relay anycast
        || (a == 192 && b == 168)               // private
        || (a == 198 && (18..20).contains(&b))  // benchmarking
        || (a == 198 && b == 51 && c == 100)    // documentation
        || (a == 203 && b == 0 && c == 113)     // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let o = ip.octets();
    let embedded = |at: usize| Ipv4Addr::new(o[at], o[at + 1], o[at + 2], o[at + 3]);
    // Addresses that carry an IPv4 address are judged by it: v4-mapped, v4-compatible (which
    // also covers :: and ::1, as 0.0.0.0/8 is never public), NAT64, 6to4.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] {
        return is_public_v4(embedded(12));
    }
    if s[0] == 0x64 && s[1] == 0xff9b {
        return is_public_v4(embedded(12));
    }
    if s[0] == 0x2002 {
        return is_public_v4(embedded(2));
    }
    !((s[0] & 0xfe00) == 0xfc00        // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80   // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0   // site-local (deprecated) fec0::/10
        || (s[0] & 0xff00) == 0xff00   // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard 100::/64
        || (s[0] == 0x2001 && s[1] < 0x0200)) // IETF protocol assignments 2001::/23
}

/// Whether the operator allowed this host (a name or a literal address) to be internal.
fn is_allowed(allow: &[String], host: &str) -> bool {
    allow.iter().any(|h| h.eq_ignore_ascii_case(host))
}

/// The resolver every connection goes through: it returns only addresses that may be fetched.
struct GuardedResolver {
    allow: Arc<Vec<String>>,
}

/// Why the guarded resolver refused a name; found again in reqwest's error chain.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(FetchError);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let allowed = is_allowed(&self.allow, &host);
        Box::pin(async move {
            let refuse = |e: FetchError| -> Box<dyn std::error::Error + Send + Sync> { Box::new(Refused(e)) };
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| refuse(FetchError::Unresolvable(host.clone())))?
                .collect();
            if found.is_empty() {
                return Err(refuse(FetchError::Unresolvable(host)));
            }
            // One internal address is enough to refuse the name: a host that mixes public and
            // private addresses is either misconfigured or probing.
            if !allowed && found.iter().any(|a| !is_public(a.ip())) {
                return Err(refuse(FetchError::Internal(host)));
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

pub struct Fetcher {
    client: reqwest::Client,
    settings: FetchSettings,
}

impl Fetcher {
    pub fn new(settings: FetchSettings) -> Result<Fetcher, String> {
        let client = reqwest::Client::builder()
            .user_agent(settings.user_agent())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { allow: Arc::new(settings.allow_internal_hosts.clone()) }))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Fetcher { client, settings })
    }

    /// Checks a URL before any connection: syntax, scheme, and no IP-literal host.
    fn check(&self, url: &str) -> Result<reqwest::Url, FetchError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| FetchError::InvalidUrl(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(FetchError::Scheme(parsed.scheme().to_string()));
        }
        match parsed.host() {
            None => Err(FetchError::InvalidUrl("it has no host".into())),
            Some(url::Host::Domain(_)) => Ok(parsed),
            Some(ip) if is_allowed(&self.settings.allow_internal_hosts, &ip.to_string()) => Ok(parsed),
            Some(ip) => Err(FetchError::IpLiteral(ip.to_string())),
        }
    }

    /// Whether `url` could be fetched or called back at all (syntax, scheme, no IP literal, no
    /// host resolving to an internal address), without connecting to it.
    pub async fn check_url(&self, url: &str) -> Result<(), FetchError> {
        let parsed = self.check(url)?;
        let host = parsed.host_str().unwrap_or_default().trim_matches(['[', ']']).to_string();
        if is_allowed(&self.settings.allow_internal_hosts, &host) {
            return Ok(());
        }
        // A name that does not resolve now may later (the connection is checked again then);
        // one that resolves to an internal address is refused at once.
        let found: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), 0)).await {
            Ok(found) => found.collect(),
            Err(_) => return Ok(()),
        };
        match found.iter().any(|a| !is_public(a.ip())) {
            true => Err(FetchError::Internal(host)),
            false => Ok(()),
        }
    }

    /// POSTs a JSON `body` with extra `headers` to `url` under the same address rules as
    /// [`Fetcher::fetch`] (redirects are not followed); returns the HTTP status.
    pub async fn post_json(&self, url: &str, body: &[u8], headers: &[(&str, String)]) -> Result<u16, FetchError> {
        let url = self.check(url)?;
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(Duration::from_secs(self.settings.timeout_secs.max(1) * 2))
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.map_err(classify)?;
        Ok(response.status().as_u16())
    }

    /// Downloads the image behind `url` (see the module documentation for every rule).
    pub async fn fetch(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let mut current = self.check(url)?;
        for _ in 0..=self.settings.max_redirects {
            match self.with_retries(&current).await? {
                Hop::Body(bytes) => return Ok(bytes),
                Hop::Redirect(location) => {
                    let next = current.join(&location).map_err(|e| FetchError::InvalidUrl(e.to_string()))?;
                    current = self.check(next.as_str())?;
                }
            }
        }
        Err(FetchError::TooManyRedirects(self.settings.max_redirects))
    }

    async fn with_retries(&self, url: &reqwest::Url) -> Result<Hop, FetchError> {
        let attempts = self.settings.retries + 1;
        let timeout = Duration::from_secs(self.settings.timeout_secs);
        let mut last = None;
        for _ in 0..attempts {
            let outcome = tokio::time::timeout(timeout, self.attempt(url))
                .await
                .unwrap_or(Err(FetchError::Timeout(self.settings.timeout_secs, attempts)));
            match outcome {
                Err(e) if e.is_transient() => last = Some(e),
                other => return other,
            }
        }
        Err(last.expect("at least one attempt"))
    }

    async fn attempt(&self, url: &reqwest::Url) -> Result<Hop, FetchError> {
        let response = self.client.get(url.clone()).send().await.map_err(classify)?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or(FetchError::Status(status.as_u16(), " (a redirect without Location)"))?;
            return Ok(Hop::Redirect(location.to_string()));
        }
        if !status.is_success() {
            let hint = match status.as_u16() {
                403 => " (forbidden: hot-link protection?)",
                404 => " (not found)",
                405 => " (method not allowed)",
                _ => "",
            };
            return Err(FetchError::Status(status.as_u16(), hint));
        }
        if response.content_length().is_some_and(|n| n >= MAX_URL_BYTES) {
            return Err(FetchError::TooLarge(MAX_URL_BYTES));
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(classify)?;
            if body.len() as u64 + chunk.len() as u64 >= MAX_URL_BYTES {
                return Err(FetchError::TooLarge(MAX_URL_BYTES));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Hop::Body(body))
    }
}

enum Hop {
    Body(Vec<u8>),
    Redirect(String),
}

/// A reqwest error as a fetch error, recovering the resolver's refusal from the chain.
fn classify(error: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = source {
        if let Some(Refused(reason)) = e.downcast_ref::<Refused>() {
            return reason.clone();
        }
        source = e.source();
    }
    let detail = if error.is_connect() { "the connection failed".to_string() } else { error.to_string() };
    FetchError::Network(detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_user_agent_names_the_product_and_only_a_contact_the_operator_set() {
        let mut settings = FetchSettings::default();
        assert_eq!(settings.user_agent(), format!("ims-image-fetcher/{}", env!("CARGO_PKG_VERSION")));
        settings.contact_url = Some("https://moderation.example.com/bot".into());
        assert_eq!(
            settings.user_agent(),
            format!("ims-image-fetcher/{} (+https://moderation.example.com/bot)", env!("CARGO_PKG_VERSION"))
        );
        settings.contact_url = Some("https://x.example\r\nX-Injected: 1".into());
        assert!(Fetcher::new(settings).is_err(), "a header cannot be smuggled in through the contact");
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for s in [
            "0.0.0.0",
            "10.1.2.3",
            "127.0.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "100::1",
        ] {
            assert!(!is_public(ip(s)), "{s} must be refused");
        }
    }

    #[test]
    fn public_addresses_are() {
        for s in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(is_public(ip(s)), "{s} is public");
        }
    }

    #[test]
    fn urls_are_checked_before_any_connection() {
        let f = Fetcher::new(FetchSettings::default()).unwrap();
        assert!(matches!(f.check("ftp://example.com/a.jpg"), Err(FetchError::Scheme(_))));
        assert!(matches!(f.check("file:///etc/passwd"), Err(FetchError::Scheme(_))));
        assert!(matches!(f.check("/only/a/path.jpg"), Err(FetchError::InvalidUrl(_))));
        assert!(matches!(f.check("example.com/a.jpg"), Err(FetchError::InvalidUrl(_))));
        assert!(matches!(f.check("http://127.0.0.1/a.jpg"), Err(FetchError::IpLiteral(_))));
        assert!(matches!(f.check("http://[::1]/a.jpg"), Err(FetchError::IpLiteral(_))));
        assert!(matches!(f.check("http://2130706433/a.jpg"), Err(FetchError::IpLiteral(_))), "decimal IPv4");
        assert!(f.check("https://example.com/a.jpg").is_ok());
        let allowing =
            Fetcher::new(FetchSettings { allow_internal_hosts: vec!["10.0.0.5".into()], ..Default::default() })
                .unwrap();
        assert!(allowing.check("http://10.0.0.5/a.jpg").is_ok());
    }
}
