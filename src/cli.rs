//! The `imshift` command: the console and the tools around it.

use crate::db;
use crate::model::Role;
use crate::secrets::MasterKey;
use crate::web::{self, Config};
use clap::{Parser, Subcommand};
use std::io::Read;
use std::net::SocketAddr;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "imshift",
    version,
    about = "Move an app's instant messaging to a new system without losing a message or a user."
)]
struct Cli {
    /// PostgreSQL URL; the database is created when missing.
    #[arg(long, env = "DATABASE_URL", default_value = db::DEFAULT_URL, global = true, hide_env_values = true)]
    database_url: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the console (the default).
    Serve(ServeArgs),
    /// Database maintenance.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Team members, for scripted set-ups.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Personal API tokens, for a script's first token.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Validate dump files without a server or database; prints one JSON report.
    /// Exit status: 0 no errors, 1 errors found, 2 could not run.
    Validate(ValidateArgs),
    /// Benchmarks; give them a scratch database (they add rows).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Realistic canonical dumps of any size, for rehearsals, tests and benchmarks.
    Fixtures {
        #[command(subcommand)]
        command: FixturesCommand,
    },
    /// Local emulators of target IM providers, for rehearsals and tests.
    ///
    /// `imshift sandbox <PROVIDER> --help` lists a provider's flags; an unknown PROVIDER is
    /// answered with the ones that have a sandbox.
    #[command(subcommand_value_name = "PROVIDER")]
    Sandbox {
        #[command(subcommand)]
        command: SandboxCommand,
    },
}

