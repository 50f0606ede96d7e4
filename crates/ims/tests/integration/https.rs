//! HTTPS: the real Python and Node SDKs with their default protocol, and the cloud's own
//! `tccli`, get verdicts from a server with a certificate they were told to trust, and refuse
//! one they were not (self-signed, for another host, expired); a certificate replaced on disk is
//! served to the next connection; plain HTTP to the TLS port is answered plainly; client
//! certificates are required when `server.tls.client_ca` is set.

use crate::harness::{image_base64, node_with, python, python_path, single, tccli_path, Server};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// `ims cert self-signed --host <hosts> --out <dir>`: the certificate's and key's paths.
fn self_signed(dir: &Path, hosts: &[&str]) -> (PathBuf, PathBuf) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ims"));
    command.args(["cert", "self-signed", "--out"]).arg(dir);
    for host in hosts {
        command.args(["--host", host]);
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(printed.contains("NODE_EXTRA_CA_CERTS=") && printed.contains("certification="), "{printed}");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// A certificate for 127.0.0.1 that expired yesterday, and its key (PEM).
fn expired() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let today = chrono::Utc::now().date_naive();
    let day = |d: chrono::NaiveDate| {
        use chrono::Datelike;
        rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
    };
    params.not_before = day(today - chrono::Days::new(30));
    params.not_after = day(today - chrono::Days::new(1));
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

/// Replaces the served files with `dir`'s (as an ACME client does, by renaming new files over
/// them) and waits until the server serves the new certificate.
fn renew(server: &Server, served: &(PathBuf, PathBuf), cert: &str, key: &str) {
    for (path, text) in [(&served.1, key), (&served.0, cert)] {
        let fresh = path.with_extension("new");
        std::fs::write(&fresh, text).unwrap();
        std::fs::rename(&fresh, path).unwrap();
    }
    let started = Instant::now();
    while served_certificate(server) != certificate_der(cert) {
        assert!(started.elapsed() < Duration::from_secs(15), "the new certificate was not served:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The certificate the server presents, DER, read without verifying it.
fn served_certificate(server: &Server) -> Vec<u8> {
    handshake(server, "sys.stdout.buffer.write(t.getpeercert(binary_form=True))", &[])
}

/// What Python prints of a TLS connection `t` to the server (certificate not verified), the
/// client offering the application protocols `alpn`.
fn handshake(server: &Server, print: &str, alpn: &[&str]) -> Vec<u8> {
    let script = format!(
        "import ssl, socket, sys\n\
        host, port = sys.argv[1].rsplit(':', 1)\n\
        context = ssl.create_default_context(); context.check_hostname = False; context.verify_mode = ssl.CERT_NONE\n\
        if sys.argv[2:]: context.set_alpn_protocols(sys.argv[2:])\n\
        with socket.create_connection((host, int(port))) as s, context.wrap_socket(s) as t:\n\
        \x20   {print}\n"
    );
    let output = Command::new(python_path()).args(["-c", &script, &server.endpoint]).args(alpn).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

fn certificate_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body).unwrap()
}

/// A moderation job over the SDK's default protocol, trusting `ca` when given.
fn job(server: &Server, ca: Option<&Path>) -> Value {
    let mut job = server.job(json!({"FileContent": image_base64()}));
    assert!(job["protocol"].is_null(), "the SDK's default protocol");
    if let Some(ca) = ca {
        job["certification"] = json!(ca);
    }
    job
}

/// The Python SDK's answer (Ok) or its error's message.
fn through_python(server: &Server, ca: Option<&Path>) -> Result<Value, String> {
    single(python(&job(server, ca))).map_err(|(code, message)| format!("{code}: {message}"))
}

/// The Node SDK's answer (Ok) or its error's message, trusting `ca` through
/// `NODE_EXTRA_CA_CERTS` when given.
fn through_node(server: &Server, ca: Option<&Path>) -> Result<Value, String> {
    let env: Vec<(&str, &Path)> = ca.map(|ca| ("NODE_EXTRA_CA_CERTS", ca)).into_iter().collect();
    single(node_with(&job(server, None), &env)).map_err(|(code, message)| format!("{code}: {message}"))
}

/// `tccli ims ImageModeration --endpoint HOST:PORT`, which takes no certificate: `ca` is added
/// to the bundle of certifi (which the SDK under tccli verifies against) through a stand-in
/// `certifi` module first on the path, leaving the virtualenv as it is.
fn through_tccli(server: &Server, ca: Option<&Path>, scratch: &Path) -> Result<Value, String> {
    let tccli = tccli_path();
    let mut command = Command::new(&tccli);
    if let Some(ca) = ca {
        let shim = scratch.join("certifi-shim");
        std::fs::create_dir_all(shim.join("certifi")).unwrap();
        let bundle = scratch.join("bundle.pem");
        let python = tccli.with_file_name("python");
        let output = Command::new(python).args(["-c", "import certifi; print(certifi.where())"]).output().unwrap();
        let mut text = std::fs::read_to_string(String::from_utf8(output.stdout).unwrap().trim()).unwrap();
        text.push_str(&std::fs::read_to_string(ca).unwrap());
        std::fs::write(&bundle, text).unwrap();
        let module =
            format!("def where():\n    return {:?}\n\ndef contents():\n    return open(where()).read()\n", bundle);
        std::fs::write(shim.join("certifi/__init__.py"), module).unwrap();
        command.env("PYTHONPATH", &shim);
    }
    let output = command
        .args(["ims", "ImageModeration", "--endpoint", &server.endpoint, "--region", "ap-guangzhou"])
        .args(["--secretId", &server.secret_id, "--secretKey", &server.secret_key])
        .args(["--FileContent", &image_base64()])
        .env("HOME", scratch)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    serde_json::from_str(&printed).map_err(|_| printed)
}

fn passes(answer: Result<Value, String>, who: &str) {
    let answer = answer.unwrap_or_else(|e| panic!("{who}: {e}"));
    assert_eq!(answer["Suggestion"], "Pass", "{who}: {answer}");
}

fn refused(answer: Result<Value, String>, who: &str, because: &[&str]) {
    let error = answer.err().unwrap_or_else(|| panic!("{who}: an untrusted certificate was accepted"));
    assert!(because.iter().any(|b| error.contains(b)), "{who}: {error}");
}

#[test]
fn sdks_and_tccli_verify_and_use_https_and_renewals_need_no_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (scratch, first) = (dir.path().join("scratch"), dir.path().join("first"));
    std::fs::create_dir_all(&scratch).unwrap();
    let served = self_signed(&first, &["127.0.0.1", "localhost"]);
    let original = dir.path().join("original.pem");
    std::fs::copy(&served.0, &original).unwrap();
    let (cert, key) = (served.0.to_str().unwrap(), served.1.to_str().unwrap());
    let server = Server::start_with(&[("IMS_SERVER__TLS__CERT", cert), ("IMS_SERVER__TLS__KEY", key)], &[]);
    assert_eq!(server.scheme, "https");

    // Told to trust the certificate, each client gets a verdict; not told, each refuses it.
    passes(through_python(&server, Some(&served.0)), "Python SDK");
    passes(through_node(&server, Some(&served.0)), "Node SDK");
    passes(through_tccli(&server, Some(&served.0), &scratch), "tccli");
    let unknown = ["CERTIFICATE_VERIFY_FAILED", "self-signed certificate", "self signed certificate"];
    refused(through_python(&server, None), "Python SDK", &unknown);
    refused(through_node(&server, None), "Node SDK", &unknown);
    refused(through_tccli(&server, None, &scratch), "tccli", &unknown);

    // HTTP/2 for the clients that offer it, HTTP/1.1 for the others.
    let protocol = |offered: &[&str]| handshake(&server, "print(t.selected_alpn_protocol())", offered);
    assert_eq!(protocol(&["h2", "http/1.1"]), b"h2\n");
    assert_eq!(protocol(&["http/1.1"]), b"http/1.1\n");

    // Plain HTTP to the TLS port: a plain answer saying so, and the server serves on.
    let mut tcp = std::net::TcpStream::connect(&server.endpoint).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}").unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("speaks HTTPS"), "{answer}");

    // A certificate for another host, trusted, is refused for this one.
    let other = self_signed(&dir.path().join("other"), &["wrong.example"]);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    renew(&server, &served, &read(&other.0), &read(&other.1));
    let wrong_host = ["match", "altnames", "IP address mismatch"];
    refused(through_python(&server, Some(&served.0)), "Python SDK, wrong host", &wrong_host);
    refused(through_node(&server, Some(&served.0)), "Node SDK, wrong host", &wrong_host);

    // An expired certificate, trusted, is refused.
    let (old_cert, old_key) = expired();
    renew(&server, &served, &old_cert, &old_key);
    let stale = ["expired"];
    refused(through_python(&server, Some(&served.0)), "Python SDK, expired", &stale);
    refused(through_node(&server, Some(&served.0)), "Node SDK, expired", &stale);

    // A renewal: served to the next connection, no restart.
    let renewed = self_signed(&dir.path().join("renewed"), &["127.0.0.1"]);
    renew(&server, &served, &read(&renewed.0), &read(&renewed.1));
    passes(through_python(&server, Some(&served.0)), "Python SDK, renewed");
    passes(through_tccli(&server, Some(&served.0), &scratch), "tccli, renewed");
    refused(through_python(&server, Some(&original)), "Python SDK, the first certificate", &unknown);

    // Half a renewal (a key that is not the certificate's) keeps the certificate served.
    let half = self_signed(&dir.path().join("half"), &["127.0.0.1"]);
    std::fs::copy(&half.1, &served.1).unwrap();
    let started = Instant::now();
    while !server.log().contains("cannot reload the TLS certificate") {
        assert!(started.elapsed() < Duration::from_secs(15), "no failed reload logged:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(served_certificate(&server), certificate_der(&read(&renewed.0)));
    passes(through_python(&server, Some(&renewed.0)), "Python SDK, after a failed reload");

    // SIGHUP reads the files again (still the mismatched pair: logged, nothing changes).
    let failures = server.log().matches("cannot reload the TLS certificate").count();
    server.signal("HUP");
    let started = Instant::now();
    while server.log().matches("cannot reload the TLS certificate").count() == failures {
        assert!(started.elapsed() < Duration::from_secs(15), "SIGHUP did not reload:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    passes(through_python(&server, Some(&renewed.0)), "Python SDK, after SIGHUP");
    assert!(!server.log().contains("BEGIN"), "no key or certificate in the log");
}

#[test]
fn bad_certificates_stop_the_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let one = self_signed(&dir.path().join("one"), &["127.0.0.1"]);
    let two = self_signed(&dir.path().join("two"), &["127.0.0.1"]);
    let start = |env: &[(&str, &Path)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ims"));
        command.arg("--data-dir").arg(dir.path().join("data")).args(["serve", "--listen", "127.0.0.1:0"]);
        command.env_remove("IMS_CONFIG").envs(env.iter().copied());
        let output = command.output().unwrap();
        assert!(!output.status.success());
        String::from_utf8(output.stderr).unwrap()
    };
    let (cert, key) = ("IMS_SERVER__TLS__CERT", "IMS_SERVER__TLS__KEY");
    let mismatched = start(&[(cert, &one.0), (key, &two.1)]);
    assert!(mismatched.contains("does not belong to the certificate"), "{mismatched}");
    let absent = dir.path().join("absent.pem");
    let unreadable = start(&[(cert, &absent), (key, &one.1)]);
    assert!(unreadable.contains("cannot read") && unreadable.contains("absent.pem"), "{unreadable}");
    let half = start(&[(cert, &one.0)]);
    assert!(half.contains("needs both cert and key"), "{half}");
    let not_a_certificate = start(&[(cert, &one.1), (key, &one.1)]);
    assert!(not_a_certificate.contains("holds no certificate"), "{not_a_certificate}");
}

#[test]
fn a_client_certificate_is_required_when_client_ca_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let served = self_signed(&dir.path().join("server"), &["127.0.0.1"]);
    // A private authority, and a client certificate it signed.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "ims test clients");
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let mut client = rcgen::CertificateParams::new(vec!["client.example".to_string()]).unwrap();
    client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_pem = client.signed_by(&client_key, &rcgen::Issuer::from_params(&ca, &ca_key)).unwrap().pem();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (ca_path, client_cert, client_key) = (
        write("ca.pem", &ca_pem),
        write("client.pem", &client_pem),
        write("client-key.pem", &client_key.serialize_pem()),
    );
    let env = [
        ("IMS_SERVER__TLS__CERT", served.0.to_str().unwrap()),
        ("IMS_SERVER__TLS__KEY", served.1.to_str().unwrap()),
        ("IMS_SERVER__TLS__CLIENT_CA", ca_path.to_str().unwrap()),
    ];
    let server = Server::start_with(&env, &[]);
    // /healthz over HTTPS from Python's ssl, with and without the client certificate.
    let script = "import ssl, sys, http.client\n\
        host, port = sys.argv[1].rsplit(':', 1)\n\
        context = ssl.create_default_context(cafile=sys.argv[2])\n\
        if len(sys.argv) > 3: context.load_cert_chain(sys.argv[3], sys.argv[4])\n\
        try:\n\
        \x20   c = http.client.HTTPSConnection(host, int(port), context=context); c.request('GET', '/healthz')\n\
        \x20   print(c.getresponse().read().decode())\n\
        except Exception as e:\n\
        \x20   print('refused:', e)\n";
    let health = |with_certificate: bool| {
        let mut command = Command::new(python_path());
        command.args(["-c", script, &server.endpoint]).arg(&served.0);
        if with_certificate {
            command.arg(&client_cert).arg(&client_key);
        }
        String::from_utf8(command.output().unwrap().stdout).unwrap()
    };
    assert!(health(true).contains("\"ok\""), "{}", health(true));
    assert!(health(false).starts_with("refused"), "{}", health(false));
}
