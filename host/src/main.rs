//! `helix`: the HelixRouter command line. The subcommands live one to a file in `cli/`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
