//! guildstats-sftp against a real OpenSSH sshd (../shared/tools/sftp-server.sh) and the real
//! cluster, running as a login role with only the ingest rights: real ET:Legacy files dropped
//! into the remote directory end up, once imported, in et_player_rounds exactly as when the
//! same files are inserted directly; a growing file waits until complete; sshd killed mid-run, the puller
//! restarted, or killed with SIGKILL lose and double nothing; a wrong host key is refused
//! with a clear message; a backfill of a local directory imports it once.

use guildstats_e2e::et::{fixture_names, import_pending};
use guildstats_e2e::sftp::{
    count_each, fetched, setup, sftp_binary, wait_until, Puller, KEY_PASSPHRASE, PATIENCE,
};
use guildstats_e2e::{run_ok, Bounded};
use std::process::Command;
use std::time::Duration;

#[test]
fn pulls_real_files_like_a_direct_import() {
    let Some(s) = setup("sftp_pull_real") else {
        return;
    };
    let names: Vec<String> = fixture_names(&s.fixtures).into_iter().take(40).collect();
    let mut puller = s.spawn("pull.log", &[]);
    s.drop_fixtures(&names);

    // A stats file that is not text at all: stored as it is, the reason beside it.
    let bad_name = "2025-06-01-200000-badmap-round-1.txt".to_string();
    let bad: Vec<u8> = (0..=255u8).rev().collect();
    s.server.drop_file(&bad_name, &bad);

    // A file written in parts, each part sooner than the puller's second look: it must not be
    // taken until it stops growing, and then whole.
    assert!(names[0].contains("-te_escape2-round-1"), "{}", names[0]);
    let growing_name = "2025-06-02-210000-te_escape2-round-1.txt".to_string();
    // A round of its own (the same bytes would be stored once, under the first name).
    let mut whole = b"^7".to_vec();
    whole.extend(std::fs::read(s.fixtures.join(&names[0])).expect("fixture"));
    let path = s.server.remote_dir.join(&growing_name);
    let parts = 6;
    let step = whole.len().div_ceil(parts);
    for chunk in whole.chunks(step) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("open growing file");
        f.write_all(chunk).expect("append");
        drop(f);
        std::thread::sleep(Duration::from_millis(150));
    }

    let mut all = names.clone();
    all.push(bad_name.clone());
    all.push(growing_name.clone());
    all.sort();
    s.wait_for_files(all.len(), &puller);
    // The puller only inserts; the import is the builders' (build_all() every minute).
    let mut client = s.db.connect();
    import_pending(&mut client);
    let pending: i64 = client
        .query_one(
            "SELECT count(*) FROM guildstats.raw_et_stats_files WHERE imported_at IS NULL AND import_error IS NULL",
            &[],
        )
        .expect("pending")
        .get(0);
    assert_eq!(pending, 0, "every good file imported");
    assert!(puller.terminate().success(), "{}", puller.log_text());
    s.assert_each_stored_once(&all);

    // Byte for byte what is on the server, the growing file whole.
    for name in &all {
        let content: Vec<u8> = client
            .query_one(
                "SELECT content FROM guildstats.raw_et_stats_files WHERE file_name = $1",
                &[name],
            )
            .expect("content")
            .get(0);
        let on_server = std::fs::read(s.server.remote_dir.join(name)).expect("remote file");
        assert!(content == on_server, "{name}: stored content differs");
    }
    let bad_error: Option<String> = client
        .query_one(
            "SELECT import_error FROM guildstats.raw_et_stats_files WHERE file_name = $1",
            &[&bad_name],
        )
        .expect("bad file")
        .get(0);
    assert!(bad_error.is_some(), "the bad file has its reason beside it");
    let log = puller.log_text();
    assert_eq!(
        count_each(&fetched(&log)),
        count_each(&all),
        "each file fetched once\n{log}"
    );
    let players: i64 = client
        .query_one("SELECT count(*) FROM guildstats.et_player_rounds", &[])
        .expect("players")
        .get(0);
    assert!(players > 100, "{players} player rounds");
    s.assert_like_a_direct_import(&s.server.remote_dir, &all);
    // Nothing was written or removed on the server.
    let mut remote: Vec<String> = std::fs::read_dir(&s.server.remote_dir)
        .expect("remote dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("name"))
        .collect();
    remote.sort();
    assert_eq!(remote, all);
}

