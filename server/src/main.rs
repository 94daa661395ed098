//! `shomei`: run the server (`serve`) or operate one (`admin …`).

use clap::Parser;
use shomei_server::cli::{Cli, Command};
use shomei_server::config::LogFormat;

/// Log lines on stderr, filtered by `SHOMEI_LOG` (default `info`); `json`:
/// one JSON object per line (tracing-subscriber's JSON formatter). Either
/// way only what the code logs is written, and no code logs a secret.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHOMEI_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

// The system allocator (glibc), not mimalloc: with mimalloc the server
// held 104–110 MiB with 10,000 terminals waiting on SQLite (85 MiB with
// glibc; the target is 100 MB), and signHash was no faster within the
// noise of alternated runs (docs/performance.md, 2026-12-02 evening).

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // `serve` resolves its configuration first: the log format may come from the config file.
    let (serve, command) = match cli.command {
        Command::Serve(args) => match args.resolve() {
            Ok(c) => (Some(c), None),
            Err(e) => {
                eprintln!("error: configuration: {e}");
                return std::process::ExitCode::from(2);
            }
        },
        other => (None, Some(other)),
    };
    init_logging(serve.as_ref().map_or(LogFormat::Text, |c| c.log_format));
    let mut b = tokio::runtime::Builder::new_multi_thread();
    // Poll the I/O driver before every task, not every 61st (tokio's default):
    // signHash signs on the worker threads (≈0.8 ms a task), so with both
    // workers busy a database answer waited dozens of signatures for its
    // readiness event, and the group commit's PostgreSQL round trips with it
    // (docs/performance.md: PostgreSQL signHash 49–56 → 61–63 % of raw).
    b.event_interval(1);
    let rt = match b.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(cfg) = serve {
        return rt.block_on(async {
                let running = match shomei_server::run::start(cfg).await {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return std::process::ExitCode::FAILURE;
                    }
                };
                println!("listening on {}", running.base_url);
                println!("admin API listening on http://{}", running.admin_addr);
                if let Some(d) = &running.demo {
                    print_demo(&running.base_url, d);
                    println!("{}", shomei_server::demo::attestation_note(&running.app.policy.attestation));
                }
                use std::io::Write as _;
                let _ = std::io::stdout().flush();
                match running.wait().await {
                    Ok(()) => std::process::ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("error: {e}");
                        std::process::ExitCode::FAILURE
                    }
                }
        });
    }
    match command.expect("serve returned above") {
        Command::Serve(_) => unreachable!("serve returned above"),
        Command::Attestation(shomei_server::cli::AttestationCmd::Verify(args)) => match shomei_server::cli::attestation_verify(&args) {
            Ok(out) => {
                println!("{out}");
                std::process::ExitCode::SUCCESS
            }
            Err(shomei_server::cli::VerifyError::Refused(reason)) => {
                if args.json {
                    println!("{}", serde_json::json!({ "verified": false, "reason": reason.to_string() }));
                } else {
                    println!("REFUSED: {reason}");
                }
                std::process::ExitCode::from(1)
            }
            Err(e @ shomei_server::cli::VerifyError::Usage(_)) => {
                eprintln!("error: {e}");
                std::process::ExitCode::from(2)
            }
        },
        Command::Admin(args) => rt.block_on(async {
            match shomei_server::cli::admin(args).await {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }),
    }
}

fn print_demo(base: &str, d: &shomei_server::demo::DemoSeed) {
    println!();
    println!("demo data seeded:");
    println!("  facility       {}", d.facility_id);
    println!("  terminal       client_id {}", d.client_id);
    println!(
        "                 client_secret {}  (shown only now; the demo page does not need it)",
        d.client_secret
    );
    println!(
        "  practitioner   {}  (dev-CA RSA credential {})",
        d.practitioner_id, d.credential_id
    );
    println!();
    println!("next: scan this enrollment QR with the Shomei app and type the activation password");
    if let Ok(qr) = shomei_server::qr::unicode(&d.enrollment.payload_url) {
        println!("{qr}");
    }
    println!("  payload URL          {}", d.enrollment.payload_url);
    println!("  activation password  {}", d.enrollment.activation_password);
    println!("  expires at           {}", d.enrollment.expires_at);
    println!();
    println!("then open the EHR demo page: {base}/demo");
}
