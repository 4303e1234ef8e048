//! Provisioning commands: validation (errors name the field), password generation, CSV import, listings.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;
use switchboard_server::Config;
use switchboard_sip_core::digest::{Algorithm, ha1};
use switchboard_storage::{
    Credentials, Device, DeviceUpdate, DigestMode, IpNet, NewDevice, NewService, Service, ServiceMode, Store,
    StoreError,
};

use crate::cli::{Command, CustomerCmd, DeviceAdd, DeviceCmd, DeviceEdit, ServiceCmd, VoicemailCmd};

/// Call types a device can have enabled. Emergency calls are never barred and so are not listed.
pub const CALL_TYPES: &[&str] =
    &["local", "national", "mobile", "local-rate", "freephone", "premium", "international", "on-net", "other"];
/// Enabled when none are given: everything but the toll-fraud magnets (international, premium).
const DEFAULT_CALL_TYPES: &[&str] = &["local", "national", "mobile", "local-rate", "freephone", "on-net"];

pub async fn execute(cmd: Command, store: &dyn Store, config: &Config) -> anyhow::Result<()> {
    match cmd {
        Command::Customer(CustomerCmd::Add { name }) => {
            let name = check_name("name", &name)?;
            let c = store.create_customer(&name).await.map_err(friendly)?;
            println!("customer {} added (id {})", c.name, c.id);
        }
        Command::Customer(CustomerCmd::List { json }) => {
            let list = store.list_customers().await?;
            if json {
                print_json(&list)?;
            } else {
                table(&["ID", "NAME"], list.iter().map(|c| vec![c.id.to_string(), c.name.clone()]).collect());
            }
        }
        Command::Service(ServiceCmd::Add { customer, name, mode, region }) => {
            let mode = ServiceMode::parse(&mode)
                .with_context(|| format!("--mode: {mode:?} is not a mode (use direct or trunk)"))?;
            let name = check_name("--name", &name)?;
            let cust = store
                .customer_by_name(&customer)
                .await?
                .with_context(|| format!("--customer: no customer named {customer:?}"))?;
            let s = store
                .create_service(&NewService { customer_id: cust.id, name, mode, region })
                .await
                .map_err(friendly)?;
            println!("service {} added ({} mode, id {})", s.name, s.mode.as_str(), s.id);
        }
        Command::Service(ServiceCmd::List { customer, json }) => {
            let cid = match customer {
                Some(c) => Some(
                    store
                        .customer_by_name(&c)
                        .await?
                        .with_context(|| format!("--customer: no customer named {c:?}"))?
                        .id,
                ),
                None => None,
            };
            let list = store.list_services(cid).await?;
            if json {
                print_json(&list)?;
            } else {
                let rows = list
                    .iter()
                    .map(|s| {
                        vec![
                            s.id.to_string(),
                            s.name.clone(),
                            s.mode.as_str().into(),
                            s.region.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                table(&["ID", "NAME", "MODE", "REGION"], rows);
            }
        }
        Command::Device(d) => device(d, store, config).await?,
        Command::Registrations { json } => registrations(store, json).await?,
        Command::Number(n) => crate::numbers::number(n, store).await?,
        Command::Gateway(g) => crate::numbers::gateway(g, store).await?,
        Command::Calls { json } => crate::calls::calls(store, json).await?,
        Command::Voicemail(VoicemailCmd::List { number, json }) => crate::voicemail::list(store, &number, json).await?,
        Command::Outbox { limit, json } => crate::voicemail::outbox(store, limit, json).await?,
        Command::Cdr { service, limit, json } => crate::calls::cdrs(store, service.as_deref(), limit, json).await?,
        Command::Run { .. } | Command::Config => unreachable_command()?,
    }
    Ok(())
}

fn unreachable_command() -> anyhow::Result<()> {
    bail!("this command is handled elsewhere")
}

async fn device(cmd: DeviceCmd, store: &dyn Store, config: &Config) -> anyhow::Result<()> {
    let realm = &config.sip.domain;
    match cmd {
        DeviceCmd::Add(add) => {
            let service = service_named(store, &add.service).await?;
            let (new, password, generated) = new_device(&add, &service, config)?;
            let d = store.create_device(&new).await.map_err(friendly)?;
            println!("device {} added to service {} (auth id {})", d.name, service.name, d.auth_id);
            print_password(&password, generated);
        }
        DeviceCmd::List { service, json } => {
            let sid = match service {
                Some(s) => Some(service_named(store, &s).await?.id),
                None => None,
            };
            let list = store.list_devices(sid).await?;
            if json {
                print_json(&list)?;
            } else {
                let services: std::collections::HashMap<i64, String> =
                    store.list_services(None).await?.into_iter().map(|s| (s.id, s.name)).collect();
                let rows = list
                    .iter()
                    .map(|d| {
                        vec![
                            d.auth_id.clone(),
                            d.name.clone(),
                            services.get(&d.service_id).cloned().unwrap_or_else(|| d.service_id.to_string()),
                            d.caller_id.clone().unwrap_or_default(),
                            d.call_types.join(","),
                            d.trusted_address.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                table(&["AUTH ID", "NAME", "SERVICE", "CALLER ID", "CALL TYPES", "TRUSTED ADDRESS"], rows);
            }
        }
        DeviceCmd::Show { auth_id, json } => {
            let d = device_by_auth(store, &auth_id).await?;
            if json {
                let last = store.device_auth(d.id).await?;
                let mut v = serde_json::to_value(&d)?;
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("last_auth".into(), serde_json::to_value(last)?);
                }
                print_json(&v)?;
            } else {
                print_device(&d, store).await?;
            }
        }
        DeviceCmd::Edit(edit) => {
            let d = device_by_auth(store, &edit.auth_id).await?;
            let update = device_update(&edit)?;
            if update == DeviceUpdate::default() {
                bail!(
                    "nothing to change: give at least one of --name, --caller-id, --clear-caller-id, --call-types, \
                     --max-contacts, --trusted-address, --clear-trusted-address, --digest, --md5-from, \
                     --clear-md5-from"
                );
            }
            let after = update.digest.unwrap_or(d.digest);
            check_md5_from_applies(after, update.md5_from.as_deref().unwrap_or_default())?;
            // Networks mean nothing for a modern device: switching back clears them.
            let update = if after == DigestMode::Modern && !d.md5_from.is_empty() && update.md5_from.is_none() {
                DeviceUpdate { md5_from: Some(Vec::new()), ..update }
            } else {
                update
            };
            let d = store.update_device(d.id, &update).await.map_err(friendly)?;
            println!("device {} updated", d.auth_id);
        }
        DeviceCmd::Remove { auth_id } => {
            let d = device_by_auth(store, &auth_id).await?;
            store.delete_device(d.id).await.map_err(friendly)?;
            println!("device {auth_id} removed");
        }
        DeviceCmd::ResetPassword { auth_id, password } => {
            let d = device_by_auth(store, &auth_id).await?;
            let generated = password.is_none();
            let password = match password {
                Some(p) => check_password("--password", &p, &d.auth_id)?,
                None => generate_password()?,
            };
            let update =
                DeviceUpdate { credentials: Some(credentials(&d.auth_id, realm, &password)), ..Default::default() };
            store.update_device(d.id, &update).await.map_err(friendly)?;
            println!("password of device {auth_id} reset");
            print_password(&password, generated);
        }
        DeviceCmd::Import { service, file } => {
            let service = service_named(store, &service).await?;
            let rows = read_csv(&file, &service, config)?;
            let list: Vec<NewDevice> = rows.iter().map(|(_, d)| d.clone()).collect();
            let created = match store.create_devices(&list).await {
                Ok(c) => c,
                // Name the file line holding the value that already exists.
                Err(StoreError::Conflict { entity, field, value }) => {
                    let line = rows.iter().find(|(_, d)| match field {
                        "auth_id" => d.auth_id == value,
                        "name" => d.name == value,
                        _ => false,
                    });
                    match line {
                        Some((n, _)) => bail!(
                            "{}: line {n}: {field}: a {entity} with {field} {value:?} already exists (nothing was imported)",
                            file.display()
                        ),
                        None => bail!(
                            "{}: a {entity} with {field} {value:?} already exists (nothing was imported)",
                            file.display()
                        ),
                    }
                }
                Err(e) => return Err(e.into()),
            };
            println!("imported {} devices into service {}", created.len(), service.name);
        }
    }
    Ok(())
}

fn new_device(add: &DeviceAdd, service: &Service, config: &Config) -> anyhow::Result<(NewDevice, String, bool)> {
    let name = check_name("--name", &add.name)?;
    let auth_id = check_auth_id("--auth-id", &add.auth_id)?;
    let generated = add.password.is_none();
    let password = match &add.password {
        Some(p) => check_password("--password", p, &auth_id)?,
        None => generate_password()?,
    };
    let caller_id = add.caller_id.as_deref().map(|c| check_caller_id("--caller-id", c)).transpose()?;
    let call_types = match &add.call_types {
        Some(list) => check_call_types("--call-types", list)?,
        None => DEFAULT_CALL_TYPES.iter().map(|s| s.to_string()).collect(),
    };
    let trusted_address =
        add.trusted_address.as_deref().map(|a| check_trusted_address("--trusted-address", a)).transpose()?;
    let digest = add.digest.as_deref().map(|d| check_digest("--digest", d)).transpose()?.unwrap_or_default();
    let md5_from = add.md5_from.as_deref().map(|n| check_networks("--md5-from", n)).transpose()?.unwrap_or_default();
    check_md5_from_applies(digest, &md5_from)?;
    let max_contacts = match (service.mode, add.max_contacts) {
        (ServiceMode::Direct, Some(n)) if n != 1 => {
            bail!("--max-contacts: a Direct Mode device holds exactly one contact")
        }
        (ServiceMode::Direct, _) => 1,
        (ServiceMode::Trunk, Some(n)) if !(1..=100).contains(&n) => bail!("--max-contacts: must be between 1 and 100"),
        (ServiceMode::Trunk, Some(n)) => n,
        (ServiceMode::Trunk, None) => i64::from(config.registrar.trunk_max_contacts),
    };
    let new = NewDevice {
        service_id: service.id,
        name,
        credentials: credentials(&auth_id, &config.sip.domain, &password),
        auth_id,
        caller_id,
        call_types,
        max_contacts,
        trusted_address,
        digest,
        md5_from,
    };
    Ok((new, password, generated))
}

fn device_update(edit: &DeviceEdit) -> anyhow::Result<DeviceUpdate> {
    Ok(DeviceUpdate {
        name: edit.name.as_deref().map(|n| check_name("--name", n)).transpose()?,
        caller_id: if edit.clear_caller_id {
            Some(None)
        } else {
            edit.caller_id.as_deref().map(|c| check_caller_id("--caller-id", c).map(Some)).transpose()?
        },
        call_types: edit.call_types.as_deref().map(|c| check_call_types("--call-types", c)).transpose()?,
        max_contacts: match edit.max_contacts {
            Some(n) if !(1..=100).contains(&n) => bail!("--max-contacts: must be between 1 and 100"),
            other => other,
        },
        credentials: None,
        digest: edit.digest.as_deref().map(|d| check_digest("--digest", d)).transpose()?,
        md5_from: if edit.clear_md5_from {
            Some(Vec::new())
        } else {
            edit.md5_from.as_deref().map(|n| check_networks("--md5-from", n)).transpose()?
        },
        trusted_address: if edit.clear_trusted_address {
            Some(None)
        } else {
            edit.trusted_address
                .as_deref()
                .map(|a| check_trusted_address("--trusted-address", a).map(Some))
                .transpose()?
        },
    })
}

/// HA1 for every algorithm we may offer; the password itself is dropped after this.
pub fn credentials(auth_id: &str, realm: &str, password: &str) -> Credentials {
    Credentials {
        realm: realm.to_owned(),
        ha1_md5: ha1(Algorithm::Md5, auth_id, realm, password),
        ha1_sha256: ha1(Algorithm::Sha256, auth_id, realm, password),
        ha1_sha512_256: ha1(Algorithm::Sha512_256, auth_id, realm, password),
    }
}

/// 20 characters from a 54-symbol alphabet without look-alikes (about 115 bits).
fn generate_password() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut out = String::with_capacity(20);
    while out.len() < 20 {
        let mut buf = [0u8; 32];
        getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
        // Rejection sampling keeps every symbol equally likely.
        let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
        for b in buf {
            if b < limit
                && out.len() < 20
                && let Some(&c) = ALPHABET.get(usize::from(b) % ALPHABET.len())
            {
                out.push(char::from(c));
            }
        }
    }
    Ok(out)
}

fn print_password(password: &str, generated: bool) {
    if generated {
        println!("password: {password}");
        println!("(shown once: it is not stored and cannot be shown again; use reset-password to issue a new one)");
    }
}

pub fn check_name(field: &str, v: &str) -> anyhow::Result<String> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > 64 || v.chars().any(char::is_control) {
        bail!("{field}: must be 1 to 64 printable characters");
    }
    Ok(v.to_owned())
}

/// Auth IDs are SIP user names: unreserved characters only, so they never need escaping.
pub fn check_auth_id(field: &str, v: &str) -> anyhow::Result<String> {
    let ok = !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.+~".contains(&b));
    if !ok {
        bail!("{field}: {v:?} must be 1 to 64 characters of A-Z a-z 0-9 - _ . + ~");
    }
    Ok(v.to_owned())
}

pub fn check_password(field: &str, v: &str, auth_id: &str) -> anyhow::Result<String> {
    if v.chars().count() < 8 || v.chars().count() > 128 {
        bail!("{field}: must be 8 to 128 characters");
    }
    if v.chars().any(char::is_control) {
        bail!("{field}: must not contain control characters");
    }
    if v.eq_ignore_ascii_case(auth_id) {
        bail!("{field}: must differ from the auth id");
    }
    Ok(v.to_owned())
}

pub fn check_caller_id(field: &str, v: &str) -> anyhow::Result<String> {
    let digits = v.strip_prefix('+').unwrap_or(v);
    if digits.len() < 3 || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        bail!("{field}: {v:?} must be a phone number (3 to 16 digits, optional leading +)");
    }
    Ok(v.to_owned())
}

/// An IP address with an optional port (5060 if none), stored as `ip:port` or `[v6]:port` so that one address
/// has one spelling (the daemon matches it against packet sources, and it is unique across devices).
/// `modern` or `md5`.
pub fn check_digest(field: &str, v: &str) -> anyhow::Result<DigestMode> {
    DigestMode::parse(v).with_context(|| format!("{field}: expected modern or md5, got {v:?}"))
}

/// Networks for MD5 alone make sense only on a device set to `md5`.
fn check_md5_from_applies(digest: DigestMode, md5_from: &[IpNet]) -> anyhow::Result<()> {
    if !md5_from.is_empty() && digest != DigestMode::Md5 {
        bail!("--md5-from: only for a device with --digest md5");
    }
    Ok(())
}

/// Comma-separated CIDR networks (at most 20), each with its host bits clear.
pub fn check_networks(field: &str, v: &str) -> anyhow::Result<Vec<IpNet>> {
    if v.trim().is_empty() {
        bail!("{field}: give at least one network (a.b.c.d/n), or use --clear-md5-from");
    }
    let nets = switchboard_storage::parse_networks(v).map_err(|e| anyhow::anyhow!("{field}: {e}"))?;
    if nets.len() > 20 {
        bail!("{field}: at most 20 networks");
    }
    Ok(nets)
}

pub fn check_trusted_address(field: &str, v: &str) -> anyhow::Result<String> {
    const DEFAULT_PORT: u16 = 5060;
    let parsed = v.parse::<SocketAddr>().ok().or_else(|| {
        // A bare address; IPv6 with or without brackets.
        let ip = v.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(v);
        ip.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, DEFAULT_PORT))
    });
    let Some(mut addr) = parsed else {
        bail!("{field}: {v:?} must be an IP address and an optional port (192.0.2.10:5060, [2001:db8::1]:5060)");
    };
    if addr.port() == 0 {
        bail!("{field}: {v:?} has port 0; give a port 1 to 65535 or none for {DEFAULT_PORT}");
    }
    // An IPv4 peer seen through a dual-stack socket is still that IPv4 address.
    if let IpAddr::V6(v6) = addr.ip()
        && let Some(v4) = v6.to_ipv4_mapped()
    {
        addr = SocketAddr::new(IpAddr::V4(v4), addr.port());
    }
    let ip = addr.ip();
    if ip.is_unspecified() || ip.is_multicast() || matches!(addr, SocketAddr::V6(a) if a.scope_id() != 0) {
        bail!("{field}: {v:?} cannot be the source of a packet (unspecified, multicast or scoped address)");
    }
    Ok(addr.to_string())
}

