//! The `flowgate` command line: the binary's front end.
//!
//! This module and `main.rs` are the only places that use `anyhow`: every layer below has its
//! own error type, and here they become messages and exit codes (0 ok, 1 the input is bad —
//! an invalid flow, a flow that ended in error —, 2 the command could not run).
//!
//! ```text
//! flowgate run [--config FILE] [--listen ADDR:PORT] [--data DIR]
//! flowgate flow validate FILE… [--reference call|api|message|none] [--strict] [--json]
//! flowgate flow run FILE [--reference …] [--var K=V]… [--script FILE] [--input EVENT]…
//!                        [--now RFC3339] [--with FLOW_FILE]… [--fetch URL SOURCE]… [--json]
//! flowgate config default
//! flowgate config check FILE
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use flowgate_flows::dryrun::{
    DryRunConfig, FetchRequest, InputEvent, actions_of, dry_run, parse_input, parse_var,
    script_lines,
};
use flowgate_flows::model::{Action, Flow, ReferenceType};
use flowgate_flows::validate::{Problem, ValidateOptions, validate_json};

use crate::config::{Config, DEFAULT_TOML};

mod args;

/// Flowgate: on-premises telecom gateway firmware running VoIPBIN-compatible flows.
#[derive(Debug)]
pub struct Cli {
    command: Command,
}

#[derive(Debug)]
enum Command {
    /// Run the gateway daemon (the simulated board when the config names no hardware).
    Run(RunArgs),
    /// Work with flow files offline.
    Flow(FlowCommand),
    /// Configuration helpers.
    Config(ConfigCommand),
}

/// Options of `flowgate run`.
#[derive(Debug, Clone)]
pub struct RunArgs {
    /// Config file (TOML). Without it, the documented defaults: the simulated board.
    pub config: Option<PathBuf>,
    /// Listen address of the LAN API, overriding `api.listen`.
    pub listen: Option<String>,
    /// Data directory, overriding `data.dir`.
    pub data: Option<PathBuf>,
    /// Board profile (a built-in name such as `simulated-dual`, or a TOML file),
    /// overriding `board.profile`.
    pub board: Option<String>,
}

#[derive(Debug)]
enum FlowCommand {
    /// Check flow files; exit 1 if any has an error (warnings go to stderr and never fail,
    /// unless --strict).
    Validate {
        /// Flow JSON files.
        files: Vec<PathBuf>,
        /// What the flows are for (adds warnings about actions media gating would skip).
        reference: Option<Reference>,
        /// Warnings count as errors for the exit status (for CI).
        strict: bool,
        /// Machine-readable output.
        json: bool,
    },
    /// Run a flow offline with a scripted channel and print the trace (exit 1 if a flow of
    /// the run ends with an error).
    Run {
        /// The flow JSON file.
        file: PathBuf,
        /// What started the flow (decides which actions run).
        reference: Reference,
        /// A variable set before the first action, over the ones the gateway sets
        /// (repeatable).
        vars: Vec<String>,
        /// A file of scripted events, one per line (`#` comments); `push:FILE` paths in it
        /// are relative to it. Its events come before the --input ones.
        script: Option<PathBuf>,
        /// One scripted event, in order (repeatable): dtmf:DIGITS, press:DIGITS, timeout,
        /// hangup, fail[:REASON], at:TARGET, forward:TARGET, forward-now:TARGET,
        /// push:SOURCE, push-now:SOURCE, continue[:TARGET], stop[:REASON]. TARGET is an
        /// action id or actions[N]; SOURCE a JSON array of actions or a file holding one.
        inputs: Vec<String>,
        /// The time the flow runs at (condition_datetime), RFC 3339. Default: now.
        now: Option<String>,
        /// Other flow files: `fetch_flow` pushes their actions and `on_complete_flow_id`
        /// follow-ups run them (repeatable).
        with: Vec<PathBuf>,
        /// Answers the flow's `fetch` of URL (`*`: any other URL) with the actions in SOURCE:
        /// a JSON file, or an http(s) URL requested instead (repeatable). A fetch no
        /// mapping answers fails: the dry run does not reach the network on its own.
        fetch: Vec<String>,
        /// Machine-readable output: {"trace":[…],"variables":{…},"end":"…","flows":[…],
        /// "interrupts":[…],"unused_inputs":[…]}.
        json: bool,
    },
}

