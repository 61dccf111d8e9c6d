//! The `iroh-raft` command line: parses arguments, sets up logging and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use iroh_raft::{PluginEngine, PluginKind, sha256, sha256_hex};

/// A Raft node whose replicated state machine, access policy and backup handler are WebAssembly
/// components.
#[derive(Parser)]
#[command(name = "iroh-raft", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with plugin components.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Check that a .wasm file is a valid plugin of the given kind, without deploying it.
    ///
    /// Exits 0 and prints the component's hash, size and imports if it is; exits 1 with the reason
    /// (not wasm, a core module instead of a component, the wrong world, a forbidden import) if not.
    Validate {
        /// The plugin kind: state-machine, policy or backup.
        #[arg(long, value_parser = parse_kind)]
        kind: PluginKind,
        /// The component to check.
        file: PathBuf,
    },
    /// List the plugins built into this binary.
    Bundled,
}

fn parse_kind(s: &str) -> Result<PluginKind, String> {
    s.parse()
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Plugin(PluginCommand::Validate { kind, file }) => {
            let wasm =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let info = PluginEngine::new(None)?
                .validate(kind, &wasm)
                .with_context(|| format!("{} is not a valid {kind} plugin", file.display()))?;
            println!("{}: valid {kind} plugin", file.display());
            println!("  sha256:    {}", sha256_hex(&info.sha256));
            println!("  size:      {} bytes", info.size);
            println!(
                "  migration: {}",
                if info.has_migration {
                    "exported"
                } else {
                    "none"
                }
            );
            println!("  imports:   {}", info.imports.join(", "));
        }
        Command::Plugin(PluginCommand::Bundled) => {
            for (name, kind, wasm) in iroh_raft::bundled::ALL {
                let hash = sha256_hex(&sha256(wasm));
                println!(
                    "{name:<10} {kind:<14} {:>8} bytes  sha256 {hash}",
                    wasm.len()
                );
            }
        }
    }
    Ok(())
}
