//! Command-line interface: `run` starts the daemon; the other commands provision and inspect through the store.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use switchboard_server::Config;
use switchboard_storage::Store;

use crate::provision;
use crate::settings;

#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about = "Switchboard SIP softswitch and registrar")]
pub struct Cli {
    /// Configuration file (TOML); without it the built-in defaults apply.
    #[arg(long, global = true, env = "SWITCHBOARD_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (SIP on UDP and TCP; TLS and secure WebSocket when [tls] names a certificate) until SIGINT
    /// or SIGTERM; SIGHUP reads the TLS certificate again.
    Run {
        /// Log format: text or json (overrides log.format).
        #[arg(long)]
        log_format: Option<String>,
    },
    /// Print the effective configuration (defaults, file and environment merged) as TOML.
    Config,
    /// Customers.
    #[command(subcommand)]
    Customer(CustomerCmd),
    /// Customer services (Direct Mode or Trunk Mode).
    #[command(subcommand)]
    Service(ServiceCmd),
    /// SIP devices (endpoints and PBX trunks).
    #[command(subcommand)]
    Device(DeviceCmd),
    /// Phone numbers (DIDs) of services, with their divert rules.
    #[command(subcommand)]
    Number(NumberCmd),
    /// Carrier gateways for off-net calls.
    #[command(subcommand)]
    Gateway(GatewayCmd),
    /// Voicemail messages.
    #[command(subcommand)]
    Voicemail(VoicemailCmd),
    /// Management API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Customer portal logins.
    #[command(subcommand)]
    Login(LoginCmd),
    /// The email outbox, newest first: queued, sent, and failed with the reason.
    Outbox {
        /// At most this many, 1 to 10000.
        #[arg(long, default_value_t = 50, allow_negative_numbers = true)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Current registrations: every binding with its contact, source, transport, expiry and device state.
    Registrations {
        #[arg(long)]
        json: bool,
    },
    /// The cluster's nodes: region, SIP address, last heartbeat (up or stale) and the bindings each holds.
    Nodes {
        #[arg(long)]
        json: bool,
    },
    /// Calls in progress on every node, oldest first.
    Calls {
        #[arg(long)]
        json: bool,
    },
    /// Call detail records, newest first.
    Cdr {
        /// Only the calls of this service.
        #[arg(long)]
        service: Option<String>,
        /// At most this many records, 1 to 10000.
        #[arg(long, default_value_t = 100, allow_negative_numbers = true)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum LoginCmd {
    /// Make a login for a customer and email it a link to choose its password (through the outbox).
    Invite {
        #[arg(long)]
        email: String,
        /// The customer it reaches (by name).
        #[arg(long)]
        customer: String,
        /// Also print the link (it works once, for api.link_secs), to hand over another way.
        #[arg(long)]
        print_link: bool,
    },
    /// List logins: email, customer, whether a password is set.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Link a login (one that registered itself) to a customer.
    Link {
        #[arg(long)]
        email: String,
        #[arg(long)]
        customer: String,
    },
    /// Unlink a login from its customer: it reaches nothing until linked again.
    Unlink {
        #[arg(long)]
        email: String,
    },
    /// Remove a login and end its sessions.
    Remove {
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Make a token and print it, once (only its hash is stored).
    Create {
        /// Unique; says whose token it is or what it is for.
        #[arg(long)]
        name: String,
        /// Limit the token to this customer's records (by name); without it, an operator's token reaches all.
        #[arg(long)]
        customer: Option<String>,
    },
    /// List tokens (never the tokens themselves), revoked ones too.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token (by name): it stops working at once.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum CustomerCmd {
    /// Add a customer.
    Add { name: String },
    /// List customers.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServiceCmd {
    /// Add a service to a customer.
    Add {
        #[arg(long)]
        customer: String,
        #[arg(long)]
        name: String,
        /// direct (one endpoint) or trunk (a PBX that receives every number).
        #[arg(long)]
        mode: String,
        #[arg(long)]
        region: Option<String>,
        /// Accept and reach every device of the service over TLS only.
        #[arg(long)]
        require_tls: bool,
    },
    /// Change a service (by name): whether its devices must use TLS.
    Edit {
        name: String,
        /// Accept and reach every device of the service over TLS only.
        #[arg(long, conflicts_with = "allow_any_transport")]
        require_tls: bool,
        /// Accept its devices over UDP and TCP again (a device's own --require-tls still holds).
        #[arg(long)]
        allow_any_transport: bool,
    },
    /// List services.
    List {
        #[arg(long)]
        customer: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeviceCmd {
    /// Add a device; without --password a strong one is generated and printed once.
    Add(DeviceAdd),
    /// List devices.
    List {
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one device (by Auth ID).
    Show {
        auth_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Change a device (by Auth ID).
    Edit(DeviceEdit),
    /// Remove a device (by Auth ID) and its registrations.
    Remove { auth_id: String },
    /// Issue a new password (printed once) for a device (by Auth ID).
    ResetPassword {
        auth_id: String,
        /// Use this password instead of a generated one.
        #[arg(long)]
        password: Option<String>,
    },
    /// Create devices from a CSV file with columns name,auth_id,password (all or none are created).
    Import {
        #[arg(long)]
        service: String,
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct DeviceAdd {
    #[arg(long)]
    pub service: String,
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub auth_id: String,
    #[arg(long)]
    pub password: Option<String>,
    /// Default outbound caller ID.
    #[arg(long)]
    pub caller_id: Option<String>,
    /// Enabled call types, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub call_types: Option<Vec<String>>,
    /// Contacts a trunk may bind at once (Direct Mode devices always have one).
    #[arg(long)]
    pub max_contacts: Option<i64>,
    /// IP[:PORT] (IPv6 as [IP]:PORT; port 5060 if not given) from which this PBX trunk is trusted without a
    /// password, and where its calls go when it does not register.
    #[arg(long, value_name = "IP[:PORT]")]
    pub trusted_address: Option<String>,
    /// Digest algorithms it is challenged with: modern (SHA-256, then MD5; the default) or md5 (MD5 alone, for
    /// endpoints that fail on SHA-256; offered only from its known address or --md5-from).
    #[arg(long, value_name = "modern|md5")]
    pub digest: Option<String>,
    /// Networks (CIDR, comma-separated) from which an md5 device is offered MD5 alone even before it ever
    /// registered: its office's address.
    #[arg(long, value_name = "CIDR[,CIDR...]")]
    pub md5_from: Option<String>,
    /// Accept its requests over TLS only, and reach it over its TLS connection only (UDP and TCP refused).
    #[arg(long)]
    pub require_tls: bool,
}

#[derive(Debug, Args)]
pub struct DeviceEdit {
    pub auth_id: String,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, conflicts_with = "clear_caller_id")]
    pub caller_id: Option<String>,
    #[arg(long)]
    pub clear_caller_id: bool,
    #[arg(long, value_delimiter = ',')]
    pub call_types: Option<Vec<String>>,
    #[arg(long)]
    pub max_contacts: Option<i64>,
    /// IP[:PORT] (IPv6 as [IP]:PORT; port 5060 if not given) from which this PBX trunk is trusted.
    #[arg(long, value_name = "IP[:PORT]", conflicts_with = "clear_trusted_address")]
    pub trusted_address: Option<String>,
    /// Trust this device only with its password again.
    #[arg(long, visible_alias = "no-trusted-address")]
    pub clear_trusted_address: bool,
    /// modern (SHA-256, then MD5) or md5 (MD5 alone from its known address or --md5-from).
    #[arg(long, value_name = "modern|md5")]
    pub digest: Option<String>,
    /// Networks (CIDR, comma-separated) from which an md5 device is offered MD5 alone.
    #[arg(long, value_name = "CIDR[,CIDR...]", conflicts_with = "clear_md5_from")]
    pub md5_from: Option<String>,
    /// Forget the --md5-from networks.
    #[arg(long)]
    pub clear_md5_from: bool,
    /// Accept its requests over TLS only, and reach it over its TLS connection only.
    #[arg(long, conflicts_with = "allow_any_transport")]
    pub require_tls: bool,
    /// Accept it over UDP and TCP again.
    #[arg(long)]
    pub allow_any_transport: bool,
}

#[derive(Debug, Subcommand)]
pub enum VoicemailCmd {
    /// The messages in a number's mailbox, oldest first.
    List {
        /// The number (E.164 or national form).
        #[arg(long)]
        number: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum NumberCmd {
    /// Add a number to a service.
    Add(NumberAdd),
    /// List numbers.
    List {
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one number.
    Show {
        number: String,
        #[arg(long)]
        json: bool,
    },
    /// Change a number's device or divert rules.
    Edit(NumberEdit),
    /// Remove a number.
    Remove { number: String },
}

#[derive(Debug, Args)]
pub struct NumberAdd {
    #[arg(long)]
    pub service: String,
    /// The number: national (02 9876 5432) or E.164 (+61298765432); stored as E.164.
    #[arg(long)]
    pub number: String,
    /// Ring only this device of the service (by name); without it every device of the service rings.
    #[arg(long)]
    pub device: Option<String>,
    /// never, no-answer, all or offline.
    #[arg(long)]
    pub divert_when: String,
    /// voicemail or a number; required unless --divert-when is never.
    #[arg(long)]
    pub divert_to: Option<String>,
    /// Ring time before a no-answer divert, 5 to 300 seconds.
    #[arg(long, allow_negative_numbers = true)]
    pub no_answer_secs: Option<i64>,
    /// Email address to tell when the service's devices go offline.
    #[arg(long)]
    pub offline_alert: Option<String>,
    /// The PIN that opens the number's mailbox from 777: 4 to 10 digits (stored hashed).
    #[arg(long)]
    pub voicemail_pin: Option<String>,
    /// Email each new voicemail message (the WAV attached) to this address.
    #[arg(long)]
    pub voicemail_email: Option<String>,
    /// With --voicemail-email: keep the message in the mailbox after emailing it (yes, the default) or not (no).
    #[arg(long, requires = "voicemail_email")]
    pub voicemail_email_keep: Option<String>,
}

#[derive(Debug, Args)]
pub struct NumberEdit {
    pub number: String,
    #[arg(long, conflicts_with = "clear_device")]
    pub device: Option<String>,
    #[arg(long)]
    pub clear_device: bool,
    #[arg(long)]
    pub divert_when: Option<String>,
    #[arg(long, conflicts_with = "clear_divert_to")]
    pub divert_to: Option<String>,
    #[arg(long)]
    pub clear_divert_to: bool,
    #[arg(long, allow_negative_numbers = true)]
    pub no_answer_secs: Option<i64>,
    #[arg(long, conflicts_with = "clear_offline_alert")]
    pub offline_alert: Option<String>,
    #[arg(long)]
    pub clear_offline_alert: bool,
    /// A new PIN for the number's mailbox: 4 to 10 digits (stored hashed; also clears a lockout).
    #[arg(long, conflicts_with = "clear_voicemail_pin")]
    pub voicemail_pin: Option<String>,
    /// Remove the mailbox PIN: 777 can no longer open it.
    #[arg(long)]
    pub clear_voicemail_pin: bool,
    /// Email each new voicemail message (the WAV attached) to this address.
    #[arg(long, conflicts_with = "clear_voicemail_email")]
    pub voicemail_email: Option<String>,
    /// With --voicemail-email: keep the message in the mailbox after emailing it (yes, the default) or not (no).
    #[arg(long, requires = "voicemail_email")]
    pub voicemail_email_keep: Option<String>,
    /// Stop emailing voicemail messages.
    #[arg(long)]
    pub clear_voicemail_email: bool,
}

#[derive(Debug, Subcommand)]
pub enum GatewayCmd {
    /// Add a carrier gateway.
    Add {
        #[arg(long)]
        name: String,
        /// HOST:PORT (a name, an IPv4 address, or [IPv6]).
        #[arg(long)]
        address: String,
        /// udp (default) or tcp.
        #[arg(long, default_value = "udp")]
        transport: String,
        /// Lower is tried first, 0 to 1000 (default 100).
        #[arg(long, default_value_t = 100, allow_negative_numbers = true)]
        priority: i64,
        /// Add it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// List gateways in the order they are tried.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a gateway (by name).
    Remove { name: String },
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let mut config = settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::Run { log_format } => {
            if let Some(f) = log_format {
                config.log.format = f;
                if let Err(e) = config.validate() {
                    bail!("--log-format: {e}");
                }
            }
            run(config).await
        }
        Command::Config => {
            print!("{}", toml::to_string_pretty(&config).context("cannot print the configuration")?);
            Ok(())
        }
        other => {
            let store = open_store(&config).await?;
            provision::execute(other, store.as_ref(), &config).await
        }
    }
}

async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    switchboard_storage::open(&config.database.url)
        .await
        .with_context(|| format!("cannot open database {}", redact(&config.database.url)))
}

/// Hides a password in a database URL for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    init_logging(&config)?;
    let store = open_store(&config).await?;
    let api_config = config.api.clone();
    let api_settings = switchboard_api::Settings {
        listen: config.api.listen,
        realm: config.sip.domain.clone(),
        trunk_max_contacts: config.registrar.trunk_max_contacts,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        node: config.node.name.clone(),
        voicemail_dir: config.voicemail.dir.clone().into(),
        portal: portal_settings(&config),
    };
    let running = switchboard_server::start(config, store.clone()).await?;
    let api_shutdown = tokio_util::sync::CancellationToken::new();
    let api_tasks = tokio_util::task::TaskTracker::new();
    if api_config.enabled {
        let hooks: Arc<dyn switchboard_api::Hooks> = Arc::new(DaemonHooks(running.mailboxes(), running.metrics()));
        let started = switchboard_api::start(store, api_settings, Some(hooks), api_shutdown.clone(), &api_tasks).await;
        if let Err(e) = started {
            running.shutdown().await;
            bail!("api.listen: cannot listen on {}: {e}", api_config.listen);
        }
    }
    wait_for_signal(&running).await;
    tracing::info!("shutting down");
    // The API finishes the requests under way, for a while; SIP state is flushed after it either way.
    api_shutdown.cancel();
    api_tasks.close();
    if tokio::time::timeout(API_DRAIN, api_tasks.wait()).await.is_err() {
        tracing::warn!("API requests still open after {API_DRAIN:?}; stopping without them");
    }
    running.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// The portal's settings from `[api]`.
pub(crate) fn portal_settings(c: &Config) -> switchboard_api::portal::PortalSettings {
    let a = &c.api;
    let public_url = match a.public_url.trim_end_matches('/') {
        "" => format!("http://{}", a.listen),
        url => url.to_owned(),
    };
    let regions = a
        .regions
        .iter()
        .map(|r| switchboard_api::portal::Region { name: r.name.clone(), sip_address: r.sip_address.clone() })
        .collect();
    let own_region = switchboard_api::portal::Region { name: c.node.region.clone(), sip_address: c.advertised_sip() };
    let ms = |secs: u64| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    switchboard_api::portal::PortalSettings {
        public_url,
        idle_ms: ms(a.session_idle_secs),
        absolute_ms: ms(a.session_max_secs),
        link_ms: ms(a.link_secs),
        login_failures: a.login_failures,
        login_window_ms: a.login_window_secs.saturating_mul(1000),
        regions,
        own_region,
        node_stale_ms: ms(c.node.heartbeat_secs.saturating_mul(3)),
    }
}

/// How long a stopping daemon waits for API requests under way.
const API_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The API's way to tell the running daemon what the change log does not carry.
#[derive(Debug)]
struct DaemonHooks(switchboard_server::Mailboxes, switchboard_server::Metrics);

impl switchboard_api::Hooks for DaemonHooks {
    fn mailbox_changed(&self, number: &str, new: u32, saved: u32) {
        self.0.changed(number, new, saved);
    }

    fn metrics(&self) -> Vec<switchboard_model::metrics::Family> {
        self.1.families()
    }
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .with_context(|| format!("log.level {:?} is not a valid filter", config.log.level))?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let result = if config.log.format == "json" { builder.json().try_init() } else { builder.try_init() };
    result.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

/// Waits for SIGINT or SIGTERM; meanwhile each SIGHUP reads the TLS certificate and key again.
async fn wait_for_signal(running: &switchboard_server::Running) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let hangup = signal(SignalKind::hangup());
        match (signal(SignalKind::terminate()), hangup) {
            (Ok(mut term), Ok(mut hup)) => {
                tokio::pin!(ctrl_c);
                loop {
                    tokio::select! {
                        _ = &mut ctrl_c => break,
                        _ = term.recv() => break,
                        _ = hup.recv() => match running.reload_tls() {
                            Ok(()) => tracing::info!("SIGHUP: TLS certificate and key read again"),
                            Err(e) => tracing::warn!(error = %e, "SIGHUP: TLS certificate not reloaded; the one in use stays"),
                        },
                    }
                }
            }
            _ => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(super::redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact("sqlite://./data/x.db"), "sqlite://./data/x.db");
    }
}