#[derive(Debug)]
enum ConfigCommand {
    /// Print the documented default configuration.
    Default,
    /// Check a config file; exit 1 with every problem if it is invalid.
    Check {
        /// The TOML file.
        file: PathBuf,
    },
}

/// Reference types a user picks on the command line.
#[derive(Debug, Clone, Copy)]
enum Reference {
    /// A phone call (media actions run).
    Call,
    /// POST /v1.0/activeflows (media actions skipped).
    Api,
    /// An incoming SMS (media actions skipped).
    Message,
    /// No reference, like a recording's on-end flow (only actions that run anywhere).
    None,
}

impl Reference {
    fn to_reference_type(self) -> ReferenceType {
        match self {
            Reference::Call => ReferenceType::Call,
            Reference::Api => ReferenceType::Api,
            Reference::Message => ReferenceType::Conversation,
            Reference::None => ReferenceType::None,
        }
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match args::parse(std::env::args_os().skip(1)) {
        Ok(args::Parsed::Command(command)) => Cli { command },
        Ok(args::Parsed::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(args::Parsed::Version) => {
            println!("flowgate {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // Flow validation and the engine resolve time zones from the image's tzdata.
    flowgate_flows::tz::install(std::sync::Arc::new(
        flowgate_flows::tz::ZoneinfoDir::from_env(),
    ));
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("flowgate: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run_daemon(args),
        Command::Flow(FlowCommand::Validate {
            files,
            reference,
            strict,
            json,
        }) => validate_files(&files, reference, strict, json),
        Command::Flow(FlowCommand::Run {
            file,
            reference,
            vars,
            script,
            inputs,
            now,
            with,
            fetch,
            json,
        }) => run_flow(&RunFlow {
            file: &file,
            reference,
            vars: &vars,
            script: script.as_deref(),
            inputs: &inputs,
            now: now.as_deref(),
            with: &with,
            fetch: &fetch,
            json,
        }),
        Command::Config(ConfigCommand::Default) => {
            print!("{DEFAULT_TOML}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check { file }) => match Config::load(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::from(1))
            }
        },
    }
}

/// `flowgate run`: config, logging, the daemon until SIGTERM/SIGINT.
/// Exit status when the store stalls (EX_SOFTWARE): `Restart=on-failure` restarts us.
const STORE_STALLED_EXIT: i32 = 70;

fn run_daemon(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(listen) = args.listen {
        config.api.listen = listen;
    }
    if let Some(dir) = args.data {
        config.data.dir = dir;
    }
    if let Some(board) = args.board {
        config.board.profile = board;
    }
    config.validate()?;
    init_logging(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("flowgate")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let mut signals =
            crate::daemon::StopSignals::install().context("cannot install signal handlers")?;
        let daemon = crate::daemon::Daemon::start(config.clone()).await?;
        println!(
            "Flowgate API on http://{}/v1.0 (board: {})",
            daemon.addr(),
            config.board.profile
        );
        if let Some(sip) = daemon.sip() {
            print_sip(sip, &config);
        }
        if daemon.token_was_created() {
            // Printed once, at creation; afterwards it is only in <data>/api-token (0600).
            println!(
                "API token (also in {}): {}",
                config.data.dir.join(crate::api::auth::TOKEN_FILE).display(),
                daemon.token().as_str()
            );
        }
        tokio::select! {
            signal = signals.recv() => {
                tracing::info!(signal, "stopping");
            }
            () = daemon.store_stalled() => {
                // Nothing can be shut down in order over a store that takes no writes (the
                // final flush would hang): exit now, without destructors, and let the
                // supervisor restart us. Everything acknowledged was flushed before.
                tracing::error!("the store takes no more writes: exiting for a restart");
                std::process::exit(STORE_STALLED_EXIT);
            }
        }
        daemon.shutdown().await?;
        Ok(ExitCode::SUCCESS)
    })
}

fn init_logging(log: &crate::config::LogConfig) -> anyhow::Result<()> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => crate::config::parse_log_filter(&v)
            .map_err(|e| anyhow::anyhow!("RUST_LOG is not a valid log filter: {e}"))?,
        _ => crate::config::parse_log_filter(&log.filter)
            .map_err(|e| anyhow::anyhow!("log.filter is not a valid log filter: {e}"))?,
    };
    let registry = tracing_subscriber::registry().with(filter);
    let result = if log.format == "journald" {
        // Under systemd: each event goes to the journal with its tracing fields as journal
        // fields (FLOWGATE_<FIELD>), its level as the priority.
        let journald = tracing_journald::layer()
            .context("log.format = \"journald\" but the journal socket cannot be used")?
            .with_field_prefix(Some("FLOWGATE".into()));
        registry.with(journald).try_init()
    } else if log.format == "json" {
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr);
        registry.with(layer).try_init()
    } else {
        let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        registry.with(layer).try_init()
    };
    result.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

fn validate_files(
    files: &[PathBuf],
    reference: Option<Reference>,
    strict: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let opts = ValidateOptions {
        reference_type: reference.map(Reference::to_reference_type),
        ..ValidateOptions::default()
    };
    let mut all_ok = true;
    let mut results = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let (_, report) = validate_json(&text, &opts);
        let ok = report.is_ok() && (!strict || report.warnings.is_empty());
        all_ok &= ok;
        if json {
            results.push(serde_json::json!({
                "file": file.display().to_string(),
                "valid": report.is_ok(),
                "errors": report.errors,
                "warnings": report.warnings,
            }));
        } else {
            print_warnings(file, &report.warnings);
            for e in &report.errors {
                println!(
                    "{}: error: {}: {}",
                    file.display(),
                    or_root(&e.path),
                    e.message
                );
            }
            if report.is_ok() {
                println!("{}: ok", file.display());
            }
        }
    }
    if json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({ "valid": all_ok, "files": results }),
        )?;
        writeln!(out)?;
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_warnings(file: &Path, warnings: &[Problem]) {
    for w in warnings {
        eprintln!(
            "{}: warning: {}: {}",
            file.display(),
            or_root(&w.path),
            w.message
        );
    }
}

fn or_root(path: &str) -> &str {
    if path.is_empty() { "(document)" } else { path }
}

/// Reads and validates a flow file; warnings go to stderr (they never stop a run).
fn load_flow(path: &Path) -> anyhow::Result<Flow> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (flow, report) = validate_json(&text, &ValidateOptions::default());
    match flow {
        Some(flow) => {
            print_warnings(path, &report.warnings);
            Ok(flow)
        }
        None => {
            let problems: Vec<String> = report
                .errors
                .iter()
                .map(|e| format!("  {}: {}", or_root(&e.path), e.message))
                .collect();
            bail!(
                "{} is not a valid flow:\n{}",
                path.display(),
                problems.join("\n")
            )
        }
    }
}