#[test]
fn sshd_killed_mid_run_loses_and_doubles_nothing() {
    let Some(s) = setup("sftp_sshd_killed") else {
        return;
    };
    let names = fixture_names(&s.fixtures);
    let (first, second) = names.split_at(150);
    let (first, second) = (first.to_vec(), second[..60].to_vec());
    s.drop_fixtures(&first);
    let mut puller = s.spawn("pull.log", &[]);
    // Kill the server while the first files are being fetched.
    wait_until(
        "the first fetched file",
        PATIENCE,
        || !fetched(&puller.log_text()).is_empty(),
        || puller.log_text(),
    );
    s.server.kill();
    s.drop_fixtures(&second);
    wait_until(
        "the puller to notice",
        PATIENCE,
        || puller.log_text().contains("reconnecting"),
        || puller.log_text(),
    );
    std::thread::sleep(Duration::from_secs(2));
    s.server.restart();
    let all: Vec<String> = first.iter().chain(&second).cloned().collect();
    s.wait_for_files(all.len(), &puller);
    assert!(puller.terminate().success(), "{}", puller.log_text());
    s.assert_each_stored_once(&all);
    let log = puller.log_text();
    assert_eq!(
        count_each(&fetched(&log)),
        count_each(&all),
        "each file fetched once\n{log}"
    );
    s.assert_like_a_direct_import(&s.fixtures, &all);
}

#[test]
fn host_key_problems_are_refused_with_a_clear_error() {
    let Some(s) = setup("sftp_host_key") else {
        return;
    };
    s.drop_fixtures(&fixture_names(&s.fixtures)[..3]);
    let pinned = std::fs::read_to_string(s.server.known_hosts()).expect("known_hosts");
    let host = format!("[127.0.0.1]:{}", s.server.port);
    assert!(pinned.starts_with(&host), "{pinned}");
    let fingerprint = s.server.host_key_fingerprint();

    // Another key pinned for this host: someone in the middle, or a reinstalled server.
    let other = s.work.join("other");
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&other),
    );
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).expect("pub");
    let wrong = s.work.join("known_hosts_wrong");
    std::fs::write(&wrong, format!("{host} {}", other_pub.trim())).expect("write");
    let wrong_arg = wrong.display().to_string();
    let mut puller = s.spawn("mismatch.log", &["--known-hosts", &wrong_arg]);
    let status = puller.wait_exit(PATIENCE).expect("the puller gives up");
    let log = puller.log_text();
    assert!(!status.success(), "{log}");
    assert!(log.contains("HOST KEY MISMATCH"), "{log}");
    assert!(log.contains(&fingerprint), "names the offered key\n{log}");
    assert!(
        log.contains(&wrong_arg),
        "names the known_hosts file\n{log}"
    );
    assert!(fetched(&log).is_empty(), "{log}");

    // --check says the same, and says it failed.
    let check = Command::new(guildstats_e2e::sftp::sftp_binary())
        .args(s.args(&["--known-hosts", &wrong_arg, "--check"]))
        .env("GUILDSTATS_DSN", &s.dsn)
        .bounded_output()
        .expect("check");
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(!check.status.success(), "{out}");
    assert!(out.contains("ok   database"), "{out}");
    assert!(out.contains("FAIL sftp: HOST KEY MISMATCH"), "{out}");

    // An unknown host is refused too under the default strict policy...
    let empty = s.work.join("known_hosts_empty");
    std::fs::write(&empty, "").expect("write");
    let empty_arg = empty.display().to_string();
    let mut puller = s.spawn("unknown.log", &["--known-hosts", &empty_arg]);
    let status = puller.wait_exit(PATIENCE).expect("the puller gives up");
    let log = puller.log_text();
    assert!(!status.success(), "{log}");
    assert!(log.contains("is not in known_hosts"), "{log}");
    assert!(s.stored().is_empty());

    // ...and pinned on first contact with accept-new, which then pulls.
    let mut puller = s.spawn(
        "accept.log",
        &[
            "--known-hosts",
            &empty_arg,
            "--host-key-policy",
            "accept-new",
        ],
    );
    s.wait_for_files(3, &puller);
    assert!(puller.terminate().success());
    let learnt = std::fs::read_to_string(&empty).expect("known_hosts");
    assert!(learnt.starts_with(&host), "{learnt}");
    // The learnt line is a real pin: the strict policy accepts it now, and --check agrees.
    let check = Command::new(guildstats_e2e::sftp::sftp_binary())
        .args(s.args(&["--known-hosts", &empty_arg, "--check"]))
        .env("GUILDSTATS_DSN", &s.dsn)
        .bounded_output()
        .expect("check");
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{out}");
    assert!(out.contains(&fingerprint), "{out}");
    assert!(out.contains("3 files already stored"), "{out}");
    assert!(out.contains("would fetch 0 new files"), "{out}");
}

