//! `shomei`: run the server (`serve`) or operate one (`admin …`).

use clap::Parser;
use shomei_server::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("SHOMEI_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve(args) => {
            let cfg = match args.resolve() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: configuration: {e}");
                    return std::process::ExitCode::from(2);
                }
            };
            rt.block_on(async {
                let running = match shomei_server::run::start(cfg).await {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return std::process::ExitCode::FAILURE;
                    }
                };
                println!("listening on http://{}", running.addr);
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
            })
        }
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
        "                 client_secret {}  (shown only now; type it into the demo page)",
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
