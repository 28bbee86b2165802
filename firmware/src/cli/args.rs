//! The command line's grammar, parsed by hand: five commands, fifteen options.
//!
//! clap with its derive was about 0.2 MB of the board's 8 MB of flash (its builder, the
//! generated code and tables) for a grammar this small; this module accepts the same command
//! lines (`--opt VALUE`, `--opt=VALUE`, `-c FILE`, `--` before positional arguments, repeated
//! options) and answers `--help`/`-h` on every level and `--version`/`-V`. A usage error is
//! printed with the command's usage line and exits with status 2, as clap did.
//!
//! Pure: [`parse`] takes the arguments (without the program name) and returns what to do.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use super::{Command, ConfigCommand, FlowCommand, Reference, RunArgs};

/// What the command line asks for.
#[derive(Debug)]
pub(super) enum Parsed {
    /// Run a command.
    Command(Command),
    /// Print this help text (stdout, exit 0).
    Help(&'static str),
    /// Print the version (stdout, exit 0).
    Version,
}

/// A command line that does not fit the grammar.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct UsageError {
    /// What is wrong.
    pub(super) message: String,
    /// The usage line of the command it is about.
    pub(super) usage: &'static str,
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "error: {}\n\nUsage: {}\n\nFor more information, try '--help'.",
            self.message, self.usage
        )
    }
}

const TOP_USAGE: &str = "flowgate <COMMAND>";
const TOP_HELP: &str = "\
Flowgate: on-premises telecom gateway firmware running VoIPBIN-compatible flows

Usage: flowgate <COMMAND>

Commands:
  run     Run the gateway daemon (the simulated board when the config names no hardware)
  flow    Work with flow files offline
  config  Configuration helpers
  help    Print this message or the help of the given subcommand(s)

Options:
  -h, --help     Print help
  -V, --version  Print version
";

const RUN_USAGE: &str = "flowgate run [OPTIONS]";
const RUN_HELP: &str = "\
Run the gateway daemon (the simulated board when the config names no hardware)

Usage: flowgate run [OPTIONS]

Options:
  -c, --config <CONFIG>  Config file (TOML). Without it, the documented defaults: the
                         simulated board
      --listen <LISTEN>  Listen address of the LAN API, overriding `api.listen`
      --data <DATA>      Data directory, overriding `data.dir`
      --board <BOARD>    Board profile (a built-in name such as `simulated-dual`, or a TOML
                         file), overriding `board.profile`
  -h, --help             Print help
";

const FLOW_USAGE: &str = "flowgate flow <COMMAND>";
const FLOW_HELP: &str = "\
Work with flow files offline

Usage: flowgate flow <COMMAND>

Commands:
  validate  Check flow files; exit 1 if any has an error (warnings go to stderr and never
            fail, unless --strict)
  run       Run a flow offline with a scripted channel and print the trace (exit 1 if a
            flow of the run ends with an error)

Options:
  -h, --help  Print help
";

const VALIDATE_USAGE: &str = "flowgate flow validate [OPTIONS] <FILES>...";
const VALIDATE_HELP: &str = "\
Check flow files; exit 1 if any has an error (warnings go to stderr and never fail, unless
--strict)

Usage: flowgate flow validate [OPTIONS] <FILES>...

Arguments:
  <FILES>...  Flow JSON files

Options:
      --reference <REFERENCE>  What the flows are for (adds warnings about actions media
                               gating would skip) [possible values: call, api, message,
                               none]
      --strict                 Warnings count as errors for the exit status (for CI)
      --json                   Machine-readable output
  -h, --help                   Print help
";

const FLOW_RUN_USAGE: &str = "flowgate flow run [OPTIONS] <FILE>";
const FLOW_RUN_HELP: &str = "\
Run a flow offline with a scripted channel and print the trace (exit 1 if a flow of the run
ends with an error)

Usage: flowgate flow run [OPTIONS] <FILE>

Arguments:
  <FILE>  The flow JSON file