#[test]
fn a_restarted_puller_resumes_without_downloading_again() {
    let Some(s) = setup("sftp_resume") else {
        return;
    };
    let names = fixture_names(&s.fixtures);
    let (first, later) = (names[..30].to_vec(), names[30..35].to_vec());
    s.drop_fixtures(&first);
    let mut puller = s.spawn("first.log", &[]);
    s.wait_for_files(first.len(), &puller);
    assert!(puller.terminate().success(), "{}", puller.log_text());

    s.drop_fixtures(&later);
    let mut puller = s.spawn("second.log", &[]);
    s.wait_for_files(first.len() + later.len(), &puller);
    // A few more polls, in case it were about to fetch old files again.
    std::thread::sleep(Duration::from_secs(2));
    assert!(puller.terminate().success(), "{}", puller.log_text());
    let log = puller.log_text();
    assert!(log.contains("stored=30"), "it learnt what is stored\n{log}");
    assert_eq!(fetched(&log), later, "only the new files\n{log}");
    let all: Vec<String> = first.iter().chain(&later).cloned().collect();
    s.assert_each_stored_once(&all);
}

#[test]
fn kill_9_mid_batch_then_restart_stores_every_file_once() {
    let Some(s) = setup("sftp_kill9") else {
        return;
    };
    let names = fixture_names(&s.fixtures);
    s.drop_fixtures(&names);
    let mut puller = s.spawn("first.log", &["--batch-size", "25"]);
    wait_until(
        "some fetched files",
        PATIENCE,
        || fetched(&puller.log_text()).len() >= 40,
        || puller.log_text(),
    );
    puller.kill9();
    let before = s.stored().len();
    assert!(
        before < names.len(),
        "killed before the end ({before} stored)"
    );

    let mut puller = s.spawn("second.log", &["--batch-size", "25"]);
    s.wait_for_files(names.len(), &puller);
    assert!(puller.terminate().success(), "{}", puller.log_text());
    s.assert_each_stored_once(&names);
    let second = fetched(&puller.log_text());
    assert!(
        second.len() <= names.len() - before,
        "the restart fetched only what was not stored ({} of {})",
        second.len(),
        names.len() - before
    );
    s.assert_like_a_direct_import(&s.fixtures, &names);
}

