//! sql/ops/cron.sql on a cluster with pg_cron preloaded (scripts/test's cluster keeps pg_cron's
//! jobs in the database `postgres`, not in the test's database): run twice, it leaves the same
//! jobs; the scheduled build_all() then runs in the test's database and succeeds.

use guildstats_e2e::{repo_root, run_ok, Cluster, TestDb};
use std::time::{Duration, Instant};

const PURGE_JOB: &str = "guildstats-purge-run-details";

/// The job would fail every minute once the test database is dropped: unschedule it first.
struct Unschedule<'a> {
    cluster: &'a Cluster,
    cron_db: String,
    job: String,
}

impl Drop for Unschedule<'_> {
    fn drop(&mut self) {
        let mut cron = self.cluster.connect(&self.cron_db, "postgres");
        let _ = cron.execute(
            "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = $1",
            &[&self.job],
        );
    }
}

fn run_cron_script(db: &TestDb) -> String {
    run_ok(
        db.cluster
            .command("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &db.name, "-f"])
            .arg(repo_root().join("sql/ops/cron.sql"))
            // A following script must run in the guildstats database again.
            .args(["-At", "-c", "SELECT current_database()"]),
    )
}

fn last_line(output: &str) -> &str {
    output.lines().last().unwrap_or("")
}

#[test]
fn cron_script_is_idempotent_and_the_scheduled_build_succeeds() {
    let Some(cluster) = Cluster::from_env("cron_schedule") else {
        return;
    };
    let db = TestDb::create(&cluster, "cron_schedule");
    let cron_db: String = db
        .connect()
        .query_one("SELECT current_setting('cron.database_name', true)", &[])
        .expect("cron.database_name")
        .get::<_, Option<String>>(0)
        .expect("scripts/test's cluster preloads pg_cron");
    assert_ne!(
        cron_db, db.name,
        "the test must schedule from another database"
    );
    let build_job = format!("guildstats-build-all:{}", db.name);
    let _cleanup = Unschedule {
        cluster: &cluster,
        cron_db: cron_db.clone(),
        job: build_job.clone(),
    };

    // Something for the builders to do, so the run's effect can be seen in this database.
    db.connect()
        .batch_execute(
            "INSERT INTO guildstats.raw_member_events (guild_id, user_id, event_type, event_ts)
             VALUES (1, 10, 'join', now() - interval '1 day')",
        )
        .expect("raw member event");

    let jobs = |label: &str| -> Vec<(i64, String, String, String, String)> {
        let mut cron = cluster.connect(&cron_db, "postgres");
        cron.query(
            "SELECT jobid, jobname, schedule, command, database FROM cron.job
             WHERE jobname = ANY($1) ORDER BY jobname",
            &[&vec![build_job.clone(), PURGE_JOB.to_string()]],
        )
        .unwrap_or_else(|e| panic!("cron.job {label}: {e}"))
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
    };

    let job_count = || -> i64 {
        cluster
            .connect(&cron_db, "postgres")
            .query_one("SELECT count(*) FROM cron.job", &[])
            .expect("count cron.job")
            .get(0)
    };
    assert_eq!(last_line(&run_cron_script(&db)), db.name);
    let (first, total_first) = (jobs("after the first run"), job_count());
    assert_eq!(last_line(&run_cron_script(&db)), db.name);
    let (second, total_second) = (jobs("after the second run"), job_count());

    assert_eq!(first.len(), 2, "two named jobs: {first:?}");
    assert_eq!(first, second, "a second run changes nothing");
    assert_eq!(total_first, total_second, "no job added by the second run");
    let build = first.iter().find(|j| j.1 == build_job).expect("build job");
    assert_eq!(build.2, "* * * * *");
    assert_eq!(build.3, "SELECT * FROM guildstats.build_all()");
    assert_eq!(build.4, db.name, "runs in the guildstats database");
    let purge = first.iter().find(|j| j.1 == PURGE_JOB).expect("purge job");
    assert!(purge.3.contains("cron.job_run_details"), "{purge:?}");
    assert!(purge.3.contains("7 days"), "{purge:?}");
    assert_eq!(
        purge.4, cron_db,
        "the run history lives in the cron database"
    );

    // The schedule is once a minute: a run starts within 60 s. Bounded wait, not a timing test.
    let deadline = Instant::now() + Duration::from_secs(70);
    let mut cron = cluster.connect(&cron_db, "postgres");
    let status = loop {
        let statuses: Vec<(String, Option<String>)> = cron
            .query(
                "SELECT status, return_message FROM cron.job_run_details
                 WHERE jobid = $1 AND status IN ('succeeded', 'failed') ORDER BY runid",
                &[&build.0],
            )
            .expect("cron.job_run_details")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        if let Some(done) = statuses.into_iter().next() {
            break done;
        }
        assert!(
            Instant::now() < deadline,
            "no finished run of {build_job} within 70 s"
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    assert_eq!(status.0, "succeeded", "scheduled build_all(): {status:?}");

    // The run happened in the test database: its builder saw the member.
    let members: i64 = db
        .connect()
        .query_one(
            "SELECT count(*) FROM guildstats.members WHERE guild_id = 1 AND user_id = 10",
            &[],
        )
        .expect("members")
        .get(0);
    assert_eq!(members, 1, "build_members ran in {}", db.name);
}

#[test]
fn cron_script_refuses_a_database_without_guildstats() {
    let Some(cluster) = Cluster::from_env("cron_without_extension") else {
        return;
    };
    let name = format!("e2e_cron_without_extension_{}", std::process::id());
    let mut admin = cluster.connect("postgres", "postgres");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    let output = cluster
        .command("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &name, "-f"])
        .arg(repo_root().join("sql/ops/cron.sql"))
        .output()
        .expect("run psql");
    // pg_cron's tables exist once some test (or script) created the extension in the cron
    // database; the tests run concurrently, so this one may come first: then there is no job.
    let has_cron: bool = admin
        .query_one("SELECT to_regclass('cron.job') IS NOT NULL", &[])
        .expect("cron.job exists?")
        .get(0);
    let jobs: i64 = if has_cron {
        admin
            .query_one(
                "SELECT count(*) FROM cron.job WHERE jobname = $1",
                &[&format!("guildstats-build-all:{name}")],
            )
            .expect("cron.job")
            .get(0)
    } else {
        0
    };
    admin
        .batch_execute(&format!("DROP DATABASE {name}"))
        .expect("drop database");
    let said = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{said}");
    assert!(
        said.contains("guildstats is not installed in this database"),
        "{said}"
    );
    assert_eq!(jobs, 0, "nothing scheduled");
}