#[derive(Subcommand)]
enum SandboxCommand {
    /// The provider by its registry name, then its sandbox's own flags (an external
    /// subcommand, so that `--help` after the provider reaches the provider's parser).
    #[command(external_subcommand)]
    Provider(Vec<String>),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Fill the audit log to ROWS rows and time the Audit log page's queries.
    Audit {
        #[arg(long, default_value_t = 1_000_000)]
        rows: i64,
    },
    /// Ingest generated dumps (upload → stage → validate) and compare with a plain COPY of the
    /// same rows; reports records per second and peak memory for each size.
    Ingest {
        /// Messages in each generated dump (repeat or comma-separate for several sizes).
        #[arg(long, value_delimiter = ',', default_value = "1000000,5000000")]
        messages: Vec<u64>,
        /// Scratch directory for the generated files.
        #[arg(long, default_value = "/tmp/imshift-bench")]
        dir: std::path::PathBuf,
        /// Print only the figures' row (set when the command runs each size in its own process).
        #[arg(long, hide = true)]
        row_only: bool,
    },
    /// Stage a generated dump with MESSAGES messages, then time the Import tab's preflight
    /// sizes: counted from the staged rows (as its first load did) and read as the validation
    /// stored them.
    Preflight {
        #[arg(long, default_value_t = 2_000_000)]
        messages: u64,
        #[arg(long, default_value = "/tmp/imshift-bench-preflight")]
        dir: std::path::PathBuf,
    },
    /// Feed hostile inputs (a few KB of gzip that expand to millions of bad lines, one huge
    /// line, a decompression bomb) to `imshift validate` and to the console's ingest, each in
    /// its own process, and report what each did and its peak memory.
    Hostile {
        /// Where the inputs are written (kept for the next run).
        #[arg(long, default_value = "/tmp/imshift-bench-hostile")]
        dir: std::path::PathBuf,
        /// Only these inputs (comma-separated names; default: all).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// One `imshift validate` run for `bench hostile`: the report goes to stdout, then the
    /// exit status and peak memory to stderr.
    #[command(hide = true)]
    HostileValidate(ValidateArgs),
    /// One console ingest for `bench hostile`; prints the outcome and peak memory.
    #[command(hide = true)]
    HostileIngest {
        #[arg(long)]
        file: std::path::PathBuf,
        #[arg(long)]
        dir: std::path::PathBuf,
    },
    /// Import into a provider's sandbox (its own process, quota set) for MINUTES and report
    /// the achieved rate against the quota, throttle answers and the console's CPU use.
    /// With --mixed: the whole mixed migration of issue 11 (accounts, friends, groups,
    /// members, both histories) into an in-process sandbox at the provider's documented quotas
    /// times SCALE, launch to done, against the quota bound (the longest chain of phases at
    /// their quotas).
    Import {
        #[arg(long, default_value_t = 10.0)]
        minutes: f64,
        /// The quota of the target's one-to-one history API, enforced by the sandbox and given
        /// to imshift.
        #[arg(long, default_value_t = 200)]
        qps: u32,
        #[arg(long, default_value = "/tmp/imshift-bench-import")]
        dir: std::path::PathBuf,
        #[arg(long)]
        mixed: bool,
        /// --mixed: every quota is the provider's documented one times this (0.5: twice the time).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// --mixed: the console's workers.
        #[arg(long, default_value_t = 8)]
        workers: usize,
    },
    /// Coexistence sync under load: a console in this process with both sides as sandboxes
    /// (a relay for the old system, a vendor sandbox for the new), events both ways at RATE a second for
    /// MINUTES; reports the hook's answer time, imshift's added latency, lost, duplicated and
    /// out-of-order events and CPU. With --outage-secs: the old system down that long, then
    /// back (peak queue, drain time, the same checks); with --find-peak: the highest rate taken
    /// with nothing lost. Figures also go to DIR/figures.json.
    Sync(crate::sync::bench::Options),
}

#[derive(Subcommand)]
enum FixturesCommand {
    /// Write a canonical dump (JSON Lines; gzip when OUT ends in .gz).
    Generate(FixturesArgs),
}

#[derive(clap::Args)]
struct FixturesArgs {
    /// Where to write; `-` for stdout.
    #[arg(long, default_value = "-")]
    out: std::path::PathBuf,
    #[arg(long, default_value_t = 1000)]
    accounts: u64,
    /// Friends per account (each friendship is mutual: two records).
    #[arg(long, default_value_t = 10)]
    friends: u32,
    #[arg(long, default_value_t = 50)]
    groups: u64,
    /// Members per group, the owner included.
    #[arg(long, default_value_t = 20)]
    members: u32,
    #[arg(long, default_value_t = 10_000)]
    messages: u64,
    /// Share of messages that are group messages (0 to 1).
    #[arg(long, default_value_t = 0.3)]
    group_share: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// PostgreSQL URL of the schema's owner, for migrations. When set, the console migrates
    /// with it, grants DATABASE_URL's role what it needs (the audit log: INSERT and SELECT
    /// only), and then runs as that role, which owns no table.
    #[arg(long, env = "IMSHIFT_MIGRATE_DATABASE_URL", hide_env_values = true)]
    migrate_database_url: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "IMSHIFT_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// The URL people use to reach the console (for invite links). Defaults to http://LISTEN.
    #[arg(long, env = "IMSHIFT_PUBLIC_URL")]
    public_url: Option<String>,
    /// Where the master key lives when IMSHIFT_MASTER_KEY is not set; created (0600) if missing.
    #[arg(
        long,
        env = "IMSHIFT_MASTER_KEY_FILE",
        default_value = "imshift-master.key"
    )]
    master_key_file: std::path::PathBuf,
    /// Where uploads wait until they are staged.
    #[arg(long, env = "IMSHIFT_DATA_DIR", default_value = "imshift-data")]
    data_dir: std::path::PathBuf,
    /// The largest file one upload may be, in bytes.
    #[arg(long, env = "IMSHIFT_MAX_UPLOAD_BYTES", default_value_t = web::DEFAULT_MAX_UPLOAD_BYTES)]
    max_upload_bytes: u64,
    /// Jobs this process runs at once (dump ingests, validations, import tasks); 0 = none.
    #[arg(long, env = "IMSHIFT_WORKERS", default_value_t = 8)]
    workers: usize,
    /// Seconds a job stays with a worker that stopped answering (a crashed process) before
    /// another worker takes it over.
    #[arg(long, env = "IMSHIFT_JOB_LEASE_SECS", default_value_t = 15)]
    job_lease_secs: u64,
    /// Coexistence sync: a silence of every console process longer than this many seconds is
    /// a gap in the sides' callbacks, read back from their history.
    #[arg(long, env = "IMSHIFT_SYNC_GAP_SECS", default_value_t = 15)]
    sync_gap_secs: u64,
    /// Coexistence sync: seconds between canaries through each direction that is on; 0 = none.
    #[arg(long, env = "IMSHIFT_SYNC_CANARY_SECS", default_value_t = 300)]
    sync_canary_secs: u64,
    /// Proxies (comma-separated addresses or CIDR blocks) whose X-Forwarded-For / Forwarded
    /// headers name the client, e.g. your load balancer's subnet. Unset: the socket's peer.
    #[arg(long, env = "IMSHIFT_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<sqlx::types::ipnetwork::IpNetwork>,
    /// Serve /metrics to callers sending this as `Authorization: Bearer …` (loopback callers
    /// need none).
    #[arg(long, env = "IMSHIFT_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    #[command(flatten)]
    dump_limits: DumpLimitArgs,
    /// Bytes all unfinished uploads may hold together (by announced size) until staged.
    #[arg(long, env = "IMSHIFT_UPLOAD_QUOTA_BYTES", default_value_t = web::DEFAULT_UPLOAD_QUOTA_BYTES)]
    upload_quota_bytes: u64,
    /// Hours an upload may go without receiving a byte before it is discarded.
    #[arg(long, env = "IMSHIFT_UPLOAD_EXPIRY_HOURS", default_value_t = 168)]
    upload_expiry_hours: u64,
    /// Attempts a dump ingest gets (a crash or panic uses one) before its upload is failed.
    #[arg(long, env = "IMSHIFT_INGEST_MAX_ATTEMPTS", default_value_t = 3)]
    ingest_max_attempts: u16,
}