#[test]
fn backfill_imports_a_local_directory_once_and_the_puller_skips_it() {
    let Some(s) = setup("sftp_backfill") else {
        return;
    };
    let names = fixture_names(&s.fixtures);
    let (old, new) = (names[..50].to_vec(), names[50..53].to_vec());
    let archive = s.work.join("archive");
    std::fs::create_dir_all(archive.join("endstats")).expect("archive");
    for name in &old {
        std::fs::copy(s.fixtures.join(name), archive.join(name)).expect("copy");
    }
    std::fs::write(archive.join("README.md"), "not a stats file").expect("write");
    std::fs::write(archive.join("endstats/x-round-1.txt"), "not taken").expect("write");

    // The backfill uses the puller's source, so the puller knows these files afterwards.
    let archive_arg = archive.display().to_string();
    let backfill = |log: &str| {
        let mut p = s.spawn(log, &["--backfill", &archive_arg]);
        let status = p.wait_exit(PATIENCE).expect("backfill ends");
        assert!(status.success(), "{}", p.log_text());
        p.log_text()
    };
    let log = backfill("backfill1.log");
    assert!(log.contains("queued=50"), "{log}");
    s.assert_each_stored_once(&old);
    let log = backfill("backfill2.log");
    assert!(log.contains("already_stored=50 queued=0"), "{log}");
    s.assert_each_stored_once(&old);

    s.drop_fixtures(&old);
    s.drop_fixtures(&new);
    let mut puller = s.spawn("pull.log", &[]);
    s.wait_for_files(old.len() + new.len(), &puller);
    std::thread::sleep(Duration::from_secs(1));
    assert!(puller.terminate().success());
    assert_eq!(fetched(&puller.log_text()), new);
    let all: Vec<String> = old.iter().chain(&new).cloned().collect();
    s.assert_each_stored_once(&all);
    s.assert_like_a_direct_import(&s.fixtures, &all);
}

#[test]
fn every_key_type_and_a_passphrase_from_the_environment_or_a_file_never_logged() {
    let Some(s) = setup("sftp_keys") else {
        return;
    };
    let names = fixture_names(&s.fixtures);
    s.drop_fixtures(&names[..4]);
    let check = |log: &str, key: &str, env: &[(&str, &str)], extra: &[&str]| {
        let key = s.server.client_key_named(key).display().to_string();
        let mut args = s.args(&["--key", &key, "--check"]);
        args.extend(extra.iter().map(|a| a.to_string()));
        let mut p = Puller::spawn_with_env(&sftp_binary(), &args, &s.dsn, &s.work.join(log), env);
        let status = p.wait_exit(PATIENCE).expect("--check ends");
        (status.success(), p.log_text())
    };
    // --check prints its report to stdout, which these runs drop: the exit status tells.
    for key in ["ed25519", "rsa", "ecdsa"] {
        let (ok, log) = check(&format!("{key}.log"), key, &[], &[]);
        assert!(ok, "{key}: {log}");
    }
    let (ok, log) = check(
        "env.log",
        "protected",
        &[
            ("GUILDSTATS_SFTP_KEY_PASSPHRASE", KEY_PASSPHRASE),
            ("RUST_LOG", "trace"),
        ],
        &[],
    );
    assert!(ok, "{log}");
    assert!(!log.contains(KEY_PASSPHRASE), "{log}");
    let file = s.work.join("passphrase");
    std::fs::write(&file, format!("{KEY_PASSPHRASE}\n")).expect("write");
    let file_arg = file.display().to_string();
    let (ok, log) = check(
        "file.log",
        "protected",
        &[],
        &["--key-passphrase-file", &file_arg],
    );
    assert!(ok, "{log}");

    // Without the passphrase the key cannot be used: the puller names the key and stops.
    let key = s.server.client_key_named("protected").display().to_string();
    let mut p = s.spawn("refused.log", &["--key", &key]);
    let status = p.wait_exit(PATIENCE).expect("the puller gives up");
    let log = p.log_text();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("cannot use the private key")
            && log.contains("passphrase")
            && log.contains(&key),
        "{log}"
    );
    assert!(s.stored().is_empty());

    // With it, the puller pulls, and debug logging shows no secret.
    let mut p = Puller::spawn_with_env(
        &sftp_binary(),
        &s.args(&["--key", &key]),
        &s.dsn,
        &s.work.join("pull.log"),
        &[
            ("GUILDSTATS_SFTP_KEY_PASSPHRASE", KEY_PASSPHRASE),
            ("RUST_LOG", "debug"),
        ],
    );
    s.wait_for_files(4, &p);
    assert!(p.terminate().success());
    assert!(!p.log_text().contains(KEY_PASSPHRASE));
}
