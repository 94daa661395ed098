//! `shomei-phone`: a desktop stand-in for the Shomei phone app, for EHR integrators without a
//! phone and for demos. The "biometric" is you running the command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shomei_tests::{KeyStoreKind, Phone, PhoneError};

#[derive(Parser)]
#[command(name = "shomei-phone", version, about = "Desktop phone for Shomei: enroll, scan a login QR (or type its code), approve or deny, manage grants")]
struct Cli {
    /// Where the phone keeps its state (server, device id, device token, pending login).
    #[arg(long, global = true, env = "SHOMEI_PHONE_STATE")]
    state: Option<PathBuf>,
    /// Which key store holds the device key: keyutils (Linux default; headless, lost on reboot),
    /// file (plain file in the state dir; demos only), memory (this process only).
    #[arg(long, global = true, env = "SHOMEI_PHONE_KEYSTORE", value_enum)]
    keystore: Option<KeyStoreKind>,
    /// Time zone of every printed time (login, grants, signatures): Asia/Tokyo (the
    /// practitioner's, default), UTC, or a fixed offset such as +09:00. `--json` output stays
    /// UTC, as on the wire.
    #[arg(long, global = true, env = "SHOMEI_PHONE_TZ", default_value = "Asia/Tokyo", value_parser = parse_zone)]
    tz: time::UtcOffset,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enroll this phone with an enrollment code (payload URL, or a PNG of its QR).
    Enroll {
        /// Enrollment payload URL or path of a PNG showing the enrollment QR.
        code: String,
        /// The activation password the operator handed over with the code.
        #[arg(long)]
        password: String,
        /// Device name shown to the operator.
        #[arg(long, default_value = "desktop phone")]
        name: String,
    },
    /// Scan a login QR from a PNG: shows who asks and the numbers to choose from.
    Scan { png: PathBuf },
    /// When the camera cannot read the QR: type the code the EHR shows beside it (e.g.
    /// BCDF-GHJK; case, spaces and hyphens do not matter). Shows who asks and the numbers, as
    /// `scan` does; then approve or deny.
    Code { code: String },
    /// Approve the scanned login, choosing the number the EHR screen shows.
    Approve {
        #[arg(long)]
        number: u8,
    },
    /// Deny the scanned login ("this wasn't me").
    Deny,
    /// List this phone's active grants.
    Grants,
    /// End one grant, or all with --all.
    EndGrant {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<uuid::Uuid>,
        #[arg(long)]
        all: bool,
    },
    /// What was signed in this practitioner's name: one grant's signatures, or the last 24
    /// hours across all grants, newest first; with --follow, then print new ones as they come.
    Signatures {
        /// Only this grant's signatures (ended grants too).
        #[arg(long)]
        grant: Option<uuid::Uuid>,
        /// Keep polling for new signatures (oldest first) until interrupted.
        #[arg(long)]
        follow: bool,
        /// Seconds between polls with --follow.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=3600))]
        interval: u64,
        /// Page size of the walk (1..=200).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=200))]
        page: u32,
        /// One JSON object per line (the protocol's SignatureEntry, times in UTC) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show this phone's enrollment.
    Status,
}

/// `--tz`: the zones a Japanese practitioner meets (Japan has had no daylight saving time since
/// 1951, so Asia/Tokyo is the fixed offset +09:00), or any fixed offset.
fn parse_zone(s: &str) -> Result<time::UtcOffset, String> {
    match s {
        "Asia/Tokyo" | "Japan" | "JST" => Ok(time::macros::offset!(+9)),
        "UTC" | "Z" => Ok(time::UtcOffset::UTC),
        _ => time::UtcOffset::parse(s, time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]"))
            .map_err(|_| format!("{s:?} is not Asia/Tokyo, UTC or an offset like +09:00")),
    }
}

/// A time as the practitioner reads it: `2026-12-01 12:15:42+09:00` in zone `tz`.
fn local(t: time::OffsetDateTime, tz: time::UtcOffset) -> String {
    t.to_offset(tz)
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
        ))
        .unwrap_or_else(|_| t.to_string())
}

/// What the phone shows before the biometric: who asks, when, and the three numbers.
fn print_context(ctx: &shomei_core::api::LoginContext, tz: time::UtcOffset) {
    println!("facility:  {}", ctx.facility.name);
    println!("terminal:  {}", ctx.terminal.name);
    println!("requested: {}", local(ctx.requested_at, tz));
    println!("expires:   {}", local(ctx.expires_at, tz));
    let numbers: Vec<String> = ctx.number_choices.iter().map(|n| n.to_string()).collect();
    println!("numbers:   {}", numbers.join("  "));
    println!("approve with: shomei-phone approve --number <the number the EHR shows>   or: shomei-phone deny");
}

