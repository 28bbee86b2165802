//! The `flowgate` binary under another name, for tests that need a separate daemon process.

fn main() -> std::process::ExitCode {
    flowgate::cli::main()
}