pub fn check_call_types(field: &str, list: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for t in list {
        let t = t.trim().to_ascii_lowercase();
        if t.is_empty() {
            continue;
        }
        if t == "emergency" {
            bail!("{field}: emergency calls are always allowed and cannot be listed");
        }
        if !CALL_TYPES.contains(&t.as_str()) {
            bail!("{field}: unknown call type {t:?} (known: {})", CALL_TYPES.join(", "));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// Reads `name,auth_id,password` rows (a header row naming those columns is optional). Every row is checked
/// before anything is written; errors name the line and field.
/// Returns each device with the file line it came from.
fn read_csv(path: &Path, service: &Service, config: &Config) -> anyhow::Result<Vec<(usize, NewDevice)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if n == 1 && fields.first().is_some_and(|f| f.eq_ignore_ascii_case("name")) {
            continue;
        }
        let [name, auth_id, password] = fields.as_slice() else {
            bail!("{}: line {n}: expected 3 columns name,auth_id,password, found {}", path.display(), fields.len());
        };
        let at = |f: &str| format!("{}: line {n}: {f}", path.display());
        let name = check_name(&at("name"), name)?;
        let auth_id = check_auth_id(&at("auth_id"), auth_id)?;
        let password = check_password(&at("password"), password, &auth_id)?;
        if !seen.insert(auth_id.clone()) {
            bail!("{}: auth id {auth_id:?} appears twice in the file", at("auth_id"));
        }
        let max_contacts = match service.mode {
            ServiceMode::Direct => 1,
            ServiceMode::Trunk => i64::from(config.registrar.trunk_max_contacts),
        };
        out.push((
            n,
            NewDevice {
                service_id: service.id,
                name,
                credentials: credentials(&auth_id, &config.sip.domain, &password),
                auth_id,
                caller_id: None,
                call_types: DEFAULT_CALL_TYPES.iter().map(|s| s.to_string()).collect(),
                max_contacts,
                trusted_address: None,
                digest: DigestMode::Modern,
                md5_from: Vec::new(),
            },
        ));
    }
    if out.is_empty() {
        bail!("{}: no devices in the file", path.display());
    }
    Ok(out)
}

pub(crate) async fn service_named(store: &dyn Store, name: &str) -> anyhow::Result<Service> {
    store.service_by_name(name).await?.with_context(|| format!("--service: no service named {name:?}"))
}

async fn device_by_auth(store: &dyn Store, auth_id: &str) -> anyhow::Result<Device> {
    store.device_by_auth_id(auth_id).await?.with_context(|| format!("auth id: no device with auth id {auth_id:?}"))
}

/// Store conflicts in words that name the CLI field.
pub(crate) fn friendly(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Conflict { entity, field, value } => {
            anyhow::anyhow!("--{}: a {entity} with {field} {value:?} already exists", field.replace('_', "-"))
        }
        other => other.into(),
    }
}

