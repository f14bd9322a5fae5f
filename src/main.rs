use std::process::ExitCode;

fn main() -> ExitCode {
    priorauth::cli::run()
}
