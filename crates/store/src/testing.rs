//! A throwaway PostgreSQL server for tests: Debian's `postgresql-15` binaries (installed by
//! `scripts/system-deps.sh`), a cluster in a temporary folder with its socket there, on a free
//! local port, trusting local connections, stopped and deleted on drop. `initdb` refuses to run
//! as root, so as root every command runs as the package's `postgres` user (`runuser`), in a
//! folder handed to it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's package puts the server binaries.
pub const BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct TempPostgres {
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

impl TempPostgres {
    /// A running server, or `None` (saying why on stderr) where PostgreSQL is not installed.
    /// Under `CI=true` its absence fails instead: CI installs it.
    pub fn start() -> Option<TempPostgres> {
        if !Path::new(BIN).join("initdb").exists() {
            let why = format!("PostgreSQL 15 is not installed ({BIN}; scripts/system-deps.sh installs it)");
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
            eprintln!("SKIPPED: {why}");
            return None;
        }
        let dir = tempfile::Builder::new().prefix("ims-postgres-").tempdir().expect("a temporary folder");
        let as_postgres = is_root();
        if as_postgres {
            hand_to_postgres(dir.path());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = TempPostgres { dir, port, as_postgres };
        let data = server.data().display().to_string();
        server.run("initdb", &["-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
        server.start_again();
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one of the server's programs, as `postgres` where we are root; panics on failure.
    fn run(&self, program: &str, args: &[&str]) {
        let program = Path::new(BIN).join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let output = command.args(args).current_dir(self.dir.path()).output().expect("the PostgreSQL binaries run");
        assert!(
            output.status.success(),
            "{} {args:?} failed: {}{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Starts the server (again, after [`stop`](Self::stop)) on the same port and data.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let (data, log) = (self.data().display().to_string(), self.dir.path().join("log").display().to_string());
        self.run("pg_ctl", &["-D", &data, "-l", &log, "-o", &options, "-w", "start"]);
    }

    /// Stops the server at once, as a crash would (`immediate`): the test of an outage.
    pub fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data().display().to_string(), "-m", "immediate", "-w", "stop"]);
    }

    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A new, empty database; its URL.
    pub fn create_database(&self, name: &str) -> String {
        let mut admin = postgres::Client::connect(&self.url("postgres"), postgres::NoTls).expect("connects");
        admin.batch_execute(&format!("CREATE DATABASE \"{name}\"")).expect("creates the database");
        self.url(name)
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = std::panic::catch_unwind(|| self.run("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]));
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Gives the folder to the `postgres` user, so it may create its cluster there.
fn hand_to_postgres(dir: &Path) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, "postgres"]).output().expect("id runs");
        String::from_utf8_lossy(&out.stdout).trim().parse().expect("the postgres user exists (postgresql-15 makes it)")
    };
    std::os::unix::fs::chown(dir, Some(id("-u")), Some(id("-g"))).expect("chown to postgres");
}