#[derive(clap::Args)]
struct ValidateArgs {
    /// The dump's format; `auto` tells from the content.
    #[arg(long, default_value = "auto", value_parser = clap::builder::PossibleValuesParser::new(crate::dumps::uploads::formats()))]
    format: String,
    /// Also check this target provider's own rules (ids, group types, message size), by its
    /// registry name (as `GET /api/v1/providers` lists them).
    #[arg(long)]
    target: Option<String>,
    /// Files: JSON Lines, plain, .gz or .zip.
    #[arg(required = true)]
    files: Vec<std::path::PathBuf>,
    #[command(flatten)]
    limits: DumpLimitArgs,
}

/// What reading a dump may cost, whatever its content (`imshift validate` and the console).
#[derive(clap::Args)]
struct DumpLimitArgs {
    /// A longer line (or CSV record) is the finding line.too_long and is skipped unread.
    #[arg(long, env = "IMSHIFT_MAX_LINE_BYTES", default_value_t = crate::dumps::DEFAULT_MAX_LINE_BYTES as u64, value_parser = clap::value_parser!(u64).range(1..))]
    max_line_bytes: u64,
    /// Bytes a compressed file (gzip, or a zip's entries together) may expand to.
    #[arg(long, env = "IMSHIFT_MAX_EXPANDED_BYTES", default_value_t = crate::dumps::DEFAULT_MAX_EXPANDED_BYTES)]
    max_expanded_bytes: u64,
    /// Expanded bytes per compressed byte allowed once 64 MiB have been expanded.
    #[arg(long, env = "IMSHIFT_MAX_EXPANSION_RATIO", default_value_t = crate::dumps::DEFAULT_MAX_EXPANSION_RATIO, value_parser = clap::value_parser!(u64).range(1..))]
    max_expansion_ratio: u64,
    /// Findings kept (listed, with examples) per rule; the rest are counted.
    #[arg(long, env = "IMSHIFT_FINDINGS_PER_RULE", default_value_t = crate::dumps::DEFAULT_FINDINGS_PER_RULE)]
    findings_per_rule: u64,
}

impl DumpLimitArgs {
    fn limits(&self) -> crate::dumps::Limits {
        crate::dumps::Limits {
            max_line_bytes: usize::try_from(self.max_line_bytes).unwrap_or(usize::MAX),
            max_expanded_bytes: self.max_expanded_bytes,
            max_expansion_ratio: self.max_expansion_ratio,
            findings_per_rule: self.findings_per_rule,
            ..Default::default()
        }
    }
}

#[derive(Subcommand)]
enum DbCommand {
    /// Create the database if missing and apply every pending migration.
    Migrate,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a team member. The password is read from IMSHIFT_PASSWORD or, if unset, stdin.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = |s: &str| s.parse::<Role>())]
        role: Role,
    },
    /// Set a member's password: asked on the terminal, or read from stdin (one line) when
    /// piped; never an argument. Ends their sessions, revokes their API tokens and lifts the
    /// sign-in throttle on their email. Audited.
    ResetPassword {
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token acting as a member and print it once (stdout). Audited.
    Create {
        /// The member the token acts as.
        #[arg(long)]
        email: String,
        /// What the token is for, such as `ci-rehearsal`.
        #[arg(long)]
        name: String,
        /// Let requests with this token create more tokens.
        #[arg(long)]
        can_mint_tokens: bool,
    },
}

pub async fn run() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    if let Some(Command::Validate(args)) = cli.command {
        return validate(args);
    }
    if let Some(Command::Fixtures {
        command: FixturesCommand::Generate(args),
    }) = cli.command
    {
        return match generate_fixtures(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("imshift fixtures: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let result = match cli
        .command
        .unwrap_or(Command::Serve(ServeArgs::parse_default()))
    {
        Command::Serve(args) => serve(&cli.database_url, args).await,
        Command::Db {
            command: DbCommand::Migrate,
        } => migrate(&cli.database_url).await,
        Command::User {
            command: UserCommand::Create { email, role },
        } => create_user(&cli.database_url, &email, role).await,
        Command::User {
            command: UserCommand::ResetPassword { email },
        } => reset_password(&cli.database_url, &email).await,
        Command::Token {
            command:
                TokenCommand::Create {
                    email,
                    name,
                    can_mint_tokens,
                },
        } => create_token(&cli.database_url, &email, &name, can_mint_tokens).await,
        Command::Bench {
            command: BenchCommand::Audit { rows },
        } => bench_audit(&cli.database_url, rows).await,
        Command::Bench {
            command:
                BenchCommand::Ingest {
                    messages,
                    dir,
                    row_only,
                },
        } => bench_ingest(&cli.database_url, &messages, &dir, row_only).await,
        Command::Bench {
            command: BenchCommand::Preflight { messages, dir },
        } => bench_preflight(&cli.database_url, messages, &dir).await,
        Command::Bench {
            command:
                BenchCommand::Import {
                    mixed: true,
                    scale,
                    workers,
                    dir,
                    ..
                },
        } => bench_mixed(&cli.database_url, scale, workers, &dir).await,
        Command::Bench {
            command: BenchCommand::Import {
                minutes, qps, dir, ..
            },
        } => bench_import(&cli.database_url, minutes, qps, &dir).await,
        Command::Bench {
            command: BenchCommand::Sync(o),
        } => bench_sync(&cli.database_url, o).await,
        Command::Bench {
            command: BenchCommand::Hostile { dir, only },
        } => bench_hostile(&cli.database_url, &dir, &only),
        Command::Bench {
            command: BenchCommand::HostileValidate(args),
        } => {
            let code = validate_to(args, &mut std::io::stdout().lock());
            eprintln!("peak_kb={}", crate::dumps::bench::peak_rss_kb());
            std::process::exit(code.into());
        }
        Command::Bench {
            command: BenchCommand::HostileIngest { file, dir },
        } => bench_hostile_ingest(&cli.database_url, &file, &dir).await,
        Command::Sandbox {
            command: SandboxCommand::Provider(args),
        } => sandbox(args).await,
        Command::Validate(_) | Command::Fixtures { .. } => unreachable!("handled above"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("imshift: {e}");
            ExitCode::FAILURE
        }
    }
}

impl ServeArgs {
    fn parse_default() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            args: ServeArgs,
        }
        // Reads the same env defaults as `imshift serve`.
        Only::parse_from(["imshift"]).args
    }
}