Options:
      --reference <REFERENCE>  What started the flow (decides which actions run) [default:
                               call] [possible values: call, api, message, none]
      --var <KEY=VALUE>        A variable set before the first action, over the ones the
                               gateway sets (repeatable)
      --script <FILE>          A file of scripted events, one per line (`#` comments);
                               `push:FILE` paths in it are relative to it. Its events come
                               before the --input ones
      --input <EVENT>          One scripted event, in order (repeatable): dtmf:DIGITS,
                               press:DIGITS, timeout, hangup, fail[:REASON], at:TARGET,
                               forward:TARGET, forward-now:TARGET, push:SOURCE,
                               push-now:SOURCE, continue[:TARGET], stop[:REASON]. TARGET is
                               an action id or actions[N]; SOURCE a JSON array of actions or
                               a file holding one
      --now <NOW>              The time the flow runs at (condition_datetime), RFC 3339.
                               Default: now
      --with <FLOW_FILE>       Other flow files: `fetch_flow` pushes their actions and
                               `on_complete_flow_id` follow-ups run them (repeatable)
      --fetch <URL> <SOURCE>   Answers the flow's `fetch` of URL (`*`: any other URL) with
                               the actions in SOURCE: a JSON file, or an http(s) URL
                               requested instead (repeatable). A fetch no mapping answers
                               fails: the dry run does not reach the network on its own
      --json                   Machine-readable output: {\"trace\":[…],\"variables\":{…},
                               \"end\":\"…\",\"flows\":[…],\"interrupts\":[…],
                               \"unused_inputs\":[…]}
  -h, --help                   Print help
";

const CONFIG_USAGE: &str = "flowgate config <COMMAND>";
const CONFIG_HELP: &str = "\
Configuration helpers

Usage: flowgate config <COMMAND>

Commands:
  default  Print the documented default configuration
  check    Check a config file; exit 1 with every problem if it is invalid

Options:
  -h, --help  Print help
";

const DEFAULT_USAGE: &str = "flowgate config default";
const DEFAULT_HELP: &str = "\
Print the documented default configuration

Usage: flowgate config default

Options:
  -h, --help  Print help
";

const CHECK_USAGE: &str = "flowgate config check <FILE>";
const CHECK_HELP: &str = "\
Check a config file; exit 1 with every problem if it is invalid

Usage: flowgate config check <FILE>

Arguments:
  <FILE>  The TOML file

Options:
  -h, --help  Print help
";

/// The arguments of one command, consumed front to back.
struct Words {
    rest: std::vec::IntoIter<OsString>,
    usage: &'static str,
    /// After `--`: everything is positional.
    positional_only: bool,
}

/// One argument, classified.
enum Word {
    /// `--name` or `-x`, with the value given as `--name=value`.
    Flag(String, Option<OsString>),
    Positional(OsString),
}

impl Words {
    fn error(&self, message: impl Into<String>) -> UsageError {
        UsageError {
            message: message.into(),
            usage: self.usage,
        }
    }

    fn next(&mut self) -> Option<Word> {
        let arg = self.rest.next()?;
        if self.positional_only {
            return Some(Word::Positional(arg));
        }
        if arg == "--" {
            self.positional_only = true;
            return self.next();
        }
        let Some(text) = arg.to_str() else {
            return Some(Word::Positional(arg));
        };
        if let Some(long) = text.strip_prefix("--") {
            return Some(match long.split_once('=') {
                Some((name, value)) => Word::Flag(format!("--{name}"), Some(value.into())),
                None => Word::Flag(text.to_owned(), None),
            });
        }
        if text.len() > 1 && text.starts_with('-') {
            // `-cFILE` as well as `-c FILE`.
            let mut chars = text.chars();
            chars.next();
            let flag = chars.next().map(|c| format!("-{c}")).unwrap_or_default();
            let inline = chars.as_str();
            return Some(Word::Flag(
                flag,
                (!inline.is_empty()).then(|| inline.into()),
            ));
        }
        Some(Word::Positional(arg))
    }

    /// The value of `flag`: given inline or the next argument.
    fn value(&mut self, flag: &str, inline: Option<OsString>) -> Result<OsString, UsageError> {
        match inline {
            Some(v) => Ok(v),
            None => self.rest.next().ok_or_else(|| {
                self.error(format!(
                    "a value is required for '{flag}' but none was supplied"
                ))
            }),
        }
    }

    fn text(&mut self, flag: &str, inline: Option<OsString>) -> Result<String, UsageError> {
        let value = self.value(flag, inline)?;
        value.into_string().map_err(|v| {
            self.error(format!(
                "invalid UTF-8 in the value of '{flag}': {}",
                v.to_string_lossy()
            ))
        })
    }

    fn no_value(&self, flag: &str, inline: Option<OsString>) -> Result<(), UsageError> {
        match inline {
            Some(_) => Err(self.error(format!("unexpected value for '{flag}'"))),
            None => Ok(()),
        }
    }

    fn unexpected(&self, what: &OsStr) -> UsageError {
        self.error(format!(
            "unexpected argument '{}' found",
            what.to_string_lossy()
        ))
    }
}

/// Parses the arguments after the program name.
pub(super) fn parse<I>(args: I) -> Result<Parsed, UsageError>
where
    I: IntoIterator<Item = OsString>,
{
    let mut words = Words {
        rest: args.into_iter().collect::<Vec<_>>().into_iter(),
        usage: TOP_USAGE,
        positional_only: false,
    };
    match words.next() {
        None => Err(words.error("a command is required")),
        Some(Word::Flag(flag, _)) if flag == "--help" || flag == "-h" => Ok(Parsed::Help(TOP_HELP)),
        Some(Word::Flag(flag, _)) if flag == "--version" || flag == "-V" => Ok(Parsed::Version),
        Some(Word::Flag(flag, _)) => Err(words.unexpected(OsStr::new(&flag))),
        Some(Word::Positional(cmd)) => match cmd.to_str() {
            Some("run") => {
                words.usage = RUN_USAGE;
                run(words)
            }
            Some("flow") => {
                words.usage = FLOW_USAGE;
                flow(words)
            }
            Some("config") => {
                words.usage = CONFIG_USAGE;
                config(words)
            }
            Some("help") => Ok(Parsed::Help(help_for(words))),
            _ => Err(words.error(format!(
                "unrecognized subcommand '{}'",
                cmd.to_string_lossy()
            ))),
        },
    }
}

/// `flowgate help [COMMAND [SUBCOMMAND]]`.
fn help_for(mut words: Words) -> &'static str {
    let mut path = Vec::new();
    while let Some(Word::Positional(w)) = words.next() {
        path.push(w.to_string_lossy().into_owned());
    }
    match path
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["run", ..] => RUN_HELP,
        ["flow", "validate", ..] => VALIDATE_HELP,
        ["flow", "run", ..] => FLOW_RUN_HELP,
        ["flow", ..] => FLOW_HELP,
        ["config", "default", ..] => DEFAULT_HELP,
        ["config", "check", ..] => CHECK_HELP,
        ["config", ..] => CONFIG_HELP,
        _ => TOP_HELP,
    }
}

