//! The `flowgate` binary; everything lives in the library (see `flowgate::cli`).

fn main() -> std::process::ExitCode {
    flowgate::cli::main()
}
