//! TLS from the ingesters to PostgreSQL, against a real server with `ssl = on` and a throwaway CA
//! made here with the openssl CLI. The server listens on 127.0.0.1 only (a free port) and its
//! pg_hba.conf accepts TCP connections over TLS only, with a password. Checked through the one
//! connect function every ingester uses, and through a real ingester's `--check`.

use guildstats_e2e::ingest::ingester_binary;
use guildstats_e2e::{run_ok, Cluster};
use guildstats_ingest::sink::connect;
use guildstats_ingest::tls::SslMode;
use guildstats_ingest::SinkOptions;
use std::path::{Path, PathBuf};
use std::process::Command;

const PASSWORD: &str = "tls-test-secret";

/// A cluster of its own, stopped and removed when dropped.
struct TlsCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl TlsCluster {
    fn as_postgres(&self, program: &str) -> Command {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(program));
        command
    }

    fn start(bin: &Path) -> TlsCluster {
        let dir = std::env::temp_dir().join(format!("gs-e2e-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let openssl = |args: &[&str]| {
            run_ok(Command::new("openssl").current_dir(&dir).args(args));
        };
        for ca in ["ca", "other-ca"] {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=guildstats test {ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
            ]);
        }
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(dir.join("san.cnf"), "subjectAltName=DNS:localhost\n").expect("san");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.cnf",
            "-out",
            "server.crt",
        ]);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let cluster = TlsCluster {
            dir: dir.clone(),
            bin: bin.to_path_buf(),
            port,
        };
        run_ok(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir),
        );
        run_ok(Command::new("chmod").arg("600").arg(dir.join("server.key")));
        run_ok(
            cluster
                .as_postgres("initdb")
                .args(["-A", "trust", "-U", "postgres", "-D"])
                .arg(dir.join("data")),
        );
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{d}'\n\
             ssl = on\nssl_cert_file = '{d}/server.crt'\nssl_key_file = '{d}/server.key'\n\
             fsync = off\npassword_encryption = 'scram-sha-256'\n",
            d = dir.display()
        );
        append(&dir.join("data/postgresql.conf"), &conf);
        std::fs::write(
            dir.join("data/pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
        )
        .expect("pg_hba.conf");
        run_ok(
            cluster
                .as_postgres("pg_ctl")
                .args(["-w", "-t", "60", "-l"])
                .arg(dir.join("postgres.log"))
                .arg("-D")
                .arg(dir.join("data"))
                .arg("start"),
        );
        run_ok(
            cluster
                .as_postgres("psql")
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
                .arg(&dir)
                .args(["-p", &port.to_string(), "-U", "postgres", "-d", "postgres", "-c"])
                .arg(format!(
                    "CREATE ROLE tls_ingest LOGIN PASSWORD '{PASSWORD}'; CREATE EXTENSION guildstats;"
                )),
        );
        // The ingest role's rights, as operators grant them.
        run_ok(
            cluster
                .as_postgres("psql")
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
                .arg(&dir)
                .args([
                    "-p",
                    &port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-f",
                ])
                .arg(guildstats_e2e::repo_root().join("sql/ops/roles.sql"))
                .args(["-c", "GRANT guildstats_ingest TO tls_ingest"]),
        );
        cluster
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn options(&self, host: &str, mode: SslMode, ca: Option<&str>) -> SinkOptions {
        let dsn = format!(
            "host={host} port={} user=tls_ingest dbname=postgres connect_timeout=20",
            self.port
        );
        let mut options = SinkOptions::new(dsn, self.dir.join("spool"));
        options.password = Some(PASSWORD.to_string());
        options.tls.mode = mode;
        options.tls.root_cert = ca.map(|name| self.file(name));
        options
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = self
            .as_postgres("pg_ctl")
            .args(["-m", "immediate", "-w", "-t", "60", "-D"])
            .arg(self.dir.join("data"))
            .arg("stop")
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("append");
}

/// Whether the server sees this connection as TLS.
async fn encrypted(options: &SinkOptions) -> Result<bool, String> {
    let client = connect(options).await?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_modes_against_a_server_with_a_throwaway_ca() {
    let test = "tls_modes_against_a_server_with_a_throwaway_ca";
    let Some(cluster) = Cluster::from_env(test) else {
        return;
    };
    if cluster.stoppable_data_dir(test).is_none() {
        // Same needs as stopping the shared cluster: root, to run PostgreSQL as postgres.
        return;
    }
    let server = TlsCluster::start(&cluster.bin_dir);

    // verify-full to the name on the certificate: connected, encrypted, password accepted.
    let full = server.options("localhost", SslMode::VerifyFull, Some("ca.crt"));
    assert_eq!(encrypted(&full).await, Ok(true));

    // The same certificate does not name 127.0.0.1: refused, and the error says why.
    let by_address = server.options("127.0.0.1", SslMode::VerifyFull, Some("ca.crt"));
    let err = encrypted(&by_address).await.unwrap_err();
    assert!(
        err.contains("certificate verify failed") && err.contains("mismatch"),
        "{err}"
    );
    assert!(err.contains("sslmode=verify-full"), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");

    // verify-ca checks the chain but not the name...
    let chain = server.options("127.0.0.1", SslMode::VerifyCa, Some("ca.crt"));
    assert_eq!(encrypted(&chain).await, Ok(true));
    // ...and refuses a certificate from another CA.
    let other = server.options("localhost", SslMode::VerifyCa, Some("other-ca.crt"));
    let err = encrypted(&other).await.unwrap_err();
    assert!(err.contains("certificate verify failed"), "{err}");
    // require without a CA file encrypts without verifying; with the wrong CA file it verifies,
    // as libpq does.
    let require = server.options("127.0.0.1", SslMode::Require, None);
    assert_eq!(encrypted(&require).await, Ok(true));
    let require_wrong_ca = server.options("localhost", SslMode::Require, Some("other-ca.crt"));
    assert!(encrypted(&require_wrong_ca).await.is_err());
    // prefer takes the TLS the server offers.
    let prefer = server.options("localhost", SslMode::Prefer, None);
    assert_eq!(encrypted(&prefer).await, Ok(true));

    // disable against a hostssl-only pg_hba.conf: refused by the server, which says why.
    let plain = server.options("localhost", SslMode::Disable, None);
    let err = encrypted(&plain).await.unwrap_err();
    assert!(
        err.contains("no pg_hba.conf entry") && err.contains("no encryption"),
        "{err}"
    );

    // libpq's keywords in the DSN itself work the same.
    let mut in_dsn = SinkOptions::new(
        format!(
            "host=localhost port={} user=tls_ingest dbname=postgres sslmode=verify-full sslrootcert='{}'",
            server.port,
            server.file("ca.crt").display()
        ),
        server.dir.join("spool"),
    );
    in_dsn.password = Some(PASSWORD.to_string());
    assert_eq!(encrypted(&in_dsn).await, Ok(true));

    // An ingester's --check says how it connects.
    let password_file = server.file("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("password file");
    let check = |host: &str| {
        Command::new("timeout")
            .arg("120")
            .arg(ingester_binary("guildstats-gameserver"))
            .args([
                "--check",
                "--server",
                "a2s 127.0.0.1:9",
                "--timeout-ms",
                "200",
            ])
            .arg("--dsn")
            .arg(format!(
                "host={host} port={} user=tls_ingest dbname=postgres",
                server.port
            ))
            .arg("--password-file")
            .arg(&password_file)
            .args(["--sslmode", "verify-full", "--sslrootcert"])
            .arg(server.file("ca.crt"))
            .arg("--spool")
            .arg(server.dir.join("check-spool"))
            .env("NO_COLOR", "1")
            .output()
            .expect("guildstats-gameserver --check")
    };
    let out = check("localhost");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("database: TLS on (TLSv1.")
            && stdout.contains("sslmode=verify-full: encrypted, certificate verified against"),
        "{stdout}"
    );
    let refused = check("127.0.0.1");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("IP address mismatch"), "{stderr}");
}