fn run(mut words: Words) -> Result<Parsed, UsageError> {
    let mut args = RunArgs {
        config: None,
        listen: None,
        data: None,
        board: None,
    };
    while let Some(word) = words.next() {
        match word {
            Word::Flag(flag, inline) => match flag.as_str() {
                "-h" | "--help" => return Ok(Parsed::Help(RUN_HELP)),
                "-c" | "--config" => args.config = Some(words.value(&flag, inline)?.into()),
                "--listen" => args.listen = Some(words.text(&flag, inline)?),
                "--data" => args.data = Some(words.value(&flag, inline)?.into()),
                "--board" => args.board = Some(words.text(&flag, inline)?),
                _ => return Err(words.unexpected(OsStr::new(&flag))),
            },
            Word::Positional(p) => return Err(words.unexpected(&p)),
        }
    }
    Ok(Parsed::Command(Command::Run(args)))
}

fn flow(mut words: Words) -> Result<Parsed, UsageError> {
    match words.next() {
        None => Err(words.error("a subcommand is required")),
        Some(Word::Flag(flag, _)) if flag == "--help" || flag == "-h" => {
            Ok(Parsed::Help(FLOW_HELP))
        }
        Some(Word::Flag(flag, _)) => Err(words.unexpected(OsStr::new(&flag))),
        Some(Word::Positional(sub)) => match sub.to_str() {
            Some("validate") => {
                words.usage = VALIDATE_USAGE;
                flow_validate(words)
            }
            Some("run") => {
                words.usage = FLOW_RUN_USAGE;
                flow_run(words)
            }
            _ => Err(words.error(format!(
                "unrecognized subcommand '{}'",
                sub.to_string_lossy()
            ))),
        },
    }
}