/// One line per signature: seq, local time, facility / terminal, format, algorithm, digest, label.
fn signature_line(e: &shomei_core::api::SignatureEntry, tz: time::UtcOffset) -> String {
    let at = local(e.signed_at, tz);
    format!(
        "{}  {}  {} / {}  {}  {}  {}{}",
        e.seq,
        at,
        e.facility.name,
        e.terminal.name,
        e.format.as_str(),
        e.algorithm,
        shomei_core::api::b64std::encode(&e.digest),
        e.label.as_deref().map(|l| format!("  {l:?}")).unwrap_or_default(),
    )
}

fn print_signature(e: &shomei_core::api::SignatureEntry, json: bool, tz: time::UtcOffset) {
    if json {
        println!("{}", serde_json::to_string(e).expect("entries serialize"));
    } else {
        println!("{}", signature_line(e, tz));
    }
}

/// A --follow poll that failed for a reason that passes (network, timeout, the phone API's rate
/// limit): say so and poll again; anything else (revoked phone, ...) ends the command.
fn transient(e: &PhoneError) -> bool {
    use shomei_core::api::ErrorCode;
    use shomei_core::client::ClientError;
    matches!(
        e,
        PhoneError::Client(ClientError::Network(_) | ClientError::Timeout)
            | PhoneError::Client(ClientError::Rejected { code: ErrorCode::RateLimited | ErrorCode::Unavailable, .. })
    )
}

fn default_state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("shomei-phone");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/shomei-phone")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shomei-phone: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), PhoneError> {
    let state_dir = cli.state.unwrap_or_else(default_state_dir);
    let kind = cli.keystore.unwrap_or_else(KeyStoreKind::platform_default);
    shomei_tests::keystore::install(kind, &state_dir)?;
    let mut phone = Phone::open(&state_dir)?;
    let tz = cli.tz;
    match cli.command {
        Command::Enroll { code, password, name } => {
            let e = &phone.enroll(&code, &password, &name).await?.enrollment;
            println!("enrolled with {}", e.origin.as_str());
            println!("device id:    {}", e.device_id);
            println!("practitioner: {} ({:?})", e.practitioner.display_name, e.practitioner.role);
        }
        Command::Scan { png } => {
            let ctx = phone.scan_png(&png).await?;
            print_context(&ctx, tz);
        }
        Command::Code { code } => {
            let ctx = phone.open_code(&code).await?;
            print_context(&ctx, tz);
        }
        Command::Approve { number } => {
            let r = phone.approve(number).await?;
            println!("{:?}", r.outcome);
            if let Some(g) = r.grant {
                println!("grant {} until {}", g.id, local(g.expires_at, tz));
            }
            if let Some(code) = r.confirmation_code {
                // The `code` confirmation policy: only the EHR in front of the practitioner gets it.
                println!("confirmation code: {code}");
                println!("type this code into the EHR in front of you; never tell it to anyone");
            }
        }
        Command::Deny => {
            let r = phone.deny().await?;
            println!("{:?}", r.outcome);
        }
        Command::Grants => {
            let grants = phone.grants().await?;
            if grants.is_empty() {
                println!("no active grants");
            }
            for g in grants {
                println!(
                    "{}  {} / {}  since {}  until {}  signatures {}",
                    g.id,
                    g.facility.name,
                    g.terminal.name,
                    local(g.created_at, tz),
                    local(g.expires_at, tz),
                    g.signatures_made
                );
            }
        }
        Command::EndGrant { id, all } => {
            if all {
                println!("ended {} grant(s)", phone.end_all_grants().await?);
            } else if let Some(id) = id {
                phone.end_grant(id).await?;
                println!("ended grant {id}");
            }
        }
        Command::Signatures { grant, follow, interval, page, json } => {
            let (entries, mut watermark) = phone.signatures(grant, page).await?;
            if entries.is_empty() && !json && !follow {
                println!("no signatures");
            }
            for e in &entries {
                print_signature(e, json, tz);
            }
            // Following: poll `since` the walk's watermark (docs/protocol.md §9.3), oldest first.
            if follow {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(interval)).await;
                    match phone.signatures_since(grant, watermark).await {
                        Ok((new, at)) => {
                            watermark = at;
                            for e in &new {
                                print_signature(e, json, tz);
                            }
                        }
                        Err(e) if transient(&e) => eprintln!("shomei-phone: {e}; polling again"),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Command::Status => {
            let s = phone.state().ok_or(PhoneError::NotEnrolled)?;
            let e = &s.enrollment;
            println!("server:       {}", e.origin.as_str());
            println!("device id:    {}", e.device_id);
            println!("practitioner: {} ({:?})", e.practitioner.display_name, e.practitioner.role);
            if let Some(p) = &s.pending {
                println!(
                    "pending login at {} / {}, expires {}",
                    p.context.facility.name,
                    p.context.terminal.name,
                    local(p.context.expires_at, tz)
                );
            }
        }
    }
    Ok(())
}