/// The options of `flowgate flow run`.
struct RunFlow<'a> {
    file: &'a Path,
    reference: Reference,
    vars: &'a [String],
    script: Option<&'a Path>,
    inputs: &'a [String],
    now: Option<&'a str>,
    with: &'a [PathBuf],
    /// URL, SOURCE pairs, flattened as clap gives them.
    fetch: &'a [String],
    json: bool,
}

/// Parses one scripted event; `push:FILE` reads FILE relative to `base`.
fn parse_event(text: &str, base: &Path) -> anyhow::Result<InputEvent> {
    let mut load = |name: &str| -> Result<String, String> {
        let path = base.join(name);
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    Ok(parse_input(text, &mut load)?)
}

/// The script: the --script file's events, then the --input ones.
fn script_events(script: Option<&Path>, inputs: &[String]) -> anyhow::Result<Vec<InputEvent>> {
    let mut events = Vec::new();
    if let Some(path) = script {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for (line, event) in script_lines(&text) {
            events.push(
                parse_event(event, base).with_context(|| format!("{}:{line}", path.display()))?,
            );
        }
    }
    for input in inputs {
        events.push(parse_event(input, Path::new("."))?);
    }
    Ok(events)
}

/// Where the answer to a `fetch` comes from.
enum FetchSource {
    /// Actions read from a file when the run starts.
    Actions(Vec<Action>),
    /// An http(s) URL requested instead of the flow's.
    Url(String),
}

/// `--fetch URL SOURCE` pairs: exact URLs first, then `*`.
struct FetchMap(Vec<(String, FetchSource)>);

impl FetchMap {
    fn load(pairs: &[String]) -> anyhow::Result<Self> {
        let mut map = Vec::new();
        for pair in pairs.chunks(2) {
            let [url, source] = pair else {
                bail!("--fetch needs a URL and a SOURCE");
            };
            let answer = if source.starts_with("http://") || source.starts_with("https://") {
                FetchSource::Url(source.clone())
            } else {
                let text = std::fs::read_to_string(source)
                    .with_context(|| format!("--fetch {url}: cannot read {source}"))?;
                let actions = actions_of(&text)
                    .map_err(|e| anyhow::anyhow!("--fetch {url}: {source}: {e}"))?;
                FetchSource::Actions(actions)
            };
            map.push((url.clone(), answer));
        }
        Ok(Self(map))
    }

    fn find(&self, url: &str) -> Option<&FetchSource> {
        self.0
            .iter()
            .find(|(u, _)| u == url)
            .or_else(|| self.0.iter().find(|(u, _)| u == "*"))
            .map(|(_, s)| s)
    }
}

fn run_flow(args: &RunFlow<'_>) -> anyhow::Result<ExitCode> {
    let flow = load_flow(args.file)?;
    let mut config = DryRunConfig {
        reference_type: args.reference.to_reference_type(),
        ..DryRunConfig::default()
    };
    for path in args.with {
        config.flows.push(load_flow(path)?);
    }
    for v in args.vars {
        let (k, value) = parse_var(v)?;
        config.variables.insert(k, value);
    }
    config.inputs = script_events(args.script, args.inputs)?;
    config.now = match args.now {
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .with_context(|| {
                format!("--now {text:?} is not an RFC 3339 time such as 2026-11-23T09:30:00Z")
            })?
            .with_timezone(&chrono::Utc),
        None => chrono::Utc::now(),
    };
    let replies = FetchMap::load(args.fetch)?;

    let mut http: Option<tokio::runtime::Runtime> = None;
    let mut fetch = |request: &FetchRequest| -> Result<Vec<Action>, String> {
        match request {
            FetchRequest::FetchFlow { flow_id } => {
                Err(format!("flow {flow_id} is not among the --with files"))
            }
            FetchRequest::Fetch { url, method, body } => match replies.find(url) {
                None => Err(format!(
                    "no --fetch answer for {url}: give one with --fetch {url} FILE (the dry run does not reach the network on its own)"
                )),
                Some(FetchSource::Actions(actions)) => Ok(actions.clone()),
                Some(FetchSource::Url(instead)) => {
                    if http.is_none() {
                        http = Some(
                            tokio::runtime::Builder::new_current_thread()
                                .enable_all()
                                .build()
                                .map_err(|e| format!("cannot start the HTTP client: {e}"))?,
                        );
                    }
                    let rt = http.as_ref().ok_or("no HTTP client")?;
                    rt.block_on(fetch_actions(instead, method, body))
                }
            },
        }
    };
    let report = dry_run(&flow, &config, &mut fetch)?;
    if args.json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        print!("{}", report.render_text());
    }
    for unused in &report.unused_inputs {
        eprintln!("warning: input `{unused}` was never consumed");
    }
    Ok(if report.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A real `fetch` for the dry run.
async fn fetch_actions(
    url: &str,
    method: &str,
    body: &serde_json::Value,
) -> Result<Vec<Action>, String> {
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("bad method {method}"))?;
    let roots = crate::tls::Roots::get();
    roots.check_url(url).map_err(|e| format!("{url}: {e}"))?;
    let client = roots
        .http_client(reqwest::Client::builder())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .request(method, url)
        .json(body)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(format!("{url}: HTTP {} (200 required)", response.status()));
    }
    let text = response.text().await.map_err(|e| format!("{url}: {e}"))?;
    actions_of(&text).map_err(|e| format!("{url}: not a valid action list: {e}"))
}

/// What a newcomer needs to call a flow from a softphone: where SIP listens and the demo
/// extension (its password printed once, when generated, like the API token).
fn print_sip(sip: &crate::sip::Sip, config: &crate::config::Config) {
    let addr = sip.user_agent().udp_addr();
    println!("SIP on udp/tcp {addr} (line \"{}\")", crate::sip::LINE_ID);
    if let Some(demo) = sip.demo() {
        if demo.created {
            println!(
                "SIP demo extension: user {} password {} (also in {}), registrar {addr}",
                demo.user,
                demo.password,
                config
                    .data
                    .dir
                    .join(crate::sip::DEMO_PASSWORD_FILE)
                    .display()
            );
        } else {
            println!(
                "SIP demo extension: user {} (password in {}), registrar {addr}",
                demo.user,
                config
                    .data
                    .dir
                    .join(crate::sip::DEMO_PASSWORD_FILE)
                    .display()
            );
        }
    }
}