fn reference(
    words: &mut Words,
    flag: &str,
    inline: Option<OsString>,
) -> Result<Reference, UsageError> {
    let value = words.text(flag, inline)?;
    match value.as_str() {
        "call" => Ok(Reference::Call),
        "api" => Ok(Reference::Api),
        "message" => Ok(Reference::Message),
        "none" => Ok(Reference::None),
        _ => Err(words.error(format!(
            "invalid value '{value}' for '{flag}' [possible values: call, api, message, none]"
        ))),
    }
}

fn flow_validate(mut words: Words) -> Result<Parsed, UsageError> {
    let mut files = Vec::new();
    let mut reference_type = None;
    let mut strict = false;
    let mut json = false;
    while let Some(word) = words.next() {
        match word {
            Word::Flag(flag, inline) => match flag.as_str() {
                "-h" | "--help" => return Ok(Parsed::Help(VALIDATE_HELP)),
                "--reference" => reference_type = Some(reference(&mut words, &flag, inline)?),
                "--strict" => {
                    words.no_value(&flag, inline)?;
                    strict = true;
                }
                "--json" => {
                    words.no_value(&flag, inline)?;
                    json = true;
                }
                _ => return Err(words.unexpected(OsStr::new(&flag))),
            },
            Word::Positional(p) => files.push(PathBuf::from(p)),
        }
    }
    if files.is_empty() {
        return Err(words.error("the following required arguments were not provided: <FILES>..."));
    }
    Ok(Parsed::Command(Command::Flow(FlowCommand::Validate {
        files,
        reference: reference_type,
        strict,
        json,
    })))
}

fn flow_run(mut words: Words) -> Result<Parsed, UsageError> {
    let mut file = None;
    let mut reference_type = Reference::Call;
    let mut vars = Vec::new();
    let mut script = None;
    let mut inputs = Vec::new();
    let mut now = None;
    let mut with = Vec::new();
    let mut fetch = Vec::new();
    let mut json = false;
    while let Some(word) = words.next() {
        match word {
            Word::Flag(flag, inline) => match flag.as_str() {
                "-h" | "--help" => return Ok(Parsed::Help(FLOW_RUN_HELP)),
                "--reference" => reference_type = reference(&mut words, &flag, inline)?,
                "--var" => vars.push(words.text(&flag, inline)?),
                "--script" => script = Some(words.value(&flag, inline)?.into()),
                "--input" => inputs.push(words.text(&flag, inline)?),
                "--now" => now = Some(words.text(&flag, inline)?),
                "--with" => with.push(words.value(&flag, inline)?.into()),
                "--fetch" => {
                    // Two values: URL and SOURCE.
                    let url = words.text(&flag, inline)?;
                    let source = words.text(&flag, None)?;
                    fetch.push(url);
                    fetch.push(source);
                }
                "--json" => {
                    words.no_value(&flag, inline)?;
                    json = true;
                }
                _ => return Err(words.unexpected(OsStr::new(&flag))),
            },
            Word::Positional(p) if file.is_none() => file = Some(PathBuf::from(p)),
            Word::Positional(p) => return Err(words.unexpected(&p)),
        }
    }
    let Some(file) = file else {
        return Err(words.error("the following required arguments were not provided: <FILE>"));
    };
    Ok(Parsed::Command(Command::Flow(FlowCommand::Run {
        file,
        reference: reference_type,
        vars,
        script,
        inputs,
        now,
        with,
        fetch,
        json,
    })))
}

