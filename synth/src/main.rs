//! `guildstats-synth`: generate a synthetic community into PostgreSQL or COPY files, and load
//! ET:Legacy stats files.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};
use guildstats_synth::{
    pg, Community, CommunityConfig, CopyDirSink, CountingSink, Error, Report, Table, Ts,
};

#[derive(Parser)]
#[command(
    name = "guildstats-synth",
    version,
    about = "Synthetic gaming-community data for guildstats"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate and load into the guildstats raw tables (staging table + ON CONFLICT DO
    /// NOTHING per table, so reruns and duplicate rows are harmless).
    Load {
        /// libpq-style connection string, e.g. "host=/tmp port=5433 user=postgres dbname=demo".
        #[arg(long)]
        dsn: String,
        #[command(flatten)]
        gen: GenArgs,
    },
    /// Write one `<table>.copy` file per table (COPY text format) and a `load.psql` script.
    Copy {
        #[arg(long)]
        out_dir: PathBuf,
        #[command(flatten)]
        gen: GenArgs,
    },
    /// Generate without writing anything and print the row counts.
    Count {
        #[command(flatten)]
        gen: GenArgs,
    },
    /// Insert every *.txt file of DIR (not recursive) into guildstats.raw_et_stats_files.
    LoadEtFiles {
        #[arg(long)]
        dsn: String,
        /// Value of the `source` column (default: "file:" and the directory).
        #[arg(long)]
        source: Option<String>,
        dir: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Preset {
    /// ~3000 members over 120 days.
    Demo,
    /// 50 members over 14 days.
    Tiny,
}

#[derive(Args)]
struct GenArgs {
    #[arg(long, value_enum, default_value_t = Preset::Demo)]
    preset: Preset,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long)]
    members: Option<u32>,
    #[arg(long)]
    days: Option<u32>,
    /// First day of the period, YYYY-MM-DD (UTC).
    #[arg(long)]
    start: Option<String>,
    /// Scale the member count to produce about this many voice events.
    #[arg(long)]
    target_voice_events: Option<u64>,
    /// Seconds between Discord heartbeats.
    #[arg(long)]
    heartbeat_interval: Option<u32>,
    /// Seconds between game-server polls (0: no game servers).
    #[arg(long)]
    poll_interval: Option<u32>,
    #[arg(long)]
    late_fraction: Option<f64>,
    #[arg(long)]
    duplicate_fraction: Option<f64>,
    #[arg(long)]
    outages: Option<u32>,
    /// One regular voice channel per this many members (default: the demo's five at any size).
    #[arg(long)]
    members_per_voice_channel: Option<u32>,
    /// Only these tables (comma-separated, with or without the raw_ prefix).
    #[arg(long, value_delimiter = ',')]
    tables: Vec<String>,
}

impl GenArgs {
    fn config(&self) -> Result<CommunityConfig, Error> {
        let mut c = match self.preset {
            Preset::Demo => CommunityConfig::demo(),
            Preset::Tiny => CommunityConfig::tiny(),
        };
        if let Some(v) = self.seed {
            c.seed = v;
        }
        if let Some(v) = self.members {
            c.members = v;
        }
        if let Some(v) = self.days {
            c.days = v;
        }
        if let Some(s) = &self.start {
            c.start = Ts::parse_date(s)
                .ok_or_else(|| Error::Config(format!("--start: not a YYYY-MM-DD date: {s}")))?;
        }
        if let Some(v) = self.heartbeat_interval {
            c.heartbeat_interval_s = v;
        }
        if let Some(v) = self.poll_interval {
            c.poll_interval_s = v;
        }
        if let Some(v) = self.late_fraction {
            c.late_fraction = v;
        }
        if let Some(v) = self.duplicate_fraction {
            c.duplicate_fraction = v;
        }
        if let Some(v) = self.outages {
            c.outages = v;
        }
        if let Some(v) = self.members_per_voice_channel {
            c.members_per_voice_channel = v;
        }
        c.validate()?;
        if let Some(n) = self.target_voice_events {
            c = c.with_target_voice_events(n);
        }
        Ok(c)
    }

    fn tables(&self) -> Result<Vec<Table>, Error> {
        if self.tables.is_empty() {
            return Ok(Table::ALL.to_vec());
        }
        self.tables
            .iter()
            .map(|name| {
                Table::from_name(name)
                    .ok_or_else(|| Error::Config(format!("--tables: unknown table {name}")))
            })
            .collect()
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("guildstats-synth: {e}");
            ExitCode::FAILURE
        }
    }
}

fn describe(c: &CommunityConfig) {
    println!(
        "community: seed {} | {} members | {} days from {} | guild {}",
        c.seed, c.members, c.days, c.start, c.guild_id
    );
}

fn print_report_extras(r: &Report) {
    println!(
        "voice events: {} late, {} duplicated, {} missed during outages",
        r.late_voice_events, r.duplicate_voice_events, r.missed_voice_events
    );
}

fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Load { dsn, gen } => {
            let community = Community::new(gen.config()?)?;
            describe(community.config());
            let tables = gen.tables()?;
            let mut client = postgres::Client::connect(&dsn, postgres::NoTls)?;
            let started = Instant::now();
            let loads = pg::load(&mut client, &community, &tables)?;
            println!("{:<24} {:>12} {:>12}", "table", "generated", "new");
            for l in &loads {
                println!(
                    "{:<24} {:>12} {:>12}",
                    l.table.name(),
                    l.generated,
                    l.inserted
                );
            }
            let total: u64 = loads.iter().map(|l| l.generated).sum();
            println!("{total} rows in {:.1} s", started.elapsed().as_secs_f64());
        }
        Command::Copy { out_dir, gen } => {
            let community = Community::new(gen.config()?)?;
            describe(community.config());
            let started = Instant::now();
            let mut sink = CopyDirSink::create(&out_dir)?.only(&gen.tables()?);
            let report = community.generate(&mut sink)?;
            let counts = sink.finish()?;
            println!("{:<24} {:>12}", "table", "rows");
            for (table, n) in &counts {
                println!("{:<24} {:>12}", format!("{}.copy", table.name()), n);
            }
            print_report_extras(&report);
            println!(
                "{} rows in {:.1} s -> {}",
                counts.values().sum::<u64>(),
                started.elapsed().as_secs_f64(),
                out_dir.display()
            );
        }
        Command::Count { gen } => {
            let community = Community::new(gen.config()?)?;
            describe(community.config());
            let started = Instant::now();
            let mut sink = CountingSink::only(&gen.tables()?);
            let report = community.generate(&mut sink)?;
            println!("{:<24} {:>12}", "table", "rows");
            for (table, n) in sink.counts() {
                println!("{:<24} {:>12}", table.name(), n);
            }
            print_report_extras(&report);
            println!(
                "{} rows in {:.1} s",
                sink.counts().values().sum::<u64>(),
                started.elapsed().as_secs_f64()
            );
        }
        Command::LoadEtFiles { dsn, source, dir } => {
            let source = source.unwrap_or_else(|| format!("file:{}", dir.display()));
            let mut client = postgres::Client::connect(&dsn, postgres::NoTls)?;
            let r = pg::load_et_files(&mut client, &dir, &source)?;
            println!("{} files, {} new", r.files, r.new);
        }
    }
    Ok(())
}
