//! The `chaperone` binary: parse, dispatch, exit with the verdict's code.

fn main() -> std::process::ExitCode {
    chaperone::cli::main()
}