fn config(mut words: Words) -> Result<Parsed, UsageError> {
    match words.next() {
        None => Err(words.error("a subcommand is required")),
        Some(Word::Flag(flag, _)) if flag == "--help" || flag == "-h" => {
            Ok(Parsed::Help(CONFIG_HELP))
        }
        Some(Word::Flag(flag, _)) => Err(words.unexpected(OsStr::new(&flag))),
        Some(Word::Positional(sub)) => {
            match sub.to_str() {
                Some("default") => {
                    words.usage = DEFAULT_USAGE;
                    match words.next() {
                        None => Ok(Parsed::Command(Command::Config(ConfigCommand::Default))),
                        Some(Word::Flag(flag, _)) if flag == "--help" || flag == "-h" => {
                            Ok(Parsed::Help(DEFAULT_HELP))
                        }
                        Some(Word::Flag(flag, _)) => Err(words.unexpected(OsStr::new(&flag))),
                        Some(Word::Positional(p)) => Err(words.unexpected(&p)),
                    }
                }
                Some("check") => {
                    words.usage = CHECK_USAGE;
                    let mut file = None;
                    while let Some(word) = words.next() {
                        match word {
                            Word::Flag(flag, _) if flag == "--help" || flag == "-h" => {
                                return Ok(Parsed::Help(CHECK_HELP));
                            }
                            Word::Flag(flag, _) => return Err(words.unexpected(OsStr::new(&flag))),
                            Word::Positional(p) if file.is_none() => file = Some(PathBuf::from(p)),
                            Word::Positional(p) => return Err(words.unexpected(&p)),
                        }
                    }
                    match file {
                        Some(file) => Ok(Parsed::Command(Command::Config(ConfigCommand::Check {
                            file,
                        }))),
                        None => Err(words
                            .error("the following required arguments were not provided: <FILE>")),
                    }
                }
                _ => Err(words.error(format!(
                    "unrecognized subcommand '{}'",
                    sub.to_string_lossy()
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &[&str]) -> Result<Parsed, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    fn command(args: &[&str]) -> Command {
        match parse_str(args) {
            Ok(Parsed::Command(c)) => c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        match parse_str(args) {
            Err(e) => e.to_string(),
            other => panic!("{args:?}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn run_takes_its_options_in_both_spellings() {
        let Command::Run(a) = command(&[
            "run",
            "-c",
            "f.toml",
            "--listen=0.0.0.0:80",
            "--data",
            "/d",
            "--board",
            "x",
        ]) else {
            panic!("run")
        };
        assert_eq!(a.config, Some(PathBuf::from("f.toml")));
        assert_eq!(a.listen.as_deref(), Some("0.0.0.0:80"));
        assert_eq!(a.data, Some(PathBuf::from("/d")));
        assert_eq!(a.board.as_deref(), Some("x"));
        let Command::Run(a) = command(&["run", "--config=g.toml"]) else {
            panic!("run")
        };
        assert_eq!(a.config, Some(PathBuf::from("g.toml")));
        let Command::Run(a) = command(&["run", "-ch.toml"]) else {
            panic!("run")
        };
        assert_eq!(a.config, Some(PathBuf::from("h.toml")));
        let Command::Run(a) = command(&["run"]) else {
            panic!("run")
        };
        assert!(a.config.is_none() && a.listen.is_none());
    }

    #[test]
    fn flow_run_collects_repeated_options_in_order() {
        let Command::Flow(FlowCommand::Run {
            file,
            reference,
            vars,
            inputs,
            fetch,
            with,
            json,
            now,
            script,
        }) = command(&[
            "flow",
            "run",
            "f.json",
            "--var",
            "a=1",
            "--input",
            "dtmf:1",
            "--var=b=2",
            "--fetch",
            "http://x/",
            "x.json",
            "--fetch",
            "*",
            "y.json",
            "--with",
            "n.json",
            "--reference",
            "api",
            "--json",
            "--now",
            "2025-01-01T00:00:00Z",
            "--input",
            "hangup",
        ])
        else {
            panic!("flow run")
        };
        assert_eq!(file, PathBuf::from("f.json"));
        assert!(matches!(reference, Reference::Api));
        assert_eq!(vars, ["a=1", "b=2"]);
        assert_eq!(inputs, ["dtmf:1", "hangup"]);
        assert_eq!(fetch, ["http://x/", "x.json", "*", "y.json"]);
        assert_eq!(with, [PathBuf::from("n.json")]);
        assert!(json);
        assert_eq!(now.as_deref(), Some("2025-01-01T00:00:00Z"));
        assert!(script.is_none());
        let Command::Flow(FlowCommand::Run { reference, .. }) = command(&["flow", "run", "f.json"])
        else {
            panic!("flow run")
        };
        assert!(
            matches!(reference, Reference::Call),
            "the default reference"
        );
    }

    #[test]
    fn flow_validate_takes_many_files_and_dashes() {
        let Command::Flow(FlowCommand::Validate {
            files,
            reference,
            strict,
            json,
        }) = command(&[
            "flow",
            "validate",
            "a.json",
            "--strict",
            "b.json",
            "--",
            "--odd.json",
        ])
        else {
            panic!("validate")
        };
        assert_eq!(
            files,
            [
                PathBuf::from("a.json"),
                PathBuf::from("b.json"),
                PathBuf::from("--odd.json")
            ]
        );
        assert!(reference.is_none() && strict && !json);
    }

    #[test]
    fn config_commands() {
        assert!(matches!(
            command(&["config", "default"]),
            Command::Config(ConfigCommand::Default)
        ));
        let Command::Config(ConfigCommand::Check { file }) =
            command(&["config", "check", "c.toml"])
        else {
            panic!("check")
        };
        assert_eq!(file, PathBuf::from("c.toml"));
    }

    #[test]
    fn help_and_version_on_every_level() {
        for (args, help) in [
            (&["--help"][..], TOP_HELP),
            (&["-h"], TOP_HELP),
            (&["help"], TOP_HELP),
            (&["help", "flow", "run"], FLOW_RUN_HELP),
            (&["run", "--help"], RUN_HELP),
            (&["flow", "-h"], FLOW_HELP),
            (&["flow", "validate", "--help"], VALIDATE_HELP),
            (&["flow", "run", "x.json", "-h"], FLOW_RUN_HELP),
            (&["config", "--help"], CONFIG_HELP),
            (&["config", "check", "--help"], CHECK_HELP),
            (&["config", "default", "-h"], DEFAULT_HELP),
        ] {
            match parse_str(args) {
                Ok(Parsed::Help(text)) => assert_eq!(text, help, "{args:?}"),
                other => panic!("{args:?}: {other:?}"),
            }
        }
        assert!(matches!(parse_str(&["--version"]), Ok(Parsed::Version)));
        assert!(matches!(parse_str(&["-V"]), Ok(Parsed::Version)));
    }

    #[test]
    fn usage_errors_name_the_problem_and_the_usage() {
        let e = error(&[]);
        assert!(
            e.contains("a command is required") && e.contains("Usage: flowgate <COMMAND>"),
            "{e}"
        );
        let e = error(&["launch"]);
        assert!(e.contains("unrecognized subcommand 'launch'"), "{e}");
        let e = error(&["run", "--bogus"]);
        assert!(
            e.contains("unexpected argument '--bogus'")
                && e.contains("Usage: flowgate run [OPTIONS]"),
            "{e}"
        );
        let e = error(&["run", "--config"]);
        assert!(e.contains("a value is required for '--config'"), "{e}");
        let e = error(&["flow", "validate"]);
        assert!(e.contains("<FILES>..."), "{e}");
        let e = error(&["flow", "run", "a.json", "b.json"]);
        assert!(e.contains("unexpected argument 'b.json'"), "{e}");
        let e = error(&["flow", "run", "a.json", "--reference", "sms"]);
        assert!(
            e.contains("possible values: call, api, message, none"),
            "{e}"
        );
        let e = error(&["flow", "run", "a.json", "--fetch", "http://x/"]);
        assert!(e.contains("a value is required for '--fetch'"), "{e}");
        let e = error(&["flow", "validate", "--json=yes", "a.json"]);
        assert!(e.contains("unexpected value for '--json'"), "{e}");
        let e = error(&["config", "check"]);
        assert!(
            e.contains("<FILE>") && e.contains("Usage: flowgate config check <FILE>"),
            "{e}"
        );
    }
}