async fn print_device(d: &Device, store: &dyn Store) -> anyhow::Result<()> {
    let service = store.service(d.service_id).await?;
    println!("name:          {}", d.name);
    println!("auth id:       {}", d.auth_id);
    println!("service:       {}", service.map(|s| s.name).unwrap_or_default());
    println!("caller id:     {}", d.caller_id.clone().unwrap_or_else(|| "-".into()));
    println!("call types:    {}", d.call_types.join(", "));
    println!("max contacts:  {}", d.max_contacts);
    println!("trusted from:  {}", d.trusted_address.as_deref().unwrap_or("-"));
    let networks: Vec<String> = d.md5_from.iter().map(ToString::to_string).collect();
    match (d.digest, networks.is_empty()) {
        (DigestMode::Modern, _) => println!("digest:        modern (SHA-256, then MD5)"),
        (DigestMode::Md5, true) => println!("digest:        md5 (MD5 alone from its last address)"),
        (DigestMode::Md5, false) => {
            println!("digest:        md5 (MD5 alone from its last address and {})", networks.join(", "));
        }
    }
    match store.device_auth(d.id).await? {
        Some(a) => println!(
            "last auth:     {} from {} ({}), since {}",
            a.algorithm,
            a.source,
            a.user_agent.as_deref().unwrap_or("no User-Agent"),
            crate::calls::utc(a.since)
        ),
        None => println!("last auth:     never"),
    }
    let bindings = store.bindings_for_device(d.id).await?;
    println!("registrations: {}", bindings.len());
    for b in bindings {
        println!("  {} via {} {}", b.contact, b.transport, b.source);
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct RegistrationRow {
    auth_id: String,
    device: String,
    aor: String,
    contact: String,
    source: String,
    transport: String,
    expires_at: i64,
    expires_in: i64,
    user_agent: Option<String>,
    /// The digest algorithm of the device's last successful authentication.
    auth_algorithm: Option<String>,
    node: String,
    online: bool,
    state_since: Option<i64>,
}

async fn registrations(store: &dyn Store, json: bool) -> anyhow::Result<()> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let devices: std::collections::HashMap<i64, Device> =
        store.list_devices(None).await?.into_iter().map(|d| (d.id, d)).collect();
    let states: std::collections::HashMap<i64, (bool, i64)> =
        store.device_states().await?.into_iter().map(|s| (s.device_id, (s.online, s.since))).collect();
    let auths: std::collections::HashMap<i64, String> =
        store.device_auths().await?.into_iter().map(|a| (a.device_id, a.algorithm)).collect();
    let mut rows = Vec::new();
    for b in store.list_bindings().await? {
        if b.expires_at <= now {
            continue;
        }
        let d = devices.get(&b.device_id);
        let state = states.get(&b.device_id);
        rows.push(RegistrationRow {
            auth_id: d.map(|d| d.auth_id.clone()).unwrap_or_default(),
            device: d.map(|d| d.name.clone()).unwrap_or_default(),
            aor: b.aor,
            contact: b.contact,
            source: b.source,
            transport: b.transport,
            expires_at: b.expires_at,
            expires_in: (b.expires_at - now) / 1000,
            user_agent: b.user_agent,
            auth_algorithm: auths.get(&b.device_id).cloned(),
            node: b.node,
            online: state.is_some_and(|s| s.0),
            state_since: state.map(|s| s.1),
        });
    }
    if json {
        return print_json(&rows);
    }
    let table_rows = rows
        .iter()
        .map(|r| {
            vec![
                r.auth_id.clone(),
                r.contact.clone(),
                r.source.clone(),
                r.transport.clone(),
                format!("{}s", r.expires_in),
                if r.online { "online".into() } else { "offline".into() },
                r.auth_algorithm.clone().unwrap_or_else(|| "-".into()),
                r.user_agent.clone().unwrap_or_else(|| "-".into()),
                r.node.clone(),
            ]
        })
        .collect();
    table(
        &["AUTH ID", "CONTACT", "SOURCE", "TRANSPORT", "EXPIRES", "STATE", "DIGEST", "USER AGENT", "NODE"],
        table_rows,
    );
    Ok(())
}

pub(crate) fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub(crate) fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
    }

    #[test]
    fn validation_names_the_field() {
        assert!(check_auth_id("--auth-id", "bad id").unwrap_err().to_string().starts_with("--auth-id"));
        assert!(check_password("--password", "short", "x").unwrap_err().to_string().starts_with("--password"));
        assert!(check_caller_id("--caller-id", "02x").unwrap_err().to_string().starts_with("--caller-id"));
        let e = check_call_types("--call-types", &["local".into(), "galactic".into()]).unwrap_err();
        assert!(e.to_string().contains("galactic"));
        assert_eq!(check_call_types("--call-types", &["Local".into(), "local".into()]).unwrap(), vec!["local"]);
    }

    #[test]
    fn trusted_addresses_get_one_spelling() {
        for (given, stored) in [
            ("192.0.2.10", "192.0.2.10:5060"),
            ("192.0.2.10:5070", "192.0.2.10:5070"),
            ("2001:DB8:0::1", "[2001:db8::1]:5060"),
            ("[2001:db8::1]", "[2001:db8::1]:5060"),
            ("[2001:db8::1]:5080", "[2001:db8::1]:5080"),
            ("::ffff:192.0.2.10", "192.0.2.10:5060"),
            ("[::ffff:192.0.2.10]:5070", "192.0.2.10:5070"),
        ] {
            assert_eq!(check_trusted_address("--trusted-address", given).unwrap(), stored, "{given:?}");
        }
        for bad in [
            "",
            "pbx.example.net",
            "pbx.example.net:5060",
            "192.0.2.10:",
            "192.0.2.10:0",
            "192.0.2.10:65536",
            "192.0.2",
            "[192.0.2.10]:5060",
            "0.0.0.0",
            "[::]:5060",
            "224.0.0.1",
            "[fe80::1%2]:5060",
            " 192.0.2.10",
        ] {
            let e = check_trusted_address("--trusted-address", bad).unwrap_err().to_string();
            assert!(e.starts_with("--trusted-address"), "{bad:?}: {e}");
        }
    }
}
