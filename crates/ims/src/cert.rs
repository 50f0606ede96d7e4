//! `ims cert`: certificates for trials and tests of HTTPS (docs/deployment.md).

use anyhow::Context;
use chrono::{Datelike, Days, NaiveDate, Utc};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum CertCommand {
    /// Write a self-signed certificate and its key, and say how to make clients trust it.
    SelfSigned(SelfSignedArgs),
}

#[derive(Args)]
pub struct SelfSignedArgs {
    /// A name or IP address clients will call the server by (repeat for several).
    #[arg(long = "host", required = true)]
    hosts: Vec<String>,
    /// Where to write `cert.pem` and `key.pem` [default: <data_dir>/tls].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Days the certificate is valid from today.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
    days: u32,
}

/// A certificate for `hosts` valid from `from` to `until` (midnight UTC), signed by its own
/// key: the certificate and the key, PEM.
pub fn self_signed(hosts: &[String], from: NaiveDate, until: NaiveDate) -> anyhow::Result<(String, String)> {
    let key = rcgen::KeyPair::generate().context("cannot make a key")?;
    let mut params = rcgen::CertificateParams::new(hosts.to_vec()).context("invalid --host")?;
    params.distinguished_name.push(rcgen::DnType::CommonName, format!("ims self-signed ({})", hosts.join(", ")));
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let day = |d: NaiveDate| rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8);
    (params.not_before, params.not_after) = (day(from), day(until));
    let cert = params.self_signed(&key).context("cannot sign the certificate")?;
    Ok((cert.pem(), key.serialize_pem()))
}

pub fn run(data_dir: &Path, command: CertCommand) -> anyhow::Result<()> {
    let CertCommand::SelfSigned(args) = command;
    let dir = args.out.unwrap_or_else(|| data_dir.join("tls"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Printed below for the server's and the clients' settings: whole paths, usable from anywhere.
    let dir = dir.canonicalize().with_context(|| format!("cannot find {}", dir.display()))?;
    // From yesterday: a client whose clock is a little behind still accepts it.
    let today = Utc::now().date_naive();
    let from = today - Days::new(1);
    let until = today + Days::new(u64::from(args.days));
    let (cert, key) = self_signed(&args.hosts, from, until)?;
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    write_private(&key_path, &key)?;
    std::fs::write(&cert_path, cert).with_context(|| format!("cannot write {}", cert_path.display()))?;
    let (c, k) = (cert_path.display(), key_path.display());
    println!("Wrote {c} and {k} for {} (valid until {until}).", args.hosts.join(", "));
    println!("Serve HTTPS with them: IMS_SERVER__TLS__CERT={c} IMS_SERVER__TLS__KEY={k} ims serve");
    println!("  (or cert and key under [server.tls] in the configuration file).");
    println!("No client trusts a self-signed certificate until it is told to:");
    println!("  Python SDK: HttpProfile(endpoint=\"HOST:PORT\", certification=\"{c}\")");
    println!("  Node SDK:   NODE_EXTRA_CA_CERTS={c} node app.js");
    println!("  tccli:      cat {c} >> \"$(python3 -m certifi)\"   (in tccli's Python environment)");
    println!("  curl:       curl --cacert {c} https://HOST:PORT/healthz");
    Ok(())
}

/// Writes a secret readable by its owner only.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}