type Res = Result<(), Box<dyn std::error::Error>>;

fn validate(args: ValidateArgs) -> ExitCode {
    ExitCode::from(validate_to(args, &mut std::io::stdout().lock()))
}

/// `imshift validate`'s JSON: the report's `state` as the console's REST report says it
/// (`current` once every file was read and checked; `failed`, with `error`, when the run could
/// not finish), then the report.
#[derive(serde::Serialize)]
struct StatedReport<'a> {
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(flatten)]
    report: Option<&'a crate::dumps::Report>,
}

/// `imshift validate`, writing the report to `out` as it is serialized (never whole in
/// memory). Returns the exit status: 0 no errors, 1 errors, 2 could not run.
fn validate_to(args: ValidateArgs, out: &mut dyn std::io::Write) -> u8 {
    use crate::dumps::validate::{target_rules, validate_files_with};
    use std::io::Write as _;
    // `auto`: told from the content.
    let format = crate::dumps::formats::Format::named(&args.format);
    let providers = crate::providers::Registry::builtin();
    let target = match args.target.as_deref() {
        Some(name) => match target_rules(&providers, name) {
            Some(rules) => Some(rules),
            None => {
                eprintln!(
                    "imshift validate: no {name}-specific rules yet; checking the format only"
                );
                None
            }
        },
        None => None,
    };
    let paths: Vec<&std::path::Path> = args.files.iter().map(|p| p.as_path()).collect();
    match validate_files_with(&paths, format, target, args.limits.limits()) {
        Ok(report) => {
            let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
            let stated = StatedReport {
                state: "current",
                error: None,
                report: Some(&report),
            };
            let written = serde_json::to_writer_pretty(&mut out, &stated)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
                .and_then(|()| out.flush());
            if let Err(e) = written {
                eprintln!("imshift validate: cannot write the report: {e}");
                return 2;
            }
            if report.has_errors() {
                1
            } else {
                0
            }
        }
        Err(finding) => {
            eprintln!("imshift validate: {}", finding.message);
            let stated = StatedReport {
                state: "failed",
                error: Some(&finding.message),
                report: None,
            };
            let _ = serde_json::to_writer_pretty(&mut *out, &stated).map(|()| writeln!(out));
            2
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("IMSHIFT_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("IMSHIFT_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn migrate(url: &str) -> Res {
    let pool = db::connect(url).await?;
    db::migrate(&pool).await?;
    println!("database {} is up to date", db::redact(url));
    Ok(())
}

async fn create_user(url: &str, email: &str, role: Role) -> Res {
    let password = match std::env::var("IMSHIFT_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut p = String::new();
            std::io::stdin().read_to_string(&mut p)?;
            p.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    let pool = db::connect(url).await?;
    db::migrate(&pool).await?;
    let user = crate::auth::users::create_from_cli(&pool, email, role, &password).await?;
    println!("created {} ({})", user.email, user.role);
    Ok(())
}

/// A new password from the terminal (asked twice, not echoed) or from stdin's first line.
fn read_new_password() -> Result<String, Box<dyn std::error::Error>> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password: ")?;
        let again = rpassword::prompt_password("Repeat it: ")?;
        if first != again {
            return Err("the two passwords differ; nothing was changed".into());
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

async fn reset_password(url: &str, email: &str) -> Res {
    let password = read_new_password()?;
    let pool = db::connect(url).await?;
    db::migrate(&pool).await?;
    let reset = crate::auth::users::reset_password(&pool, email, &password).await?;
    println!(
        "password of {} reset: their sessions ended, {} API token{} revoked, sign-in throttle cleared",
        reset.email,
        reset.tokens_revoked,
        if reset.tokens_revoked == 1 { "" } else { "s" }
    );
    Ok(())
}

async fn create_token(url: &str, email: &str, name: &str, can_mint_tokens: bool) -> Res {
    let pool = db::connect(url).await?;
    db::migrate(&pool).await?;
    let created = crate::auth::tokens::create_from_cli(&pool, email, name, can_mint_tokens).await?;
    // The secret alone on stdout, so `TOKEN=$(imshift token create …)` works; the rest on stderr.
    eprintln!(
        "created API token {} ({}…) for {email}{}; it is shown only now",
        created.token.name,
        created.token.prefix,
        if can_mint_tokens {
            ", allowed to create tokens"
        } else {
            ""
        }
    );
    println!("{}", created.secret);
    Ok(())
}

fn generate_fixtures(args: FixturesArgs) -> Res {
    use std::io::Write;
    let spec = crate::dumps::fixtures::Spec {
        accounts: args.accounts,
        friends: args.friends,
        groups: args.groups,
        members: args.members,
        messages: args.messages,
        group_share: args.group_share,
        seed: args.seed,
        ..Default::default()
    };
    let counts = if args.out.as_os_str() == "-" {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let c = crate::dumps::fixtures::generate(&spec, &mut out)?;
        out.flush()?;
        c
    } else {
        let file = std::fs::File::create(&args.out)
            .map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
        let mut out: Box<dyn Write> = if args.out.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::write::GzEncoder::new(
                std::io::BufWriter::new(file),
                flate2::Compression::fast(),
            ))
        } else {
            Box::new(std::io::BufWriter::new(file))
        };
        let c = crate::dumps::fixtures::generate(&spec, &mut out)?;
        out.flush()?;
        drop(out);
        c
    };
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    eprintln!("wrote {}", summary.join(", "));
    Ok(())
}

fn scratch_only(url: &str) -> Res {
    if url == db::DEFAULT_URL {
        return Err("give the benchmark a scratch database, e.g. \
                    DATABASE_URL=postgres://postgres@127.0.0.1:5432/imshift_bench"
            .into());
    }
    Ok(())
}

async fn bench_preflight(url: &str, messages: u64, dir: &std::path::Path) -> Res {
    scratch_only(url)?;
    let pool = db::connect(url).await?;
    db::migrate(&pool).await?;
    let f = crate::dumps::bench::preflight(&pool, messages, dir).await?;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{} messages, {} records staged; upload → report current {:.1} s",
        f.messages,
        f.records,
        f.total.as_secs_f64()
    );
    println!(
        "preflight sizes, counted from the staged rows: first {:.0} ms, then {:.0} ms (median of 3)",
        ms(f.counted_first),
        ms(f.counted_warm)
    );
    println!(
        "preflight sizes, read as stored by the validation: {:.2} ms (median of 7); equal to the count: {}",
        ms(f.stored),
        f.equal
    );
    println!(
        "their cost: staging counts the smaller kinds' tables in {:.0} ms (messages as it reads them; from their table: {:.0} ms); each validation adds up in {:.0} ms",
        ms(f.count_small_kinds),
        ms(f.count_messages_table),
        ms(f.add_up)
    );
    if !f.equal {
        return Err("the stored sizes differ from the count".into());
    }
    Ok(())
}

async fn bench_ingest(url: &str, sizes: &[u64], dir: &std::path::Path, row_only: bool) -> Res {
    scratch_only(url)?;
    if !row_only {
        println!(
            "{:>10} {:>10} {:>9} {:>10} {:>12} {:>12} {:>12} {:>7} {:>9}",
            "messages",
            "records",
            "file MB",
            "total s",
            "ingest r/s",
            "staging r/s",
            "COPY r/s",
            "ratio",
            "peak MB"
        );
    }
    if sizes.len() > 1 {
        // Each size in its own process: memory one size's run leaves with the allocator would
        // otherwise count as the next size's peak.
        let exe = std::env::current_exe()?;
        for n in sizes {
            let status = std::process::Command::new(&exe)
                .args([
                    "bench",
                    "ingest",
                    "--row-only",
                    "--messages",
                    &n.to_string(),
                    "--dir",
                ])
                .arg(dir)
                .env("DATABASE_URL", url)
                .status()?;
            if !status.success() {
                return Err(format!("the run with {n} messages failed ({status})").into());
            }
        }
        return Ok(());
    }
    let pool = db::connect(url).await?;
    db::migrate(&pool).await?;
    for &n in sizes {
        let f = crate::dumps::bench::run(&pool, n, dir).await?;
        let rate = |rows: i64, d: std::time::Duration| rows as f64 / d.as_secs_f64().max(1e-9);
        let ingest = rate(f.records, f.total);
        let plain = rate(f.plain_rows, f.plain_copy);
        println!(
            "{:>10} {:>10} {:>9.0} {:>10.1} {:>12.0} {:>12.0} {:>12.0} {:>7.2} {:>9.0}",
            f.messages,
            f.records,
            f.file_bytes as f64 / 1e6,
            f.total.as_secs_f64(),
            ingest,
            rate(f.records, f.staging),
            plain,
            ingest / plain,
            f.peak_rss_kb as f64 / 1024.0
        );
    }
    Ok(())
}

/// `imshift bench hostile`: each input through `imshift validate` and through the console's
/// ingest, each run in its own process (its peak memory is its own, as `bench ingest` does).
fn bench_hostile(url: &str, dir: &std::path::Path, only: &[String]) -> Res {
    use crate::dumps::bench::{write_hostile, HOSTILE};
    use std::process::{Command as Proc, Stdio};
    scratch_only(url)?;
    let exe = std::env::current_exe()?;
    println!(
        "{:<19} {:>9} | validate: {:>4} {:>10} {:>7} | console: {:<7} {:>8} {:>9} {:>7}",
        "input",
        "file KB",
        "exit",
        "report KB",
        "peak MB",
        "upload",
        "stored",
        "not kept",
        "peak MB"
    );
    for (name, what) in HOSTILE {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let path = dir.join(name);
        if !path.exists() {
            write_hostile(dir, name, 1.0)?;
        }
        let file_kb = std::fs::metadata(&path)?.len() as f64 / 1024.0;
        // imshift validate: the report is counted as it streams out, never kept.
        let mut child = Proc::new(&exe)
            .args(["bench", "hostile-validate"])
            .arg(&path)
            .env("IMSHIFT_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stdout = child.stdout.take().ok_or("no stdout")?;
        let counter = std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let out = child.wait_with_output()?;
        let report_bytes = counter.join().map_err(|_| "the report reader panicked")??;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let peak_kb = |text: &str| -> f64 {
            text.lines()
                .filter_map(|l| l.strip_prefix("peak_kb="))
                .filter_map(|v| v.trim().parse::<f64>().ok())
                .next_back()
                .unwrap_or(f64::NAN)
        };
        let validate_peak = peak_kb(&stderr) / 1024.0;
        let validate_exit = out.status.code().unwrap_or(-1);
        // The console's ingest.
        let out = Proc::new(&exe)
            .args(["bench", "hostile-ingest", "--file"])
            .arg(&path)
            .arg("--dir")
            .arg(dir)
            .env("DATABASE_URL", url)
            .env("IMSHIFT_LOG", "error")
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let o: serde_json::Value = text
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| {
                format!(
                    "the ingest of {name} printed no outcome ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                )
            })?;
        println!(
            "{:<19} {:>9.1} | validate: {:>4} {:>10.1} {:>7.1} | console: {:<7} {:>8} {:>9} {:>7.1}",
            name,
            file_kb,
            validate_exit,
            report_bytes as f64 / 1024.0,
            validate_peak,
            o["state"].as_str().unwrap_or("?"),
            o["stored"],
            o["not_kept"],
            o["peak_kb"].as_f64().unwrap_or(f64::NAN) / 1024.0
        );
        println!("    {what}");
        if let Some(e) = o["error"].as_str() {
            println!("    console: {e}");
        }
    }
    Ok(())
}

async fn bench_hostile_ingest(url: &str, file: &std::path::Path, dir: &std::path::Path) -> Res {
    scratch_only(url)?;
    let pool = db::connect(url).await?;
    db::migrate(&pool).await?;
    let o = crate::dumps::bench::ingest_file(&pool, file, dir, Default::default()).await?;
    let peak_kb = crate::dumps::bench::peak_rss_kb();
    crate::dumps::bench::forget(&pool, &o).await?;
    println!(
        "{}",
        serde_json::json!({
            "state": o.state, "error": o.error, "records": o.records,
            "stored": o.findings_stored, "not_kept": o.findings_not_kept, "peak_kb": peak_kb,
        })
    );
    Ok(())
}

async fn bench_import(url: &str, minutes: f64, qps: u32, dir: &std::path::Path) -> Res {
    scratch_only(url)?;
    let pool = db::connect(url).await?;
    db::migrate(&pool).await?;
    let f = crate::import::bench::run(pool, minutes, qps, dir).await?;
    println!(
        "{} for {:.0} s at a quota of {}/s: {} requests, {:.1}/s = {:.3} of the quota; \
         {} over-quota answers; console CPU {:.0} % of one core; {} records sent",
        f.api,
        f.seconds,
        f.qps,
        f.requests,
        f.rate,
        f.rate / f.qps as f64,
        f.throttled,
        f.cpu * 100.0,
        f.records_sent
    );
    Ok(())
}

async fn bench_sync(url: &str, o: crate::sync::bench::Options) -> Res {
    scratch_only(url)?;
    let (rate, minutes) = (o.rate, o.minutes);
    if !(rate > 0.0 && minutes >= 0.0)
        || (minutes == 0.0 && o.outage_secs == 0 && !o.find_peak)
        || o.step_secs.is_nan()
        || o.step_secs <= 0.0
    {
        return Err(
            "give --rate above 0 and --minutes, --outage-secs or --find-peak (--step-secs above 0)"
                .into(),
        );
    }
    let pool = db::connect(url).await?;
    db::migrate(&pool).await?;
    let f = crate::sync::bench::run(pool, &o).await?;
    let c = &f.check;
    if f.seconds > 0.0 {
        println!(
            "sync at {rate}/s for {:.0} s ({} build): offered {:.1}/s old→new, {:.1}/s new→old; \
             accepted {} and {} of {} and {} sent ({} send errors)",
            f.seconds,
            f.build,
            f.offered_old_to_new,
            f.offered_new_to_old,
            f.accepted_old_to_new,
            f.accepted_new_to_old,
            f.sent_old_to_new,
            f.sent_new_to_old,
            f.send_errors
        );
        println!(
            "door answer to {} deliveries (relay batches and callbacks, in the console) p50 {:.1} ms \
             p99 {:.1} ms (goal p99 < 50 ms)",
            f.door_deliveries, f.door_p50_ms, f.door_p99_ms
        );
        println!(
            "relay batch answer (client side) p50 {:.1} ms p99 {:.1} ms; imshift added p50 {:.1} ms p99 {:.1} ms \
             (old→new p99 {:.1}, new→old p99 {:.1}; goal p99 ≤ 20 ms); drained {:.1} s after the load",
            f.inbound_p50_ms,
            f.inbound_p99_ms,
            f.added_p50_ms,
            f.added_p99_ms,
            f.added_p99_old_to_new_ms,
            f.added_p99_new_to_old_ms,
            f.drain_secs
        );
        println!(
            "lost {} (never stored {}, stored and not delivered {}), duplicated {}, conversations out \
             of order {}, not sent {}, resent with the same id {}; CPU {:.0} % of one core",
            f.never_stored + c.lost as i64,
            f.never_stored,
            c.lost,
            c.duplicated,
            c.convs_out_of_order,
            c.not_sent,
            c.resent_same_id,
            f.cpu * 100.0
        );
    }
    if let Some(p) = &f.peak {
        for s in &p.steps {
            println!(
                "step {:.0}/s: offered {:.0}/s, {} sent, never stored {}, send errors {}, door p50 {:.1} ms p99 {:.1} ms{}",
                s.rate,
                s.offered_per_sec,
                s.sent,
                s.never_stored,
                s.send_errors,
                s.door_p50_ms,
                s.door_p99_ms,
                if s.never_stored == 0 && s.send_errors == 0 && s.offered_per_sec >= 0.95 * s.rate { "" } else { "  <- lost or not offered" }
            );
        }
        let c = &p.check;
        println!(
            "peak: {:.0} events/s taken with nothing lost; then {} queued, drained in {:.1} s ({:.0}/s at the documented quotas); \
             lost {}, duplicated {}, conversations out of order {}, not sent {}",
            p.highest_ok, p.queued_after, p.drain_secs, p.drain_per_sec, c.lost, c.duplicated, c.convs_out_of_order, c.not_sent
        );
    }
    if let Some(o) = &f.outage {
        let c = &o.check;
        println!(
            "old system down {} s while {} events came from the new app: peak queued {}, \
             drained {:.1} s after its return; lost {}, duplicated {}, conversations out of \
             order {}, not sent {}, resent with the same id {}",
            o.secs,
            o.sent_new_to_old,
            o.peak_queued,
            o.drain_secs,
            c.lost,
            c.duplicated,
            c.convs_out_of_order,
            c.not_sent,
            c.resent_same_id
        );
    }
    println!("figures: {}", o.dir.join("figures.json").display());
    Ok(())
}

async fn bench_mixed(url: &str, scale: f64, workers: usize, dir: &std::path::Path) -> Res {
    scratch_only(url)?;
    if !(scale > 0.0 && scale <= 10.0) {
        return Err(format!("--scale {scale}: give a factor above 0 and at most 10").into());
    }
    let pool = db::connect(url).await?;
    db::migrate(&pool).await?;
    let f = crate::import::bench::run_mixed(pool, scale, workers, dir).await?;
    println!(
        "mixed migration at {scale}x the documented quotas, {} workers: {:.1} s launch to done; quota bound {:.1} s; {:+.1} % over the bound; {} records sent, {} failed, {} over-quota answers; load average {:.1} (1 min), {:.1} (5 min) on {} cores",
        f.workers,
        f.seconds,
        f.bound,
        (f.seconds / f.bound - 1.0) * 100.0,
        f.sent,
        f.failed,
        f.throttles,
        f.load.0,
        f.load.1,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<14} {:<40} {:>7} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "phase",
        "api",
        "records",
        "reqs",
        "quota",
        "bound s",
        "start s",
        "end s",
        "took s",
        "rate/quota"
    );
    for p in &f.phases {
        let took = p.end - p.start;
        println!(
            "{:<14} {:<40} {:>7} {:>6} {:>6.0} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9.3}",
            p.phase,
            p.api,
            p.records,
            p.requests,
            p.qps,
            p.bound_secs,
            p.start,
            p.end,
            took,
            if took > 0.0 && p.qps > 0.0 {
                p.requests as f64 / took / p.qps
            } else {
                0.0
            }
        );
    }
    let said: Vec<String> = f
        .time_left
        .iter()
        .map(|(share, err)| format!("{:.0} %: {err:+.1} %", share * 100.0))
        .collect();
    println!(
        "time left said during the run (elapsed + left against the real end), at: {}",
        said.join(", ")
    );
    Ok(())
}

async fn bench_audit(url: &str, rows: i64) -> Res {
    scratch_only(url)?;
    let pool = db::connect(url).await?;
    db::migrate(&pool).await?;
    let start = std::time::Instant::now();
    let total = crate::audit::bench::fill(&pool, rows).await?;
    println!(
        "audit_log holds {total} rows (filled in {:.1?})",
        start.elapsed()
    );
    println!(
        "{:<42} {:>6} {:>10}",
        "query (page of 50)", "rows", "median"
    );
    for t in crate::audit::bench::run(&pool).await? {
        println!(
            "{:<42} {:>6} {:>8.2}ms",
            t.label,
            t.rows,
            t.median.as_secs_f64() * 1000.0
        );
    }
    Ok(())
}

/// `imshift sandbox <PROVIDER> [ARGS]`: the provider's sandbox parses ARGS itself.
async fn sandbox(mut args: Vec<String>) -> Res {
    // clap gives the provider first, then its arguments.
    let name = args.remove(0);
    let providers = crate::providers::Registry::builtin();
    let with: Vec<&str> = providers
        .all()
        .filter(|p| p.sandbox().is_some())
        .map(|p| p.sandbox_name())
        .collect();
    let with = with.join(", ");
    let provider = providers
        .all()
        .find(|p| p.sandbox_name() == name)
        .or_else(|| providers.get(&name))
        .ok_or_else(|| {
            format!("`{name}` is not a provider imshift knows; these have a sandbox: {with}")
        })?;
    let sandbox = provider.sandbox().ok_or_else(|| {
        format!(
            "{} has no sandbox; these have one: {with}",
            provider.label()
        )
    })?;
    Ok(sandbox.serve(args).await?)
}

/// The Leptos site settings: from cargo-leptos' environment when it runs us, else defaults
/// that match `target/site` of a `cargo leptos build`.
fn leptos_options(listen: SocketAddr) -> leptos::config::LeptosOptions {
    let from_env = std::env::var_os("LEPTOS_OUTPUT_NAME").is_some();
    let mut options = from_env
        .then(|| leptos::config::get_configuration(None).ok())
        .flatten()
        .map(|c| c.leptos_options)
        .unwrap_or_else(|| {
            leptos::config::LeptosOptions::builder()
                .output_name("imshift")
                .site_root("target/site")
                .site_pkg_dir("pkg")
                .build()
        });
    options.site_addr = listen;
    options
}

async fn serve(url: &str, args: ServeArgs) -> Res {
    let pool = match &args.migrate_database_url {
        Some(owner_url) => {
            let owner = db::connect(owner_url).await?;
            db::migrate(&owner).await?;
            db::migrate_sessions(&owner).await?;
            let role = db::user_of(url).ok_or("DATABASE_URL names no user")?;
            if Some(&role) == db::user_of(owner_url).as_ref() {
                return Err(
                    "IMSHIFT_MIGRATE_DATABASE_URL and DATABASE_URL name the same role; \
                            give the console a role of its own (see the README, Deploy)"
                        .into(),
                );
            }
            db::grant_runtime(&owner, &role).await?;
            owner.close().await;
            db::connect(url).await?
        }
        None => {
            let pool = db::connect(url).await?;
            db::migrate(&pool).await?;
            pool
        }
    };
    let public_url = args
        .public_url
        .unwrap_or_else(|| format!("http://{}", args.listen));
    let mut config = Config::for_url(&public_url);
    config.data_dir = args.data_dir;
    config.max_upload_bytes = args.max_upload_bytes;
    config.dump_limits = args.dump_limits.limits();
    config.workers = args.workers;
    config.job_lease = std::time::Duration::from_secs(args.job_lease_secs.max(2));
    config.sync_gap_after = std::time::Duration::from_secs(args.sync_gap_secs.max(1));
    config.sync_canary_every = std::time::Duration::from_secs(args.sync_canary_secs);
    config.trusted_proxies = args.trusted_proxies;
    config.metrics_token = args.metrics_token.filter(|t| !t.is_empty()).map(Into::into);
    config.upload_quota_bytes = args.upload_quota_bytes;
    config.upload_expiry = std::time::Duration::from_secs(args.upload_expiry_hours.max(1) * 3600);
    config.ingest_max_attempts = i32::from(args.ingest_max_attempts.max(1));
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        format!(
            "cannot create the data directory {}: {e}",
            config.data_dir.display()
        )
    })?;
    let master_key = MasterKey::load(
        std::env::var("IMSHIFT_MASTER_KEY").ok().as_deref(),
        &args.master_key_file,
    )?;
    let (app, state) =
        web::build_with_state(pool, config, leptos_options(args.listen), master_key).await?;
    let workers = web::workers::start(&state).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    tracing::info!(
        "imshift console on {public_url} (database {})",
        db::redact(url)
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    if let Some(w) = workers {
        // Running jobs stop at their next safe point and go back to the queue.
        w.shutdown().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM or Ctrl-C: stop accepting, finish what is in flight, exit.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
