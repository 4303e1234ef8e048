//! Provisioning commands: customers, services and devices (checked by the admin crate, errors naming the
//! flag), CSV import, listings.

use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;
use switchboard_admin::Naming;
use switchboard_admin::check::{check_mode, check_name};
use switchboard_admin::devices::{self, DeviceChanges, DeviceFields};
use switchboard_server::Config;
use switchboard_storage::{Device, DigestMode, NewDevice, NewService, Service, Store, StoreError};

use crate::cli::{Command, CustomerCmd, DeviceCmd, ServiceCmd, VoicemailCmd};

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
        Command::Service(ServiceCmd::Add { customer, name, mode, region, require_tls }) => {
            let mode = check_mode("--mode", &mode)?;
            let name = check_name("--name", &name)?;
            let region = region.map(|r| check_name("--region", &r)).transpose()?;
            let cust = store
                .customer_by_name(&customer)
                .await?
                .with_context(|| format!("--customer: no customer named {customer:?}"))?;
            let s = store
                .create_service(&NewService { customer_id: cust.id, name, mode, region, require_tls })
                .await
                .map_err(friendly)?;
            println!("service {} added ({} mode, id {})", s.name, s.mode.as_str(), s.id);
        }
        Command::Service(ServiceCmd::Edit { name, require_tls, allow_any_transport }) => {
            let s = store.service_by_name(&name).await?.with_context(|| format!("no service named {name:?}"))?;
            let tls = match (require_tls, allow_any_transport) {
                (true, _) => true,
                (_, true) => false,
                _ => bail!("nothing to change: give --require-tls or --allow-any-transport"),
            };
            let s = store.set_service_require_tls(s.id, tls).await.map_err(friendly)?;
            let how = if s.require_tls { "TLS only" } else { "any transport" };
            println!("service {} updated: its devices are accepted over {how}", s.name);
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
                            if s.require_tls { "TLS only" } else { "any" }.into(),
                        ]
                    })
                    .collect();
                table(&["ID", "NAME", "MODE", "REGION", "TRANSPORTS"], rows);
            }
        }
        Command::Device(d) => device(d, store, config).await?,
        Command::Registrations { json } => registrations(store, json).await?,
        Command::Number(n) => crate::numbers::number(n, store).await?,
        Command::Gateway(g) => crate::numbers::gateway(g, store).await?,
        Command::Calls { json } => crate::calls::calls(store, json).await?,
        Command::Voicemail(VoicemailCmd::List { number, json }) => crate::voicemail::list(store, &number, json).await?,
        Command::Token(t) => crate::tokens::token(t, store).await?,
        Command::Nodes { json } => crate::calls::nodes(store, config, json).await?,
        Command::Login(l) => crate::tokens::login(l, store, config).await?,
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
            let fields = DeviceFields {
                name: add.name,
                auth_id: add.auth_id,
                password: add.password,
                caller_id: add.caller_id,
                call_types: add.call_types,
                max_contacts: add.max_contacts,
                trusted_address: add.trusted_address,
                digest: add.digest,
                md5_from: add.md5_from,
                require_tls: add.require_tls.then_some(true),
            };
            let trunk_contacts = config.registrar.trunk_max_contacts;
            let created = devices::new_device(&fields, &service, realm, trunk_contacts, Naming::Flags)?;
            let d = store.create_device(&created.device).await.map_err(friendly)?;
            println!("device {} added to service {} (auth id {})", d.name, service.name, d.auth_id);
            print_password(&created.password, created.generated);
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
            let changes = DeviceChanges {
                name: edit.name,
                caller_id: clearable(edit.caller_id, edit.clear_caller_id),
                call_types: edit.call_types,
                max_contacts: edit.max_contacts,
                trusted_address: clearable(edit.trusted_address, edit.clear_trusted_address),
                digest: edit.digest,
                md5_from: clearable(edit.md5_from, edit.clear_md5_from),
                require_tls: match (edit.require_tls, edit.allow_any_transport) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
            };
            if changes.is_empty() {
                bail!(
                    "nothing to change: give at least one of --name, --caller-id, --clear-caller-id, --call-types, \
                     --max-contacts, --trusted-address, --clear-trusted-address, --digest, --md5-from, \
                     --clear-md5-from, --require-tls, --allow-any-transport"
                );
            }
            let service = store.service(d.service_id).await?.context("the device's service is gone")?;
            let update = devices::device_update(&changes, &d, service.mode, Naming::Flags)?;
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
            let new = devices::reset_password(&d, password.as_deref(), realm, Naming::Flags)?;
            store.update_device(d.id, &new.update).await.map_err(friendly)?;
            println!("password of device {auth_id} reset");
            print_password(&new.password, new.generated);
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

/// A value to set, or `None` to clear it when its `--clear-...` flag was given.
fn clearable(value: Option<String>, clear: bool) -> Option<Option<String>> {
    if clear { Some(None) } else { value.map(Some) }
}

fn print_password(password: &str, generated: bool) {
    if generated {
        println!("password: {password}");
        println!("(shown once: it is not stored and cannot be shown again; use reset-password to issue a new one)");
    }
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
        let at = format!("{}: line {n}: ", path.display());
        let fields = DeviceFields {
            name: (*name).to_owned(),
            auth_id: (*auth_id).to_owned(),
            password: Some((*password).to_owned()),
            ..Default::default()
        };
        let trunk_contacts = config.registrar.trunk_max_contacts;
        let created = devices::new_device(&fields, service, &config.sip.domain, trunk_contacts, Naming::Column(&at))?;
        if !seen.insert(created.device.auth_id.clone()) {
            bail!("{at}auth_id: auth id {:?} appears twice in the file", created.device.auth_id);
        }
        out.push((n, created.device));
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
    println!("transports:    {}", if d.require_tls { "TLS only" } else { "any (UDP, TCP, TLS)" });
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
